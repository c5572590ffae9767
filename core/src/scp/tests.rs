//! SCP tests in the manner of stellar-core's `SCPTests.cpp`: one local node
//! (v0) under test, envelopes from the other nodes made by hand, and the
//! exact envelopes v0 emits asserted after every step.

use super::*;
use crate::codec::BoundedBytes;
use crate::crypto::{Keypair, NetworkId, SecretSeed};
use std::collections::{BTreeSet, HashMap};

pub(crate) fn keypair(i: u8) -> Keypair {
    Keypair::from_seed(SecretSeed::from_bytes([i + 1; 32])).unwrap()
}
pub(crate) fn id(i: u8) -> NodeId {
    NodeId(keypair(i).public())
}
pub(crate) fn value(tag: u8) -> Value {
    Value(BoundedBytes::try_from_vec(vec![tag; 8]).unwrap())
}
fn net() -> NetworkId {
    NetworkId::from_passphrase("WATT scp tests")
}

/// A driver with real signatures and test hooks for priorities, like stellar-core's TestSCP.
pub(crate) struct TestDriver {
    key: Keypair,
    pub qsets: HashMap<Hash256, QuorumSet>,
    /// Nomination priority by node (missing: 0). Weight lottery always passes.
    pub priority: HashMap<NodeId, u64>,
    pub value_hash: HashMap<Value, u64>,
    pub invalid: BTreeSet<Value>,
    /// Who proposed a value (missing: anyone may carry it).
    pub proposer: HashMap<Value, NodeId>,
}

impl Driver for TestDriver {
    fn validate_value(&mut self, _slot: u64, v: &Value, _nom: bool) -> Validity {
        if self.invalid.contains(v) {
            Validity::Invalid
        } else {
            Validity::FullyValid
        }
    }
    fn combine_candidates(&mut self, _slot: u64, c: &BTreeSet<Value>) -> Option<Value> {
        c.iter().next_back().cloned()
    }
    fn proposed_by(&mut self, _slot: u64, v: &Value, leader: &NodeId) -> bool {
        self.proposer.get(v).is_none_or(|p| p == leader)
    }
    fn sign(&mut self, st: Statement) -> Envelope {
        st.sign(&self.key, &net())
    }
    fn verify(&mut self, e: &Envelope) -> bool {
        e.verify(&net()).is_ok()
    }
    fn quorum_set(&mut self, h: &Hash256) -> Option<QuorumSet> {
        self.qsets.get(h).cloned()
    }
    fn hash_node(&mut self, _s: u64, _p: &Value, priority: bool, _r: u32, n: &NodeId) -> u64 {
        if priority {
            self.priority.get(n).copied().unwrap_or(0)
        } else {
            0
        }
    }
    fn hash_value(&mut self, _s: u64, _p: &Value, _r: u32, v: &Value) -> u64 {
        self.value_hash.get(v).copied().unwrap_or(0)
    }
}

struct Harness {
    scp: Scp<TestDriver>,
    qh: Hash256,
    now: u64,
    externalized: Vec<(u64, Value)>,
}

const SLOT: u64 = 0;

impl Harness {
    fn new(threshold: u32, n: u8) -> Harness {
        let qset = QuorumSet::flat(threshold, (0..n).map(id).collect());
        let qh = qset.hash();
        let mut qsets = HashMap::new();
        qsets.insert(qh, qset.clone());
        let driver = TestDriver {
            key: keypair(0),
            qsets,
            priority: HashMap::new(),
            value_hash: HashMap::new(),
            invalid: BTreeSet::new(),
            proposer: HashMap::new(),
        };
        Harness { scp: Scp::new(id(0), qset, driver), qh, now: 0, externalized: Vec::new() }
    }

    /// Envelopes broadcast since the last call (other effects are kept aside).
    fn emitted(&mut self) -> Vec<Envelope> {
        let mut out = Vec::new();
        for e in self.scp.take_effects() {
            match e {
                Effect::Broadcast(env) => out.push(env),
                Effect::Externalized { slot, value } => self.externalized.push((slot, value)),
                _ => {}
            }
        }
        self.scp.check_invariants().unwrap();
        out
    }

