//! The WATT simulator (SPEC §14): the validators' own herders, SCP and
//! ledgers over in-memory stores, and phone models, in one thread, in
//! virtual time, from one seed. The network delays, drops, duplicates and
//! reorders messages, splits and heals, and crashes validators that restart
//! from their stores; adversaries are flags. Every check runs as ledgers
//! close, and a violation names the seed and the ledger, so
//! `watt-node sim --seed S` replays it exactly.

mod adversary;
mod checks;
mod donors;
mod phones;

pub use checks::Violation;

use crate::config::network_from_keys;
use crate::herder::{Action, Herder};
use crate::store::{LedgerRead, MemStore};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::codec::BoundedVec;
use watt_core::crypto::splitmix::SplitMix64;
use watt_core::crypto::{Keypair, SecretSeed};
use watt_core::ledger::{Genesis, LedgerState, Operation, Params, TransactionBody};
use watt_core::scp::{Envelope, Pledges};
use watt_core::wire::{PeerMessage, Request};

/// Network faults, each off unless asked for.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Messages dropped, per mille.
    pub loss_permille: u64,
    /// Messages delivered twice, per mille.
    pub duplicate_permille: u64,
    /// Extra random delay per message (ms): messages overtake each other.
    pub jitter_ms: u64,
    /// The validators split in two now and then, and heal.
    pub partitions: bool,
    /// Honest validators crash now and then and restart from their stores.
    pub crashes: bool,
}

/// Adversaries, each a flag.
#[derive(Debug, Clone, Default)]
pub struct Adversaries {
    /// Byzantine validators that sign conflicting statements.
    pub equivocate: bool,
    /// Byzantine validators that say nothing at all.
    pub silent: bool,
    /// Byzantine validators that send forged, stale and malformed messages.
    pub garbage: bool,
    /// Accounts that flood the payment, tap and proof lanes with
    /// transactions that cannot apply (wrong sequence, no funds, duplicates,
    /// bad signatures, taps for other days, proofs of nothing).
    pub flood: bool,
    /// Senders of transactions over the size limit.
    pub oversized: bool,
    /// Replayers of applied transactions.
    pub replay: bool,
    /// A storage donor that keeps half of its replica and proves anyway.
    pub half_data: bool,
    /// Byzantine round leaders offering many variants of their value.
    pub grind: bool,
    /// A sybil farm inviting keys of its own as fast as it may (and faster).
    pub sybil: bool,
    /// An honest validator away for 30% of a day whose operator, back,
    /// claims participation in the slots it missed.
    pub offline_claim: bool,
}

impl Adversaries {
    fn byzantine_kinds(&self) -> Vec<adversary::Byzantine> {
        let mut kinds = Vec::new();
        if self.equivocate {
            kinds.push(adversary::Byzantine::Equivocate);
        }
        if self.silent {
            kinds.push(adversary::Byzantine::Silent);
        }
        if self.garbage {
            kinds.push(adversary::Byzantine::Garbage);
        }
        if self.grind {
            kinds.push(adversary::Byzantine::Grind);
        }
        kinds
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub validators: usize,
    pub phones: usize,
    pub days: u64,
    pub day_seconds: u64,
    pub ledger_ms: u64,
    pub seed: u64,
    /// One-way delay of every link (ms), before jitter.
    pub delay_ms: u64,
    pub faults: Faults,
    pub adversaries: Adversaries,
    /// A deliberately broken rule, for the test that the checks catch it.
    pub inject: Option<Injected>,
}

/// Bugs the checks must catch (issue 17's "deliberately broken rule").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// After `day` is distributed, one validator's payout queue holds one
    /// payout twice: a tap paid twice.
    PayoutTwice { day: u64 },
}

impl Injected {
    /// `payout-twice:DAY`.
    pub fn parse(s: &str) -> Result<Injected, String> {
        let bad = || format!("unknown injected bug {s:?} (payout-twice:DAY)");
        let (name, day) = s.split_once(':').ok_or_else(bad)?;
        let day: u64 = day.parse().map_err(|_| bad())?;
        match name {
            "payout-twice" => Ok(Injected::PayoutTwice { day }),
            _ => Err(bad()),
        }
    }
}

