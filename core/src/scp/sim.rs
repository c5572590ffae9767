//! A deterministic network simulator for SCP (in the manner of TigerBeetle's
//! VOPR): one seeded RNG drives message delay, loss, duplication, reordering,
//! partitions and Byzantine behaviour over a virtual clock. A failing seed
//! replays exactly.
//!
//! Signatures here are keyed BLAKE3 MACs, not Ed25519: the protocol logic is
//! the same (a Byzantine node still cannot sign for an honest one) and the
//! simulation runs thousands of slots per second. Real signatures are covered
//! by the unit tests and the node's tests.

use super::driver::{Driver, TimerKind, Validity};
use super::statement::{Ballot, Envelope, Pledges, Statement, Value};
use super::{Effect, QuorumSet, Scp};
use crate::address::NodeId;
use crate::codec::{BoundedBytes, BoundedVec};
use crate::crypto::{Hash256, Keypair, NetworkId, SecretSeed, Signature};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::rc::Rc;

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u32) -> bool {
        (self.next_u64() % 1000) < u64::from(permille)
    }
}

/// How a simulated node behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Crashed from the start: sends nothing.
    Silent,
    /// Tells each peer a different value (valid signatures).
    Equivocate,
    /// Sends forged signatures, impossible statements and junk values.
    Garbage,
    /// Re-sends old envelopes (its own and others') alongside its real ones.
    Replay,
    /// Runs with a quorum set of only itself and says so.
    LieQuorumSet,
}

/// A cut in the network during `[from_ms, until_ms)`: messages between
/// different groups are lost.
#[derive(Debug, Clone)]
pub struct Partition {
    pub groups: Vec<Vec<usize>>,
    pub from_ms: u64,
    pub until_ms: u64,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub slots: u64,
    pub delay_ms: (u64, u64),
    pub loss_permille: u32,
    pub duplicate_permille: u32,
    /// Each node re-sends its latest envelopes this often (as nodes do on a network).
    pub rebroadcast_ms: u64,
    /// Pause between externalizing a slot and nominating the next (ledger close).
    pub slot_interval_ms: u64,
    pub max_time_ms: u64,
    pub partitions: Vec<Partition>,
    /// Sign and verify with Ed25519 as the node does (slower; for CPU figures).
    pub real_signatures: bool,
}

impl SimConfig {
    pub fn new(seed: u64, slots: u64) -> SimConfig {
        SimConfig {
            seed,
            slots,
            delay_ms: (5, 50),
            loss_permille: 0,
            duplicate_permille: 0,
            rebroadcast_ms: 500,
            slot_interval_ms: 1000,
            max_time_ms: slots * 120_000 + 60_000,
            partitions: Vec::new(),
            real_signatures: false,
        }
    }
}

/// Nodes and their quorum sets.
#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub qsets: Vec<QuorumSet>,
}

/// `n - f` with `f = (n-1)/3`, except that 3 entries need 2 (crash-tolerant,
/// as stellar-core's core-3 and "2 of 3 organisations").
pub fn byzantine_threshold(n: usize) -> usize {
    if n == 3 {
        2
    } else {
        n - (n - 1) / 3
    }
}

fn sim_keypair(i: usize) -> Keypair {
    let h = blake3::hash(&(i as u64).to_le_bytes());
    Keypair::from_seed(SecretSeed::from_bytes(*h.as_bytes())).expect("any 32 bytes are an Ed25519 seed")
}

/// The simulated node `i`'s id: the public key of a seed derived from `i`.
pub fn sim_node_id(i: usize) -> NodeId {
    NodeId(sim_keypair(i).public())
}

impl Topology {
    /// n nodes, each trusting all n: threshold n - f with f = (n-1)/3 Byzantine
    /// nodes tolerated; core-3 uses 2 of 3 as stellar-core's core-3 does
    /// (no Byzantine tolerance, one crash).
    pub fn core(n: usize) -> Topology {
        let threshold = byzantine_threshold(n);
        let q = QuorumSet::flat(threshold as u32, (0..n).map(sim_node_id).collect());
        Topology { name: format!("core-{n}"), qsets: vec![q; n] }
    }