    fn recv(&mut self, env: Envelope) {
        self.scp.receive_envelope(&env, self.now).unwrap();
    }
    fn recv_all(&mut self, envs: Vec<Envelope>) {
        for e in envs {
            self.recv(e);
        }
    }

    fn prepare(&self, i: u8, b: Ballot, p: Option<Ballot>, n_c: u32, n_h: u32, pp: Option<Ballot>) -> Envelope {
        Statement {
            node_id: id(i),
            slot_index: SLOT,
            pledges: Pledges::Prepare {
                quorum_set_hash: self.qh,
                ballot: b,
                prepared: p,
                prepared_prime: pp,
                n_c,
                n_h,
            },
        }
        .sign(&keypair(i), &net())
    }
    fn confirm(&self, i: u8, b: Ballot, n_p: u32, n_c: u32, n_h: u32) -> Envelope {
        Statement {
            node_id: id(i),
            slot_index: SLOT,
            pledges: Pledges::Confirm { ballot: b, n_prepared: n_p, n_commit: n_c, n_h, quorum_set_hash: self.qh },
        }
        .sign(&keypair(i), &net())
    }
    fn externalize(&self, i: u8, c: Ballot, n_h: u32) -> Envelope {
        Statement {
            node_id: id(i),
            slot_index: SLOT,
            pledges: Pledges::Externalize { commit: c, n_h, commit_quorum_set_hash: self.qh },
        }
        .sign(&keypair(i), &net())
    }
    fn nominate_env(&self, i: u8, votes: Vec<Value>, accepted: Vec<Value>) -> Envelope {
        let mut votes = votes;
        votes.sort();
        let mut accepted = accepted;
        accepted.sort();
        Statement {
            node_id: id(i),
            slot_index: SLOT,
            pledges: Pledges::Nominate {
                quorum_set_hash: self.qh,
                votes: crate::codec::BoundedVec::try_from_vec(votes).unwrap(),
                accepted: crate::codec::BoundedVec::try_from_vec(accepted).unwrap(),
            },
        }
        .sign(&keypair(i), &net())
    }

    fn bump(&mut self, v: Value) {
        let now = self.now;
        assert!(self.scp.with_slot(SLOT, now, |s, ctx| s.bump_state(ctx, v, true)));
    }
}

fn b(n: u32, v: &Value) -> Ballot {
    Ballot { counter: n, value: v.clone() }
}

/// stellar-core "ballot protocol core5", the straight path: prepare, confirm
/// prepared, accept commit, confirm commit, each step's single envelope exact.
#[test]
fn ballot_core5_straight_path_to_externalize() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let a1 = b(1, &x);

    t.bump(x.clone());
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), None, 0, 0, None)]);

    // Two votes are v-blocking but not a quorum: nothing new.
    t.recv(t.prepare(1, a1.clone(), None, 0, 0, None));
    t.recv(t.prepare(2, a1.clone(), None, 0, 0, None));
    assert_eq!(t.emitted(), vec![]);
    // A quorum (v0..v3) votes prepare(1,x): accepted prepared.
    t.recv(t.prepare(3, a1.clone(), None, 0, 0, None));
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), Some(a1.clone()), 0, 0, None)]);

    // A quorum accepts prepare(1,x): confirmed prepared, h = c = (1,x).
    t.recv_all((1..=3).map(|i| t.prepare(i, a1.clone(), Some(a1.clone()), 0, 0, None)).collect());
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), Some(a1.clone()), 1, 1, None)]);

    // A quorum votes commit: accepted commit, CONFIRM.
    t.recv_all((1..=3).map(|i| t.prepare(i, a1.clone(), Some(a1.clone()), 1, 1, None)).collect());
    assert_eq!(t.emitted(), vec![t.confirm(0, a1.clone(), 1, 1, 1)]);
    assert_eq!(t.scp.slot(SLOT).unwrap().phase(), Phase::Confirm);

    // A quorum accepts commit: confirmed, EXTERNALIZE.
    t.recv_all((1..=3).map(|i| t.confirm(i, a1.clone(), 1, 1, 1)).collect());
    assert_eq!(t.emitted(), vec![t.externalize(0, a1.clone(), 1)]);
    assert_eq!(t.externalized, vec![(SLOT, x.clone())]);
    assert_eq!(t.scp.externalized(SLOT), Some(&x));
}

