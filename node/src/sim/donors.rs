//! Storage donors (SPEC §6): phones that seal a 1 MiB sector (the test
//! size) against a recent ticket, pre-commit it, prove the seal once its
//! seed is out, and prove it every period with `PostCommit` then
//! `PostReveal`, as the phone library does. With the `half-data` flag one
//! donor keeps only half of its replica after the seal and proves anyway.

use std::collections::BTreeMap;
use watt_core::address::AccountId;
use watt_core::codec::{encode, BoundedBytes};
use watt_core::crypto::Hash256;
use watt_core::ledger::storage::SectorState;
use watt_core::ledger::{LedgerState, Operation, SectorSize};
use watt_core::merkle;
use watt_core::storage::graph::{replica_id, SectorShape, StackedGraph};
use watt_core::storage::proof::{self, PostChain, ProvenSector};
use watt_core::storage::seal::{commitments, replica_leaves, MemorySealStore, SealCommitments, Sealer};

use crate::store::{LedgerRead, MemStore};

/// Every donor seals one sector of the test size under this number.
pub const SECTOR_NUMBER: u64 = 1;
pub const SECTOR: SectorSize = SectorSize::Mib1;

/// A sealed sector waiting for its pre-commit and seed.
struct Sealing {
    store: MemorySealStore,
    graph: StackedGraph,
    replica_id: Hash256,
    comms: SealCommitments,
    ticket_seq: u64,
}

pub struct Donor {
    /// The phone (account) that donates.
    pub phone: usize,
    pub id: AccountId,
    /// Keeps half of its replica only (the `half-data` adversary).
    pub cheater: bool,
    sealing: Option<Sealing>,
    /// After the seal proof landed: the replica leaves and their tree.
    replica: Vec<Hash256>,
    tree: Vec<Vec<Hash256>>,
    /// Replica nodes this donor no longer holds (the cheater's dropped half).
    dropped_from: u64,
    /// This period's walked chain, for its commit and then its reveal.
    chain: Option<(u64, PostChain)>,
    /// Each period's first `PostCommit` try: when (ms).
    pub tried: BTreeMap<u64, u64>,
    /// Periods whose reveal this cheater sent with every sample on data it
    /// still holds (the protocol cannot tell those from honest ones).
    pub lucky: BTreeMap<u64, bool>,
}

impl Donor {
    pub fn new(phone: usize, id: AccountId, cheater: bool) -> Donor {
        Donor {
            phone,
            id,
            cheater,
            sealing: None,
            replica: Vec::new(),
            tree: Vec::new(),
            dropped_from: u64::MAX,
            chain: None,
            tried: BTreeMap::new(),
            lucky: BTreeMap::new(),
        }
    }

    /// The storage operation this donor sends next, judged on `state` (one
    /// validator's view) at `now`; `None` while it waits.
    pub fn next_op(&mut self, state: &LedgerState, store: &MemStore, now: u64) -> Option<Operation> {
        let lcl = &state.header;
        let p = state.params.clone();
        match state.sector(&self.id, SECTOR_NUMBER) {
            None => {
                // Seal against the newest ledger, once per ticket window.
                let fresh = self.sealing.as_ref().is_some_and(|s| lcl.seq < s.ticket_seq + p.ticket_window / 2);
                if !fresh {
                    self.sealing = Some(seal(&self.id, lcl.seq, &lcl.rand, p.sector_layers)?);
                }
                let s = self.sealing.as_ref()?;
                Some(Operation::SectorPreCommit {
                    sector_number: SECTOR_NUMBER,
                    size: SECTOR,
                    ticket_seq: s.ticket_seq,
                    comm_d: s.comms.comm_d,
                    comm_r: s.comms.comm_r,
                    comm_c: s.comms.comm_c,
                    comm_r_last: s.comms.comm_r_last,
                })
            }
            Some(sector) if sector.state == SectorState::PreCommitted => {
                let seed_seq = sector.precommit_seq + p.seed_delay;
                if lcl.seq <= seed_seq {
                    return None;
                }
                let s = self.sealing.as_ref().filter(|s| s.replica_id == sector.replica_id)?;
                let seed = proof::seal_seed(&store.header(seed_seq).ok().flatten()?.rand);
                let proof =
                    proof::prove_seal(&s.store, &s.graph, &s.replica_id, &seed, p.seal_challenges as usize).ok()?;
                let proof = BoundedBytes::try_from_vec(encode(&proof)).ok()?;
                Some(Operation::SectorProveCommit { sector_number: SECTOR_NUMBER, proof })
            }
            Some(_) => {
                self.keep_replica();
                self.prove_period(state, store, now)
            }
        }
    }