    /// `orgs` organisations of `per_org` nodes; each node needs 2/3 of the
    /// organisations, and an organisation counts when 2/3 of its nodes agree.
    pub fn orgs(orgs: usize, per_org: usize) -> Topology {
        let inner: Vec<QuorumSet> = (0..orgs)
            .map(|o| {
                let t = byzantine_threshold(per_org);
                QuorumSet::flat(t as u32, (0..per_org).map(|k| sim_node_id(o * per_org + k)).collect())
            })
            .collect();
        let t = byzantine_threshold(orgs);
        let q = QuorumSet {
            threshold: t as u32,
            validators: BoundedVec::new(),
            inner_sets: BoundedVec::try_from_vec(inner).expect("few orgs"),
        };
        Topology { name: format!("orgs-{orgs}x{per_org}"), qsets: vec![q; orgs * per_org] }
    }

    /// Node i trusts itself and its two successors, 2 of 3: slices chain
    /// around the ring, so only the whole ring is a quorum.
    pub fn cycle(n: usize) -> Topology {
        let qsets = (0..n)
            .map(|i| QuorumSet::flat(2, vec![sim_node_id(i), sim_node_id((i + 1) % n), sim_node_id((i + 2) % n)]))
            .collect();
        Topology { name: format!("cycle-{n}"), qsets }
    }

    /// stellar-core's hierarchical quorum: a core of 4 (3 of 4), and `leaves`
    /// nodes that each need themselves plus the core.
    pub fn hierarchical(leaves: usize) -> Topology {
        let core = QuorumSet::flat(3, (0..4).map(sim_node_id).collect());
        let mut qsets = vec![core.clone(); 4];
        for l in 0..leaves {
            qsets.push(QuorumSet {
                threshold: 2,
                validators: BoundedVec::try_from_vec(vec![sim_node_id(4 + l)]).expect("one"),
                inner_sets: BoundedVec::try_from_vec(vec![core.clone()]).expect("one"),
            });
        }
        Topology { name: format!("hierarchical-4+{leaves}"), qsets }
    }

    /// Everyone trusts any 2 of 4: {0,1} and {2,3} are both quorums.
    pub fn non_intersecting() -> Topology {
        let q = QuorumSet::flat(2, (0..4).map(sim_node_id).collect());
        Topology { name: "split-2of4".into(), qsets: vec![q; 4] }
    }

    pub fn len(&self) -> usize {
        self.qsets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.qsets.is_empty()
    }
}

struct Registry {
    secrets: HashMap<NodeId, [u8; 32]>,
    qsets: HashMap<Hash256, QuorumSet>,
}

fn mac(secret: &[u8; 32], st: &Statement) -> Signature {
    let bytes = crate::codec::to_bytes(st).unwrap_or_default();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(blake3::keyed_hash(secret, &bytes).as_bytes());
    Signature(sig)
}

const VALUE_TAG: &[u8; 6] = b"SIMVAL";

/// Values carry their slot, so a value replayed into another slot is invalid.
pub fn sim_value(slot: u64, proposer: u64) -> Value {
    let mut v = VALUE_TAG.to_vec();
    v.extend_from_slice(&slot.to_le_bytes());
    v.extend_from_slice(&proposer.to_le_bytes());
    Value(BoundedBytes::try_from_vec(v).expect("small"))
}

fn value_slot(v: &Value) -> Option<u64> {
    let b = v.as_bytes();
    if b.len() != 22 || &b[..6] != VALUE_TAG {
        return None;
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[6..14]);
    Some(u64::from_le_bytes(s))
}

pub struct SimDriver {
    secret: [u8; 32],
    key: Option<Keypair>,
    registry: Rc<Registry>,
}

fn sim_network() -> NetworkId {
    NetworkId::from_passphrase("WATT simulation")
}

impl Driver for SimDriver {
    fn validate_value(&mut self, slot: u64, value: &Value, _nomination: bool) -> Validity {
        if value_slot(value) == Some(slot) {
            Validity::FullyValid
        } else {
            Validity::Invalid
        }
    }
    fn combine_candidates(&mut self, _slot: u64, candidates: &BTreeSet<Value>) -> Option<Value> {
        candidates.iter().next_back().cloned()
    }
    fn sign(&mut self, statement: Statement) -> Envelope {
        match &self.key {
            Some(k) => statement.sign(k, &sim_network()),
            None => {
                let signature = mac(&self.secret, &statement);
                Envelope { statement, signature }
            }
        }
    }
    fn verify(&mut self, env: &Envelope) -> bool {
        if self.key.is_some() {
            return env.verify(&sim_network()).is_ok();
        }
        self.registry.secrets.get(&env.statement.node_id).is_some_and(|s| mac(s, &env.statement) == env.signature)
    }
    fn quorum_set(&mut self, hash: &Hash256) -> Option<QuorumSet> {
        self.registry.qsets.get(hash).cloned()
    }
}

