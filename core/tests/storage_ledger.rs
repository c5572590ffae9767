//! Sectors and storage proofs on the ledger (SPEC §6), driven through
//! `apply` with real seals of 1 MiB, 2-layer sectors: pre-commit, prove-commit,
//! one PoSt per period, faults, penalties, termination and the storage share
//! of the daily distribution. The supply invariant is checked after every ledger.

use watt_core::address::AccountId;
use watt_core::amount::{Amount, UNITS_PER_WATT};
use watt_core::codec::{encode, BoundedBytes, BoundedVec};
use watt_core::crypto::{Hash256, Keypair, NetworkId, SecretSeed};
use watt_core::ledger::storage::{deadline_index, SectorState};
use watt_core::ledger::types::*;
use watt_core::ledger::{Genesis, GenesisAccount, HeaderInputs, LedgerState, Params};
use watt_core::storage::graph::{replica_id, SectorShape, StackedGraph};
use watt_core::storage::proof::{post_beacon, prove_seal, samples_seed, seal_seed, ticket, ProvenSector};
use watt_core::storage::prover::{reveal, walk, ProvingSector};
use watt_core::storage::seal::{commitments, MemorySealStore, SealCommitments, Sealer};

const T0: u64 = 1_700_000_000;
/// Ten ledgers a day.
const DAY: u64 = 100;
const STEP: u64 = 10_000;
const MIB: u64 = 1 << 20;

fn key(tag: &str) -> Keypair {
    Keypair::from_seed(SecretSeed::from_bytes(*blake3::hash(tag.as_bytes()).as_bytes())).unwrap()
}
fn acct(k: &Keypair) -> AccountId {
    AccountId(k.public())
}

fn params(pledge_per_gib: u64) -> Params {
    let mut p = Params::devnet(STEP, DAY);
    p.attest_grace_ledgers = 2;
    p.pledge_per_gib = Amount(pledge_per_gib);
    p.storage_pay_cap_per_gib_day = Amount(1_000 * UNITS_PER_WATT);
    p
}

struct Chain {
    state: LedgerState,
    net: NetworkId,
}

impl Chain {
    fn new(founders: &[&Keypair], p: Params) -> Chain {
        let g = Genesis {
            network_passphrase: "WATT storage ledger tests".into(),
            genesis_time: T0,
            protocol_version: 1,
            validators: BoundedVec::default(),
            reserve_account: acct(&key("reserve")),
            founding_accounts: BoundedVec::try_from_vec(
                founders
                    .iter()
                    .map(|k| GenesisAccount { account: acct(k), balance: Amount(100 * UNITS_PER_WATT) })
                    .collect(),
            )
            .unwrap(),
            params: p,
        };
        Chain { state: LedgerState::from_genesis(&g), net: g.network_id() }
    }

    /// Applies one ledger holding `txs` (each `(signer, ops)`), STEP later,
    /// with a `rand` of its own; returns each transaction's outcome.
    fn close(&mut self, txs: Vec<(&Keypair, Vec<Operation>)>) -> Vec<TxOutcome> {
        let mut signed: Vec<Transaction> = txs
            .into_iter()
            .map(|(k, ops)| {
                let seq_num = self.state.account(&acct(k)).map_or(0, |a| a.seq_num) + 1;
                TransactionBody {
                    source: acct(k),
                    seq_num,
                    fee: Amount(0),
                    max_ledger: None,
                    ops: BoundedVec::try_from_vec(ops).unwrap(),
                }
                .sign(k, &self.net)
            })
            .collect();
        signed.sort_by(watt_core::ledger::apply::canonical_order);
        let order: Vec<Hash256> = signed.iter().map(|t| t.hash()).collect();
        let seq = self.state.header.seq + 1;
        let set = TxSet { prev_header_hash: self.state.header.hash(), txs: BoundedVec::try_from_vec(signed).unwrap() };
        let inputs = HeaderInputs {
            close_time: self.state.header.close_time + STEP,
            rand: Hash256(*blake3::hash(&seq.to_le_bytes()).as_bytes()),
            prev_proof_hash: Hash256::ZERO,
            upgrades: vec![],
            participants: vec![],
        };
        let out = self.state.apply(&inputs, &set).expect("apply");
        self.state.check_invariant().expect("supply invariant");
        order.iter().map(|h| out.results.iter().find(|r| r.tx_hash == *h).unwrap().outcome.clone()).collect()
    }