    /// Once the seal proof landed only the replica is kept (as the phone
    /// drops the inner layers); the cheater then drops half of it.
    fn keep_replica(&mut self) {
        let Some(s) = self.sealing.take() else { return };
        let Ok(leaves) = replica_leaves(&s.store, &s.graph) else { return };
        self.tree = merkle::levels(&leaves);
        self.replica = leaves;
        if self.cheater {
            let half = self.replica.len() / 2;
            self.dropped_from = half as u64;
            for l in &mut self.replica[half..] {
                *l = Hash256::ZERO;
            }
        }
    }

    /// This period's `PostCommit`, then its `PostReveal` once the samples
    /// ledger has closed.
    fn prove_period(&mut self, state: &LedgerState, store: &MemStore, now: u64) -> Option<Operation> {
        let lcl = &state.header;
        let p = &state.params;
        let period = lcl.day;
        let k = watt_core::ledger::storage::deadline_index(&self.id, period, p.post_deadlines);
        let (opening_seq, opening_rand) = *state.day_record(period)?.post_openings.get(k as usize)?;
        let sectors: Vec<ProvenSector> = state
            .post_sectors(&self.id, opening_seq, period)
            .into_iter()
            .map(|s| ProvenSector { sector_number: s.number, sector_bytes: s.bytes, comm_r_last: s.comm_r_last })
            .collect();
        if sectors.is_empty() || self.replica.is_empty() {
            return None;
        }
        let commitment = state.prover(&self.id)?.post.as_ref().filter(|c| c.period == period);
        if let Some(c) = commitment {
            // Committed: wait for the samples ledger, reveal once.
            if c.revealed || lcl.seq <= c.commit_seq + p.post_reveal_delay {
                return None;
            }
        }
        // The chain is walked once a period (a walk is the costly part).
        if self.chain.as_ref().is_none_or(|(p, _)| *p != period) {
            let beacon = proof::post_beacon(&opening_rand);
            let replica = &self.replica;
            let steps = u64::from(p.post_chain_steps);
            let chain = PostChain::walk::<()>(&beacon, &self.id.0 .0, &sectors, steps, |_, n| {
                Ok(replica.get(n as usize).copied().unwrap_or(Hash256::ZERO))
            })
            .ok()?
            .ok()?;
            self.chain = Some((period, chain));
        }
        let chain = &self.chain.as_ref()?.1;
        let Some(c) = commitment else {
            self.tried.entry(period).or_insert(now);
            return Some(Operation::PostCommit { period, chain_root: chain.root() });
        };
        let samples_seq = c.commit_seq + p.post_reveal_delay;
        if c.chain_root != chain.root() {
            return None;
        }
        let samples_seed = proof::samples_seed(&store.header(samples_seq).ok().flatten()?.rand);
        let tree = &self.tree;
        let reveal = chain
            .reveal::<()>(&samples_seed, p.post_samples as usize, &sectors, |_, n| Ok(merkle::path(tree, n)))
            .ok()?;
        if self.cheater {
            let held = reveal.steps.iter().all(|s| s.replica_path.index < self.dropped_from);
            self.lucky.insert(period, held);
        }
        let proof = BoundedBytes::try_from_vec(encode(&reveal)).ok()?;
        Some(Operation::PostReveal { period, proof })
    }
}

/// Seals every donor's sector against the genesis ledger's ticket before
/// the run, on two threads (sealing is pure: the run stays deterministic).
pub fn preseal(donors: &mut [Donor], genesis_rand: &Hash256, layers: u32) {
    let half = donors.len().div_ceil(2);
    let seal_all = |ds: &mut [Donor]| {
        for d in ds {
            d.sealing = seal(&d.id, 1, genesis_rand, layers);
        }
    };
    let (a, b) = donors.split_at_mut(half);
    std::thread::scope(|s| {
        s.spawn(|| seal_all(b));
        seal_all(a);
    });
}

/// Seals one sector of `owner` against the ticket of ledger `ticket_seq`.
fn seal(owner: &AccountId, ticket_seq: u64, rand: &Hash256, layers: u32) -> Option<Sealing> {
    let graph = StackedGraph::new(SectorShape { sector_bytes: SECTOR.bytes(), layers }).ok()?;
    let rid = replica_id(&owner.0 .0, SECTOR_NUMBER, &proof::ticket(rand));
    let mut store = MemorySealStore::default();
    let mut sealer = Sealer::resume(graph.clone(), rid, &store).ok()?;
    let all = graph.nodes() * u64::from(layers);
    while !sealer.step(&mut store, all).ok()?.done {}
    let comms = commitments(&store, &graph).ok()?;
    Some(Sealing { store, graph, replica_id: rid, comms, ticket_seq })
}