// One queue of pending events; the size of an envelope is what it carries.
#[allow(clippy::large_enum_variant)]
enum Event {
    Nominate { node: usize, slot: u64 },
    Deliver { to: usize, env: Envelope },
    Timer { node: usize, slot: u64, kind: TimerKind, token: u64 },
    Rebroadcast { node: usize },
}

struct SimNode {
    scp: Scp<SimDriver>,
    behaviour: Behaviour,
    externalized: BTreeMap<u64, Value>,
    nominating: u64,
    history: Vec<Envelope>,
}

/// Per-slot figures for benchmarks.
#[derive(Debug, Clone, Default)]
pub struct SlotStats {
    /// Envelopes sent (one per destination) for this slot.
    pub messages: u64,
    /// Highest commit-ballot counter (`c`) among honest nodes: 1 when the first ballot committed.
    pub ballot_counter: u32,
    /// Highest nomination round reached by an honest node.
    pub nomination_rounds: u32,
    /// Virtual time from the first nomination to the last honest externalize.
    pub latency_ms: u64,
}

#[derive(Debug, Clone)]
pub struct SimReport {
    pub topology: String,
    pub seed: u64,
    /// What each node externalized, per slot.
    pub externalized: Vec<BTreeMap<u64, Value>>,
    pub honest: Vec<bool>,
    /// Honest nodes never externalized different values for one slot.
    pub safe: bool,
    /// Every honest node externalized every slot 1..=slots.
    pub live: bool,
    pub end_ms: u64,
    pub slot_stats: BTreeMap<u64, SlotStats>,
    pub dropped: BTreeMap<super::DropReason, u64>,
}

impl SimReport {
    /// Slots on which two honest nodes externalized different values.
    pub fn forks(&self) -> Vec<u64> {
        let mut out = BTreeSet::new();
        let honest: Vec<&BTreeMap<u64, Value>> =
            self.externalized.iter().zip(&self.honest).filter(|(_, h)| **h).map(|(e, _)| e).collect();
        for a in &honest {
            for (slot, v) in a.iter() {
                if honest.iter().any(|b| b.get(slot).is_some_and(|w| w != v)) {
                    out.insert(*slot);
                }
            }
        }
        out.into_iter().collect()
    }
}

pub struct Simulation {
    cfg: SimConfig,
    rng: SimRng,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    now: u64,
    stats: BTreeMap<u64, SlotStats>,
    first_nomination: BTreeMap<u64, u64>,
    topology: String,
}

