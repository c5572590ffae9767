//! Ledger state (SPEC §3): typed entries under sparse-Merkle keys, the
//! deterministic indexes every validator keeps beside them, and the supply
//! invariant of SPEC §5.

use super::params::Params;
use super::smt::{self, Smt};
use super::storage::{ProverEntry, SectorEntry};
use super::types::{AccountEntry, LedgerHeader, StateProof};
use super::Genesis;
use crate::address::{AccountId, NodeId};
use crate::amount::Amount;
use crate::codec::{encode, BoundedBytes, BoundedVec, Wire};
use crate::crypto::{hash_tagged, Domain, Hash256, NetworkId, PublicKey};
use crate::scp::QuorumSet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a state entry is about; its tree key is `H(tag ‖ encoded StateKey)`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StateKey {
    Account(AccountId),
    FeePool,
    Supply,
    Day(u64),
    Node(NodeId),
    Sector(AccountId, u64),
    Prover(AccountId),
    /// The validators whose participation in a recent slot has been counted
    /// (SPEC §4), kept while the slot can still be claimed.
    Participation(u64),
    /// How many ledgers so far had a full proof lane (SPEC §3: each one
    /// extends the reveal windows open across it).
    FullProofLanes,
    /// A first tap waiting for its day's admission lottery (SPEC §5), by
    /// day and invitee.
    PendingAdmission(u64, AccountId),
}

impl crate::codec::Wire for StateKey {
    /// A tag, an account and a number at most.
    const MAX_ENCODED_LEN: usize = 64;
}

/// The codec's bytes before the 32 key bytes of `StateKey::Account`.
fn account_key_prefix() -> &'static [u8] {
    static PREFIX: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut b = crate::codec::encode(&StateKey::Account(AccountId(PublicKey([0; 32]))));
        b.truncate(b.len().saturating_sub(32));
        b
    })
}

impl StateKey {
    pub fn hash(&self) -> Hash256 {
        if let StateKey::Account(a) = self {
            // The same bytes as the codec writes, without allocating: a day
            // boundary hashes a million account keys.
            let mut h = crate::crypto::TaggedHasher::new(Domain::StateKey);
            h.update(account_key_prefix()).update(&a.0 .0);
            return h.finalize();
        }
        hash_tagged(Domain::StateKey, &crate::codec::encode(self))
    }
}

/// A day's attesters, in state-key order (the order payouts and the
/// attester-set root use), so a day boundary needs no hashing or sorting.
pub type AttesterSet = BTreeMap<Hash256, AccountId>;

/// Money that exists, by where it is (SPEC §5 invariant).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Supply {
    /// Reserve plus every emission so far.
    pub minted: Amount,
    /// Emitted in phase 1 so far (what decides when phase 1 ends).
    pub phase1_emitted: Amount,
    pub phase2_emitted: Amount,
    /// Distributed but not yet credited to accounts.
    pub pending_payouts: Amount,
    /// Pledges locked or unlocking.
    pub locked_pledges: Amount,
    /// Pledges held by sectors (SPEC §6 `pledge_per_gib`).
    pub sector_pledges: Amount,
}

/// Per-day record (SPEC §3): counters while the day runs, then the fixed
/// distribution and the payout progress.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayRecord {
    pub day: u64,
    pub first_seq: u64,
    pub new_accounts: u64,
    pub attesters: u64,
    /// Externalized slots of the day counted for each reward-set validator.
    pub validator_slots: BoundedVec<(NodeId, u64), 1000>,
    pub slots: u64,
    pub distributed: bool,
    pub attesters_root: Hash256,
    /// Class totals of weights: attesters, validators, storage.
    pub total_weights: [u64; 3],
    pub pools: [Amount; 3],
    pub fees: [Amount; 3],
    /// Emission actually issued (sum of floors) and fees actually paid out.
    pub emitted: Amount,
    pub fees_paid: Amount,
    pub payouts: u64,
    /// Root over the day's payouts in key order; set when the last one is
    /// credited (they are folded in batch by batch, so the day boundary
    /// does not hash a million of them).
    pub payouts_root: Hash256,
    pub payouts_credited: u64,
    pub payouts_frontier: BoundedVec<Hash256, 64>,
    /// Ledgers that opened the day's PoSt deadlines, with their `rand`
    /// (index = deadline).
    pub post_openings: BoundedVec<(u64, Hash256), { crate::ledger::params::MAX_POST_DEADLINES }>,
    /// Provers whose PoSt reveal landed this day, and the bytes they proved.
    pub storage_provers: u64,
    pub proven_bytes: u64,
    /// The period of this day is settled (faults, penalties, expiry).
    pub settled: bool,
    pub settle_cursor: Option<AccountId>,
    /// A ledger of this day brought more first taps than the places left:
    /// from then on the day's first taps wait for its lottery (SPEC §5).
    pub admission_lottery: bool,
    /// First taps that waited for the lottery (drawn at the day's end).
    pub lottery_entrants: u64,
}