impl SimConfig {
    pub fn new(validators: usize, phones: usize, days: u64, seed: u64) -> SimConfig {
        SimConfig {
            validators,
            phones,
            days,
            day_seconds: 3_600,
            ledger_ms: 5_000,
            seed,
            delay_ms: 20,
            faults: Faults::default(),
            adversaries: Adversaries::default(),
            inject: None,
        }
    }

    /// A configuration from `watt-node sim`'s flags.
    #[allow(clippy::too_many_arguments)]
    pub fn from_flags(
        validators: usize,
        phones: usize,
        days: u64,
        day_seconds: u64,
        ledger_ms: u64,
        seed: u64,
        faults: &[String],
        adversaries: &[String],
    ) -> Result<SimConfig, String> {
        let mut cfg = SimConfig { day_seconds, ledger_ms, ..SimConfig::new(validators, phones, days, seed) };
        for f in faults {
            let all = f == "all";
            match f.as_str() {
                "loss" | "dup" | "reorder" | "partition" | "crash" | "all" => {}
                other => return Err(format!("unknown fault {other:?} (loss, dup, reorder, partition, crash, all)")),
            }
            if all || f == "loss" {
                cfg.faults.loss_permille = 20;
            }
            if all || f == "dup" {
                cfg.faults.duplicate_permille = 20;
            }
            if all || f == "reorder" {
                cfg.faults.jitter_ms = 200;
            }
            cfg.faults.partitions |= all || f == "partition";
            cfg.faults.crashes |= all || f == "crash";
        }
        for a in adversaries {
            let all = a == "all";
            let known = [
                "equivocate",
                "silent",
                "garbage",
                "grind",
                "flood",
                "oversized",
                "replay",
                "half-data",
                "sybil",
                "offline-claim",
                "all",
            ];
            if !known.contains(&a.as_str()) {
                return Err(format!("unknown adversary {a:?} ({})", known.join(", ")));
            }
            let x = &mut cfg.adversaries;
            x.equivocate |= all || a == "equivocate";
            x.silent |= all || a == "silent";
            x.garbage |= all || a == "garbage";
            x.flood |= all || a == "flood";
            x.oversized |= all || a == "oversized";
            x.replay |= all || a == "replay";
            x.half_data |= all || a == "half-data";
            x.grind |= all || a == "grind";
            x.sybil |= all || a == "sybil";
            x.offline_claim |= all || a == "offline-claim";
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.validators) {
            return Err(format!("1 to 100 validators, not {}", self.validators));
        }
        if self.phones > 100_000 {
            return Err(format!("at most 100,000 phones (founding accounts), not {}", self.phones));
        }
        if self.ledger_ms < 100 || self.day_seconds * 1000 < 20 * self.ledger_ms {
            return Err("ledgers of at least 100 ms and days of at least 20 ledgers".into());
        }
        Ok(())
    }
}

/// Phones that donate storage, in percent (issue 17: 10%).
pub const DONORS_PERCENT: usize = 10;

/// Virtual time of genesis (ms); any fixed instant works.
const GENESIS_TIME_S: u64 = 1_700_000_000;

enum Event {
    Deliver {
        to: usize,
        from: usize,
        msg: Box<PeerMessage>,
    },
    Wake {
        node: usize,
    },
    Phone(phones::PhoneEvent),
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// The offline claimant goes away, and comes back to claim.
    Offline {
        node: usize,
    },
    Return {
        node: usize,
    },
    Partition,
    Heal,
    Adversary(adversary::AdversaryEvent),
}

struct Validator {
    key: Keypair,
    id: NodeId,
    /// `None` while crashed; the store stays behind.
    herder: Option<Herder<MemStore>>,
    down_store: Option<MemStore>,
    byzantine: Option<adversary::Byzantine>,
    /// When its next `Wake` is queued for (stale ones are skipped).
    wake_at: u64,
}

impl Validator {
    fn honest(&self) -> bool {
        self.byzantine.is_none()
    }
}

/// One simulated day, as printed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DayReport {
    pub day: u64,
    pub ledgers: u64,
    pub txs: u64,
    pub attesters: u64,
    pub minted: u64,
    pub fees: u64,
    pub storage_proven_bytes: u64,
    pub new_accounts: u64,
    pub checks_passed: bool,
}