    fn close_one(&mut self, k: &Keypair, op: Operation) -> TxOutcome {
        self.close(vec![(k, vec![op])]).remove(0)
    }

    fn close_empty_until(&mut self, pred: impl Fn(&LedgerState) -> bool) {
        while !pred(&self.state) {
            self.close(vec![]);
        }
    }

    fn balance(&self, k: &Keypair) -> u64 {
        self.state.account(&acct(k)).map_or(0, |a| a.balance.units())
    }
}

fn shape(p: &Params) -> SectorShape {
    SectorShape { sector_bytes: MIB, layers: p.sector_layers }
}

struct Sealed {
    store: MemorySealStore,
    graph: StackedGraph,
    replica_id: Hash256,
    comms: SealCommitments,
    ticket_seq: u64,
}

/// Seals sector `number` of `owner` with the newest ledger's `rand` as ticket.
fn seal(chain: &Chain, owner: &Keypair, number: u64) -> Sealed {
    let graph = StackedGraph::new(shape(&chain.state.params)).unwrap();
    let ticket_seq = chain.state.header.seq;
    let rid = replica_id(&acct(owner).0 .0, number, &ticket(&chain.state.header.rand));
    let mut store = MemorySealStore::default();
    let mut sealer = Sealer::resume(graph.clone(), rid, &store).unwrap();
    while !sealer.step(&mut store, u64::MAX).unwrap().done {}
    let comms = commitments(&store, &graph).unwrap();
    Sealed { store, graph, replica_id: rid, comms, ticket_seq }
}

fn precommit(s: &Sealed, number: u64) -> Operation {
    Operation::SectorPreCommit {
        sector_number: number,
        size: SectorSize::Mib1,
        ticket_seq: s.ticket_seq,
        comm_d: s.comms.comm_d,
        comm_r: s.comms.comm_r,
        comm_c: s.comms.comm_c,
        comm_r_last: s.comms.comm_r_last,
    }
}

fn prove_commit(chain: &Chain, s: &Sealed, number: u64, precommit_seq: u64) -> Operation {
    let rand = chain.state.recent_rand(precommit_seq + chain.state.params.seed_delay).expect("seed ledger closed");
    let proof =
        prove_seal(&s.store, &s.graph, &s.replica_id, &seal_seed(&rand), chain.state.params.seal_challenges as usize)
            .unwrap();
    Operation::SectorProveCommit {
        sector_number: number,
        proof: BoundedBytes::try_from_slice(&encode(&proof)).unwrap(),
    }
}

/// Pre-commits and prove-commits `number`; returns the sealed sector.
fn activate(chain: &mut Chain, owner: &Keypair, number: u64) -> Sealed {
    let s = seal(chain, owner, number);
    assert_eq!(chain.close_one(owner, precommit(&s, number)), TxOutcome::Success);
    let precommit_seq = chain.state.header.seq;
    for _ in 0..chain.state.params.seed_delay {
        chain.close(vec![]);
    }
    let op = prove_commit(chain, &s, number, precommit_seq);
    assert_eq!(chain.close_one(owner, op), TxOutcome::Success);
    s
}