/// A validator in the directory (`AnnounceNode`).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub owner: AccountId,
    pub vrf_key: PublicKey,
    pub addresses: BoundedVec<BoundedBytes<128>, 4>,
    pub quorum_set: QuorumSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateEntry {
    Account(AccountEntry),
    FeePool(Amount),
    Supply(Supply),
    Day(DayRecord),
    Node(NodeEntry),
    Sector(SectorEntry),
    Prover(ProverEntry),
    Participation(BoundedVec<NodeId, MAX_COUNTED_PER_SLOT>),
    FullProofLanes(u64),
    /// The inviter whose invite the waiting first tap carried.
    PendingAdmission(AccountId),
}

/// Most validators counted for one slot (a quorum set's node limit, SPEC §4).
pub const MAX_COUNTED_PER_SLOT: usize = 1000;

impl Wire for StateEntry {
    /// A prover entry is the largest: an unrevealed PoSt commitment over
    /// `MAX_PROVER_SECTORS` sectors (~49 KB) and its unsettled proven
    /// periods (~8 KB each).
    const MAX_ENCODED_LEN: usize = crate::wire::MAX_ENTRY_BYTES;
}

/// A payout waiting to be credited (SPEC §5: batches of `payout_batch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub day: u64,
    pub account: AccountId,
    pub amount: Amount,
}

impl Wire for Payout {
    const MAX_ENCODED_LEN: usize = 64;
}

/// Running totals of what the supply invariant sums (SPEC §5), kept as
/// ledgers apply, so the invariant is checked after every ledger in every
/// build at the cost of the entries the ledger changed, not of every
/// account. Derived, not committed: a full pass rebuilds them at genesis and
/// on restore, and debug builds compare them with a full pass every ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub balances: u128,
    /// Pledges locked or unlocking in accounts.
    pub account_pledges: u128,
    pub sector_pledges: u128,
    /// Payouts queued and not yet credited.
    pub queued_payouts: u128,
}