pub struct Simulation {
    cfg: SimConfig,
    rng: SplitMix64,
    now: u64,
    next_event: u64,
    events: BTreeMap<(u64, u64), Event>,
    genesis: Genesis,
    validators: Vec<Validator>,
    /// Signature checks the simulated validators share (each envelope and
    /// transaction is verified once per run, not once per validator).
    shared: crate::herder::SharedChecks,
    /// Partition side of each validator (all `false` when whole).
    side: Vec<bool>,
    phones: phones::Phones,
    adversary: adversary::Adversary,
    checks: checks::Checks,
    pub days: Vec<DayReport>,
    /// The broken rule is in (once).
    injected: bool,
    /// Messages delivered, dropped.
    pub delivered: u64,
    pub dropped: u64,
    /// The offline claimant, the last ledger before it went away, and the
    /// ledgers closed each day while it was up.
    claimant: Option<usize>,
    offline_since: Option<u64>,
    up_slots: BTreeMap<u64, u64>,
    up_counted: u64,
}

/// What a run came to.
#[derive(Debug, Clone)]
pub struct Summary {
    pub seed: u64,
    pub ledgers: u64,
    pub virtual_ms: u64,
    pub wall_ms: u64,
    pub delivered: u64,
    pub dropped: u64,
    /// The last ledger every honest validator that is up agrees on, and its hash.
    pub final_ledger: (u64, String),
    pub violation: Option<Violation>,
}

impl Summary {
    pub fn json(&self) -> Json {
        let speed = self.virtual_ms as f64 / (self.wall_ms.max(1) as f64);
        json!({
            "seed": self.seed,
            "ledgers": self.ledgers,
            "virtual_seconds": self.virtual_ms / 1000,
            "wall_seconds": self.wall_ms as f64 / 1000.0,
            "virtual_seconds_per_wall_second": (speed * 10.0).round() / 10.0,
            "wall_ms_per_ledger": ((self.wall_ms as f64 / self.ledgers.max(1) as f64) * 100.0).round() / 100.0,
            "messages_delivered": self.delivered,
            "messages_dropped": self.dropped,
            "final_ledger": self.final_ledger.0,
            "final_ledger_hash": self.final_ledger.1,
            "checks_passed": self.violation.is_none(),
            "violation": self.violation.as_ref().map(|v| json!({
                "check": v.check, "ledger": v.ledger, "detail": v.detail,
                "replay": format!("watt-node sim --seed {} ...", self.seed),
            })),
        })
    }
}

fn seeded_key(rng: &mut SplitMix64) -> Keypair {
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    // Every 32 bytes are an Ed25519 seed.
    Keypair::from_seed(SecretSeed::from_bytes(seed)).expect("any 32 bytes are a seed")
}