/// A v-blocking set that already accepted moves v0 without a quorum of votes.
#[test]
fn ballot_core5_v_blocking_accept_prepared_and_commit() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let a1 = b(1, &x);
    t.bump(x.clone());
    t.emitted();

    // v1, v2 accepted prepare(1,x): v-blocking, so v0 accepts too.
    t.recv(t.prepare(1, a1.clone(), Some(a1.clone()), 0, 0, None));
    assert_eq!(t.emitted(), vec![]);
    t.recv(t.prepare(2, a1.clone(), Some(a1.clone()), 0, 0, None));
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), Some(a1.clone()), 0, 0, None)]);

    // v1, v2 CONFIRM (accepted commit of (1,x)): v-blocking, v0 accepts commit.
    t.recv(t.confirm(1, a1.clone(), 1, 1, 1));
    t.recv(t.confirm(2, a1.clone(), 1, 1, 1));
    assert_eq!(t.emitted(), vec![t.confirm(0, a1.clone(), 1, 1, 1)]);
    assert!(t.externalized.is_empty());
}

/// Hearing EXTERNALIZE from a v-blocking set is enough to move v0 along, and
/// from a quorum (counting v0) to externalize.
#[test]
fn ballot_core5_externalize_from_others() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let a1 = b(1, &x);
    t.bump(x.clone());
    t.emitted();
    t.recv(t.externalize(1, a1.clone(), 1));
    assert_eq!(t.emitted(), vec![]);
    t.recv(t.externalize(2, a1.clone(), 1));
    // v-blocking externalized: v0 accepts prepared and commit of (inf, x).
    let inf = b(u32::MAX, &x);
    let out = t.emitted();
    assert_eq!(out.last(), Some(&t.confirm(0, inf.clone(), u32::MAX, 1, u32::MAX)));
    t.recv(t.externalize(3, a1.clone(), 1));
    assert_eq!(t.emitted(), vec![t.externalize(0, a1.clone(), u32::MAX)]);
    assert_eq!(t.externalized, vec![(SLOT, x)]);
}

/// A v-blocking set at a higher counter makes v0 bump to that counter
/// (stellar-core "bumpToBallot prevented once committed" / attemptBump).
#[test]
fn ballot_core5_bumps_to_v_blocking_counter() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    t.bump(x.clone());
    t.emitted();
    t.recv(t.prepare(1, b(3, &x), None, 0, 0, None));
    assert_eq!(t.emitted(), vec![]);
    t.recv(t.prepare(2, b(3, &x), None, 0, 0, None));
    assert_eq!(t.emitted(), vec![t.prepare(0, b(3, &x), None, 0, 0, None)]);
}

/// p and p' : accepting an incompatible higher ballot keeps the old one as p'.
#[test]
fn ballot_core5_prepared_prime_tracks_incompatible_ballot() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let y = value(2);
    t.bump(x.clone());
    t.emitted();
    // v-blocking accepts (1,x).
    t.recv(t.prepare(1, b(1, &x), Some(b(1, &x)), 0, 0, None));
    t.recv(t.prepare(2, b(1, &x), Some(b(1, &x)), 0, 0, None));
    assert_eq!(t.emitted(), vec![t.prepare(0, b(1, &x), Some(b(1, &x)), 0, 0, None)]);
    // v-blocking accepts (2,y) (y > x): p = (2,y), p' = (1,x); and they are at
    // counter 2, so v0 bumps to (2, x) — its own value, since nothing is confirmed.
    t.recv(t.prepare(1, b(2, &y), Some(b(2, &y)), 0, 0, None));
    t.recv(t.prepare(2, b(2, &y), Some(b(2, &y)), 0, 0, None));
    let out = t.emitted();
    assert_eq!(out, vec![t.prepare(0, b(2, &x), Some(b(2, &y)), 0, 0, Some(b(1, &x)))]);
}