impl Simulation {
    pub fn new(topology: &Topology, behaviours: &[Behaviour], cfg: SimConfig) -> Simulation {
        let n = topology.len();
        let ids: Vec<NodeId> = (0..n).map(sim_node_id).collect();
        let mut secrets = HashMap::new();
        let mut qsets = HashMap::new();
        let mut local_qsets = Vec::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&(i as u64).to_le_bytes());
            s[8..16].copy_from_slice(&cfg.seed.to_le_bytes());
            secrets.insert(*id, s);
            let behaviour = behaviours.get(i).copied().unwrap_or(Behaviour::Honest);
            let q = if behaviour == Behaviour::LieQuorumSet {
                QuorumSet::flat(1, vec![*id])
            } else {
                topology.qsets[i].clone()
            };
            qsets.insert(q.hash(), q.clone());
            local_qsets.push(q);
        }
        let registry = Rc::new(Registry { secrets, qsets });
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| SimNode {
                scp: Scp::new(
                    *id,
                    local_qsets[i].clone(),
                    SimDriver {
                        secret: registry.secrets[id],
                        key: cfg.real_signatures.then(|| sim_keypair(i)),
                        registry: registry.clone(),
                    },
                ),
                behaviour: behaviours.get(i).copied().unwrap_or(Behaviour::Honest),
                externalized: BTreeMap::new(),
                nominating: 0,
                history: Vec::new(),
            })
            .collect();
        let rng = SimRng::new(cfg.seed);
        let mut sim = Simulation {
            cfg,
            rng,
            nodes,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            now: 0,
            stats: BTreeMap::new(),
            first_nomination: BTreeMap::new(),
            topology: topology.name.clone(),
        };
        for i in 0..n {
            if sim.nodes[i].behaviour != Behaviour::Silent {
                let jitter = sim.rng.range(0, 20);
                sim.schedule(jitter, Event::Nominate { node: i, slot: 1 });
                let r = sim.cfg.rebroadcast_ms + sim.rng.range(0, 50);
                sim.schedule(r, Event::Rebroadcast { node: i });
            }
        }
        sim
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.events.insert(self.seq, ev);
        self.queue.push(Reverse((at, self.seq)));
    }

    fn honest(&self, i: usize) -> bool {
        self.nodes[i].behaviour == Behaviour::Honest
    }

    fn done(&self) -> bool {
        (0..self.nodes.len())
            .filter(|i| self.honest(*i))
            .all(|i| (1..=self.cfg.slots).all(|s| self.nodes[i].externalized.contains_key(&s)))
    }

    /// Runs until every honest node externalized every slot, or time runs out.
    pub fn run(mut self) -> SimReport {
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > self.cfg.max_time_ms || self.done() {
                break;
            }
            self.now = at;
            let Some(ev) = self.events.remove(&seq) else { continue };
            match ev {
                Event::Nominate { node, slot } => {
                    if self.nodes[node].externalized.contains_key(&slot) {
                        self.start_next(node, slot);
                        continue;
                    }
                    self.nodes[node].nominating = slot;
                    self.first_nomination.entry(slot).or_insert(self.now);
                    let prev =
                        self.nodes[node].externalized.get(&(slot - 1)).cloned().unwrap_or(Value(BoundedBytes::new()));
                    let value = sim_value(slot, node as u64);
                    let now = self.now;
                    self.nodes[node].scp.nominate(slot, value, prev, now);
                    self.drain(node);
                }
                Event::Deliver { to, env } => {
                    let now = self.now;
                    let _ = self.nodes[to].scp.receive_envelope(&env, now);
                    self.drain(to);
                }
                Event::Timer { node, slot, kind, token } => {
                    let now = self.now;
                    self.nodes[node].scp.timer_fired(slot, kind, token, now);
                    self.drain(node);
                }
                Event::Rebroadcast { node } => {
                    let top = self.nodes[node].nominating;
                    let mut envs = Vec::new();
                    for s in top.saturating_sub(3)..=top {
                        envs.extend(self.nodes[node].scp.own_envelopes(s));
                    }
                    for e in envs {
                        self.broadcast(node, e);
                    }
                    let next = self.now + self.cfg.rebroadcast_ms;
                    self.schedule(next, Event::Rebroadcast { node });
                }
            }
        }
        self.report()
    }

    fn start_next(&mut self, node: usize, slot: u64) {
        if self.nodes[node].nominating <= slot && slot < self.cfg.slots {
            self.nodes[node].nominating = slot + 1;
            let at = self.now + self.cfg.slot_interval_ms;
            self.schedule(at, Event::Nominate { node, slot: slot + 1 });
        }
    }

    fn drain(&mut self, node: usize) {
        let effects = self.nodes[node].scp.take_effects();
        for e in effects {
            match e {
                Effect::Broadcast(env) => self.broadcast(node, env),
                Effect::ArmTimer { slot, kind, at_ms, token } => {
                    self.schedule(at_ms, Event::Timer { node, slot, kind, token })
                }
                Effect::CancelTimer { .. } => {}
                Effect::Externalized { slot, value } => {
                    if self.honest(node) {
                        let first = self.first_nomination.get(&slot).copied().unwrap_or(self.now);
                        let stats = self.stats.entry(slot).or_default();
                        stats.latency_ms = stats.latency_ms.max(self.now - first);
                        if let Some(s) = self.nodes[node].scp.slot(slot) {
                            let (.., c) = s.ballot_state();
                            stats.ballot_counter = stats.ballot_counter.max(c.map_or(0, |c| c.counter));
                            stats.nomination_rounds = stats.nomination_rounds.max(s.nomination_round());
                        }
                    }
                    self.nodes[node].externalized.insert(slot, value);
                    self.nodes[node].scp.purge_below(slot.saturating_sub(8));
                    self.start_next(node, slot);
                }
            }
        }
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.cfg.partitions.iter().any(|p| {
            self.now >= p.from_ms
                && self.now < p.until_ms
                && p.groups.iter().position(|g| g.contains(&a)) != p.groups.iter().position(|g| g.contains(&b))
        })
    }

    fn broadcast(&mut self, from: usize, env: Envelope) {
        let behaviour = self.nodes[from].behaviour;
        if behaviour == Behaviour::Silent {
            return;
        }
        if behaviour == Behaviour::Replay {
            self.nodes[from].history.push(env.clone());
        }
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let msgs = self.byzantine_messages(from, to, &env);
            for m in msgs {
                self.send(from, to, m);
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, env: Envelope) {
        self.stats.entry(env.statement.slot_index).or_default().messages += 1;
        if self.blocked(from, to) || self.rng.chance(self.cfg.loss_permille) {
            return;
        }
        let copies = if self.rng.chance(self.cfg.duplicate_permille) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + self.rng.range(self.cfg.delay_ms.0, self.cfg.delay_ms.1);
            self.schedule(at, Event::Deliver { to, env: env.clone() });
        }
    }

    /// What a node of each behaviour actually sends to `to` for `env`.
    fn byzantine_messages(&mut self, from: usize, to: usize, env: &Envelope) -> Vec<Envelope> {
        match self.nodes[from].behaviour {
            Behaviour::Honest | Behaviour::LieQuorumSet | Behaviour::Silent => vec![env.clone()],
            Behaviour::Equivocate => {
                let slot = env.statement.slot_index;
                let fake = sim_value(slot, 10_000 + to as u64);
                let mut st = env.statement.clone();
                st.pledges = map_values(&st.pledges, &fake);
                vec![self.nodes[from].scp.driver_mut().sign(st)]
            }
            Behaviour::Garbage => {
                let mut out = Vec::new();
                // A forged signature on the real statement.
                let mut forged = env.clone();
                forged.signature.0[self.rng.range(0, 63) as usize] ^= 0x5a;
                out.push(forged);
                // Junk values, validly signed.
                let mut junk = env.statement.clone();
                let v = Value(
                    BoundedBytes::try_from_vec((0..16).map(|_| self.rng.next_u64() as u8).collect()).expect("small"),
                );
                junk.pledges = map_values(&junk.pledges, &v);
                out.push(self.nodes[from].scp.driver_mut().sign(junk));
                // Impossible counters, validly signed.
                let mut insane = env.statement.clone();
                if let Pledges::Prepare { n_c, n_h, .. } | Pledges::Confirm { n_commit: n_c, n_h, .. } =
                    &mut insane.pledges
                {
                    *n_c = n_h.saturating_add(5);
                }
                out.push(self.nodes[from].scp.driver_mut().sign(insane));
                out
            }
            Behaviour::Replay => {
                let mut out = vec![env.clone()];
                let h = &self.nodes[from].history;
                if !h.is_empty() {
                    let k = self.rng.range(0, h.len() as u64 - 1) as usize;
                    out.push(h[k].clone());
                }
                out
            }
        }
    }

    fn report(self) -> SimReport {
        let honest: Vec<bool> = (0..self.nodes.len()).map(|i| self.honest(i)).collect();
        let live = self.done();
        let mut dropped = BTreeMap::new();
        for n in &self.nodes {
            for (r, c) in n.scp.drops() {
                *dropped.entry(*r).or_insert(0) += c;
            }
        }
        let externalized: Vec<BTreeMap<u64, Value>> = self.nodes.into_iter().map(|n| n.externalized).collect();
        let mut report = SimReport {
            topology: self.topology,
            seed: self.cfg.seed,
            externalized,
            honest,
            safe: true,
            live,
            end_ms: self.now,
            slot_stats: self.stats,
            dropped,
        };
        report.safe = report.forks().is_empty();
        report
    }
}