fn proving<'a>(sealed: &'a [(u64, &'a Sealed)]) -> Vec<ProvingSector<'a>> {
    sealed
        .iter()
        .map(|(n, s)| ProvingSector {
            sector: ProvenSector { sector_number: *n, sector_bytes: MIB, comm_r_last: s.comms.comm_r_last },
            layers: s.graph.shape().layers,
            store: &s.store,
        })
        .collect()
}

/// The prover's commit for the current period, from the day record's opening.
fn post_commit_op(
    chain: &Chain,
    owner: &Keypair,
    sealed: &[(u64, &Sealed)],
) -> (Operation, watt_core::storage::proof::PostChain) {
    let st = &chain.state;
    let period = st.header.day;
    let k = deadline_index(&acct(owner), period, st.params.post_deadlines);
    let (_, rand) = st.day_record(period).unwrap().post_openings[k as usize];
    let c =
        walk(&post_beacon(&rand), &acct(owner).0 .0, &proving(sealed), u64::from(st.params.post_chain_steps)).unwrap();
    (Operation::PostCommit { period, chain_root: c.root() }, c)
}

fn post_reveal_op(
    chain: &Chain,
    c: &watt_core::storage::proof::PostChain,
    sealed: &[(u64, &Sealed)],
    period: u64,
    commit_seq: u64,
) -> Operation {
    let st = &chain.state;
    let rand = st.recent_rand(commit_seq + st.params.post_reveal_delay).unwrap();
    let r = reveal(c, &samples_seed(&rand), st.params.post_samples as usize, &proving(sealed)).unwrap();
    Operation::PostReveal { period, proof: BoundedBytes::try_from_slice(&encode(&r)).unwrap() }
}

fn failed(reason: OpFailure) -> TxOutcome {
    TxOutcome::OpFailed { index: 0, reason }
}

#[test]
fn a_proven_sector_earns_the_storage_share_once_per_period() {
    let alice = key("alice");
    let mut chain = Chain::new(&[&alice], params(0));
    chain.close(vec![]);
    let s = seal(&chain, &alice, 1);
    assert_eq!(chain.close_one(&alice, precommit(&s, 1)), TxOutcome::Success);
    let precommit_seq = chain.state.header.seq;
    assert_eq!(chain.state.sector(&acct(&alice), 1).unwrap().state, SectorState::PreCommitted);
    assert_eq!(
        chain.state.sector(&acct(&alice), 1).unwrap().replica_id,
        s.replica_id,
        "the ledger derives the same replica id"
    );
    // The seal seed's ledger has not closed yet.
    let early = Operation::SectorProveCommit { sector_number: 1, proof: BoundedBytes::try_from_slice(&[0]).unwrap() };
    assert_eq!(chain.close_one(&alice, early), failed(OpFailure::TooEarly));
    chain.close(vec![]);
    let op = prove_commit(&chain, &s, 1, precommit_seq);
    assert_eq!(chain.close_one(&alice, op.clone()), TxOutcome::Success);
    assert_eq!(chain.state.sector(&acct(&alice), 1).unwrap().state, SectorState::Active);
    assert_eq!(chain.close_one(&alice, op), failed(OpFailure::BadSectorState), "a sector proves its seal once");

    // The next day (the sector was activated after today's deadline opened).
    let day = chain.state.header.day + 1;
    chain.close_empty_until(|st| st.header.day == day);
    let sealed = [(1, &s)];
    let (commit, walked) = post_commit_op(&chain, &alice, &sealed);
    assert_eq!(chain.close_one(&alice, commit.clone()), TxOutcome::Success);
    let commit_seq = chain.state.header.seq;
    assert_eq!(
        chain.close_one(&alice, commit),
        failed(OpFailure::AlreadyCommitted),
        "one PostCommit per prover and period"
    );
    let early_reveal = Operation::PostReveal { period: day, proof: BoundedBytes::try_from_slice(&[0]).unwrap() };
    assert_eq!(chain.close_one(&alice, early_reveal), failed(OpFailure::TooEarly));
    chain.close_empty_until(|st| st.header.seq > commit_seq + st.params.post_reveal_delay);
    // A reveal against other samples fails; the right one passes, once.
    let wrong = {
        let r = reveal(
            &walked,
            &samples_seed(&Hash256([1; 32])),
            chain.state.params.post_samples as usize,
            &proving(&sealed),
        )
        .unwrap();
        Operation::PostReveal { period: day, proof: BoundedBytes::try_from_slice(&encode(&r)).unwrap() }
    };
    assert_eq!(chain.close_one(&alice, wrong), failed(OpFailure::BadProof));
    let reveal_op = post_reveal_op(&chain, &walked, &sealed, day, commit_seq);
    assert_eq!(chain.close_one(&alice, reveal_op.clone()), TxOutcome::Success);
    assert_eq!(chain.close_one(&alice, reveal_op), failed(OpFailure::AlreadyCommitted));
    let rec = chain.state.day_record(day).unwrap();
    assert_eq!((rec.storage_provers, rec.proven_bytes), (1, MIB));
    assert_eq!(chain.state.storage_weights_of(day), vec![(acct(&alice), MIB)]);

    // A restart rebuilds the day's storage weights from the prover entry.
    let restored = LedgerState::restore(
        &genesis_of(&chain),
        chain.state.header.clone(),
        chain.state.all_entries(),
        chain.state.payout_queue(),
        vec![],
    )
    .unwrap();
    assert_eq!(restored.storage_weights_of(day), vec![(acct(&alice), MIB)]);

    // The day's storage pool goes to the only prover, up to the per-GiB cap.
    let before = chain.balance(&alice);
    chain.close_empty_until(|st| st.day_record(day).is_some_and(|r| r.distributed) && st.pending_payouts() == 0);
    let p = &chain.state.params;
    let pool = p.phase1_pool.units() / p.phase1_days;
    let storage_pool = (u128::from(pool) * u128::from(p.split_storage_ppm) / 1_000_000) as u64;
    let cap = ((u128::from(p.storage_pay_cap_per_gib_day.units()) * u128::from(MIB)) >> 30) as u64;
    assert_eq!(chain.balance(&alice) - before, storage_pool.min(cap));
    assert_eq!(chain.state.day_record(day).unwrap().total_weights[2], MIB);
}

fn genesis_of(chain: &Chain) -> Genesis {
    Genesis {
        network_passphrase: "WATT storage ledger tests".into(),
        genesis_time: T0,
        protocol_version: 1,
        validators: BoundedVec::default(),
        reserve_account: acct(&key("reserve")),
        founding_accounts: BoundedVec::try_from_vec(vec![GenesisAccount {
            account: acct(&key("alice")),
            balance: Amount(100 * UNITS_PER_WATT),
        }])
        .unwrap(),
        params: chain.state.params.clone(),
    }
}

#[test]
fn stale_tickets_wrong_commitments_and_foreign_or_tampered_seals_are_refused() {
    let (alice, bob) = (key("alice"), key("bob"));
    let mut p = params(0);
    p.ticket_window = 3;
    let mut chain = Chain::new(&[&alice, &bob], p);
    chain.close(vec![]);
    // A ticket older than the window.
    let s = seal(&chain, &alice, 1);
    for _ in 0..4 {
        chain.close(vec![]);
    }
    assert_eq!(chain.close_one(&alice, precommit(&s, 1)), failed(OpFailure::BadTicket));
    // comm_r that is not H(comm_c ‖ comm_r_last).
    let s = seal(&chain, &alice, 1);
    let mut op = precommit(&s, 1);
    if let Operation::SectorPreCommit { comm_r, .. } = &mut op {
        *comm_r = Hash256([5; 32]);
    }
    assert_eq!(chain.close_one(&alice, op), failed(OpFailure::BadProof));
    // Bob claims a replica sealed for Alice: the ledger derives Bob's replica id, and the proof fails.
    assert_eq!(chain.close_one(&bob, precommit(&s, 1)), TxOutcome::Success);
    let bob_seq = chain.state.header.seq;
    assert_eq!(chain.close_one(&alice, precommit(&s, 1)), TxOutcome::Success);
    let alice_seq = chain.state.header.seq;
    chain.close_empty_until(|st| st.header.seq > alice_seq + st.params.seed_delay);
    assert_eq!(chain.close_one(&bob, prove_commit(&chain, &s, 1, bob_seq)), failed(OpFailure::BadProof));
    // One flipped byte anywhere in Alice's proof fails it; the untouched proof passes.
    let Operation::SectorProveCommit { proof, .. } = prove_commit(&chain, &s, 1, alice_seq) else { unreachable!() };
    for at in [40usize, proof.len() / 3, proof.len() / 2, proof.len() - 5] {
        let mut bytes = proof.to_vec();
        bytes[at] ^= 1;
        let op =
            Operation::SectorProveCommit { sector_number: 1, proof: BoundedBytes::try_from_slice(&bytes).unwrap() };
        assert_eq!(chain.close_one(&alice, op), failed(OpFailure::BadProof), "byte {at} flipped");
    }
    assert_eq!(chain.close_one(&alice, Operation::SectorProveCommit { sector_number: 1, proof }), TxOutcome::Success);
    // A number in use cannot be pre-committed again.
    assert_eq!(chain.close_one(&alice, precommit(&s, 1)), failed(OpFailure::SectorExists));
}

#[test]
fn missed_proofs_fault_penalise_and_terminate_and_the_pledge_comes_back() {
    let alice = key("alice");
    let pledge_per_gib = 1_024 * UNITS_PER_WATT; // 1 WATT per MiB
    let mut p = params(pledge_per_gib);
    p.fault_penalty_ppm = 100_000; // 10% a faulty period
    let mut chain = Chain::new(&[&alice], p);
    chain.close(vec![]);
    let start = chain.balance(&alice);
    let a = activate(&mut chain, &alice, 1);
    activate(&mut chain, &alice, 2);
    let pledge = UNITS_PER_WATT;
    assert_eq!(chain.balance(&alice), start - 2 * pledge, "each sector locks its pledge");
    assert_eq!(chain.state.supply().sector_pledges.units(), 2 * pledge);

    // Period d: sector 2 is declared faulty, sector 1 proven alone.
    let d = chain.state.header.day + 1;
    chain.close_empty_until(|st| st.header.day == d);
    assert_eq!(
        chain.close_one(&alice, Operation::SectorDeclareFault { sectors: BoundedVec::try_from_vec(vec![2]).unwrap() }),
        TxOutcome::Success
    );
    let sealed = [(1, &a)];
    let (commit, walked) = post_commit_op(&chain, &alice, &sealed);
    assert_eq!(chain.close_one(&alice, commit), TxOutcome::Success);
    let commit_seq = chain.state.header.seq;
    chain.close_empty_until(|st| st.header.seq > commit_seq + st.params.post_reveal_delay);
    assert_eq!(chain.close_one(&alice, post_reveal_op(&chain, &walked, &sealed, d, commit_seq)), TxOutcome::Success);
    // Periods d+1, d+2, d+3: nothing proven.
    let fee_pool = chain.state.fee_pool().units();
    chain.close_empty_until(|st| st.day_record(d).is_some_and(|r| r.settled));
    let s1 = chain.state.sector(&acct(&alice), 1).unwrap();
    let s2 = chain.state.sector(&acct(&alice), 2).unwrap();
    assert_eq!((s1.state, s1.faulty_periods, s1.pledge.units()), (SectorState::Active, 0, pledge));
    assert_eq!((s2.state, s2.faulty_periods), (SectorState::Faulty, 1));
    assert_eq!(s2.pledge.units(), pledge - pledge / 20, "a declared fault costs half the penalty");
    assert_eq!(chain.state.fee_pool().units() - fee_pool, pledge / 20);

    chain.close_empty_until(|st| st.day_record(d + 1).is_some_and(|r| r.settled));
    let s1 = chain.state.sector(&acct(&alice), 1).unwrap();
    assert_eq!((s1.state, s1.faulty_periods, s1.pledge.units()), (SectorState::Faulty, 1, pledge - pledge / 10));
    chain.close_empty_until(|st| st.day_record(d + 3).is_some_and(|r| r.settled));
    assert!(chain.state.sector(&acct(&alice), 1).is_none(), "three faulty periods terminate a sector");
    assert!(chain.state.sector(&acct(&alice), 2).is_none());
    assert!(chain.state.prover(&acct(&alice)).is_none_or(|p| p.sectors == 0));
    assert_eq!(chain.state.supply().sector_pledges.units(), 0);
    // What was not taken as penalties came back to the balance (besides day d's storage reward).
    let penalties = chain.state.fee_pool().units() - fee_pool;
    let rec = chain.state.day_record(d).unwrap();
    let reward = rec.emitted.units() + rec.fees_paid.units();
    assert!(reward > 0, "the proven period was paid");
    assert_eq!(chain.balance(&alice) + penalties, start + reward, "balance + penalties = start + reward");
}

#[test]
fn terminating_returns_the_pledge_and_a_lapsed_precommit_forfeits_it() {
    let alice = key("alice");
    let mut p = params(1_024 * UNITS_PER_WATT);
    p.prove_commit_window = 4;
    let mut chain = Chain::new(&[&alice], p);
    chain.close(vec![]);
    let start = chain.balance(&alice);
    activate(&mut chain, &alice, 1);
    assert_eq!(
        chain.close_one(&alice, Operation::SectorTerminate { sectors: BoundedVec::try_from_vec(vec![1, 1]).unwrap() }),
        failed(OpFailure::NoSuchSector)
    );
    assert_eq!(
        chain.close_one(&alice, Operation::SectorTerminate { sectors: BoundedVec::try_from_vec(vec![1]).unwrap() }),
        TxOutcome::Success
    );
    assert_eq!(chain.balance(&alice), start);
    // A pre-commit never proven: the window closes, then the number can be reused and the pledge is gone.
    let s = seal(&chain, &alice, 2);
    assert_eq!(chain.close_one(&alice, precommit(&s, 2)), TxOutcome::Success);
    let precommit_seq = chain.state.header.seq;
    chain.close_empty_until(|st| st.header.seq > precommit_seq + 4);
    assert_eq!(chain.close_one(&alice, prove_commit(&chain, &s, 2, precommit_seq)), failed(OpFailure::WindowClosed));
    let fee_pool = chain.state.fee_pool().units();
    let s = seal(&chain, &alice, 2);
    assert_eq!(chain.close_one(&alice, precommit(&s, 2)), TxOutcome::Success);
    assert_eq!(chain.state.fee_pool().units() - fee_pool, UNITS_PER_WATT, "the lapsed pledge went to the fee pool");
    assert_eq!(chain.balance(&alice), start - 2 * UNITS_PER_WATT);
}

/// Issue 16 #3: settlement of period p ran after the commitment of p+1 had
/// replaced p's, so an honest prover that proved every period was marked
/// faulty, penalised and terminated after three periods.
#[test]
fn a_prover_that_proves_every_period_keeps_every_sector_with_no_penalty() {
    let alice = key("alice");
    let mut p = params(1_024 * UNITS_PER_WATT); // a pledge, so a penalty would show
    p.fault_penalty_ppm = 100_000;
    let mut chain = Chain::new(&[&alice], p);
    chain.close(vec![]);
    let a = activate(&mut chain, &alice, 1);
    let b = activate(&mut chain, &alice, 2);
    let pledges = chain.state.supply().sector_pledges;
    let sealed = [(1, &a), (2, &b)];
    let first = chain.state.header.day + 1;
    for period in first..first + 8 {
        chain.close_empty_until(|st| st.header.day == period);
        let (commit, walked) = post_commit_op(&chain, &alice, &sealed);
        assert_eq!(chain.close_one(&alice, commit), TxOutcome::Success, "commit of period {period}");
        let commit_seq = chain.state.header.seq;
        chain.close_empty_until(|st| st.header.seq > commit_seq + st.params.post_reveal_delay);
        let reveal = post_reveal_op(&chain, &walked, &sealed, period, commit_seq);
        assert_eq!(chain.close_one(&alice, reveal), TxOutcome::Success, "reveal of period {period}");
        for n in [1, 2] {
            let s = chain.state.sector(&acct(&alice), n).expect("the sector is still on the ledger");
            assert_eq!((s.state, s.faulty_periods), (SectorState::Active, 0), "sector {n} after period {period}");
        }
    }
    // Every one of the eight periods settles (the last two days after it).
    chain.close_empty_until(|st| st.day_record(first + 7).is_some_and(|r| r.settled));
    for n in [1, 2] {
        let s = chain.state.sector(&acct(&alice), n).expect("never terminated");
        assert_eq!((s.state, s.faulty_periods), (SectorState::Active, 0), "sector {n}");
        assert_eq!(s.pledge.units(), UNITS_PER_WATT, "no penalty taken from sector {n}");
    }
    assert_eq!(chain.state.supply().sector_pledges, pledges);
    let prover = chain.state.prover(&acct(&alice)).unwrap();
    assert!(prover.proven.iter().all(|r| r.period > first + 7), "settled records are dropped: {:?}", prover.proven);
}

fn junk_proof(number: u64, bytes: usize) -> Operation {
    Operation::SectorProveCommit {
        sector_number: number,
        proof: BoundedBytes::try_from_vec(vec![0x5a; bytes]).unwrap(),
    }
}

/// Issue 16 #14: a rival could starve a PoSt reveal that must land within
/// `post_reveal_window` ledgers by outbidding it for proof-lane space,
/// faulting every sector of its prover. Reveals go first in the proof lane,
/// and every full lane extends the window open across it.
#[test]
fn reveals_go_first_in_the_proof_lane_and_full_lanes_extend_their_window() {
    use watt_core::ledger::pool::{lane_bytes, TxPool};
    let alice = key("alice");
    let rivals: Vec<Keypair> = (0..4).map(|i| key(&format!("rival{i}"))).collect();
    let mut p = params(0);
    // A small proof lane, so this devnet's reveal travels in it.
    p.proof_lane_min_bytes = 8 * 1024;
    p.max_tx_bytes = 160 * 1024;
    p.max_proof_bytes_per_ledger = 256 * 1024;
    p.max_tx_set_bytes = 512 * 1024;
    let mut founders = vec![&alice];
    founders.extend(rivals.iter());
    let mut chain = Chain::new(&founders, p.clone());
    chain.close(vec![]);
    let a = activate(&mut chain, &alice, 1);
    let period = chain.state.header.day + 1;
    chain.close_empty_until(|st| st.header.day == period);
    let sealed = [(1, &a)];
    let (commit, walked) = post_commit_op(&chain, &alice, &sealed);
    assert_eq!(chain.close_one(&alice, commit), TxOutcome::Success);
    let commit_seq = chain.state.header.seq;
    chain.close_empty_until(|st| st.header.seq > commit_seq + st.params.post_reveal_delay);
    let reveal = post_reveal_op(&chain, &walked, &sealed, period, commit_seq);

    // The pool: Alice's fee-free reveal against rivals' 150 KB proofs paying 1 WATT each.
    let sign = |k: &Keypair, fee: u64, op: Operation| {
        let seq_num = chain.state.account(&acct(k)).map_or(0, |a| a.seq_num) + 1;
        let ops = BoundedVec::try_from_vec(vec![op]).unwrap();
        TransactionBody { source: acct(k), seq_num, fee: Amount(fee), max_ledger: None, ops }.sign(k, &chain.net)
    };
    let reveal_tx = sign(&alice, 0, reveal.clone());
    // Two rivals' proofs leave less room than the reveal needs.
    let reveal_bytes = watt_core::ledger::pool::tx_bytes(&reveal_tx) as usize;
    let rival_bytes = (p.max_proof_bytes_per_ledger as usize - reveal_bytes) / 2 + 64;
    let mut pool = TxPool::new(1000, 5000, 4);
    for (i, r) in rivals.iter().enumerate() {
        pool.add(sign(r, UNITS_PER_WATT, junk_proof(100 + i as u64, rival_bytes)), &chain.state).unwrap();
    }
    // A junk reveal would take the lane's first place every ledger and keep
    // its window open: it is checked on arrival and refused.
    let junk_reveal = Operation::PostReveal { period, proof: BoundedBytes::try_from_vec(vec![1; 40 * 1024]).unwrap() };
    assert_eq!(
        pool.add(sign(&alice, 0, junk_reveal), &chain.state),
        Err(watt_core::wire::TxRejection::WouldFail(OpFailure::BadProof))
    );
    pool.add(reveal_tx.clone(), &chain.state).unwrap();
    let set = pool.build_tx_set(&chain.state);
    let used = lane_bytes(&p, &set.txs);
    assert!(used.proofs <= u64::from(p.max_proof_bytes_per_ledger), "{used:?}");
    assert!(set.txs.iter().any(|t| t.hash() == reveal_tx.hash()), "the reveal is outbid out of the lane");

    // Rivals fill every proof lane (more than half of it) past the window's
    // end: each full ledger extends the window, so the reveal still lands.
    let window_end = commit_seq + p.post_reveal_delay + p.post_reveal_window;
    let full_before = chain.state.full_proof_lanes();
    let mut i = 0;
    while chain.state.header.seq <= window_end + 2 {
        let r = &rivals[i % rivals.len()];
        chain.close(vec![(r, vec![junk_proof(200 + i as u64, 150 * 1024)])]);
        i += 1;
    }
    assert!(chain.state.full_proof_lanes() - full_before > p.post_reveal_window);
    // The extension is at most the window's own length, however many lanes fill.
    let c = chain.state.prover(&acct(&alice)).unwrap().post.clone().unwrap();
    assert_eq!(chain.state.reveal_window_end(&c), window_end + p.post_reveal_window);
    assert_eq!(chain.close_one(&alice, reveal), TxOutcome::Success, "the window was extended");
    assert_eq!(chain.state.prover(&acct(&alice)).unwrap().last_proven_period, Some(period));
}