fn account_sums(a: &AccountEntry) -> (u128, u128) {
    (u128::from(a.balance.units()), u128::from(a.pledge_locked.units()) + u128::from(a.pledge_unlocking.units()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantError {
    #[error("supply invariant broken: balances {balances} + fee pool {fee_pool} + pending {pending} + pledges {pledges} (accounts and sectors) != minted {minted}")]
    Mismatch { balances: u128, fee_pool: u64, pending: u64, pledges: u128, minted: u64 },
    #[error("minted {minted} exceeds the cap {cap}")]
    OverCap { minted: u64, cap: u64 },
    #[error("minted {minted} != reserve {reserve} + emissions {emitted}")]
    Emissions { minted: u64, reserve: u64, emitted: u64 },
    #[error("pledges in accounts ({accounts}) differ from the supply record ({recorded})")]
    Pledges { accounts: u128, recorded: u64 },
    #[error("pledges in sectors ({sectors}) differ from the supply record ({recorded})")]
    SectorPledges { sectors: u128, recorded: u64 },
    #[error("the running totals drifted from a full count: {running} vs {counted}")]
    Drift { running: String, counted: String },
}

/// The whole ledger state a validator holds, with the tree over it.
pub struct LedgerState {
    pub network_id: NetworkId,
    pub genesis_time: u64,
    pub params: Params,
    pub params_hash: Hash256,
    pub header: LedgerHeader,
    /// Validators paid as the reward set (genesis validators).
    pub reward_set: BTreeSet<NodeId>,
    pub(crate) accounts: HashMap<AccountId, AccountEntry>,
    pub(crate) fee_pool: Amount,
    pub(crate) supply: Supply,
    pub(crate) days: BTreeMap<u64, DayRecord>,
    pub(crate) nodes: BTreeMap<NodeId, NodeEntry>,
    /// Attesters of days not yet distributed.
    pub(crate) attesters: BTreeMap<u64, AttesterSet>,
    pub(crate) payouts: std::collections::VecDeque<Payout>,
    /// Pledges being unlocked, by release day.
    pub(crate) unlocking: BTreeSet<(u64, AccountId)>,
    /// Validators counted per recent slot (no slot counts twice for a node),
    /// committed as `StateKey::Participation` entries so a restart rebuilds it.
    pub(crate) participation: BTreeMap<u64, BTreeSet<NodeId>>,
    /// Ledgers so far whose proof lane was full (`StateKey::FullProofLanes`).
    pub(crate) full_proof_lanes: u64,
    /// First taps waiting for their day's lottery: (day, invitee) → inviter.
    pub(crate) pending_admissions: BTreeMap<(u64, AccountId), AccountId>,
    /// Recent headers' (seq, hash, rand): attestation anchors, participation
    /// evidence, storage tickets, seeds and samples.
    pub(crate) recent: std::collections::VecDeque<(u64, Hash256, Hash256)>,
    pub(crate) sectors: BTreeMap<(AccountId, u64), SectorEntry>,
    pub(crate) provers: BTreeMap<AccountId, ProverEntry>,
    /// Proven bytes per prover for days not yet distributed.
    pub(crate) storage_weights: BTreeMap<u64, BTreeMap<AccountId, u64>>,
    pub(crate) tree: Smt,
    pub(crate) dirty: BTreeSet<StateKey>,
    /// The state before the last applied ledger.
    pub(crate) prev: Option<Snapshot>,
    pub(crate) new_payouts: Vec<Payout>,
    /// First taps that passed in the ledger being applied, (invitee,
    /// inviter, tap day): admitted at its end if they fit (SPEC §5).
    pub(crate) landed: Vec<(AccountId, AccountId, u64)>,
    pub(crate) totals: Totals,
    /// Storage proofs already found valid (not state: a cache of checks).
    pub(crate) proof_verdicts: Option<std::sync::Arc<super::storage::ProofVerdicts>>,
}

/// The previous ledger's tree and the old values of the entries the last
/// ledger changed: enough to prove any entry as of the previous header.
pub(crate) struct Snapshot {
    pub header: LedgerHeader,
    pub tree: Smt,
    pub old: HashMap<StateKey, Option<StateEntry>>,
}

impl LedgerState {
    /// Remembers valid storage proofs in `verdicts` (shared, or this
    /// validator's own), so each is checked once.
    pub fn share_proof_verdicts(&mut self, verdicts: std::sync::Arc<super::storage::ProofVerdicts>) {
        self.proof_verdicts = Some(verdicts);
    }

    /// The genesis ledger (seq 1) from a genesis file.
    pub fn from_genesis(g: &Genesis) -> LedgerState {
        let params = g.params.clone();
        let mut s = LedgerState {
            network_id: g.network_id(),
            genesis_time: g.genesis_time,
            params_hash: params.hash(),
            params,
            header: LedgerHeader {
                seq: 1,
                prev_hash: g.hash(),
                close_time: g.genesis_time.saturating_mul(1000),
                tx_set_hash: Hash256::ZERO,
                results_hash: Hash256::ZERO,
                state_root: Hash256::ZERO,
                rand: hash_tagged(Domain::Vrf, &g.hash().0),
                prev_proof_hash: Hash256::ZERO,
                day: 0,
                protocol_version: g.protocol_version,
                params_hash: Hash256::ZERO,
            },
            reward_set: g.validators.iter().map(|v| v.node_id).collect(),
            accounts: HashMap::new(),
            fee_pool: Amount::ZERO,
            supply: Supply::default(),
            days: BTreeMap::new(),
            nodes: BTreeMap::new(),
            attesters: BTreeMap::new(),
            payouts: Default::default(),
            unlocking: BTreeSet::new(),
            participation: BTreeMap::new(),
            full_proof_lanes: 0,
            pending_admissions: BTreeMap::new(),
            recent: Default::default(),
            sectors: BTreeMap::new(),
            provers: BTreeMap::new(),
            storage_weights: BTreeMap::new(),
            tree: Smt::new(),
            dirty: BTreeSet::new(),
            prev: None,
            new_payouts: Vec::new(),
            landed: Vec::new(),
            totals: Totals::default(),
            proof_verdicts: None,
        };
        let mut reserve = g.params.reserve;
        for a in g.founding_accounts.iter() {
            reserve = reserve.checked_sub(a.balance).unwrap_or(Amount::ZERO);
            s.accounts.insert(
                a.account,
                AccountEntry { balance: a.balance, flags: AccountEntry::FLAG_FOUNDING, ..Default::default() },
            );
            s.dirty.insert(StateKey::Account(a.account));
        }
        let r = s.accounts.entry(g.reserve_account).or_default();
        r.balance = reserve;
        r.flags |= AccountEntry::FLAG_FOUNDING;
        s.dirty.insert(StateKey::Account(g.reserve_account));
        for v in g.validators.iter() {
            s.nodes.insert(
                v.node_id,
                NodeEntry {
                    owner: AccountId(v.node_id.0),
                    vrf_key: v.vrf_key,
                    addresses: BoundedVec::from_iter_capped(
                        v.addresses.iter().filter_map(|a| BoundedBytes::try_from_slice(a.as_bytes()).ok()),
                    ),
                    quorum_set: v.quorum_set.clone(),
                },
            );
            s.dirty.insert(StateKey::Node(v.node_id));
        }
        s.supply.minted = g.params.reserve;
        s.days.insert(0, DayRecord { day: 0, first_seq: 1, ..Default::default() });
        s.dirty.extend([StateKey::Supply, StateKey::FeePool, StateKey::FullProofLanes, StateKey::Day(0)]);
        s.flush_tree();
        s.header.state_root = s.tree.root();
        s.header.params_hash = s.params_hash;
        let genesis_header = s.header.clone();
        s.recent.push_back((1, genesis_header.hash(), genesis_header.rand));
        s.totals = s.count_totals();
        s
    }

    /// The invariant's sums by a full pass over the state.
    pub(crate) fn count_totals(&self) -> Totals {
        let mut t = Totals::default();
        for a in self.accounts.values() {
            let (b, p) = account_sums(a);
            t.balances += b;
            t.account_pledges += p;
        }
        t.sector_pledges = self.sectors.values().map(|s| u128::from(s.pledge.units())).sum();
        t.queued_payouts = self.payouts.iter().map(|p| u128::from(p.amount.units())).sum();
        t
    }

    /// Moves the running totals by what the last ledger changed (the entries
    /// it marked, whose old values the snapshot holds) and checks the
    /// invariant against them (SPEC §5: after every ledger, release builds too).
    pub(crate) fn check_invariant_incrementally(&mut self) -> Result<(), InvariantError> {
        let mut t = self.totals;
        let drift = || InvariantError::Drift { running: "a total below what it held".into(), counted: String::new() };
        // `total + now - before`, where `before` is part of `total`.
        let moved = |total: u128, now: u128, before: u128| (total + now).checked_sub(before).ok_or_else(drift);
        if let Some(snap) = &self.prev {
            for (key, old) in &snap.old {
                match key {
                    StateKey::Account(a) => {
                        let before = match old {
                            Some(StateEntry::Account(acc)) => account_sums(acc),
                            _ => (0, 0),
                        };
                        let now = self.accounts.get(a).map_or((0, 0), account_sums);
                        t.balances = moved(t.balances, now.0, before.0)?;
                        t.account_pledges = moved(t.account_pledges, now.1, before.1)?;
                    }
                    StateKey::Sector(a, n) => {
                        let before = match old {
                            Some(StateEntry::Sector(s)) => u128::from(s.pledge.units()),
                            _ => 0,
                        };
                        let now = self.sectors.get(&(*a, *n)).map_or(0, |s| u128::from(s.pledge.units()));
                        t.sector_pledges = moved(t.sector_pledges, now, before)?;
                    }
                    _ => {}
                }
            }
        }
        self.totals = t;
        self.check_totals(&t)?;
        #[cfg(debug_assertions)]
        {
            let counted = self.count_totals();
            if counted != t {
                return Err(InvariantError::Drift { running: format!("{t:?}"), counted: format!("{counted:?}") });
            }
        }
        Ok(())
    }

    fn check_totals(&self, t: &Totals) -> Result<(), InvariantError> {
        if t.account_pledges != u128::from(self.supply.locked_pledges.units()) {
            return Err(InvariantError::Pledges {
                accounts: t.account_pledges,
                recorded: self.supply.locked_pledges.units(),
            });
        }
        if t.sector_pledges != u128::from(self.supply.sector_pledges.units()) {
            return Err(InvariantError::SectorPledges {
                sectors: t.sector_pledges,
                recorded: self.supply.sector_pledges.units(),
            });
        }
        let pledges = t.account_pledges + t.sector_pledges;
        let pending = self.supply.pending_payouts.units();
        let minted = self.supply.minted.units();
        let total = t.balances + u128::from(self.fee_pool.units()) + u128::from(pending) + pledges;
        if total != u128::from(minted) || t.queued_payouts != u128::from(pending) {
            return Err(InvariantError::Mismatch {
                balances: t.balances,
                fee_pool: self.fee_pool.units(),
                pending,
                pledges,
                minted,
            });
        }
        if self.supply.minted > self.params.supply_cap {
            return Err(InvariantError::OverCap { minted, cap: self.params.supply_cap.units() });
        }
        let emitted = u128::from(self.supply.phase1_emitted.units()) + u128::from(self.supply.phase2_emitted.units());
        if u128::from(self.params.reserve.units()) + emitted != u128::from(minted) {
            return Err(InvariantError::Emissions {
                minted,
                reserve: self.params.reserve.units(),
                emitted: emitted as u64,
            });
        }
        Ok(())
    }

    pub fn account(&self, id: &AccountId) -> Option<&AccountEntry> {
        self.accounts.get(id)
    }
    pub fn fee_pool(&self) -> Amount {
        self.fee_pool
    }
    pub fn supply(&self) -> &Supply {
        &self.supply
    }
    pub fn day_record(&self, day: u64) -> Option<&DayRecord> {
        self.days.get(&day)
    }
    pub fn node_entry(&self, id: &NodeId) -> Option<&NodeEntry> {
        self.nodes.get(id)
    }
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, &NodeEntry)> {
        self.nodes.iter()
    }
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }
    pub fn pending_payouts(&self) -> usize {
        self.payouts.len()
    }
    /// The attesters of a day not yet distributed, in state-key order.
    pub fn attesters_of(&self, day: u64) -> Vec<AccountId> {
        self.attesters.get(&day).map(|s| s.values().copied().collect()).unwrap_or_default()
    }
    /// The inviter of `invitee`'s first tap waiting for `day`'s lottery.
    pub fn pending_admission(&self, day: u64, invitee: &AccountId) -> Option<AccountId> {
        self.pending_admissions.get(&(day, *invitee)).copied()
    }
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &AccountEntry)> {
        self.accounts.iter()
    }

    /// The day of a close time (Unix ms): `(close_time - genesis_time) / day_seconds`.
    pub fn day_of(&self, close_time_ms: u64) -> u64 {
        crate::ledger::params::day_of(self.genesis_time, self.params.day_seconds, close_time_ms)
    }

    /// The entry stored under a key, as the tree commits to it.
    pub fn entry(&self, key: &StateKey) -> Option<StateEntry> {
        match key {
            StateKey::Account(a) => self.accounts.get(a).cloned().map(StateEntry::Account),
            StateKey::FeePool => Some(StateEntry::FeePool(self.fee_pool)),
            StateKey::Supply => Some(StateEntry::Supply(self.supply.clone())),
            StateKey::Day(d) => self.days.get(d).cloned().map(StateEntry::Day),
            StateKey::Node(n) => self.nodes.get(n).cloned().map(StateEntry::Node),
            StateKey::Sector(a, n) => self.sectors.get(&(*a, *n)).cloned().map(StateEntry::Sector),
            StateKey::Prover(a) => self.provers.get(a).cloned().map(StateEntry::Prover),
            StateKey::Participation(slot) => self.participation.get(slot).map(|set| {
                // Only reward-set members are counted, and genesis holds at most 1,000.
                StateEntry::Participation(BoundedVec::from_iter_capped(set.iter().copied()))
            }),
            StateKey::FullProofLanes => Some(StateEntry::FullProofLanes(self.full_proof_lanes)),
            StateKey::PendingAdmission(d, a) => {
                self.pending_admissions.get(&(*d, *a)).copied().map(StateEntry::PendingAdmission)
            }
        }
    }

    /// Recomputes the tree for every key changed since the last flush and
    /// returns those keys with their new entries (what the node persists).
    pub(crate) fn flush_tree(&mut self) -> Vec<(StateKey, Option<StateEntry>)> {
        let dirty = std::mem::take(&mut self.dirty);
        let out: Vec<(StateKey, Option<StateEntry>)> = dirty.into_iter().map(|k| (k, self.entry(&k))).collect();
        // Key and value hashes in parallel, then one batched tree update.
        let hash = |chunk: &[(StateKey, Option<StateEntry>)]| -> Vec<(Hash256, Option<Hash256>)> {
            chunk.iter().map(|(k, e)| (k.hash(), e.as_ref().map(|e| smt::value_hash(&encode(e))))).collect()
        };
        let items = crate::merkle::par_chunks(&out, 256, hash);
        self.tree.update_many(items);
        out
    }

    /// A proof of `key`'s entry (or absence) against the current `state_root`.
    pub fn prove(&self, key: &StateKey) -> (Option<StateEntry>, StateProof) {
        (self.entry(key), self.tree.prove(&key.hash()))
    }

    pub fn state_root(&self) -> Hash256 {
        self.tree.root()
    }

    /// SPEC §5: `sum(balances) + fee pool + pending payouts + locked pledges
    /// = minted ≤ cap`, and `minted = reserve + Σ emissions`. Sums actual
    /// balances, independently of the running totals.
    pub fn check_invariant(&self) -> Result<(), InvariantError> {
        self.check_totals(&self.count_totals())
    }

    /// Records that `key` is about to change: call before mutating it, so the
    /// previous ledger's value is kept for proofs.
    pub(crate) fn mark(&mut self, key: StateKey) {
        if let Some(snap) = &self.prev {
            if !snap.old.contains_key(&key) {
                let old = self.entry(&key);
                if let Some(snap) = &mut self.prev {
                    snap.old.insert(key, old);
                }
            }
        }
        self.dirty.insert(key);
    }

    /// A proof of `key` as of the ledger before the last one (the newest
    /// header a phone can verify), with that header.
    pub fn prove_previous(&self, key: &StateKey) -> Option<(LedgerHeader, Option<StateEntry>, StateProof)> {
        let snap = self.prev.as_ref()?;
        let entry = match snap.old.get(key) {
            Some(old) => old.clone(),
            None => self.entry(key),
        };
        Some((snap.header.clone(), entry, snap.tree.prove(&key.hash())))
    }

    /// Rebuilds a state from persisted entries and the last header (node restart).
    /// `recent` holds the hashes of the last ledgers (at least the anchor window).
    pub fn restore(
        g: &Genesis,
        header: LedgerHeader,
        entries: impl IntoIterator<Item = (StateKey, StateEntry)>,
        payouts: Vec<Payout>,
        recent: Vec<(u64, Hash256, Hash256)>,
    ) -> Result<LedgerState, String> {
        let mut s = LedgerState::from_genesis(g);
        s.accounts.clear();
        s.nodes.clear();
        s.days.clear();
        s.tree = Smt::new();
        s.dirty.clear();
        for (key, entry) in entries {
            match (key, entry) {
                (StateKey::Account(a), StateEntry::Account(e)) => {
                    s.accounts.insert(a, e);
                }
                (StateKey::FeePool, StateEntry::FeePool(f)) => s.fee_pool = f,
                (StateKey::Supply, StateEntry::Supply(x)) => s.supply = x,
                (StateKey::Day(d), StateEntry::Day(r)) => {
                    s.days.insert(d, r);
                }
                (StateKey::Node(n), StateEntry::Node(e)) => {
                    s.nodes.insert(n, e);
                }
                (StateKey::Sector(a, n), StateEntry::Sector(e)) => {
                    s.sectors.insert((a, n), e);
                }
                (StateKey::Prover(a), StateEntry::Prover(e)) => {
                    s.provers.insert(a, e);
                }
                (StateKey::Participation(slot), StateEntry::Participation(nodes)) => {
                    s.participation.insert(slot, nodes.iter().copied().collect());
                }
                (StateKey::FullProofLanes, StateEntry::FullProofLanes(n)) => s.full_proof_lanes = n,
                (StateKey::PendingAdmission(d, a), StateEntry::PendingAdmission(inviter)) => {
                    s.pending_admissions.insert((d, a), inviter);
                }
                (k, _) => return Err(format!("stored entry under {k:?} has the wrong kind")),
            }
            s.dirty.insert(key);
        }
        // The attester sets of days not yet distributed, from the accounts.
        let open_days: Vec<u64> = s.days.values().filter(|d| !d.distributed).map(|d| d.day).collect();
        for (id, a) in &s.accounts {
            for d in [a.last_attest_day, a.prev_attest_day].into_iter().flatten() {
                if open_days.contains(&d) {
                    s.attesters.entry(d).or_default().insert(StateKey::Account(*id).hash(), *id);
                }
            }
        }
        for (id, p) in &s.provers {
            for (d, bytes) in p.credits.iter() {
                if open_days.contains(d) {
                    s.storage_weights.entry(*d).or_default().insert(*id, *bytes);
                }
            }
        }
        for (id, a) in &s.accounts {
            if !a.pledge_unlocking.is_zero() {
                s.unlocking.insert((a.unlock_day, *id));
            }
        }
        s.payouts = payouts.into();
        s.recent = recent.into_iter().filter(|(seq, _, _)| *seq <= header.seq).collect();
        s.flush_tree();
        s.totals = s.count_totals();
        if s.tree.root() != header.state_root {
            return Err(format!(
                "stored state hashes to {}, but ledger {} committed {}",
                s.tree.root(),
                header.seq,
                header.state_root
            ));
        }
        s.header = header;
        Ok(s)
    }

    /// Every entry, for a full snapshot (tests and new nodes).
    pub fn all_entries(&self) -> Vec<(StateKey, StateEntry)> {
        let mut keys: Vec<StateKey> = self.accounts.keys().map(|a| StateKey::Account(*a)).collect();
        keys.extend([StateKey::FeePool, StateKey::Supply, StateKey::FullProofLanes]);
        keys.extend(self.days.keys().map(|d| StateKey::Day(*d)));
        keys.extend(self.nodes.keys().map(|n| StateKey::Node(*n)));
        keys.extend(self.sectors.keys().map(|(a, n)| StateKey::Sector(*a, *n)));
        keys.extend(self.provers.keys().map(|a| StateKey::Prover(*a)));
        keys.extend(self.participation.keys().map(|s| StateKey::Participation(*s)));
        keys.extend(self.pending_admissions.keys().map(|(d, a)| StateKey::PendingAdmission(*d, *a)));
        keys.into_iter().filter_map(|k| self.entry(&k).map(|e| (k, e))).collect()
    }

    /// Benchmark set-up: adds `accounts` (with `balance` each, carved from
    /// the reserve so the invariant holds), optionally all attesting `day`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn bench_seed(&mut self, accounts: &[AccountId], balance: Amount, attest_day: Option<u64>) {
        let total = balance.units().saturating_mul(accounts.len() as u64);
        let reserve = self
            .accounts
            .iter()
            .find(|(_, a)| a.flags & AccountEntry::FLAG_FOUNDING != 0 && a.balance.units() >= total)
            .map(|(id, _)| *id);
        if let Some(r) = reserve {
            if let Some(acc) = self.accounts.get_mut(&r) {
                acc.balance = Amount(acc.balance.units() - total);
            }
            self.dirty.insert(StateKey::Account(r));
        }
        for id in accounts {
            let e = AccountEntry {
                balance,
                flags: AccountEntry::FLAG_FOUNDING,
                last_attest_day: attest_day,
                ..Default::default()
            };
            self.accounts.insert(*id, e);
            self.dirty.insert(StateKey::Account(*id));
            if let Some(d) = attest_day {
                self.attesters.entry(d).or_default().insert(StateKey::Account(*id).hash(), *id);
            }
        }
        if let Some(d) = attest_day {
            if let Some(r) = self.days.get_mut(&d) {
                r.attesters += accounts.len() as u64;
            }
            self.dirty.insert(StateKey::Day(d));
        }
        self.flush_tree();
        self.totals = self.count_totals();
        self.header.state_root = self.tree.root();
        let h = self.header.clone();
        self.recent.clear();
        self.recent.push_back((h.seq, h.hash(), h.rand));
    }

    /// The recent headers' `(seq, hash, rand)` that `restore` takes back.
    pub fn recent_headers(&self) -> Vec<(u64, Hash256, Hash256)> {
        self.recent.iter().copied().collect()
    }

    pub fn payout_queue(&self) -> Vec<Payout> {
        self.payouts.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_state() -> (LedgerState, AccountId) {
        let founder = AccountId(PublicKey([9; 32]));
        let g = Genesis {
            network_passphrase: "invariant tests".into(),
            genesis_time: 1_700_000_000,
            protocol_version: 1,
            validators: BoundedVec::default(),
            reserve_account: AccountId(PublicKey([1; 32])),
            founding_accounts: BoundedVec::try_from_vec(vec![crate::ledger::GenesisAccount {
                account: founder,
                balance: Amount(1_000),
            }])
            .unwrap(),
            params: Params::devnet(1_000, 60),
        };
        (LedgerState::from_genesis(&g), founder)
    }

    /// DW4 of issue 16: the release-build invariant is kept from running
    /// totals; a ledger that mints a unit from nothing (a marked balance
    /// raised with no emission) fails it, whatever the full count would cost.
    #[test]
    fn the_incremental_invariant_catches_money_made_from_nothing() {
        let (mut s, founder) = small_state();
        s.prev = Some(Snapshot { header: s.header.clone(), tree: s.tree.clone(), old: Default::default() });
        assert_eq!(s.check_invariant_incrementally(), Ok(()));
        s.mark(StateKey::Account(founder));
        if let Some(a) = s.accounts.get_mut(&founder) {
            a.balance = Amount(a.balance.units() + 1);
        }
        assert!(matches!(s.check_invariant_incrementally(), Err(InvariantError::Mismatch { .. })));
        // A pledge moved into an account without the supply record: refused too.
        let (mut s, founder) = small_state();
        s.prev = Some(Snapshot { header: s.header.clone(), tree: s.tree.clone(), old: Default::default() });
        s.mark(StateKey::Account(founder));
        if let Some(a) = s.accounts.get_mut(&founder) {
            a.balance = Amount(a.balance.units() - 10);
            a.pledge_locked = Amount(10);
        }
        assert!(matches!(s.check_invariant_incrementally(), Err(InvariantError::Pledges { .. })));
    }

    proptest! {
        /// The allocation-free account-key hash is the codec's bytes hashed.
        #[test]
        fn account_key_hash_matches_the_encoding(bytes in proptest::array::uniform32(any::<u8>())) {
            let key = StateKey::Account(AccountId(PublicKey(bytes)));
            let slow = hash_tagged(Domain::StateKey, &crate::codec::to_bytes(&key).unwrap());
            prop_assert_eq!(key.hash(), slow);
        }
    }
}
