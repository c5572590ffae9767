//! The ledger rules of SPEC §3 and §5, driven through `apply` like a validator would.

use proptest::prelude::*;
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::{Amount, UNITS_PER_WATT};
use watt_core::codec::BoundedVec;
use watt_core::crypto::{Hash256, Keypair, NetworkId, SecretSeed};
use watt_core::ledger::types::*;
use watt_core::ledger::{Genesis, GenesisAccount, GenesisValidator, HeaderInputs, LedgerState, Params};
use watt_core::scp::QuorumSet;

const T0: u64 = 1_700_000_000;
const DAY: u64 = 100;
/// Ledger interval in ms (close times are Unix milliseconds).
const STEP: u64 = 10_000;

fn key(tag: &str) -> Keypair {
    Keypair::from_seed(SecretSeed::from_bytes(*blake3::hash(tag.as_bytes()).as_bytes())).unwrap()
}
fn acct(k: &Keypair) -> AccountId {
    AccountId(k.public())
}
fn node(k: &Keypair) -> NodeId {
    NodeId(k.public())
}

fn params() -> Params {
    let mut p = Params::devnet(STEP, DAY);
    // 1,000 WATT a day: 700 attesters, 100 validators, 200 storage.
    p.phase1_pool = Amount(3_650 * 1_000 * UNITS_PER_WATT);
    p.phase1_days = 3_650;
    p.attest_grace_ledgers = 2;
    p.payout_batch = 1_000;
    p
}

fn genesis(founders: &[&Keypair], validators: &[&Keypair], p: Params) -> Genesis {
    let qset = QuorumSet::flat(validators.len() as u32, validators.iter().map(|k| node(k)).collect());
    Genesis {
        network_passphrase: "WATT ledger tests".into(),
        genesis_time: T0,
        protocol_version: 1,
        validators: BoundedVec::try_from_vec(
            validators
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisValidator {
                    name: format!("v{i}"),
                    node_id: node(k),
                    vrf_key: k.public(),
                    quorum_set: qset.clone(),
                    addresses: vec![],
                })
                .collect(),
        )
        .unwrap(),
        reserve_account: acct(&key("reserve")),
        founding_accounts: BoundedVec::try_from_vec(
            founders
                .iter()
                .map(|k| GenesisAccount { account: acct(k), balance: Amount(100 * UNITS_PER_WATT) })
                .collect(),
        )
        .unwrap(),
        params: p,
    }
}

struct Chain {
    state: LedgerState,
    net: NetworkId,
    pending: Vec<Transaction>,
}

impl Chain {
    fn new(g: &Genesis) -> Chain {
        Chain { state: LedgerState::from_genesis(g), net: g.network_id(), pending: Vec::new() }
    }
    fn seq_of(&self, k: &Keypair) -> u64 {
        self.state.account(&acct(k)).map_or(0, |a| a.seq_num)
            + self.pending.iter().filter(|t| t.body.source == acct(k)).count() as u64
    }
    fn submit(&mut self, k: &Keypair, fee: u64, ops: Vec<Operation>) -> Transaction {
        let body = TransactionBody {
            source: acct(k),
            seq_num: self.seq_of(k) + 1,
            fee: Amount(fee),
            max_ledger: None,
            ops: BoundedVec::try_from_vec(ops).unwrap(),
        };
        let tx = body.sign(k, &self.net);
        self.pending.push(tx.clone());
        tx
    }
    /// `k`'s tap for the next ledger, with an invite (valid 3 days) signed by `inviter`.
    fn attest(&mut self, k: &Keypair, inviter: Option<&Keypair>) -> Transaction {
        let h = &self.state.header;
        let day = h.day_for(T0, DAY, h.close_time + STEP);
        let invite = inviter.map(|i| Invite::sign(i, &self.net, &acct(k), day + 2));
        let op =
            Operation::Attest(Attest { day, anchor_seq: h.seq, anchor_hash: h.hash(), invite, device_token: None });
        self.submit(k, 0, vec![op])
    }
    /// `k`'s tap for the next ledger, signed but not queued (for pool tests).
    fn attest_tx(&self, k: &Keypair) -> Transaction {
        let h = &self.state.header;
        let day = h.day_for(T0, DAY, h.close_time + STEP);
        let op = Operation::Attest(Attest {
            day,
            anchor_seq: h.seq,
            anchor_hash: h.hash(),
            invite: None,
            device_token: None,
        });
        let seq_num = self.state.account(&acct(k)).map_or(0, |a| a.seq_num) + 1;
        let ops = BoundedVec::try_from_vec(vec![op]).unwrap();
        TransactionBody { source: acct(k), seq_num, fee: Amount(0), max_ledger: None, ops }.sign(k, &self.net)
    }
    /// Closes the next ledger STEP seconds later.
    fn close(&mut self, participants: Vec<NodeId>) -> Vec<TxResult> {
        let mut txs = std::mem::take(&mut self.pending);
        txs.sort_by(watt_core::ledger::apply::canonical_order);
        txs.dedup_by_key(|t| t.hash());
        let set = TxSet { prev_header_hash: self.state.header.hash(), txs: BoundedVec::try_from_vec(txs).unwrap() };
        let inputs = HeaderInputs {
            close_time: self.state.header.close_time + STEP,
            // A different `rand` each ledger, as VRF outputs are.
            rand: Hash256(*blake3::hash(&self.state.header.seq.to_le_bytes()).as_bytes()),
            prev_proof_hash: Hash256::ZERO,
            upgrades: vec![],
            participants,
        };
        let out = self.state.apply(&inputs, &set).expect("apply");
        self.state.check_invariant().expect("supply invariant");
        out.results
    }
    fn balance(&self, k: &Keypair) -> u64 {
        self.state.account(&acct(k)).map_or(0, |a| a.balance.units())
    }
}

trait DayFor {
    fn day_for(&self, t0: u64, day: u64, close_time: u64) -> u64;
}
impl DayFor for LedgerHeader {
    fn day_for(&self, t0: u64, day: u64, close_time: u64) -> u64 {
        (close_time / 1000 - t0) / day
    }
}

fn ok(r: &[TxResult]) {
    for x in r {
        assert_eq!(x.outcome, TxOutcome::Success, "{x:?}");
    }
}

/// SPEC §5 on a small day, every balance computed by hand: three pioneers
/// with a mutual circle, a referrer over the 3.0 cap, two validators and fees.
#[test]
fn small_day_pays_exactly_the_hand_computed_amounts() {
    let (a, b, c, r) = (key("a"), key("b"), key("c"), key("r"));
    let fs: Vec<Keypair> = (0..9).map(|i| key(&format!("f{i}"))).collect();
    let (v1, v2) = (key("v1"), key("v2"));
    let mut founders = vec![&a, &b, &c, &r];
    founders.extend(fs.iter());
    let g = genesis(&founders, &[&v1, &v2], params());
    let mut ch = Chain::new(&g);

    // Day 0 (ledgers at T0+10 .. T0+90): circles, referrals, a paid transfer, taps.
    ch.submit(&a, 0, vec![Operation::SetSecurityCircle { members: BoundedVec::try_from_vec(vec![acct(&b)]).unwrap() }]);
    ch.submit(&b, 0, vec![Operation::SetSecurityCircle { members: BoundedVec::try_from_vec(vec![acct(&a)]).unwrap() }]);
    for f in &fs {
        ch.submit(f, 0, vec![Operation::SetReferrer { account: acct(&r) }]);
    }
    ch.submit(&a, 5_000_000, vec![Operation::Pay { to: acct(&c), amount: Amount(UNITS_PER_WATT) }]);
    ok(&ch.close(vec![node(&v1)]));
    for k in [&a, &b, &c, &r] {
        ch.attest(k, None);
    }
    for f in &fs {
        ch.attest(f, None);
    }
    ok(&ch.close(vec![node(&v1)]));
    ok(&ch.close(vec![node(&v1), node(&v2)]));
    while ch.state.header.close_time + STEP < (T0 + DAY) * 1000 {
        ch.close(vec![]);
    }
    assert_eq!(ch.state.fee_pool(), Amount(5_000_000));
    // Day 1: two grace ledgers, then the distribution (3rd ledger of the day) and payouts.
    ch.close(vec![]);
    ch.close(vec![]);
    assert!(!ch.state.day_record(0).unwrap().distributed);
    ch.close(vec![]);
    let rec = ch.state.day_record(0).unwrap().clone();
    assert!(rec.distributed);
    assert_eq!(rec.total_weights, [15_400_000, 4, 0]);

    let hundred = 100 * UNITS_PER_WATT;
    // A: 1.2 (mutual circle with B); paid 1 WATT and a 0.5 WATT fee.
    assert_eq!(ch.balance(&a), hundred - UNITS_PER_WATT - 5_000_000 + 545_454_545 + 272_727);
    assert_eq!(ch.balance(&b), hundred + 545_454_545 + 272_727);
    // C: 1.0, received 1 WATT.
    assert_eq!(ch.balance(&c), hundred + UNITS_PER_WATT + 454_545_454 + 227_272);
    // R: 1.0 + 9 × 0.25 = 3.25, capped at 3.0.
    assert_eq!(ch.balance(&r), hundred + 1_363_636_363 + 681_818);
    for f in &fs {
        assert_eq!(ch.balance(f), hundred + 454_545_454 + 227_272);
    }
    // Validators: 3 and 1 counted slots of the 100 WATT validator pool and 10% of fees.
    assert_eq!(ch.balance(&v1), 750_000_000 + 375_000);
    assert_eq!(ch.balance(&v2), 250_000_000 + 125_000);
    // The storage share (no providers yet) and the floors' remainders stay unissued / in the pool.
    let paid_attesters = 2 * 545_454_545 + 454_545_454 + 1_363_636_363 + 9 * 454_545_454;
    assert_eq!(rec.emitted, Amount(paid_attesters + 1_000_000_000));
    assert_eq!(ch.state.fee_pool(), Amount(5_000_000 - rec.fees_paid.units()));
    assert_eq!(ch.state.supply().pending_payouts, Amount::ZERO);
}