/// A higher incompatible prepared ballot aborts the local commit vote (c).
#[test]
fn ballot_core5_commit_vote_cleared_by_incompatible_prepare() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let y = value(2);
    t.bump(x.clone());
    t.emitted();
    t.recv_all((1..=3).map(|i| t.prepare(i, b(1, &x), Some(b(1, &x)), 0, 0, None)).collect());
    let out = t.emitted();
    assert_eq!(out.last(), Some(&t.prepare(0, b(1, &x), Some(b(1, &x)), 1, 1, None)));
    // v1, v2 accepted (2,y) prepared: v0 accepts it too, so c=(1,x) is aborted.
    t.recv(t.prepare(1, b(2, &y), Some(b(2, &y)), 0, 0, None));
    t.recv(t.prepare(2, b(2, &y), Some(b(2, &y)), 0, 0, None));
    let out = t.emitted();
    let last = out.last().unwrap();
    match &last.statement.pledges {
        Pledges::Prepare { prepared, n_c, .. } => {
            assert_eq!(prepared, &Some(b(2, &y)));
            assert_eq!(*n_c, 0, "commit vote must be withdrawn");
        }
        other => panic!("expected PREPARE, got {other:?}"),
    }
}

/// stellar-core "ballot protocol core3": 2-of-3, the straight path.
#[test]
fn ballot_core3_straight_path() {
    let mut t = Harness::new(2, 3);
    let x = value(7);
    let a1 = b(1, &x);
    t.bump(x.clone());
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), None, 0, 0, None)]);
    // One peer voting makes a quorum with v0 (2 of 3).
    t.recv(t.prepare(1, a1.clone(), None, 0, 0, None));
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), Some(a1.clone()), 0, 0, None)]);
    t.recv(t.prepare(1, a1.clone(), Some(a1.clone()), 0, 0, None));
    assert_eq!(t.emitted(), vec![t.prepare(0, a1.clone(), Some(a1.clone()), 1, 1, None)]);
    t.recv(t.prepare(1, a1.clone(), Some(a1.clone()), 1, 1, None));
    assert_eq!(t.emitted(), vec![t.confirm(0, a1.clone(), 1, 1, 1)]);
    t.recv(t.confirm(1, a1.clone(), 1, 1, 1));
    assert_eq!(t.emitted(), vec![t.externalize(0, a1.clone(), 1)]);
    assert_eq!(t.externalized, vec![(SLOT, x)]);
}

/// Hearing from a quorum at the current counter arms the ballot timer; its
/// expiry bumps to the next counter.
#[test]
fn ballot_timer_bumps_counter() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    t.bump(x.clone());
    t.emitted();
    t.recv_all((1..=3).map(|i| t.prepare(i, b(1, &x), None, 0, 0, None)).collect());
    let effects = t.scp.take_effects();
    let (at, token) = effects
        .iter()
        .find_map(|e| match e {
            Effect::ArmTimer { kind: TimerKind::Ballot, at_ms, token, .. } => Some((*at_ms, *token)),
            _ => None,
        })
        .expect("ballot timer armed after hearing from a quorum");
    assert_eq!(at, 1000, "round 1 timeout is 1 s");
    t.scp.timer_fired(SLOT, TimerKind::Ballot, token, at);
    let out = t.emitted();
    assert_eq!(out, vec![t.prepare(0, b(2, &x), Some(b(1, &x)), 0, 0, None)]);
    // A stale token does nothing.
    t.scp.timer_fired(SLOT, TimerKind::Ballot, token, at + 5000);
    assert_eq!(t.emitted(), vec![]);
}