impl Simulation {
    pub fn new(cfg: SimConfig) -> Result<Simulation, String> {
        cfg.validate()?;
        let mut rng = SplitMix64::new(cfg.seed);
        let keys: Vec<Keypair> = (0..cfg.validators).map(|_| seeded_key(&mut rng)).collect();
        let reserve = AccountId(seeded_key(&mut rng).public());
        let phone_keys: Vec<Keypair> = (0..cfg.phones).map(|_| seeded_key(&mut rng)).collect();
        let mut adversary = adversary::Adversary::new(&cfg.adversaries, &mut rng);
        let mut founders: Vec<AccountId> = phone_keys.iter().map(|k| AccountId(k.public())).collect();
        founders.extend(adversary.accounts());
        // At most f Byzantine validators, the last ones; kinds in turn.
        let kinds = cfg.adversaries.byzantine_kinds();
        let f = (cfg.validators - 1) / 3;
        let byzantine = kinds.len().min(f).max(usize::from(!kinds.is_empty() && f > 0));
        // The claimant: the last honest validator, if another stays to watch.
        let claimant =
            (cfg.adversaries.offline_claim && cfg.validators - byzantine >= 2).then(|| cfg.validators - byzantine - 1);
        if let Some(c) = claimant {
            // Its operator's account pays the claim's fee.
            founders.push(AccountId(keys[c].public()));
        }
        let addrs: Vec<std::net::SocketAddr> =
            (0..cfg.validators).map(|i| std::net::SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))).collect();
        let params = Params::devnet(cfg.ledger_ms, cfg.day_seconds);
        let net = network_from_keys(
            &format!("sim-{}", cfg.seed),
            keys,
            reserve,
            &addrs,
            None,
            params,
            GENESIS_TIME_S,
            &founders,
        )?;
        let genesis = net.genesis;
        let now = GENESIS_TIME_S * 1000;
        let shared = crate::herder::SharedChecks::default();
        let mut validators = Vec::new();
        for (i, key) in net.keys.into_iter().enumerate() {
            let mut herder = Herder::new(genesis.clone(), key.clone(), MemStore::new(), cfg.ledger_ms, now)
                .map_err(|e| e.to_string())?;
            herder.share_checks(shared.clone());
            let byz = (i >= cfg.validators - byzantine).then(|| kinds[(cfg.validators - 1 - i) % kinds.len()]);
            validators.push(Validator {
                id: NodeId(key.public()),
                key,
                herder: Some(herder),
                down_store: None,
                byzantine: byz,
                wake_at: u64::MAX,
            });
        }
        let donors = cfg.phones * DONORS_PERCENT / 100;
        let mut phones = phones::Phones::new(phone_keys, &genesis, donors, cfg.adversaries.half_data);
        let genesis_rand = LedgerState::from_genesis(&genesis).header.rand;
        donors::preseal(&mut phones.donors, &genesis_rand, genesis.params.sector_layers);
        adversary.setup(&genesis, &validators);
        let threshold = genesis.validators[0].quorum_set.threshold as usize;
        let mut sim = Simulation {
            shared,
            side: vec![false; cfg.validators],
            checks: checks::Checks::new(threshold, now, &genesis),
            cfg,
            rng,
            now,
            next_event: 0,
            events: BTreeMap::new(),
            genesis,
            validators,
            phones,
            adversary,
            days: Vec::new(),
            injected: false,
            delivered: 0,
            dropped: 0,
            claimant,
            offline_since: None,
            up_slots: BTreeMap::new(),
            up_counted: 0,
        };
        if let Some(node) = claimant {
            let at = sim.now + sim.cfg.day_seconds * 1000 * 2 / 10;
            sim.push(at, Event::Offline { node });
        }
        // Everyone connected to everyone.
        for i in 0..sim.validators.len() {
            for j in 0..sim.validators.len() {
                if i != j {
                    let id = sim.validators[j].id;
                    let actions = sim.validators[i].herder.as_mut().map(|h| h.peer_connected(id)).unwrap_or_default();
                    sim.route(i, actions);
                }
            }
            sim.schedule_wake(i);
        }
        let first = sim.phones.first_events(&mut sim.rng, sim.cfg.day_seconds * 1000);
        for (at, ev) in first {
            sim.push(sim.now + at, Event::Phone(ev));
        }
        if sim.cfg.faults.partitions {
            let at = sim.now + sim.random_span(20, 200);
            sim.push(at, Event::Partition);
        }
        if sim.cfg.faults.crashes {
            let at = sim.now + sim.random_span(10, 120);
            let node = sim.random_honest();
            sim.push(at, Event::Crash { node });
        }
        for (at, ev) in sim.adversary.first_events(sim.cfg.ledger_ms) {
            sim.push(sim.now + at, Event::Adversary(ev));
        }
        Ok(sim)
    }

    fn push(&mut self, at: u64, ev: Event) {
        self.next_event += 1;
        self.events.insert((at, self.next_event), ev);
    }

    /// A random span of `lo..hi` ledgers, in ms.
    fn random_span(&mut self, lo: u64, hi: u64) -> u64 {
        (lo + self.rng.next_u64() % (hi - lo).max(1)) * self.cfg.ledger_ms
    }

    /// An honest validator for the crash fault (never the offline claimant,
    /// whose absence is its own).
    fn random_honest(&mut self) -> usize {
        let honest: Vec<usize> =
            (0..self.validators.len()).filter(|i| self.validators[*i].honest() && Some(*i) != self.claimant).collect();
        honest[(self.rng.next_u64() % honest.len() as u64) as usize]
    }

    fn schedule_wake(&mut self, i: usize) {
        let Some(h) = &self.validators[i].herder else { return };
        let at = h.next_wakeup().max(self.now);
        if at != self.validators[i].wake_at {
            self.validators[i].wake_at = at;
            self.push(at, Event::Wake { node: i });
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.side[a] == self.side[b]
    }

    /// Sends a message over the simulated link `from → to`.
    fn send(&mut self, from: usize, to: usize, msg: PeerMessage) {
        let f = &self.cfg.faults;
        if !self.connected(from, to) || self.validators[to].herder.is_none() {
            self.dropped += 1;
            return;
        }
        let (loss, dup, jitter) = (f.loss_permille, f.duplicate_permille, f.jitter_ms);
        if loss > 0 && self.rng.next_u64() % 1000 < loss {
            self.dropped += 1;
            return;
        }
        let copies = if dup > 0 && self.rng.next_u64() % 1000 < dup { 2 } else { 1 };
        for _ in 0..copies {
            let extra = if jitter > 0 { self.rng.next_u64() % (jitter + 1) } else { 0 };
            let at = self.now + self.cfg.delay_ms + extra;
            self.push(at, Event::Deliver { to, from, msg: Box::new(msg.clone()) });
        }
    }

    /// Carries out a validator's actions.
    fn route(&mut self, i: usize, actions: Vec<Action>) {
        let actions = match self.validators[i].byzantine {
            Some(kind) => {
                let network = self.genesis.network_id();
                adversary::byzantine_actions(kind, &self.validators[i].key, &network, actions, &mut self.rng)
            }
            None => actions,
        };
        for a in actions {
            match a {
                Action::Send(to, msg) => {
                    if let Some(j) = self.validators.iter().position(|v| v.id == to) {
                        self.send(i, j, msg);
                    }
                }
                Action::Broadcast { msg, except } => {
                    for j in 0..self.validators.len() {
                        if j != i && Some(self.validators[j].id) != except {
                            self.send(i, j, msg.clone());
                        }
                    }
                }
                // A real shell drops the connection; here links are virtual
                // and every message is judged on its own, so nothing to do.
                Action::Disconnect(..) | Action::Push(_) => {}
                Action::Fatal(reason) => {
                    if self.validators[i].honest() {
                        let ledger = self.validators[i].herder.as_ref().map_or(0, |h| h.lcl().seq);
                        self.checks.fail("no_fatal", ledger, format!("validator {i} stopped: {reason}"));
                    }
                }
            }
        }
        self.schedule_wake(i);
    }

    /// Runs to the end or the first violation.
    pub fn run(&mut self) -> Summary {
        self.run_with(|_| {})
    }

    /// [`Simulation::run`], calling `on_day` as each day's checks pass.
    pub fn run_with(&mut self, mut on_day: impl FnMut(&DayReport)) -> Summary {
        let started = std::time::Instant::now();
        let start = self.now;
        let day_ms = self.cfg.day_seconds * 1000;
        // The last day is checked once it is paid out, early the day after
        // (or later, when the run ends in a split or with validators down).
        let end = start + (self.cfg.days + 1) * day_ms;
        while self.checks.violation.is_none() && (self.days.len() as u64) < self.cfg.days {
            let Some((&(at, id), _)) = self.events.iter().next() else { break };
            if at > end {
                break;
            }
            let Some(ev) = self.events.remove(&(at, id)) else { break };
            self.now = at;
            let reported = self.days.len();
            self.step(ev);
            for d in &self.days[reported..] {
                on_day(d);
            }
        }
        // A day not paid out by the end is a failure only if a quorum could
        // work long enough after the last day ended (a run can end in a
        // long split or with too many validators down).
        let days_end = start + self.cfg.days * day_ms;
        let needed = checks::liveness_bound_ms(self.cfg.ledger_ms) + checks::TAP_LEDGERS * self.cfg.ledger_ms;
        let could_work = self.checks.quorum_ms(days_end, self.now) >= needed;
        if self.checks.violation.is_none() && (self.days.len() as u64) < self.cfg.days && could_work {
            let detail = format!("day {} was never paid out", self.days.len());
            self.checks.fail("distribution", self.checks.closed, detail);
        }
        Summary {
            seed: self.cfg.seed,
            ledgers: self.checks.closed,
            virtual_ms: self.now - start,
            wall_ms: started.elapsed().as_millis() as u64,
            delivered: self.delivered,
            dropped: self.dropped,
            final_ledger: self.final_ledger(),
            violation: self.checks.violation.clone(),
        }
    }

    fn step(&mut self, ev: Event) {
        match ev {
            Event::Deliver { to, from, msg } => {
                let from_id = self.validators[from].id;
                let Some(h) = self.validators[to].herder.as_mut() else { return };
                self.delivered += 1;
                let actions = h.on_peer_message(from_id, *msg, self.now);
                self.route(to, actions);
                self.after(to);
            }
            Event::Wake { node } => {
                if self.validators[node].wake_at != self.now {
                    return;
                }
                self.validators[node].wake_at = u64::MAX;
                let Some(h) = self.validators[node].herder.as_mut() else { return };
                let actions = h.tick(self.now);
                self.route(node, actions);
                self.after(node);
                self.nomination_votes(node);
                self.liveness();
            }
            Event::Phone(ev) => {
                let now = self.now;
                let day_ms = self.cfg.day_seconds * 1000;
                let up: Vec<usize> = (0..self.validators.len())
                    .filter(|i| self.validators[*i].herder.is_some() && self.validators[*i].honest())
                    .collect();
                if up.is_empty() {
                    return;
                }
                let pick = up[(self.rng.next_u64() % up.len() as u64) as usize];
                let herder = self.validators[pick].herder.as_mut().expect("picked among those up");
                let (actions, next) = self.phones.handle(ev, herder, now, day_ms, &mut self.rng);
                self.route(pick, actions);
                for (at, ev) in next {
                    self.push(at, Event::Phone(ev));
                }
            }
            Event::Crash { node } => {
                self.take_down(node);
                let at = self.now + self.random_span(5, 60);
                self.push(at, Event::Restart { node });
            }
            Event::Restart { node } => {
                if !self.bring_up(node) {
                    return;
                }
                let at = self.now + self.random_span(30, 300);
                let next = self.random_honest();
                self.push(at, Event::Crash { node: next });
            }
            Event::Offline { node } => {
                self.take_down(node);
                self.offline_since = Some(self.checks.closed);
                let at = self.now + self.cfg.day_seconds * 1000 * 3 / 10;
                self.push(at, Event::Return { node });
            }
            Event::Return { node } => {
                if !self.bring_up(node) {
                    return;
                }
                if let Some(since) = self.offline_since.take() {
                    self.claim_participation(node, since);
                }
            }
            Event::Partition => {
                // A random split; either side may hold a quorum or not.
                for s in self.side.iter_mut() {
                    *s = self.rng.next_u64() % 2 == 1;
                }
                self.checks.network_changed(self.now);
                let at = self.now + self.random_span(5, 40);
                self.push(at, Event::Heal);
            }
            Event::Heal => {
                self.side.iter_mut().for_each(|s| *s = false);
                self.checks.network_changed(self.now);
                // Links come back: each side says hello again, as a reconnect does.
                for i in 0..self.validators.len() {
                    for j in 0..self.validators.len() {
                        let id = self.validators[j].id;
                        if i != j {
                            if let Some(h) = self.validators[i].herder.as_mut() {
                                let actions = h.peer_connected(id);
                                self.route(i, actions);
                            }
                        }
                    }
                }
                let at = self.now + self.random_span(100, 400);
                self.push(at, Event::Partition);
            }
            Event::Adversary(ev) => {
                let up: Vec<usize> =
                    (0..self.validators.len()).filter(|i| self.validators[*i].herder.is_some()).collect();
                if up.is_empty() {
                    return;
                }
                let pick = up[(self.rng.next_u64() % up.len() as u64) as usize];
                let herder = self.validators[pick].herder.as_mut().expect("picked among those up");
                let (actions, next) = self.adversary.handle(ev, herder, self.now, &mut self.rng);
                self.route(pick, actions);
                let seq = self.checks.closed;
                if self.adversary.replays_accepted > 0 {
                    self.checks.fail("replay", seq, "a validator accepted an applied transaction again".into());
                }
                if self.adversary.oversized_accepted > 0 {
                    self.checks.fail("oversized", seq, "a validator accepted a transaction over max_tx_bytes".into());
                }
                for (at, ev) in next {
                    self.push(at, Event::Adversary(ev));
                }
            }
        }
    }

    /// Stops validator `node`; its store stays behind.
    fn take_down(&mut self, node: usize) {
        if let Some(h) = self.validators[node].herder.take() {
            self.validators[node].down_store = Some(h.into_store());
            let id = self.validators[node].id;
            for v in self.validators.iter_mut() {
                if let Some(h) = v.herder.as_mut() {
                    h.peer_disconnected(&id);
                }
            }
        }
    }

    /// Restarts validator `node` from its store and reconnects it; false
    /// if it was up (or cannot restart: a failed check).
    fn bring_up(&mut self, node: usize) -> bool {
        let Some(store) = self.validators[node].down_store.take() else { return false };
        let key = self.validators[node].key.clone();
        match Herder::new(self.genesis.clone(), key, store, self.cfg.ledger_ms, self.now) {
            Ok(mut h) => {
                h.share_checks(self.shared.clone());
                self.validators[node].herder = Some(h);
            }
            Err(e) => {
                self.checks.fail("restart", 0, format!("validator {node} cannot restart from its store: {e}"));
                return false;
            }
        }
        self.validators[node].wake_at = u64::MAX;
        for j in 0..self.validators.len() {
            if j == node {
                continue;
            }
            let (a, b) = (self.validators[node].id, self.validators[j].id);
            if let Some(h) = self.validators[j].herder.as_mut() {
                let actions = h.peer_connected(a);
                self.route(j, actions);
            }
            if let Some(h) = self.validators[node].herder.as_mut() {
                let actions = h.peer_connected(b);
                self.route(node, actions);
            }
        }
        self.schedule_wake(node);
        true
    }

    /// The returning validator's operator claims every slot closed while
    /// it was away, signing CONFIRMs for their values now: one claim of
    /// the slots within the participation window, and one of the older
    /// ones, which must not count (the day check).
    fn claim_participation(&mut self, node: usize, since: u64) {
        let Some(observer) = (0..self.validators.len())
            .find(|j| *j != node && self.validators[*j].honest() && self.validators[*j].herder.is_some())
        else {
            return;
        };
        let me = self.validators[node].id;
        let key = self.validators[node].key.clone();
        let network = self.genesis.network_id();
        let (lcl, qset_hash) = {
            let h = self.validators[observer].herder.as_ref().expect("up");
            (h.lcl().seq, self.genesis.validators[node].quorum_set.hash())
        };
        let window = watt_core::ledger::apply::PARTICIPATION_WINDOW;
        let envelope = |seq: u64, store: &MemStore| -> Option<Envelope> {
            let proof = store.proof(seq).ok().flatten()?;
            let value = crate::herder::committed_value(&proof)?;
            let ballot = watt_core::scp::Ballot { counter: 1, value };
            let pledges = Pledges::Confirm { ballot, n_prepared: 1, n_commit: 1, n_h: 1, quorum_set_hash: qset_hash };
            Some(watt_core::scp::Statement { node_id: me, slot_index: seq, pledges }.sign(&key, &network))
        };
        let h = self.validators[observer].herder.as_mut().expect("up");
        let recent: Vec<Envelope> =
            (lcl.saturating_sub(window - 2).max(since + 1)..=lcl).filter_map(|s| envelope(s, h.store())).collect();
        let old: Vec<Envelope> =
            (since + 1..lcl.saturating_sub(window)).take(64).filter_map(|s| envelope(s, h.store())).collect();
        let account = AccountId(me.0);
        let seq = h.state().account(&account).map_or(0, |a| a.seq_num) + 1;
        let mut actions = Vec::new();
        for (i, envs) in [recent, old].into_iter().enumerate() {
            let Ok(envelopes) = BoundedVec::try_from_vec(envs) else { continue };
            if envelopes.is_empty() {
                continue;
            }
            let op = Operation::Participation { node_id: me, envelopes };
            let Ok(ops) = BoundedVec::try_from_vec(vec![op]) else { continue };
            let body =
                TransactionBody { source: account, seq_num: seq + i as u64, fee: Amount(1_000), max_ledger: None, ops };
            // The day check counts what the ledger made of it.
            let _ = h.phone_request(Request::SubmitTx(body.sign(&key, &network)));
            actions.extend(h.take_outbox());
        }
        self.route(observer, actions);
    }

    /// An honest validator votes for a few values per slot, one per proposer
    /// (more only as a quorum accepts them): a leader offering many cannot
    /// fill its votes, which would leave no room for the value a quorum can
    /// agree on (the stall found at seed 76).
    fn nomination_votes(&mut self, i: usize) {
        if !self.validators[i].honest() {
            return;
        }
        let Some(h) = self.validators[i].herder.as_ref() else { return };
        let slot = h.lcl().seq + 1;
        let bound = 2 * self.validators.len();
        let votes: usize = h
            .scp
            .own_envelopes(slot)
            .iter()
            .map(|e| match &e.statement.pledges {
                watt_core::scp::Pledges::Nominate { votes, .. } => votes.len(),
                _ => 0,
            })
            .sum();
        if votes > bound {
            let detail = format!("validator {i} votes for {votes} values in slot {slot} (at most {bound})");
            self.checks.fail("nomination", slot - 1, detail);
        }
    }

    /// Checks after validator `i` handled something: a new ledger is
    /// compared with every other honest validator's.
    fn after(&mut self, i: usize) {
        if !self.validators[i].honest() {
            return;
        }
        let Some(h) = self.validators[i].herder.as_ref() else { return };
        let seq = h.lcl().seq;
        if !self.checks.new_ledger(i, seq) {
            return;
        }
        let header = h.lcl().clone();
        self.checks.agreement(i, &header, h.store(), self.now);
        if let Some(c) = self.claimant {
            // Once per ledger: the first honest validator to close it.
            if self.validators[c].herder.is_some() && header.seq > self.up_counted {
                *self.up_slots.entry(header.day).or_insert(0) += 1;
            }
            self.up_counted = self.up_counted.max(header.seq);
        }
        if let (Some(inject), false) = (self.cfg.inject, self.injected) {
            let h = self.validators[i].herder.as_mut().expect("up");
            self.injected = adversary::inject(inject, h, &self.genesis, &header);
        }
        // The day checks on one honest validator that is up: the lowest.
        let observer = (0..self.validators.len())
            .find(|j| self.validators[*j].honest() && self.validators[*j].herder.is_some())
            .unwrap_or(i);
        if observer != i {
            return;
        }
        let h = self.validators[i].herder.as_ref().expect("up");
        let farm = self.adversary.farm_accounts();
        if let Some(report) = self.checks.day_checks(h, &mut self.phones, &farm) {
            if let Some(c) = self.claimant {
                // Counted in the slots it was up for, plus what the claim
                // window lets it sign afterwards (and one ledger each way
                // at the day's edges).
                let id = self.validators[c].id;
                let counted = h
                    .state()
                    .day_record(report.day)
                    .and_then(|r| r.validator_slots.iter().find(|(n, _)| *n == id).map(|(_, k)| *k))
                    .unwrap_or(0);
                let up = self.up_slots.get(&report.day).copied().unwrap_or(0);
                let allowed = up + watt_core::ledger::apply::PARTICIPATION_WINDOW + 2;
                if counted > allowed {
                    let detail = format!(
                        "day {}: validator {c} was counted in {counted} slots, up for {up} (at most {allowed})",
                        report.day
                    );
                    self.checks.fail("participation", h.lcl().seq, detail);
                }
            }
            self.days.push(report);
        }
    }

    /// Whether the honest validators that are up and can reach each other
    /// make a quorum, and if so that ledgers keep closing.
    fn liveness(&mut self) {
        let mut sides: BTreeMap<bool, usize> = BTreeMap::new();
        for (i, v) in self.validators.iter().enumerate() {
            if v.honest() && v.herder.is_some() {
                *sides.entry(self.side[i]).or_insert(0) += 1;
            }
        }
        let quorum = sides.values().any(|n| *n >= self.checks.threshold);
        self.checks.liveness(self.now, quorum, self.cfg.ledger_ms);
    }

    fn final_ledger(&self) -> (u64, String) {
        let up = self.validators.iter().filter(|v| v.honest()).filter_map(|v| v.herder.as_ref());
        let Some(seq) = up.clone().map(|h| h.lcl().seq).min() else { return (0, String::new()) };
        let hash = up.filter_map(|h| h.store().header(seq).ok().flatten()).map(|h| h.hash().to_hex()).next();
        (seq, hash.unwrap_or_default())
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The first honest validator's store (for comparisons and tests).
    pub fn observer_store(&self) -> Option<&MemStore> {
        self.validators.iter().find(|v| v.honest()).and_then(|v| v.herder.as_ref()).map(|h| h.store())
    }

    pub fn store_of(&self, i: usize) -> Option<&MemStore> {
        self.validators.get(i).and_then(|v| v.herder.as_ref()).map(|h| h.store())
    }
}