#[test]
fn second_attestation_same_day_is_rejected() {
    let (a, v) = (key("a"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    ch.attest(&a, None);
    ok(&ch.close(vec![]));
    ch.attest(&a, None);
    let r = ch.close(vec![]);
    assert_eq!(r[0].outcome, TxOutcome::OpFailed { index: 0, reason: OpFailure::AlreadyAttested });
    assert_eq!(ch.state.day_record(0).unwrap().attesters, 1);
}

#[test]
fn first_attestation_creates_an_account_only_with_an_eligible_inviter() {
    let (a, n1, n2, v) = (key("a"), key("new1"), key("new2"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    // No inviter: refused (the fee-free lane still uses no sequence number).
    ch.attest(&n1, None);
    assert_eq!(ch.close(vec![])[0].outcome, TxOutcome::OpFailed { index: 0, reason: OpFailure::InviterNotEligible });
    assert!(ch.state.account(&acct(&n1)).is_none());
    // The inviter has not attested recently: refused.
    ch.attest(&n1, Some(&a));
    assert_eq!(ch.close(vec![])[0].outcome, TxOutcome::OpFailed { index: 0, reason: OpFailure::InviterNotEligible });
    ch.attest(&a, None);
    ok(&ch.close(vec![]));
    ch.attest(&n1, Some(&a));
    ch.attest(&n2, Some(&a));
    ok(&ch.close(vec![]));
    let created = ch.state.account(&acct(&n1)).unwrap();
    assert_eq!(created.referrer, Some(acct(&a)));
    assert_eq!(created.seq_num, 1);
    assert_eq!(ch.state.day_record(0).unwrap().new_accounts, 2);
}

#[test]
fn replayed_and_cross_network_transactions_are_rejected() {
    let (a, c, v) = (key("a"), key("c"), key("v"));
    let g = genesis(&[&a, &c], &[&v], params());
    let mut ch = Chain::new(&g);
    let tx = ch.submit(&a, 100, vec![Operation::Pay { to: acct(&c), amount: Amount(10) }]);
    ok(&ch.close(vec![]));
    ch.pending.push(tx.clone());
    assert_eq!(ch.close(vec![])[0].outcome, TxOutcome::Rejected(TxFailure::BadSequence));
    // Signed for another network.
    let other = NetworkId::from_passphrase("WATT testnet");
    let body = TransactionBody { seq_num: 2, ..tx.body.clone() };
    ch.pending.push(body.sign(&a, &other));
    assert_eq!(ch.close(vec![])[0].outcome, TxOutcome::Rejected(TxFailure::Malformed));
    assert_eq!(ch.balance(&c), 100 * UNITS_PER_WATT + 10);
}

#[test]
fn a_failed_operation_keeps_the_fee_and_undoes_the_rest() {
    let (a, c, v) = (key("a"), key("c"), key("v"));
    let g = genesis(&[&a, &c], &[&v], params());
    let mut ch = Chain::new(&g);
    let before = ch.balance(&a);
    // First op would succeed, second overdraws: neither takes effect, the fee is kept.
    ch.submit(
        &a,
        1_000,
        vec![
            Operation::Pay { to: acct(&c), amount: Amount(5) },
            Operation::Pay { to: acct(&c), amount: Amount(before) },
        ],
    );
    let r = ch.close(vec![]);
    assert_eq!(r[0].outcome, TxOutcome::OpFailed { index: 1, reason: OpFailure::Underfunded });
    assert_eq!(r[0].fee_charged, Amount(1_000));
    assert_eq!(ch.balance(&a), before - 1_000);
    assert_eq!(ch.balance(&c), 100 * UNITS_PER_WATT);
    assert_eq!(ch.state.account(&acct(&a)).unwrap().seq_num, 1);
}

#[test]
fn state_proofs_verify_against_the_header_root() {
    let (a, c, v) = (key("a"), key("c"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    ch.submit(&a, 0, vec![Operation::Pay { to: acct(&c), amount: Amount(42) }]);
    ch.close(vec![]);
    let root = ch.state.header.state_root;
    let key_c = watt_core::ledger::StateKey::Account(acct(&c));
    let (entry, proof) = ch.state.prove(&key_c);
    let entry = entry.unwrap();
    let vh = watt_core::ledger::smt::value_hash(&watt_core::codec::encode(&entry));
    assert_eq!(
        watt_core::ledger::smt::verify(&root, &key_c.hash(), &proof),
        Ok(watt_core::ledger::smt::Proven::Present(vh))
    );
    // The same account as of the previous ledger (what a phone can verify first):
    // before the payment it did not exist.
    let before = ch.state.header.seq - 1;
    ch.submit(&a, 0, vec![Operation::Pay { to: acct(&c), amount: Amount(8) }]);
    ch.close(vec![]);
    let (prev_header, prev_entry, prev_proof) = ch.state.prove_previous(&key_c).unwrap();
    assert_eq!(prev_header.seq, before + 1);
    assert_eq!(prev_entry.as_ref(), Some(&entry));
    assert_eq!(
        watt_core::ledger::smt::verify(&prev_header.state_root, &key_c.hash(), &prev_proof),
        Ok(watt_core::ledger::smt::Proven::Present(vh))
    );
    let (now_entry, _) = ch.state.prove(&key_c);
    assert_ne!(now_entry, Some(entry));
    let root = ch.state.header.state_root;
    let absent = watt_core::ledger::StateKey::Account(acct(&key("nobody")));
    let (none, proof) = ch.state.prove(&absent);
    assert!(none.is_none());
    assert_eq!(
        watt_core::ledger::smt::verify(&root, &absent.hash(), &proof),
        Ok(watt_core::ledger::smt::Proven::Absent)
    );
}

#[test]
fn restore_from_entries_gives_the_same_root() {
    let (a, c, v) = (key("a"), key("c"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    ch.submit(&a, 7, vec![Operation::Pay { to: acct(&c), amount: Amount(42) }]);
    ch.attest(&a, None);
    ch.close(vec![node(&v)]);
    let restored =
        LedgerState::restore(&g, ch.state.header.clone(), ch.state.all_entries(), ch.state.payout_queue(), vec![])
            .unwrap();
    assert_eq!(restored.state_root(), ch.state.state_root());
    assert_eq!(restored.attesters_of(0).len(), 1);
    // A tampered entry is caught by the committed root.
    let mut entries = ch.state.all_entries();
    if let Some((_, watt_core::ledger::StateEntry::Account(acc))) =
        entries.iter_mut().find(|(k, _)| *k == watt_core::ledger::StateKey::Account(acct(&c)))
    {
        acc.balance = Amount(1_000_000);
    }
    assert!(LedgerState::restore(&g, ch.state.header.clone(), entries, vec![], vec![]).is_err());
}

#[derive(Debug, Clone)]
enum Action {
    Pay { from: usize, to: usize, amount: u64, fee: u64 },
    Attest { who: usize },
    Circle { who: usize, with: usize },
    Lock { who: usize, amount: u64 },
    Unlock { who: usize, amount: u64 },
    Replay,
    Close,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..6usize, 0..7usize, 0..300 * UNITS_PER_WATT, 0..1_000_000u64)
            .prop_map(|(from, to, amount, fee)| Action::Pay { from, to, amount, fee }),
        (0..7usize).prop_map(|who| Action::Attest { who }),
        (0..6usize, 0..6usize).prop_map(|(who, with)| Action::Circle { who, with }),
        (0..6usize, 0..50 * UNITS_PER_WATT).prop_map(|(who, amount)| Action::Lock { who, amount }),
        (0..6usize, 0..50 * UNITS_PER_WATT).prop_map(|(who, amount)| Action::Unlock { who, amount }),
        Just(Action::Replay),
        Just(Action::Close),
        Just(Action::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    // Over random days of valid and invalid transactions: the supply
    // invariant holds after every ledger, nobody is paid twice for a day, and
    // replays never apply.
    #[test]
    fn invariant_holds_over_random_days(actions in proptest::collection::vec(action(), 1..160)) {
        let keys: Vec<Keypair> = (0..7).map(|i| key(&format!("p{i}"))).collect();
        let v = key("pv");
        let mut p = params();
        p.phase1_pool = Amount(40 * 1_000 * UNITS_PER_WATT); // phase 2 starts within the run
        p.phase1_days = 40;
        let founders: Vec<&Keypair> = keys[..6].iter().collect();
        let g = genesis(&founders, &[&v], p);
        let mut ch = Chain::new(&g);
        let mut last: Option<Transaction> = None;
        for a in actions {
            match a {
                Action::Pay { from, to, amount, fee } => {
                    last = Some(ch.submit(&keys[from], fee, vec![Operation::Pay { to: acct(&keys[to]), amount: Amount(amount) }]));
                }
                Action::Attest { who } => { ch.attest(&keys[who], Some(&keys[0])); }
                Action::Circle { who, with } => {
                    ch.submit(&keys[who], 0, vec![Operation::SetSecurityCircle { members: BoundedVec::try_from_vec(vec![acct(&keys[with])]).unwrap() }]);
                }
                Action::Lock { who, amount } => { ch.submit(&keys[who], 0, vec![Operation::PledgeLock { amount: Amount(amount) }]); }
                Action::Unlock { who, amount } => { ch.submit(&keys[who], 0, vec![Operation::PledgeUnlock { amount: Amount(amount) }]); }
                Action::Replay => { if let Some(t) = &last { ch.pending.push(t.clone()); } }
                Action::Close => {
                    // Several ledgers at once, so the run crosses many days.
                    let results = ch.close(vec![node(&v)]);
                    for _ in 0..3 { ch.close(vec![node(&v)]); }
                    let replays = results.iter().filter(|r| matches!(r.outcome, TxOutcome::Rejected(TxFailure::BadSequence))).count();
                    let hashes: std::collections::BTreeSet<_> = results.iter().filter(|r| r.outcome == TxOutcome::Success).map(|r| r.tx_hash).collect();
                    prop_assert_eq!(hashes.len(), results.iter().filter(|r| r.outcome == TxOutcome::Success).count(), "a transaction applied twice");
                    let _ = replays;
                }
            }
        }
        // Run past the last day's distribution and payouts.
        for _ in 0..(2 * DAY * 1000 / STEP) { ch.close(vec![node(&v)]); }
        // Nobody was paid twice for a day: each day's payouts list each account once.
        for d in 0..ch.state.header.day {
            if let Some(rec) = ch.state.day_record(d) {
                prop_assert!(rec.payouts <= 8, "day {} paid {} accounts", d, rec.payouts);
                prop_assert!(rec.attesters <= 7);
            }
        }
        prop_assert_eq!(ch.state.supply().pending_payouts, Amount::ZERO);
    }
}

mod pool {
    use super::*;
    use watt_core::ledger::pool::{check_tx_set, TxPool};
    use watt_core::wire::TxRejection;

    fn pay(net: &NetworkId, from: &Keypair, seq: u64, fee: u64, to: &Keypair) -> Transaction {
        TransactionBody {
            source: acct(from),
            seq_num: seq,
            fee: Amount(fee),
            max_ledger: None,
            ops: BoundedVec::try_from_vec(vec![Operation::Pay { to: acct(to), amount: Amount(1) }]).unwrap(),
        }
        .sign(from, net)
    }

    /// Signatures a validator checked once are not checked again in tx sets
    /// and at apply; what vouches for a transaction is its id and its very
    /// signature, so the same body with another signature is checked, and
    /// refused, as before.
    #[test]
    fn a_checked_signature_vouches_only_for_itself() {
        use watt_core::ledger::pool::check_tx_set_with;
        let (a, b, v) = (key("a"), key("b"), key("v"));
        let g = genesis(&[&a, &b], &[&v], params());
        let mut ch = Chain::new(&g);
        let good = pay(&ch.net, &a, 1, 100, &b);
        let mut forged = good.clone();
        forged.signature.0[5] ^= 1;
        let checked = (good.hash(), good.signature);
        let verified = move |t: &Transaction| (t.hash(), t.signature) == checked;
        let set = |tx: &Transaction| TxSet {
            prev_header_hash: ch.state.header.hash(),
            txs: BoundedVec::try_from_vec(vec![tx.clone()]).unwrap(),
        };
        assert_eq!(check_tx_set_with(&ch.state, &set(&good), &verified), Ok(()));
        assert!(matches!(
            check_tx_set_with(&ch.state, &set(&forged), &verified),
            Err(watt_core::ledger::pool::TxSetError::BadTx(_))
        ));
        // At apply the forged copy fails its signature and moves nothing.
        let inputs = HeaderInputs {
            close_time: ch.state.header.close_time + STEP,
            rand: Hash256([3; 32]),
            prev_proof_hash: Hash256::ZERO,
            upgrades: vec![],
            participants: vec![],
        };
        let before = ch.balance(&b);
        let forged_set = set(&forged);
        let out = ch.state.apply_with(&inputs, &forged_set, &verified).expect("applies");
        assert!(out.results.iter().all(|r| r.outcome != watt_core::ledger::TxOutcome::Success), "{:?}", out.results);
        assert_eq!(ch.balance(&b), before);
    }

    /// 3 × max_txs_per_ledger pending with random fees: each ledger takes
    /// exactly the highest fees per operation, in order.
    #[test]
    fn congestion_lets_only_the_highest_fees_in() {
        let mut p = params();
        p.max_txs_per_ledger = 50;
        let senders: Vec<Keypair> = (0..150).map(|i| key(&format!("s{i}"))).collect();
        let refs: Vec<&Keypair> = senders.iter().collect();
        let v = key("v");
        let g = genesis(&refs, &[&v], p);
        let mut ch = Chain::new(&g);
        let mut pool = TxPool::new(50, 100, 4);
        let mut rng = watt_core::scp::sim::SimRng::new(42);
        let mut fees = Vec::new();
        for s in &senders {
            let fee = rng.range(0, 1_000_000);
            fees.push(fee);
            pool.add(pay(&ch.net, s, 1, fee, &v), &ch.state).unwrap();
        }
        fees.sort_unstable_by(|a, b| b.cmp(a));
        for round in 0..3 {
            let set = pool.build_tx_set(&ch.state);
            assert_eq!(set.txs.len(), 50);
            check_tx_set(&ch.state, &set).unwrap();
            let mut got: Vec<u64> = set.txs.iter().map(|t| t.body.fee.units()).collect();
            got.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(got, fees[round * 50..(round + 1) * 50].to_vec(), "ledger {round} took other fees");
            if round < 2 {
                assert_eq!(pool.surge_fee_per_op, Some(*got.last().unwrap()));
            }
            ch.pending = set.txs.to_vec();
            let results = ch.close(vec![]);
            ok(&results);
            let applied: Vec<Hash256> = results.iter().map(|r| r.tx_hash).collect();
            pool.ledger_closed(&ch.state, &applied);
        }
        assert!(pool.is_empty());
    }

    #[test]
    fn uncongested_zero_fee_payments_are_included() {
        let (a, b, v) = (key("a"), key("b"), key("v"));
        let g = genesis(&[&a, &b], &[&v], params());
        let ch = Chain::new(&g);
        let mut pool = TxPool::new(1000, 5000, 4);
        pool.add(pay(&ch.net, &a, 1, 0, &b), &ch.state).unwrap();
        pool.add(pay(&ch.net, &a, 2, 0, &b), &ch.state).unwrap();
        let set = pool.build_tx_set(&ch.state);
        assert_eq!(set.txs.len(), 2);
        assert_eq!(pool.surge_fee_per_op, None);
    }

    #[test]
    fn a_full_pool_evicts_the_lowest_fee_and_refuses_lower_ones() {
        let senders: Vec<Keypair> = (0..5).map(|i| key(&format!("e{i}"))).collect();
        let refs: Vec<&Keypair> = senders.iter().collect();
        let v = key("v");
        let g = genesis(&refs, &[&v], params());
        let ch = Chain::new(&g);
        let mut pool = TxPool::new(2, 10, 2); // room for 4 ordinary
        for (i, s) in senders[..4].iter().enumerate() {
            pool.add(pay(&ch.net, s, 1, 100 * (i as u64 + 1), &v), &ch.state).unwrap();
        }
        assert_eq!(pool.add(pay(&ch.net, &senders[4], 1, 50, &v), &ch.state), Err(TxRejection::InsufficientFee));
        let cheap = pay(&ch.net, &senders[0], 1, 100, &v).hash();
        assert!(pool.contains(&cheap));
        pool.add(pay(&ch.net, &senders[4], 1, 1_000, &v), &ch.state).unwrap();
        assert!(!pool.contains(&cheap), "the lowest fee should have been evicted");
        assert_eq!(pool.len(), 4);
        // Whoever sent it can learn it was dropped, and why; the others were not.
        assert_eq!(pool.dropped(&cheap), Some(&TxRejection::Evicted));
        let kept = pay(&ch.net, &senders[1], 1, 200, &v).hash();
        assert!(pool.contains(&kept) && pool.dropped(&kept).is_none());
    }

    #[test]
    fn arrival_checks_name_the_problem() {
        let (a, b, v) = (key("a"), key("b"), key("v"));
        let g = genesis(&[&a], &[&v], params());
        let ch = Chain::new(&g);
        let mut pool = TxPool::new(10, 10, 2);
        assert_eq!(pool.add(pay(&ch.net, &a, 3, 0, &b), &ch.state), Err(TxRejection::BadSequence { expected: 1 }));
        let other = NetworkId::from_passphrase("elsewhere");
        assert_eq!(pool.add(pay(&other, &a, 1, 0, &b), &ch.state), Err(TxRejection::BadSignature));
        assert_eq!(
            pool.add(pay(&ch.net, &a, 1, 101 * UNITS_PER_WATT, &b), &ch.state),
            Err(TxRejection::InsufficientBalance)
        );
        let t = pay(&ch.net, &a, 1, 0, &b);
        pool.add(t.clone(), &ch.state).unwrap();
        assert_eq!(pool.add(t, &ch.state), Err(TxRejection::Duplicate));
    }

    fn fat_proof(net: &NetworkId, from: &Keypair, seq: u64, fee: u64, bytes: usize) -> Transaction {
        let proof = watt_core::codec::BoundedBytes::try_from_vec(vec![0xa5; bytes]).unwrap();
        TransactionBody {
            source: acct(from),
            seq_num: seq,
            fee: Amount(fee),
            max_ledger: None,
            ops: BoundedVec::try_from_vec(vec![Operation::SectorProveCommit { sector_number: seq, proof }]).unwrap(),
        }
        .sign(from, net)
    }

    /// Issue 16 #1: tx sets were limited by count only, so two pending 2 MiB
    /// proofs (fee 0) made every validator nominate a set no peer could fetch
    /// (frames stop at 4 MiB) and consensus halted.
    #[test]
    fn fat_transactions_never_make_a_tx_set_over_its_byte_budgets() {
        use watt_core::wire::{PeerMessage, MAX_FRAME};
        let senders: Vec<Keypair> = (0..6).map(|i| key(&format!("prover{i}"))).collect();
        let refs: Vec<&Keypair> = senders.iter().collect();
        let v = key("v");
        let g = genesis(&refs, &[&v], params());
        let mut ch = Chain::new(&g);
        let p = ch.state.params.clone();
        let mut pool = TxPool::new(1000, 5000, 4);
        // Over max_tx_bytes (1 MiB): refused on arrival, before its signature is checked.
        let huge = fat_proof(&ch.net, &senders[0], 1, 0, 2 * 1024 * 1024 - 1024);
        assert_eq!(pool.add(huge, &ch.state), Err(TxRejection::TooLarge));
        // Five honest-sized proofs of 600 KB and a payment: each ledger takes at
        // most 1 MiB of proofs, the set fits a frame, and all land in turn.
        for s in &senders[..5] {
            pool.add(fat_proof(&ch.net, s, 1, 0, 600 * 1024), &ch.state).unwrap();
        }
        pool.add(pay(&ch.net, &senders[5], 1, 0, &v), &ch.state).unwrap();
        let mut landed = 0;
        for _ in 0..5 {
            let set = pool.build_tx_set(&ch.state);
            check_tx_set(&ch.state, &set).unwrap();
            let bytes = watt_core::ledger::pool::lane_bytes(&p, &set.txs);
            assert!(bytes.proofs <= u64::from(p.max_proof_bytes_per_ledger), "{bytes:?}");
            assert!(bytes.total <= u64::from(p.max_tx_set_bytes), "{bytes:?}");
            let frame = watt_core::codec::encode(&PeerMessage::TxSet(set.clone())).len();
            assert!(frame <= MAX_FRAME, "a {frame}-byte tx set cannot be fetched");
            landed += set.txs.len();
            ch.pending = set.txs.to_vec();
            let results = ch.close(vec![]);
            let applied: Vec<Hash256> = results.iter().map(|r| r.tx_hash).collect();
            pool.ledger_closed(&ch.state, &applied);
        }
        assert_eq!(landed, 6, "every pending transaction lands, one proof a ledger");
        assert!(pool.is_empty());
        // A peer's set over the proof budget is refused before any signature check.
        let hostile: Vec<Transaction> = senders[..2].iter().map(|s| fat_proof(&ch.net, s, 2, 0, 900 * 1024)).collect();
        let mut hostile_sorted = hostile.clone();
        hostile_sorted.sort_by(watt_core::ledger::apply::canonical_order);
        let set =
            TxSet { prev_header_hash: ch.state.header.hash(), txs: BoundedVec::try_from_vec(hostile_sorted).unwrap() };
        assert!(matches!(
            check_tx_set(&ch.state, &set),
            Err(watt_core::ledger::pool::TxSetError::TooManyProofBytes(_))
        ));
    }

    /// Found attacking the byte budgets: a fee chosen in one ledger but left
    /// out for bytes could become unpayable once the account spent its
    /// balance, and every validator then nominated a set its peers refused.
    #[test]
    fn a_fee_the_balance_can_no_longer_pay_never_makes_a_set_invalid() {
        let (a, b, v) = (key("spender"), key("stuffer"), key("v"));
        let g = genesis(&[&a, &b], &[&v], params());
        let mut ch = Chain::new(&g);
        let mut pool = TxPool::new(1000, 5000, 4);
        let balance = ch.balance(&a);
        let drain = TransactionBody {
            source: acct(&a),
            seq_num: 1,
            fee: Amount(1),
            max_ledger: None,
            ops: BoundedVec::try_from_vec(vec![Operation::Pay { to: acct(&b), amount: Amount(balance - 2) }]).unwrap(),
        }
        .sign(&a, &ch.net);
        let later = fat_proof(&ch.net, &a, 2, 5, 100 * 1024);
        pool.add(drain, &ch.state).unwrap();
        pool.add(later.clone(), &ch.state).unwrap();
        pool.add(fat_proof(&ch.net, &b, 1, 0, 1024 * 1024 - 1024), &ch.state).unwrap();
        for ledger in 0..3 {
            let set = pool.build_tx_set(&ch.state);
            check_tx_set(&ch.state, &set).unwrap_or_else(|e| panic!("ledger {ledger}: {e}"));
            ch.pending = set.txs.to_vec();
            let applied: Vec<Hash256> = ch.close(vec![]).iter().map(|r| r.tx_hash).collect();
            pool.ledger_closed(&ch.state, &applied);
        }
        assert_eq!(pool.dropped(&later.hash()), Some(&TxRejection::InsufficientBalance));
        assert!(pool.is_empty());
    }

    /// Found attacking the byte budgets: fee-free attestations were filled
    /// before the ordinary lane from the same bytes, so taps with 4 KiB
    /// device tokens left no room for any payment. They have a share now.
    #[test]
    fn taps_with_fat_device_tokens_leave_room_for_payments() {
        use watt_core::ledger::pool::{attestation_bytes, lane_bytes};
        let tappers: Vec<Keypair> = (0..480).map(|i| key(&format!("token{i}"))).collect();
        let payers: Vec<Keypair> = (0..100).map(|i| key(&format!("payer{i}"))).collect();
        let mut refs: Vec<&Keypair> = tappers.iter().collect();
        refs.extend(payers.iter());
        let v = key("v");
        let g = genesis(&refs, &[&v], params());
        let ch = Chain::new(&g);
        let mut pool = TxPool::new(1000, 5000, 4);
        let h = ch.state.header.clone();
        let token = watt_core::codec::BoundedBytes::try_from_vec(vec![7u8; MAX_DEVICE_TOKEN]).unwrap();
        for t in &tappers {
            let op = Operation::Attest(Attest {
                day: 0,
                anchor_seq: h.seq,
                anchor_hash: h.hash(),
                invite: None,
                device_token: Some(token.clone()),
            });
            let ops = BoundedVec::try_from_vec(vec![op]).unwrap();
            let tx =
                TransactionBody { source: acct(t), seq_num: 1, fee: Amount(0), max_ledger: None, ops }.sign(t, &ch.net);
            pool.add(tx, &ch.state).unwrap();
        }
        for p in &payers {
            pool.add(pay(&ch.net, p, 1, 0, &v), &ch.state).unwrap();
        }
        let set = pool.build_tx_set(&ch.state);
        check_tx_set(&ch.state, &set).unwrap();
        let paid = set.txs.iter().filter(|t| !t.is_attestation()).count();
        assert_eq!(paid, payers.len(), "every payment fits beside the taps");
        let used = lane_bytes(&ch.state.params, &set.txs);
        assert!(used.attestations <= attestation_bytes(&ch.state.params), "{used:?}");
        assert!(set.txs.iter().any(|t| t.is_attestation()), "taps still land");
    }

    /// Found attacking the byte budgets: the pool was bounded by count only,
    /// so 4,000 pending 1 MiB transactions held 4 GiB and every ledger
    /// re-flooded up to a thousand of them. Bytes are bounded too.
    #[test]
    fn fat_transactions_are_held_to_a_few_tx_sets_and_re_flooded_within_one() {
        let senders: Vec<Keypair> = (0..8).map(|i| key(&format!("fat{i}"))).collect();
        let refs: Vec<&Keypair> = senders.iter().collect();
        let v = key("v");
        let g = genesis(&refs, &[&v], params());
        let ch = Chain::new(&g);
        // One set's worth of the non-attestation share (2 MiB less the taps' 768 KiB).
        let p = &ch.state.params;
        let cap = u64::from(p.max_tx_set_bytes) - watt_core::ledger::pool::attestation_bytes(p);
        let mut pool = TxPool::new(1000, 5000, 1);
        let mut refused = 0;
        for (i, s) in senders.iter().enumerate() {
            match pool.add(fat_proof(&ch.net, s, 1, i as u64, 900 * 1024), &ch.state) {
                Ok(_) => {}
                Err(TxRejection::InsufficientFee) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
            assert!(pool.bytes() <= cap, "{} pending bytes", pool.bytes());
        }
        assert_eq!(refused, 0, "each better fee evicts the lowest");
        assert_eq!(pool.len(), 1, "one 900 KB proof fits 1.25 MiB; the best fee is the one kept");
        assert!(pool.contains(&fat_proof(&ch.net, &senders[7], 1, 7, 900 * 1024).hash()));
        let again = pool.waiting(10, 0, 1000, cap / 4);
        assert_eq!(again.len(), 0, "a re-flood stays within its byte limit");
        assert_eq!(pool.waiting(10, 0, 1000, cap).len(), 1);
    }

    /// Found attacking the fixes (second review): fat zero-fee proofs shared
    /// one byte counter with taps, so 8 MiB of junk from a free wallet made
    /// every validator refuse every tap with `PoolFull`. Each lane has its own.
    #[test]
    fn fat_junk_in_the_pool_never_locks_out_a_tap() {
        let senders: Vec<Keypair> = (0..12).map(|i| key(&format!("junk{i}"))).collect();
        let mut refs: Vec<&Keypair> = senders.iter().collect();
        let tapper = key("tapper");
        refs.push(&tapper);
        let v = key("v");
        let g = genesis(&refs, &[&v], params());
        let ch = Chain::new(&g);
        let mut pool = TxPool::new(1000, 5000, 1);
        for s in &senders {
            let _ = pool.add(fat_proof(&ch.net, s, 1, 0, 1000 * 1024), &ch.state);
        }
        assert!(!pool.is_empty());
        pool.add(ch.attest_tx(&tapper), &ch.state).expect("a tap still gets a place");
    }

    /// Found attacking the fixes (second review): a full pool evicted the new
    /// transaction's own predecessor, leaving a gap nothing could fill.
    #[test]
    fn a_full_pool_never_evicts_the_senders_own_earlier_transaction() {
        let (a, b, v) = (key("a"), key("b"), key("v"));
        let g = genesis(&[&a, &b], &[&v], params());
        let ch = Chain::new(&g);
        let mut pool = TxPool::new(1, 10, 2); // room for 2 ordinary
        pool.add(pay(&ch.net, &a, 1, 10, &v), &ch.state).unwrap();
        pool.add(pay(&ch.net, &b, 1, 20, &v), &ch.state).unwrap();
        assert_eq!(pool.add(pay(&ch.net, &a, 2, 1_000, &v), &ch.state), Err(TxRejection::InsufficientFee));
        assert!(pool.contains(&pay(&ch.net, &a, 1, 10, &v).hash()), "a's first transaction stays");
    }

    /// Issue 16 #14: combine picked the candidate with the most operations,
    /// so a round leader padding its set with zero-fee transactions won the
    /// slot and its `rand`. Fees rank first.
    #[test]
    fn a_candidate_padded_with_free_transactions_loses_to_one_that_pays() {
        use watt_core::ledger::pool::candidate_rank;
        let senders: Vec<Keypair> = (0..100).map(|i| key(&format!("pad{i}"))).collect();
        let refs: Vec<&Keypair> = senders.iter().collect();
        let v = key("v");
        let g = genesis(&refs, &[&v], params());
        let ch = Chain::new(&g);
        let prev = ch.state.header.hash();
        let mut padded: Vec<Transaction> = senders.iter().map(|s| pay(&ch.net, s, 1, 0, &v)).collect();
        padded.sort_by(watt_core::ledger::apply::canonical_order);
        let padded = TxSet { prev_header_hash: prev, txs: BoundedVec::try_from_vec(padded).unwrap() };
        let paying = TxSet {
            prev_header_hash: prev,
            txs: BoundedVec::try_from_vec(vec![pay(&ch.net, &senders[0], 1, 1, &v)]).unwrap(),
        };
        assert!(candidate_rank(&paying) > candidate_rank(&padded));
        // Equal fees: more operations still win.
        let mut two: Vec<Transaction> = senders[..2].iter().map(|s| pay(&ch.net, s, 1, 0, &v)).collect();
        two.sort_by(watt_core::ledger::apply::canonical_order);
        let two = TxSet { prev_header_hash: prev, txs: BoundedVec::try_from_vec(two).unwrap() };
        assert!(candidate_rank(&padded) > candidate_rank(&two));
    }
}

// ---------------------------------------------------------------------------
// Regression tests of the adversarial review (issue 16). Each failed on the
// code the review was filed against.

fn failed(r: &TxResult, reason: OpFailure) {
    assert_eq!(r.outcome, TxOutcome::OpFailed { index: 0, reason }, "{r:?}");
}

/// Issue 16 #2: a payment opened an account that then tapped with no
/// inviter, so one fee-free transaction of 100 zero payments made 100 miners
/// around every sybil limit. A paid-into account is a wallet.
#[test]
fn paid_into_wallets_do_not_mine_until_their_own_invited_first_tap() {
    let (a, v) = (key("a"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    let wallets: Vec<Keypair> = (0..100).map(|i| key(&format!("wallet{i}"))).collect();
    let pays = wallets.iter().map(|w| Operation::Pay { to: acct(w), amount: Amount::ZERO }).collect();
    ch.submit(&a, 0, pays);
    ok(&ch.close(vec![]));
    assert!(wallets.iter().all(|w| ch.state.account(&acct(w)).is_some_and(|e| !e.is_miner())));
    // Taps without an inviter: refused, no new miner, no attester counted.
    for w in &wallets {
        ch.attest(w, None);
    }
    for r in ch.close(vec![]) {
        failed(&r, OpFailure::InviterNotEligible);
    }
    let rec = ch.state.day_record(0).unwrap();
    assert_eq!((rec.new_accounts, rec.attesters), (0, 0));
    assert!(ch.state.attesters_of(0).is_empty());
    // With an eligible inviter a wallet becomes a miner under the inviter's
    // quota (3 a day): the fourth is refused.
    ch.attest(&a, None);
    ok(&ch.close(vec![]));
    for w in &wallets[..4] {
        ch.attest(w, Some(&a));
    }
    let r = ch.close(vec![]);
    let admitted = r.iter().filter(|x| x.outcome == TxOutcome::Success).count();
    assert_eq!(admitted, 3, "{r:?}");
    assert_eq!(ch.state.day_record(0).unwrap().new_accounts, 3);
    let miners = wallets.iter().filter(|w| ch.state.account(&acct(w)).unwrap().is_miner()).count();
    assert_eq!(miners, 3);
    for w in wallets.iter().filter(|w| ch.state.account(&acct(w)).unwrap().is_miner()) {
        let e = ch.state.account(&acct(w)).unwrap();
        assert_eq!((e.referrer, e.created_day), (Some(acct(&a)), 0), "probation runs from the admitting tap");
    }
}

/// Issue 16 #11: `Attest { day: u64::MAX }` overflowed `a.day + 1` (debug:
/// every validator panicked; release: accepted in day 0's grace window).
#[test]
fn an_attestation_for_day_u64_max_is_refused_without_overflow() {
    let (a, v) = (key("a"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    let h = ch.state.header.clone();
    let op = Operation::Attest(Attest {
        day: u64::MAX,
        anchor_seq: h.seq,
        anchor_hash: h.hash(),
        invite: None,
        device_token: None,
    });
    ch.submit(&a, 0, vec![op]);
    failed(&ch.close(vec![])[0], OpFailure::BadDay);
    assert_eq!(ch.state.day_record(0).unwrap().attesters, 0);
}

/// `v`'s signed EXTERNALIZE of `slot`, for the value that slot agreed on
/// (its parent's hash and its `rand`).
fn externalize(ch: &Chain, v: &Keypair, slot: u64) -> watt_core::scp::Envelope {
    use watt_core::scp::{Ballot, Pledges, Statement, Value};
    let value = ScpValue {
        prev_header_hash: slot.checked_sub(1).and_then(|p| ch.state.recent_hash(p)).unwrap_or(Hash256::ZERO),
        tx_set_hash: Hash256([3; 32]),
        close_time: 0,
        proposer: node(v),
        rand: ch.state.recent_rand(slot).unwrap_or(Hash256::ZERO),
        rand_proof: Default::default(),
        prev_proof_hash: Hash256::ZERO,
        upgrades: BoundedVec::new(),
    };
    let value = Value(watt_core::codec::BoundedBytes::try_from_vec(watt_core::codec::encode(&value)).unwrap());
    Statement {
        node_id: node(v),
        slot_index: slot,
        pledges: Pledges::Externalize {
            commit: Ballot { counter: 1, value },
            n_h: 1,
            commit_quorum_set_hash: Hash256::ZERO,
        },
    }
    .sign(v, &ch.net)
}

fn participation(v: &Keypair, envelopes: Vec<watt_core::scp::Envelope>) -> Operation {
    Operation::Participation { node_id: node(v), envelopes: BoundedVec::try_from_vec(envelopes).unwrap() }
}

fn counted_slots(ch: &Chain, v: &Keypair) -> u64 {
    let day = ch.state.header.day;
    let rec = ch.state.day_record(day).unwrap();
    rec.validator_slots.iter().find(|(n, _)| *n == node(v)).map_or(0, |(_, c)| *c)
}

/// Issue 16 #4, #7 and #11: anyone could submit `Participation` for a
/// validator, for slots up to 64 ledgers old (so an offline validator could
/// claim a day's share afterwards), slot 0 underflowed, and a failing
/// transaction left its counted slots behind.
#[test]
fn participation_is_the_validators_own_claim_within_eight_ledgers() {
    let (a, v1, v2) = (key("a"), key("v1"), key("v2"));
    let g = genesis(&[&a], &[&v1, &v2], params());
    let mut ch = Chain::new(&g);
    // v1's account exists because someone paid it (validators are wallets).
    ch.submit(&a, 0, vec![Operation::Pay { to: acct(&v1), amount: Amount(UNITS_PER_WATT) }]);
    ok(&ch.close(vec![node(&v2)]));
    // Slot 0 (no parent), while it is inside the window: refused, not a panic.
    ch.submit(&v1, 0, vec![participation(&v1, vec![externalize(&ch, &v1, 0)])]);
    failed(&ch.close(vec![])[0], OpFailure::BadProof);
    for _ in 0..10 {
        ch.close(vec![node(&v2)]); // v1 is left out of every proof
    }
    let seq = ch.state.header.seq;
    // A stranger holding v1's public envelopes: refused.
    ch.submit(&a, 0, vec![participation(&v1, vec![externalize(&ch, &v1, seq - 1)])]);
    failed(&ch.close(vec![])[0], OpFailure::NotOwner);
    assert_eq!(counted_slots(&ch, &v1), 0);
    let seq = ch.state.header.seq;
    // v1 itself, 9 ledgers late (the next ledger is seq + 1): refused.
    ch.submit(&v1, 0, vec![participation(&v1, vec![externalize(&ch, &v1, seq - 8)])]);
    failed(&ch.close(vec![])[0], OpFailure::BadProof);
    // A claim bundled with a failing operation leaves nothing counted...
    let seq = ch.state.header.seq;
    let claim = participation(&v1, vec![externalize(&ch, &v1, seq)]);
    let overdraw = Operation::Pay { to: acct(&a), amount: Amount(2 * UNITS_PER_WATT) };
    ch.submit(&v1, 0, vec![claim.clone(), overdraw]);
    assert_eq!(ch.close(vec![])[0].outcome, TxOutcome::OpFailed { index: 1, reason: OpFailure::Underfunded });
    assert_eq!(counted_slots(&ch, &v1), 0);
    // ...so the same claim, alone and in time, counts once.
    ch.submit(&v1, 0, vec![claim.clone()]);
    ok(&ch.close(vec![]));
    assert_eq!(counted_slots(&ch, &v1), 1);
    ch.submit(&v1, 0, vec![claim]);
    ok(&ch.close(vec![]));
    assert_eq!(counted_slots(&ch, &v1), 1, "a slot counts once");
}

/// Issue 16 #4: what a slot's participation counted was not rebuilt by
/// `restore`, so a claim for an already-counted slot was skipped by nodes
/// that never restarted and counted by one that did: another `state_root`.
#[test]
fn a_restarted_node_counts_participation_exactly_as_one_that_never_stopped() {
    let (a, v1, v2) = (key("a"), key("v1"), key("v2"));
    let g = genesis(&[&a], &[&v1, &v2], params());
    let mut ch = Chain::new(&g);
    ch.submit(&a, 0, vec![Operation::Pay { to: acct(&v1), amount: Amount(UNITS_PER_WATT) }]);
    ok(&ch.close(vec![node(&v1), node(&v2)]));
    ch.close(vec![node(&v1), node(&v2)]); // v1 counted for the last slots through the proofs
    let st = &ch.state;
    let mut restarted =
        LedgerState::restore(&g, st.header.clone(), st.all_entries(), st.payout_queue(), st.recent_headers()).unwrap();
    assert_eq!(restarted.state_root(), ch.state.state_root());
    // v1 claims a slot the proofs already counted; both nodes apply the same ledger.
    let seq = ch.state.header.seq;
    let tx = ch.submit(&v1, 0, vec![participation(&v1, vec![externalize(&ch, &v1, seq - 1)])]);
    let set = TxSet { prev_header_hash: ch.state.header.hash(), txs: BoundedVec::try_from_vec(vec![tx]).unwrap() };
    let inputs = HeaderInputs {
        close_time: ch.state.header.close_time + STEP,
        rand: Hash256([7; 32]),
        prev_proof_hash: Hash256::ZERO,
        upgrades: vec![],
        participants: vec![node(&v1), node(&v2)],
    };
    let on_restarted = restarted.apply(&inputs, &set).unwrap();
    let on_running = ch.close(vec![node(&v1), node(&v2)]);
    assert_eq!(on_running, on_restarted.results);
    assert_eq!(restarted.state_root(), ch.state.state_root(), "every node computes the same root");
}

/// Issue 16 #6: the round leader's value could name any directory node as
/// proposer, and announcing a node is free, so a leader announced K keys and
/// picked the best of K VRF outputs (seal challenges and PoSt samples follow
/// `rand`). The proposer must be in the validator set, whose VRF keys are fixed.
#[test]
fn only_validator_set_members_propose_and_their_vrf_keys_are_fixed() {
    use watt_core::codec::{encode, BoundedBytes};
    use watt_core::crypto::vrf::VrfKeypair;
    use watt_core::crypto::Domain;
    use watt_core::ledger::value::{check_value_header, ValueError};
    let vrf_of = |tag: &str| VrfKeypair::from_seed(blake3::hash(tag.as_bytes()).as_bytes());
    let (a, v, sybil) = (key("a"), key("v"), key("sybil"));
    let mut p = params();
    p.node_announce_fee = Amount(UNITS_PER_WATT);
    let mut g = genesis(&[&a], &[&v], p);
    g.validators.as_mut_slice()[0].vrf_key = vrf_of("v").public();
    let mut ch = Chain::new(&g);
    let announce = |ch: &Chain, node_key: &Keypair, vrf: &str| Operation::AnnounceNode {
        node_id: node(node_key),
        vrf_key: vrf_of(vrf).public(),
        addresses: BoundedVec::new(),
        quorum_set: QuorumSet::flat(1, vec![node(&v)]),
        proof_of_key: node_key.sign(&ch.net, Domain::NodeKeyProof, &encode(&acct(&a))),
    };
    // A sybil node announced by an ordinary account, with a VRF key of its own.
    let op = announce(&ch, &sybil, "sybil");
    ch.submit(&a, 0, vec![op]);
    ok(&ch.close(vec![]));
    let value_by = |ch: &Chain, who: &Keypair, vrf: &str| {
        let h = &ch.state.header;
        let (rand, proof) = vrf_of(vrf).prove(&h.rand, h.seq + 1);
        ScpValue {
            prev_header_hash: h.hash(),
            tx_set_hash: Hash256::ZERO,
            close_time: h.close_time + 1,
            proposer: node(who),
            rand,
            rand_proof: BoundedBytes::try_from_slice(&proof).unwrap(),
            prev_proof_hash: Hash256::ZERO,
            upgrades: BoundedVec::new(),
        }
    };
    let now = ch.state.header.close_time + 1;
    assert_eq!(check_value_header(&ch.state, &value_by(&ch, &v, "v"), now), Ok(()));
    assert_eq!(
        check_value_header(&ch.state, &value_by(&ch, &sybil, "sybil"), now),
        Err(ValueError::ProposerNotAValidator)
    );
    // The validator's own key holder cannot re-key its VRF after seeing `rand`.
    let op = announce(&ch, &v, "v, re-keyed");
    ch.submit(&a, 0, vec![op]);
    failed(&ch.close(vec![])[0], OpFailure::KeyFixed);
    let now = ch.state.header.close_time + 1;
    assert_eq!(check_value_header(&ch.state, &value_by(&ch, &v, "v"), now), Ok(()));
}

/// Issue 16 #5: a first tap named any public eligible account as inviter,
/// without its consent, and burnt its quota and the day's cap. An invite is
/// the inviter's signature for that invitee, and it expires.
#[test]
fn a_first_tap_needs_its_inviters_signed_invite_for_that_invitee() {
    let (a, mallory, n1, n2, v) = (key("a"), key("mallory"), key("new1"), key("new2"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    ch.attest(&a, None);
    ok(&ch.close(vec![]));
    let tap_with = |ch: &mut Chain, k: &Keypair, invite: Invite| {
        let h = &ch.state.header;
        let op = Operation::Attest(Attest {
            day: 0,
            anchor_seq: h.seq,
            anchor_hash: h.hash(),
            invite: Some(invite),
            device_token: None,
        });
        ch.submit(k, 0, vec![op]);
        ch.close(vec![]).remove(0)
    };
    // Mallory names `a` as inviter with her own signature: refused.
    let forged = Invite { inviter: acct(&a), ..Invite::sign(&mallory, &ch.net, &acct(&n1), 5) };
    failed(&tap_with(&mut ch, &n1, forged), OpFailure::BadInvite);
    // An invite `a` made for n1 does not admit n2.
    let for_n1 = Invite::sign(&a, &ch.net, &acct(&n1), 5);
    failed(&tap_with(&mut ch, &n2, for_n1.clone()), OpFailure::BadInvite);
    // An invite signed for another network does not count here.
    let elsewhere = Invite::sign(&a, &NetworkId::from_passphrase("elsewhere"), &acct(&n2), 5);
    failed(&tap_with(&mut ch, &n2, elsewhere), OpFailure::BadInvite);
    assert_eq!(ch.state.account(&acct(&a)).unwrap().invites_used, 0, "nothing of a's quota was spent");
    assert_eq!(ch.state.day_record(0).unwrap().new_accounts, 0);
    // The text form (a QR code or a link) carries it exactly; anything else is refused.
    assert_eq!(Invite::from_text(&for_n1.to_text()), Ok(for_n1.clone()));
    assert!(Invite::from_text("watt-invite:zz").is_err() && Invite::from_text(&acct(&a).to_string()).is_err());
    // The real one admits n1 once.
    assert_eq!(tap_with(&mut ch, &n1, for_n1).outcome, TxOutcome::Success);
    assert!(ch.state.account(&acct(&n1)).unwrap().is_miner());
    assert_eq!(ch.state.account(&acct(&a)).unwrap().invites_used, 1);
    // An expired invite is refused (day 0 is past its expiry of day 0 only on day 1).
    while ch.state.header.day < 1 {
        ch.close(vec![]);
    }
    let stale = Invite::sign(&a, &ch.net, &acct(&n2), 0);
    let h = ch.state.header.clone();
    let op = Operation::Attest(Attest {
        day: 1,
        anchor_seq: h.seq,
        anchor_hash: h.hash(),
        invite: Some(stale),
        device_token: None,
    });
    ch.submit(&n2, 0, vec![op]);
    failed(&ch.close(vec![])[0], OpFailure::BadInvite);
}

/// Issue 16 #5: first taps from unknown keys with any inviter entered the
/// pool and failed only in `apply` (no fee, no sequence used, replayable):
/// ~1,000/s from one address filled the 5,000-a-ledger lane and real taps
/// got `PoolFull`. Admission now checks the invite, the inviter and the cap.
#[test]
fn six_thousand_junk_first_taps_never_take_a_place_from_honest_taps() {
    use watt_core::ledger::pool::TxPool;
    use watt_core::wire::TxRejection;
    let founders: Vec<Keypair> = (0..50).map(|i| key(&format!("tapper{i}"))).collect();
    let refs: Vec<&Keypair> = founders.iter().collect();
    let (v, mallory) = (key("v"), key("mallory"));
    let mut p = params();
    p.max_attestations_per_ledger = 100;
    let g = genesis(&refs, &[&v], p);
    let mut ch = Chain::new(&g);
    ch.attest(&founders[0], None);
    ok(&ch.close(vec![]));
    let mut pool = TxPool::new(1000, 100, 1); // a lane of 100 places
    let h = ch.state.header.clone();
    let tap = |k: &Keypair, invite: Option<Invite>| {
        let op =
            Operation::Attest(Attest { day: 0, anchor_seq: h.seq, anchor_hash: h.hash(), invite, device_token: None });
        TransactionBody {
            source: acct(k),
            seq_num: 1,
            fee: Amount(0),
            max_ledger: None,
            ops: BoundedVec::try_from_vec(vec![op]).unwrap(),
        }
        .sign(k, &ch.net)
    };
    let mut refused = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..6_000u32 {
        let junk = Keypair::from_seed(SecretSeed::from_bytes(*blake3::hash(&i.to_le_bytes()).as_bytes())).unwrap();
        let invite = match i % 3 {
            0 => None,
            // Naming an eligible inviter without its consent.
            1 => Some(Invite { inviter: acct(&founders[0]), ..Invite::sign(&mallory, &ch.net, &acct(&junk), 9) }),
            // Mallory's own invite: she is no miner.
            _ => Some(Invite::sign(&mallory, &ch.net, &acct(&junk), 9)),
        };
        let why = pool.add(tap(&junk, invite), &ch.state).expect_err("junk is refused at the door");
        *refused.entry(format!("{why:?}")).or_default() += 1;
    }
    assert_eq!(pool.len(), 0, "no junk took a place: {refused:?}");
    assert!(refused.keys().all(|k| k.starts_with("WouldFail")), "{refused:?}");
    // Every honest tap gets a place and lands in the next ledger.
    for f in &founders[1..] {
        pool.add(ch.attest_tx(f), &ch.state).expect("an honest tap is admitted");
    }
    let set = pool.build_tx_set(&ch.state);
    assert_eq!(set.txs.len(), founders.len() - 1);
    // The inviter's quota counts taps still waiting: a 4th pending invite is refused.
    let invitees: Vec<Keypair> = (0..4).map(|i| key(&format!("invitee{i}"))).collect();
    for (i, n) in invitees.iter().enumerate() {
        let r = pool.add(tap(n, Some(Invite::sign(&founders[0], &ch.net, &acct(n), 9))), &ch.state);
        if i < 3 {
            r.expect("within the inviter's 3 a day");
        } else {
            assert_eq!(r, Err(TxRejection::WouldFail(OpFailure::InviterNotEligible)));
        }
    }
    // One pending first tap per invitee.
    let again = tap(&invitees[0], Some(Invite::sign(&founders[0], &ch.net, &acct(&invitees[0]), 8)));
    assert_eq!(pool.add(again, &ch.state), Err(TxRejection::AlreadyAttested));
}

/// Found attacking the wallet rule: a mutual circle member counted as a
/// voucher once 14 days had passed since it was paid into, though it never
/// mined, so three free wallets lifted a sybil out of probation. Only miners
/// past probation vouch.
#[test]
fn wallets_never_vouch_a_sybil_out_of_probation() {
    let (a, s, v) = (key("a"), key("sybil"), key("v"));
    let wallets: Vec<Keypair> = (0..3).map(|i| key(&format!("voucher{i}"))).collect();
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    let pays = wallets.iter().map(|w| Operation::Pay { to: acct(w), amount: Amount::ZERO }).collect();
    ch.submit(&a, 0, pays);
    ok(&ch.close(vec![]));
    for w in &wallets {
        ch.submit(
            w,
            0,
            vec![Operation::SetSecurityCircle { members: BoundedVec::try_from_vec(vec![acct(&s)]).unwrap() }],
        );
    }
    ok(&ch.close(vec![]));
    // Day 14: the wallets are 14 days old; the sybil is invited today.
    let day = ch.state.params.probation_days;
    while ch.state.header.day < day {
        ch.close(vec![]);
    }
    ch.attest(&a, None);
    ok(&ch.close(vec![]));
    ch.attest(&s, Some(&a));
    ok(&ch.close(vec![]));
    let members = BoundedVec::try_from_vec(wallets.iter().map(acct).collect()).unwrap();
    ch.submit(&s, 0, vec![Operation::SetSecurityCircle { members }]);
    ok(&ch.close(vec![]));
    while !ch.state.day_record(day).is_some_and(|r| r.distributed) {
        ch.close(vec![]);
    }
    // a: 1.0; the sybil: 1.0 on probation, × 0.5.
    assert_eq!(ch.state.day_record(day).unwrap().total_weights[0], 1_500_000);
}

/// Issue 16 #10: `GetNodes` answered up to 1,000 entries with no byte cap
/// (a quorum set can be ~40 KB, and announcing was free), so the answer
/// passed the 4 MiB frame and phones refused it, and sybil ids sorting low
/// pushed real validators out of it. Pages are cut by bytes, validators come
/// first, and each announcement costs `node_announce_fee`.
#[test]
fn the_directory_pages_by_bytes_puts_validators_first_and_announcing_costs() {
    use watt_core::codec::encode;
    use watt_core::crypto::Domain;
    use watt_core::ledger::directory::MAX_NODES_PER_PAGE;
    use watt_core::wire::MAX_NODES_PAGE_BYTES;
    let (a, poor, v) = (key("a"), key("poor"), key("v"));
    let mut p = params();
    p.node_announce_fee = Amount(UNITS_PER_WATT);
    let g = genesis(&[&a], &[&v], p);
    let mut ch = Chain::new(&g);
    // A big quorum set (~19 KB) for every sybil node.
    let members: Vec<NodeId> = (0..600u32).map(|i| node(&key(&format!("member{i}")))).collect();
    let big = QuorumSet::flat(1, members);
    let announce = |ch: &Chain, owner: &Keypair, k: &Keypair| Operation::AnnounceNode {
        node_id: node(k),
        vrf_key: k.public(),
        addresses: BoundedVec::new(),
        quorum_set: big.clone(),
        proof_of_key: k.sign(&ch.net, Domain::NodeKeyProof, &encode(&acct(owner))),
    };
    let sybils: Vec<Keypair> = (0..40).map(|i| key(&format!("sybil{i}"))).collect();
    let (balance, pool) = (ch.balance(&a), ch.state.fee_pool().units());
    for s in &sybils {
        let op = announce(&ch, &a, s);
        ch.submit(&a, 0, vec![op]);
    }
    ok(&ch.close(vec![]));
    assert_eq!(ch.balance(&a), balance - 40 * UNITS_PER_WATT, "each announcement costs the fee");
    assert_eq!(ch.state.fee_pool().units(), pool + 40 * UNITS_PER_WATT, "into the fee pool");
    // A wallet without the fee cannot announce.
    ch.submit(&a, 0, vec![Operation::Pay { to: acct(&poor), amount: Amount(10) }]);
    ok(&ch.close(vec![]));
    let op = announce(&ch, &poor, &key("one more"));
    ch.submit(&poor, 0, vec![op]);
    failed(&ch.close(vec![])[0], OpFailure::Underfunded);
    // Pages: validators first, each within the byte cap, every node reached once.
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = ch.state.directory_page(after).expect("a provable ledger");
        assert!(page.nodes.len() <= MAX_NODES_PER_PAGE);
        let frame = watt_core::codec::to_bytes(&page.nodes).unwrap().len();
        assert!(frame <= MAX_NODES_PAGE_BYTES, "a page of {frame} bytes");
        if pages == 0 {
            assert_eq!(page.nodes[0].node_id, node(&v), "the validator set comes first");
        }
        seen.extend(page.nodes.iter().map(|n| n.node_id));
        pages += 1;
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert!(pages >= 2, "40 entries of ~19 KB need more than one page");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (41, 41), "every node once");
}

/// Found attacking the fixes (second review): fees were charged as each
/// transaction applied, so an account could claim fees that its own
/// earlier payment in the same set left unpayable: those transactions were
/// rejected for free, filling ledgers (and winning combine on claimed
/// fees) at no cost. Every fee is taken before any operation runs.
#[test]
fn every_claimed_fee_is_paid_before_any_operation_runs() {
    let (a, b, v) = (key("a"), key("b"), key("v"));
    let g = genesis(&[&a, &b], &[&v], params());
    let mut ch = Chain::new(&g);
    let balance = ch.balance(&a);
    let pool_before = ch.state.fee_pool().units();
    ch.submit(&a, 1, vec![Operation::Pay { to: acct(&b), amount: Amount(balance - 1) }]);
    ch.submit(&a, UNITS_PER_WATT, vec![Operation::Pay { to: acct(&b), amount: Amount::ZERO }]);
    let r = ch.close(vec![]);
    assert!(r.iter().all(|x| !matches!(x.outcome, TxOutcome::Rejected(_))), "{r:?}");
    assert_eq!(r.iter().map(|x| x.fee_charged.units()).sum::<u64>(), 1 + UNITS_PER_WATT);
    assert_eq!(ch.state.fee_pool().units(), pool_before + 1 + UNITS_PER_WATT);
    // The drain could not pay out what the fees took first.
    assert_eq!(r[0].outcome, TxOutcome::OpFailed { index: 0, reason: OpFailure::Underfunded });
}

/// Found attacking the fixes (second review): a first tap for tomorrow (or
/// for yesterday after the grace window) was admitted, failed in `apply`
/// without using a sequence number, and could be resubmitted for ever,
/// holding the day's cap. Such taps are refused on arrival, and a
/// transaction already applied is never admitted again.
#[test]
fn taps_for_another_day_and_applied_transactions_are_refused_on_arrival() {
    use watt_core::ledger::pool::TxPool;
    use watt_core::wire::TxRejection;
    let (a, n, v) = (key("a"), key("n"), key("v"));
    let g = genesis(&[&a], &[&v], params());
    let mut ch = Chain::new(&g);
    ch.attest(&a, None);
    ok(&ch.close(vec![]));
    let mut pool = TxPool::new(1000, 5000, 4);
    let h = ch.state.header.clone();
    let tomorrow = Operation::Attest(Attest {
        day: h.day + 1,
        anchor_seq: h.seq,
        anchor_hash: h.hash(),
        invite: Some(Invite::sign(&a, &ch.net, &acct(&n), 9)),
        device_token: None,
    });
    let ops = BoundedVec::try_from_vec(vec![tomorrow]).unwrap();
    let tx = TransactionBody { source: acct(&n), seq_num: 1, fee: Amount(0), max_ledger: None, ops }.sign(&n, &ch.net);
    assert_eq!(pool.add(tx, &ch.state), Err(TxRejection::WouldFail(OpFailure::BadDay)));
    // An applied transaction is remembered and never admitted again.
    let ops = BoundedVec::try_from_vec(vec![Operation::Pay { to: acct(&n), amount: Amount(1) }]).unwrap();
    let t = TransactionBody { source: acct(&a), seq_num: 2, fee: Amount(0), max_ledger: None, ops }.sign(&a, &ch.net);
    let mut other = TxPool::new(1000, 5000, 4);
    other.add(t.clone(), &ch.state).expect("admitted once");
    ch.pending = vec![t.clone()];
    let applied: Vec<Hash256> = ch.close(vec![]).iter().map(|r| r.tx_hash).collect();
    other.ledger_closed(&ch.state, &applied);
    assert_eq!(other.add(t, &ch.state), Err(TxRejection::Duplicate));
}

/// Issue 16 #13: storage parameters larger than the proofs' bounded lists
/// made the prover cut its proofs to nothing (`unwrap_or_default()`); a
/// genesis with them is now refused.
#[test]
fn storage_parameters_past_what_proofs_carry_are_refused() {
    use watt_core::storage::proof::{MAX_LAYERS, MAX_POST_SAMPLES, MAX_SEAL_CHALLENGES};
    let ok = Params::devnet(STEP, DAY);
    assert_eq!(ok.validate(), Ok(()));
    type Change = fn(&mut Params);
    let cases: [(&str, Change); 4] = [
        ("post_samples", |p| p.post_samples = MAX_POST_SAMPLES as u32 + 1),
        ("seal_challenges", |p| p.seal_challenges = MAX_SEAL_CHALLENGES as u32 + 1),
        ("sector_layers", |p| p.sector_layers = MAX_LAYERS as u32 + 1),
        ("post_deadlines", |p| p.post_deadlines = watt_core::ledger::params::MAX_POST_DEADLINES as u32 + 1),
    ];
    for (name, set) in cases {
        let mut p = ok.clone();
        set(&mut p);
        let err = p.validate().expect_err(name);
        assert!(err.contains(name), "{name}: {err}");
    }
}

/// Found by the attacker suite's eight-period prover: `watt-node init
/// --day-seconds 20` kept mainnet's 48 PoSt deadlines and 30-minute window,
/// so a prover whose deadline opened in the day's last second could not
/// commit before the day ended and was faulted. A window that outlasts its
/// day is refused, and shorter days get fewer, wider deadlines.
#[test]
fn every_post_window_closes_within_its_day() {
    let mainnet = Params::mainnet();
    assert_eq!(mainnet.validate(), Ok(()));
    let short = Params { day_seconds: 20, ..Params::mainnet() };
    let err = short.validate().expect_err("mainnet windows in a 20 s day");
    assert!(err.contains("post_window_seconds"), "{err}");
    for day_seconds in [20, 600, 3_600, 7_200, 86_400] {
        let p = Params::mainnet().with_day_seconds(day_seconds);
        assert_eq!(p.validate(), Ok(()), "day of {day_seconds} s");
        assert!(p.post_window_seconds * u64::from(p.post_deadlines) <= day_seconds);
        assert!(p.post_window_seconds >= day_seconds.min(1_800), "windows stay wide: {p:?}");
    }
    assert_eq!(Params::mainnet().with_day_seconds(86_400), Params::mainnet());
}

/// Issue 16 #5, SPEC §5: first taps were admitted as they landed until the
/// day's cap, so whoever flooded the first ledger of a day took every place.
/// Once a ledger brings more first taps than the places left, they and the
/// rest of the day's first taps wait; at the day's end the places go by
/// lottery in `H(rand of the day's last ledger ‖ rand of the drawing ledger ‖
/// invitee)` order, at most one per inviter, and the winners' taps count for
/// that day. Taps that fail (a round leader's junk) open no lottery.
#[test]
fn flooding_the_first_ledger_of_a_day_wins_one_place_per_inviter_at_most() {
    use std::collections::{BTreeMap, BTreeSet};
    use watt_core::crypto::{Domain, TaggedHasher};
    let farmers: Vec<Keypair> = (0..5).map(|i| key(&format!("farmer{i}"))).collect();
    let honest: Vec<Keypair> = (0..10).map(|i| key(&format!("honest{i}"))).collect();
    let v = key("v");
    let mut founders: Vec<&Keypair> = farmers.iter().collect();
    founders.extend(honest.iter());
    let mut p = params();
    p.min_new_accounts_per_day = 10;
    let g = genesis(&founders, &[&v], p);
    let mut ch = Chain::new(&g);
    // Inviters must have tapped within the last 7 days.
    for f in &founders {
        ch.attest(f, None);
    }
    ok(&ch.close(vec![]));

    // A round leader's set of 15 first taps that fail (a stale anchor) opens
    // no lottery and spends no invitation: only taps that pass count.
    let h = ch.state.header.clone();
    for (i, f) in farmers.iter().enumerate() {
        for j in 0..3 {
            let s = key(&format!("sybil{i}.{j}"));
            let invite = Some(Invite::sign(f, &ch.net, &acct(&s), 5));
            let op = Operation::Attest(Attest {
                day: 0,
                anchor_seq: h.seq,
                anchor_hash: Hash256([1; 32]),
                invite,
                device_token: None,
            });
            ch.submit(&s, 0, vec![op]);
        }
    }
    for r in ch.close(vec![]) {
        failed(&r, OpFailure::BadAnchor);
    }
    let rec = ch.state.day_record(0).unwrap();
    assert!(!rec.admission_lottery && rec.lottery_entrants == 0);
    assert_eq!(ch.state.account(&acct(&farmers[0])).unwrap().invites_used, 0);

    // The farmer's 15 invitees (3 per inviter) land first, in one ledger.
    let mut inviter_of = BTreeMap::new();
    let mut sybils = Vec::new();
    for (i, f) in farmers.iter().enumerate() {
        for j in 0..3 {
            let s = key(&format!("sybil{i}.{j}"));
            ch.attest(&s, Some(f));
            inviter_of.insert(acct(&s), acct(f));
            sybils.push(s);
        }
    }
    // A validator's pool takes them all: past the places left, they are
    // entrants in the day's lottery, not refusals.
    let mut pool = watt_core::ledger::pool::TxPool::new(1000, 100, 1);
    for t in ch.pending.clone() {
        pool.add(t, &ch.state).expect("a valid first tap past the places left waits for the lottery");
    }
    // In a small lane (10 places) first taps take half at most, in the pool
    // and in a set: miners' daily taps always find room.
    let mut small = watt_core::ledger::pool::TxPool::new(1000, 10, 1);
    let took = ch.pending.clone().into_iter().filter(|t| small.add(t.clone(), &ch.state).is_ok()).count();
    assert_eq!(took, 5);
    assert_eq!(small.build_tx_set(&ch.state).txs.len(), 5);
    let flood = ch.close(vec![]);
    ok(&flood);
    assert_eq!(flood.len(), 15);
    let rec = ch.state.day_record(0).unwrap();
    assert!(rec.admission_lottery, "15 first taps for 10 places open the lottery");
    assert_eq!((rec.new_accounts, rec.lottery_entrants), (0, 15), "none is admitted as it lands");
    assert!(sybils.iter().all(|s| ch.state.account(&acct(s)).is_none()));
    assert_eq!(ch.state.pending_admission(0, &acct(&sybils[0])), Some(acct(&farmers[0])));
    let mut pool = watt_core::ledger::pool::TxPool::new(1000, 100, 1);
    let h = ch.state.header.clone();
    let again = TransactionBody {
        source: acct(&sybils[0]),
        seq_num: 1,
        fee: Amount(0),
        max_ledger: None,
        ops: BoundedVec::try_from_vec(vec![Operation::Attest(Attest {
            day: 0,
            anchor_seq: h.seq,
            anchor_hash: h.hash(),
            invite: Some(Invite::sign(&honest[0], &ch.net, &acct(&sybils[0]), 5)),
            device_token: None,
        })])
        .unwrap(),
    }
    .sign(&sybils[0], &ch.net);
    assert_eq!(
        pool.add(again, &ch.state),
        Err(watt_core::wire::TxRejection::WouldFail(OpFailure::AlreadyAttested)),
        "one waiting first tap per invitee"
    );

    // Honest invitees arrive later in the day, one per inviter.
    let newcomers: Vec<Keypair> = (0..10).map(|i| key(&format!("newcomer{i}"))).collect();
    for (n, h) in newcomers.iter().zip(&honest) {
        ch.attest(n, Some(h));
        inviter_of.insert(acct(n), acct(h));
    }
    ok(&ch.close(vec![]));
    // One waiting first tap per invitee, whoever invites it again.
    ch.attest(&newcomers[0], Some(&honest[1]));
    failed(&ch.close(vec![])[0], OpFailure::AlreadyAttested);
    assert_eq!(ch.state.day_record(0).unwrap().lottery_entrants, 25);

    // A restarted validator rebuilds the waiting taps from committed state.
    let restored = |ch: &Chain| {
        LedgerState::restore(
            &g,
            ch.state.header.clone(),
            ch.state.all_entries(),
            ch.state.payout_queue(),
            ch.state.recent_headers(),
        )
        .expect("restore")
    };
    let mut twin = Chain { state: restored(&ch), net: ch.net, pending: Vec::new() };

    // The day ends: the first ledger of day 1 draws.
    let last_rand = loop {
        let rand = ch.state.header.rand;
        ch.close(vec![]);
        twin.close(vec![]);
        if ch.state.header.day == 1 {
            break rand;
        }
    };
    assert_eq!(ch.state.state_root(), twin.state.state_root(), "the restarted validator draws the same winners");
    let draw_rand = ch.state.header.rand;
    assert_ne!(last_rand, draw_rand);
    // The drawn entries stay provable as of the day's last ledger (what a
    // phone verifies first) and are gone now.
    let waiting = watt_core::ledger::StateKey::PendingAdmission(0, acct(&sybils[0]));
    let (prev_header, entry, proof) = ch.state.prove_previous(&waiting).unwrap();
    let vh = watt_core::ledger::smt::value_hash(&watt_core::codec::encode(entry.as_ref().unwrap()));
    assert_eq!(
        watt_core::ledger::smt::verify(&prev_header.state_root, &waiting.hash(), &proof),
        Ok(watt_core::ledger::smt::Proven::Present(vh))
    );
    assert!(ch.state.prove(&waiting).0.is_none());
    let mut order: Vec<(Hash256, AccountId)> = inviter_of
        .keys()
        .map(|id| {
            let mut h = TaggedHasher::new(Domain::AdmissionLottery);
            h.update(&last_rand.0).update(&draw_rand.0).update(&id.0 .0);
            (h.finalize(), *id)
        })
        .collect();
    order.sort();
    let mut expected = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (_, id) in order {
        if expected.len() < 10 && used.insert(inviter_of[&id]) {
            expected.insert(id);
        }
    }
    let miners: BTreeSet<AccountId> =
        inviter_of.keys().filter(|id| ch.state.account(id).is_some_and(|e| e.is_miner())).copied().collect();
    assert_eq!(miners, expected, "the draw's winners, one per inviter");
    let farmed = miners.iter().filter(|id| sybils.iter().any(|s| acct(s) == **id)).count();
    assert!(farmed <= farmers.len(), "the flood won {farmed} places with {} inviters", farmers.len());
    assert_eq!(ch.state.day_record(0).unwrap().new_accounts, 10);
    for id in &miners {
        let e = ch.state.account(id).unwrap();
        assert_eq!((e.referrer, e.created_day, e.last_attest_day), (Some(inviter_of[id]), 0, Some(0)));
        assert!(ch.state.pending_admission(0, id).is_none());
    }
    let day0: BTreeSet<AccountId> = ch.state.attesters_of(0).into_iter().collect();
    assert!(miners.is_subset(&day0), "the winners' taps count for the day they won");

    // A loser's tap replayed in the new day's grace ledgers takes no place.
    let loser = sybils.iter().find(|s| !miners.contains(&acct(s))).unwrap();
    let h = ch.state.header.clone();
    let op = Operation::Attest(Attest {
        day: 0,
        anchor_seq: h.seq,
        anchor_hash: h.hash(),
        invite: Some(Invite::sign(&farmers[0], &ch.net, &acct(loser), 5)),
        device_token: None,
    });
    ch.submit(loser, 0, vec![op]);
    failed(&ch.close(vec![])[0], OpFailure::NewAccountLimit);

    // The day's distribution pays the winners and nobody who lost.
    while ch.state.pending_payouts() > 0 || !ch.state.day_record(0).unwrap().distributed {
        ch.close(vec![]);
    }
    assert!(miners.iter().all(|id| ch.state.account(id).unwrap().balance.units() > 0));
    assert!(inviter_of.keys().filter(|id| !miners.contains(id)).all(|id| ch.state.account(id).is_none()));
    // A loser taps again on a later day like anyone invited.
    ch.attest(loser, Some(&farmers[0]));
    ok(&ch.close(vec![]));
    assert!(ch.state.account(&acct(loser)).is_some_and(|e| e.is_miner()));
}