/// stellar-core "nomination tests core5": v0 is the round leader.
#[test]
fn nomination_core5_leader_votes_accepts_and_starts_ballots() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let prev = value(0);
    t.scp.driver_mut().priority.insert(id(0), 1000);
    assert!(t.scp.nominate(SLOT, x.clone(), prev.clone(), 0));
    assert_eq!(t.emitted(), vec![t.nominate_env(0, vec![x.clone()], vec![])]);

    // Three others vote x: with v0 a quorum votes, x is accepted.
    t.recv(t.nominate_env(1, vec![x.clone()], vec![]));
    t.recv(t.nominate_env(2, vec![x.clone()], vec![]));
    assert_eq!(t.emitted(), vec![]);
    t.recv(t.nominate_env(3, vec![x.clone()], vec![]));
    assert_eq!(t.emitted(), vec![t.nominate_env(0, vec![x.clone()], vec![x.clone()])]);

    // A quorum accepts x: candidate, combined, and the ballot protocol starts on it.
    t.recv_all((1..=3).map(|i| t.nominate_env(i, vec![x.clone()], vec![x.clone()])).collect());
    assert_eq!(t.emitted(), vec![t.prepare(0, b(1, &x), None, 0, 0, None)]);
}

/// A round leader's value is picked up by a node that is not the leader.
#[test]
fn nomination_core5_follows_the_round_leader() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let y = value(2);
    t.scp.driver_mut().priority.insert(id(1), 1000);
    // v0 is not leader: nominating its own x sends nothing.
    assert!(!t.scp.nominate(SLOT, x.clone(), value(0), 0));
    assert_eq!(t.emitted(), vec![]);
    // The leader v1 votes y: v0 echoes y, not its own x.
    t.recv(t.nominate_env(1, vec![y.clone()], vec![]));
    assert_eq!(t.emitted(), vec![t.nominate_env(0, vec![y.clone()], vec![])]);
    // Non-leaders' votes are not echoed.
    t.recv(t.nominate_env(2, vec![value(9)], vec![]));
    assert_eq!(t.emitted(), vec![]);
}

/// Issue 16 #6: a round leader offering values of other proposers (sybil
/// keys, each with its own VRF output) let it pick the best `rand`. Only the
/// leader's own proposal is taken up, whatever the others' value hashes.
#[test]
fn nomination_takes_up_only_the_round_leaders_own_proposal() {
    let mut t = Harness::new(4, 5);
    let (own, other, sybil) = (value(2), value(3), value(4));
    t.scp.driver_mut().priority.insert(id(1), 1000);
    for (v, by, hash) in [(&own, 1, 1), (&other, 3, 50), (&sybil, 9, 99)] {
        t.scp.driver_mut().proposer.insert(v.clone(), id(by));
        t.scp.driver_mut().value_hash.insert(v.clone(), hash);
    }
    assert!(!t.scp.nominate(SLOT, value(1), value(0), 0));
    assert_eq!(t.emitted(), vec![]);
    t.recv(t.nominate_env(1, vec![own.clone(), other, sybil], vec![]));
    assert_eq!(t.emitted(), vec![t.nominate_env(0, vec![own], vec![])]);
}

/// Found by the simulator (seed 76): a node's votes only grow within a slot
/// and are capped at `MAX_NOMINATED`, so whoever can add votes can fill
/// them, after which no common value can gather a quorum and the slot never
/// closes. A round leader that puts a new value of its own in each
/// statement, and a driver that nominates a new value of its own in each
/// round, each get one vote per slot.
#[test]
fn a_leader_with_a_new_value_in_each_statement_gets_one_vote_per_slot() {
    let mut t = Harness::new(4, 5);
    t.scp.driver_mut().priority.insert(id(1), 1000);
    t.scp.driver_mut().priority.insert(id(0), 1000);
    let own: Vec<Value> = (100..110).map(value).collect();
    let leader: Vec<Value> = (1..=20).map(value).collect();
    for v in &leader {
        t.scp.driver_mut().proposer.insert(v.clone(), id(1));
    }
    for v in &own {
        t.scp.driver_mut().proposer.insert(v.clone(), id(0));
    }
    assert!(t.scp.nominate(SLOT, own[0].clone(), value(0), 0));
    for n in 1..=leader.len() {
        t.recv(t.nominate_env(1, leader[..n].to_vec(), vec![]));
    }
    for v in &own[1..] {
        t.scp.nominate(SLOT, v.clone(), value(0), 0);
    }
    let sent = t.emitted();
    let last = sent.last().expect("v0 nominated");
    let Pledges::Nominate { votes, .. } = &last.statement.pledges else { panic!("a nomination") };
    assert_eq!(votes.len(), 2, "its own first value and one of the leader's: {votes:?}");
    assert!(votes.as_slice().contains(&own[0]));
}