/// The same statement with every value replaced (equivocation, junk).
fn map_values(p: &Pledges, v: &Value) -> Pledges {
    let nb = |b: &Ballot| Ballot { counter: b.counter, value: v.clone() };
    match p {
        Pledges::Nominate { quorum_set_hash, votes, accepted } => Pledges::Nominate {
            quorum_set_hash: *quorum_set_hash,
            votes: if votes.is_empty() { BoundedVec::new() } else { BoundedVec::from_iter_capped([v.clone()]) },
            accepted: if accepted.is_empty() { BoundedVec::new() } else { BoundedVec::from_iter_capped([v.clone()]) },
        },
        Pledges::Prepare { quorum_set_hash, ballot, prepared, n_c, n_h, .. } => Pledges::Prepare {
            quorum_set_hash: *quorum_set_hash,
            ballot: nb(ballot),
            prepared: prepared.as_ref().map(nb),
            // p' must stay incompatible with p; drop it.
            prepared_prime: None,
            n_c: *n_c,
            n_h: *n_h,
        },
        Pledges::Confirm { ballot, n_prepared, n_commit, n_h, quorum_set_hash } => Pledges::Confirm {
            ballot: nb(ballot),
            n_prepared: *n_prepared,
            n_commit: *n_commit,
            n_h: *n_h,
            quorum_set_hash: *quorum_set_hash,
        },
        Pledges::Externalize { commit, n_h, commit_quorum_set_hash } => {
            Pledges::Externalize { commit: nb(commit), n_h: *n_h, commit_quorum_set_hash: *commit_quorum_set_hash }
        }
    }
}