/// A v-blocking set accepting a value makes v0 accept it without voting first.
#[test]
fn nomination_core5_v_blocking_accept() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let z = value(3);
    t.scp.driver_mut().priority.insert(id(0), 1000);
    t.scp.nominate(SLOT, x.clone(), value(0), 0);
    t.emitted();
    t.recv(t.nominate_env(1, vec![z.clone()], vec![z.clone()]));
    assert_eq!(t.emitted(), vec![]);
    t.recv(t.nominate_env(2, vec![z.clone()], vec![z.clone()]));
    assert_eq!(t.emitted(), vec![t.nominate_env(0, vec![x.clone(), z.clone()], vec![z.clone()])]);
}

#[test]
fn bad_envelopes_are_dropped_and_counted() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    // Forged signature.
    let mut env = t.prepare(1, b(1, &x), None, 0, 0, None);
    env.signature.0[0] ^= 1;
    assert_eq!(t.scp.receive_envelope(&env, 0), Err(DropReason::BadSignature));
    // A node outside the quorum.
    let stranger = Statement {
        node_id: id(9),
        slot_index: SLOT,
        pledges: Pledges::Prepare {
            quorum_set_hash: t.qh,
            ballot: b(1, &x),
            prepared: None,
            prepared_prime: None,
            n_c: 0,
            n_h: 0,
        },
    }
    .sign(&keypair(9), &net());
    assert_eq!(t.scp.receive_envelope(&stranger, 0), Err(DropReason::NotInQuorum));
    // Impossible counters: c > h.
    let insane = t.prepare(1, b(2, &x), Some(b(1, &x)), 2, 1, None);
    assert_eq!(t.scp.receive_envelope(&insane, 0), Err(DropReason::Insane));
    // Unknown quorum set hash.
    let mut st = t.prepare(1, b(1, &x), None, 0, 0, None).statement;
    if let Pledges::Prepare { quorum_set_hash, .. } = &mut st.pledges {
        *quorum_set_hash = Hash256([9; 32]);
    }
    let env = st.sign(&keypair(1), &net());
    assert_eq!(t.scp.receive_envelope(&env, 0), Err(DropReason::UnknownQuorumSet));
    // Replayed (not newer) statement.
    let ok = t.prepare(1, b(2, &x), None, 0, 0, None);
    t.scp.receive_envelope(&ok, 0).unwrap();
    assert_eq!(t.scp.receive_envelope(&t.prepare(1, b(1, &x), None, 0, 0, None), 0), Err(DropReason::Stale));
    assert_eq!(t.scp.receive_envelope(&ok, 0), Err(DropReason::Stale));
    // Invalid value.
    t.scp.driver_mut().invalid.insert(value(66));
    assert_eq!(
        t.scp.receive_envelope(&t.prepare(2, b(1, &value(66)), None, 0, 0, None), 0),
        Err(DropReason::InvalidValue)
    );
    let d = t.scp.drops();
    for r in [
        DropReason::BadSignature,
        DropReason::NotInQuorum,
        DropReason::Insane,
        DropReason::UnknownQuorumSet,
        DropReason::InvalidValue,
    ] {
        assert_eq!(d.get(&r), Some(&1), "{r:?}");
    }
    assert_eq!(d.get(&DropReason::Stale), Some(&2));
}

/// After a restart the node resumes from its own last statement and never
/// emits a lower one (stellar-core's setStateFromEnvelope).
#[test]
fn restored_node_continues_from_its_own_last_statement() {
    let mut t = Harness::new(4, 5);
    let x = value(1);
    let a1 = b(1, &x);
    t.bump(x.clone());
    t.emitted();
    t.recv_all((1..=3).map(|i| t.prepare(i, a1.clone(), Some(a1.clone()), 0, 0, None)).collect());
    let last = t.emitted().pop().unwrap();
    assert_eq!(last, t.prepare(0, a1.clone(), Some(a1.clone()), 1, 1, None));

    // A new process: same key and qset, fresh state, restored from `last`.
    let mut fresh = Harness::new(4, 5);
    fresh.scp.restore_own(std::slice::from_ref(&last)).unwrap();
    fresh.scp.check_invariants().unwrap();
    assert_eq!(fresh.scp.slot(SLOT).unwrap().ballot_state().4, Some(&a1), "commit vote c restored");
    // Peers now vote commit: it goes on to CONFIRM, as the original would have.
    fresh.recv_all((1..=3).map(|i| fresh.prepare(i, a1.clone(), Some(a1.clone()), 1, 1, None)).collect());
    assert_eq!(fresh.emitted(), vec![fresh.confirm(0, a1.clone(), 1, 1, 1)]);
    // Someone else's envelope cannot be restored as ours.
    let other = fresh.prepare(1, a1.clone(), None, 0, 0, None);
    assert!(Harness::new(4, 5).scp.restore_own(&[other]).is_err());
}

/// A restarted node keeps to one value per proposer: its restored vote
/// for its own value x stands, and nominating anew (a new value y, as the
/// herder does after a restart) adds nothing.
#[test]
fn a_restored_nomination_keeps_one_value_per_proposer() {
    let (x, y) = (value(1), value(2));
    let mut t = Harness::new(4, 5);
    t.scp.driver_mut().priority.insert(id(0), 1000);
    for v in [&x, &y] {
        t.scp.driver_mut().proposer.insert(v.clone(), id(0));
    }
    assert!(t.scp.nominate(SLOT, x.clone(), value(0), 0));
    let said = t.emitted().pop().expect("a nomination");

    let mut fresh = Harness::new(4, 5);
    fresh.scp.driver_mut().priority.insert(id(0), 1000);
    for v in [&x, &y] {
        fresh.scp.driver_mut().proposer.insert(v.clone(), id(0));
    }
    fresh.scp.restore_own(std::slice::from_ref(&said)).unwrap();
    fresh.scp.nominate(SLOT, y.clone(), value(0), 0);
    let own = fresh.scp.own_envelopes(SLOT);
    let Pledges::Nominate { votes, .. } = &own[0].statement.pledges else { panic!("a nomination") };
    assert_eq!(votes.as_slice(), std::slice::from_ref(&x));
}

/// Found by the `scp_envelopes` fuzz target: a peer naming a counter-0 ballot
/// as its p' let the local node (which had no ballot yet) accept, then
/// confirm, (0, x) as prepared and move b to counter 0.
#[test]
fn a_counter_zero_ballot_from_a_peer_is_never_prepared() {
    let mut h = Harness::new(3, 4);
    let (x, y) = (value(1), value(2));
    h.recv(h.prepare(2, b(4, &y), Some(b(4, &x)), 0, 4, None));
    h.recv(h.prepare(1, b(2, &x), Some(b(2, &y)), 0, 2, Some(b(0, &x))));
    let out = h.emitted(); // checks the invariants, b.counter != 0 among them
    for env in out {
        if let Pledges::Prepare { ballot, prepared, .. } = &env.statement.pledges {
            assert!(ballot.counter > 0 && prepared.as_ref().is_none_or(|p| p.counter > 0), "{env:?}");
        }
    }
}

/// Found by the `scp_envelopes` fuzz target: an EXTERNALIZE and a CONFIRM
/// naming commit and prepared counters of 0 took the local node into CONFIRM
/// with no prepared ballot. Such a CONFIRM is not sane.
#[test]
fn a_confirm_with_counter_zero_commits_is_refused_and_moves_nothing() {
    let mut h = Harness::new(3, 4);
    let y = value(2);
    h.recv(h.externalize(1, b(2, &y), 4));
    assert_eq!(h.scp.receive_envelope(&h.confirm(2, b(4, &y), 0, 0, 4), h.now), Err(crate::scp::DropReason::Insane));
    assert_eq!(h.scp.receive_envelope(&h.confirm(2, b(4, &y), 4, 0, 4), h.now), Err(crate::scp::DropReason::Insane));
    let _ = h.emitted(); // invariants hold
    assert_eq!(h.scp.slot(SLOT).map(|s| s.phase()), Some(crate::scp::ballot::Phase::Prepare));
}
