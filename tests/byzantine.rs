//! Byzantine peers and network faults against real `watt-node run`
//! processes on loopback (issue 10): a validator that equivocates with
//! valid values of its own, replays and floods; a partition healed later;
//! message delay; a validator whose clock is wrong. The honest validators
//! must never fork (same header hash at every seq) and must keep closing
//! ledgers whenever a quorum of them is honest and connected.
//!
//! The Byzantine validator is this test process holding validator 3's key
//! and speaking the real peer protocol (`watt-peer/1`); partitions and
//! delay come from UDP relays the test puts between the processes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use watt_core::address::NodeId;
use watt_core::codec::{decode, encode, BoundedBytes, BoundedVec};
use watt_core::crypto::vrf::VrfKeypair;
use watt_core::crypto::{Hash256, Keypair, NetworkId};
use watt_core::ledger::ScpValue;
use watt_core::scp::{Ballot, Envelope, Pledges, Statement, Value};
use watt_core::wire::{encode_frame, PeerMessage, Request, Response, MAX_FRAME};
use watt_e2e::Network;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// Headers `from..=upto` as node `i` serves them to phones.
fn headers(net: &Network, i: usize, from: u64, upto: u64) -> Vec<watt_core::ledger::LedgerHeader> {
    let node = net.genesis().validators[i].node_id;
    let addr = net.listen(i);
    rt().block_on(async move {
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut out = Vec::new();
        let mut from = from;
        while from <= upto {
            let count = (upto - from + 1).min(64) as u32;
            match watt_node::node::phone_request(&ep, addr, &node, &Request::GetHeaders { from, count }).await {
                Ok(Response::Headers { headers }) if !headers.is_empty() => {
                    from += headers.len() as u64;
                    out.extend(headers.iter().cloned());
                }
                other => panic!("node {i} did not serve headers from {from}: {other:?}"),
            }
        }
        out
    })
}

/// Header hashes `1..=upto` of node `i`.
fn history(net: &Network, i: usize, upto: u64) -> Vec<(u64, Hash256)> {
    headers(net, i, 1, upto).iter().map(|h| (h.seq, h.hash())).collect()
}

/// No fork: every node in `nodes` has the same header hash at every seq
/// up to the lowest of their latest ledgers.
fn assert_no_fork(net: &Network, nodes: &[usize]) -> u64 {
    let upto = nodes.iter().map(|&i| net.seq(i)).min().unwrap_or(0);
    assert!(upto >= 2, "nodes {nodes:?} have not closed ledgers");
    let reference = history(net, nodes[0], upto);
    assert_eq!(reference.len() as u64, upto);
    for &i in &nodes[1..] {
        assert_eq!(history(net, i, upto), reference, "node {i} forked from node {}", nodes[0]);
    }
    upto
}

/// Liveness: every node in `nodes` closes `more` ledgers within `secs`.
fn assert_closing(net: &Network, nodes: &[usize], more: u64, secs: u64, what: &str) {
    let start: Vec<u64> = nodes.iter().map(|&i| net.seq(i)).collect();
    let ok = net.wait_for(secs, |n| nodes.iter().zip(&start).all(|(&i, &s)| n.seq(i) >= s + more));
    let now: Vec<u64> = nodes.iter().map(|&i| net.seq(i)).collect();
    assert!(ok, "{what}: nodes {nodes:?} went from {start:?} to only {now:?} in {secs} s");
}

// ---------------------------------------------------------------------------
// The Byzantine validator

/// Validator 3's key in the hands of an attacker, connected to each honest
/// validator over its own authenticated peer connection, so it can tell
/// each of them something different.
struct Adversary {
    key: Keypair,
    vrf: VrfKeypair,
    network: NetworkId,
    qset_hash: Hash256,
    /// (address, node id) of each honest validator, by index.
    honest: Vec<(SocketAddr, NodeId)>,
    endpoint: quinn::Endpoint,
    links: Vec<Option<quinn::SendStream>>,
    inbound_tx: mpsc::UnboundedSender<(usize, PeerMessage)>,
    inbound: mpsc::UnboundedReceiver<(usize, PeerMessage)>,
}

impl Adversary {
    async fn connect(net: &Network, me: usize, honest: &[usize]) -> Adversary {
        let genesis = net.genesis();
        let key = net.node_key(me);
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let mut a = Adversary {
            vrf: VrfKeypair::from_seed(key.seed().expose()),
            key,
            network: genesis.network_id(),
            qset_hash: genesis.validators[me].quorum_set.hash(),
            honest: honest.iter().map(|&i| (net.listen(i), genesis.validators[i].node_id)).collect(),
            endpoint: quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap(),
            links: honest.iter().map(|_| None).collect(),
            inbound_tx,
            inbound,
        };
        for i in 0..honest.len() {
            a.dial(i).await;
        }
        a
    }

    /// (Re)connects to honest validator `i` as a peer and reads what it sends.
    async fn dial(&mut self, i: usize) {
        let (addr, node) = self.honest[i];
        let cfg = watt_node::tls::client_config(&node, Some(&self.key)).unwrap();
        let conn = self
            .endpoint
            .connect_with(cfg, addr, "watt-node")
            .unwrap()
            .await
            .expect("an honest validator accepts validator 3");
        let send = conn.open_uni().await.unwrap();
        let tx = self.inbound_tx.clone();
        tokio::spawn(async move {
            let Ok(mut recv) = conn.accept_uni().await else {
                return;
            };
            while let Ok(Some(body)) = watt_client::net::read_frame(&mut recv, MAX_FRAME).await {
                if let Ok(msg) = decode::<PeerMessage>(&body) {
                    if tx.send((i, msg)).is_err() {
                        return;
                    }
                }
            }
        });
        self.links[i] = Some(send);
    }

    /// Sends to honest validator `i`; false once it has hung up on us.
    async fn send(&mut self, i: usize, msg: &PeerMessage) -> bool {
        let Some(s) = self.links[i].as_mut() else {
            return false;
        };
        if s.write_all(&encode_frame(msg)).await.is_err() {
            self.links[i] = None;
            return false;
        }
        true
    }

    fn sign(&self, slot: u64, pledges: Pledges) -> Envelope {
        Statement { node_id: NodeId(self.key.public()), slot_index: slot, pledges }.sign(&self.key, &self.network)
    }

    /// A value for `slot` that passes every honest check: our own VRF
    /// output over the previous ledger's `rand`, an honest value's tx set
    /// and proof set, and a close time of our choosing.
    async fn own_values(&self, slot: u64, honest_value: &ScpValue, count: usize) -> Vec<Value> {
        let (addr, node) = self.honest[0];
        let prev = match watt_node::node::phone_request(
            &self.endpoint,
            addr,
            &node,
            &Request::GetHeaders { from: slot - 1, count: 1 },
        )
        .await
        {
            Ok(Response::Headers { headers }) => headers.first().cloned(),
            _ => None,
        };
        let Some(prev) = prev.filter(|p| p.hash() == honest_value.prev_header_hash) else {
            return Vec::new();
        };
        (0..count)
            .filter_map(|i| self.own_value(slot, &prev, honest_value, honest_value.close_time + 1 + i as u64))
            .collect()
    }

    fn own_value(
        &self,
        slot: u64,
        prev: &watt_core::ledger::LedgerHeader,
        honest_value: &ScpValue,
        close_time: u64,
    ) -> Option<Value> {
        let (rand, proof) = self.vrf.prove(&prev.rand, slot);
        let v = ScpValue {
            prev_header_hash: honest_value.prev_header_hash,
            tx_set_hash: honest_value.tx_set_hash,
            close_time,
            proposer: NodeId(self.key.public()),
            rand,
            rand_proof: BoundedBytes::try_from_slice(&proof).ok()?,
            prev_proof_hash: honest_value.prev_proof_hash,
            upgrades: BoundedVec::new(),
        };
        Some(Value(BoundedBytes::try_from_vec(encode(&v)).ok()?))
    }

    /// Every statement kind for `value`, at once: votes, accepts, prepares,
    /// confirms and claims to have externalized it.
    fn claims(&self, slot: u64, value: &Value) -> Vec<Envelope> {
        let one = BoundedVec::try_from_vec(vec![value.clone()]).unwrap();
        let b = Ballot { counter: 1, value: value.clone() };
        vec![
            self.sign(slot, Pledges::Nominate { quorum_set_hash: self.qset_hash, votes: one.clone(), accepted: one }),
            self.sign(
                slot,
                Pledges::Prepare {
                    quorum_set_hash: self.qset_hash,
                    ballot: b.clone(),
                    prepared: Some(b.clone()),
                    prepared_prime: None,
                    n_c: 1,
                    n_h: 1,
                },
            ),
            self.sign(
                slot,
                Pledges::Confirm {
                    ballot: b.clone(),
                    n_prepared: 1,
                    n_commit: 1,
                    n_h: 1,
                    quorum_set_hash: self.qset_hash,
                },
            ),
            self.sign(slot, Pledges::Externalize { commit: b, n_h: 1, commit_quorum_set_hash: self.qset_hash }),
        ]
    }
}

fn values_of(env: &Envelope) -> Vec<ScpValue> {
    let vs: Vec<&Value> = match &env.statement.pledges {
        Pledges::Nominate { votes, accepted, .. } => votes.iter().chain(accepted.iter()).collect(),
        Pledges::Prepare { ballot, .. } | Pledges::Confirm { ballot, .. } => vec![&ballot.value],
        Pledges::Externalize { commit, .. } => vec![&commit.value],
    };
    vs.into_iter().filter_map(|v| decode::<ScpValue>(v.as_bytes()).ok()).collect()
}

#[test]
fn a_byzantine_validator_that_equivocates_replays_and_floods_cannot_fork_or_stall_the_honest_three() {
    let mut net = Network::start("watt-e2e-byzantine", 4, 400, 3600);
    assert!(net.wait_for(60, |n| n.seq(0) >= 3), "network did not start: {}", net.log(0));
    // Validator 3 turns: its process is gone, its key is ours.
    net.kill(3);
    let honest = [0usize, 1, 2];
    let rt = rt();
    let mut adversary = rt.block_on(Adversary::connect(&net, 3, &honest));

    // 1. Equivocation: for every slot, a different valid value of its own
    //    to each honest validator, each with every statement kind (voted,
    //    accepted, prepared, confirmed, externalized), for 8 seconds.
    let mut heard: Vec<Envelope> = Vec::new();
    let mut attacked: BTreeSet<u64> = BTreeSet::new();
    let mut told: BTreeMap<u64, BTreeSet<Value>> = BTreeMap::new();
    let start_seq = net.seq(0);
    rt.block_on(async {
        let end = Instant::now() + Duration::from_secs(8);
        while Instant::now() < end {
            let Ok(Some((_, msg))) = tokio::time::timeout(Duration::from_millis(200), adversary.inbound.recv()).await
            else {
                continue;
            };
            let PeerMessage::Envelope(env) = msg else {
                continue;
            };
            heard.push(env.clone());
            let slot = env.statement.slot_index;
            let Some(honest_value) = values_of(&env).into_iter().next() else {
                continue;
            };
            if !attacked.insert(slot) {
                continue;
            }
            let values = adversary.own_values(slot, &honest_value, honest.len()).await;
            for (i, v) in values.into_iter().enumerate() {
                told.entry(slot).or_default().insert(v.clone());
                for e in adversary.claims(slot, &v) {
                    adversary.send(i, &PeerMessage::Envelope(e)).await;
                }
            }
        }
    });
    // Its statements were taken for what they say (signed by a quorum
    // member), not dropped at the door: right after the attack node 0 lists
    // validator 3 as heard (CONFIRM/EXTERNALIZE within the last 10 ledgers).
    let v3 = net.genesis().validators[3].node_id.to_string();
    let st = net.status(0).unwrap();
    let health = st["quorum"]["validators"].as_array().unwrap().iter().find(|v| v["node"] == v3).cloned();
    assert!(health.as_ref().is_some_and(|h| h["state"] != "missing"), "node 0 never heard validator 3: {health:?}");
    let equivocated = told.values().filter(|vs| vs.len() == honest.len()).count();
    assert!(equivocated >= 5, "the adversary told three different valid values in only {equivocated} slots");
    assert!(
        net.seq(0) >= start_seq + 5,
        "honest validators stalled under equivocation ({start_seq} -> {})",
        net.seq(0)
    );
    assert_closing(&net, &honest, 3, 20, "after equivocation");
    assert_no_fork(&net, &honest);

    // 2. Replay: everything heard so far, and our own old claims, sent
    //    again to everyone (at a rate under the flood limit).
    let replay: Vec<Envelope> = heard
        .iter()
        .cloned()
        .chain(told.iter().flat_map(|(s, vs)| vs.iter().flat_map(|v| adversary.claims(*s, v))))
        .collect();
    rt.block_on(async {
        for _ in 0..2 {
            for chunk in replay.chunks(400) {
                for i in 0..honest.len() {
                    for e in chunk {
                        adversary.send(i, &PeerMessage::Envelope(e.clone())).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    assert!(replay.len() > 50, "only {} envelopes to replay", replay.len());
    assert_closing(&net, &honest, 3, 20, "after replay");
    assert_no_fork(&net, &honest);

    // 3. Flood: far more than the per-peer message budget at once; the
    //    honest node hangs up, counts it, and keeps closing ledgers.
    let flood = PeerMessage::Envelope(heard.last().cloned().expect("heard envelopes"));
    let disconnected = rt.block_on(async {
        for _ in 0..20_000 {
            if !adversary.send(0, &flood).await {
                return true;
            }
        }
        // The writes may all have been buffered before the hang-up.
        tokio::time::sleep(Duration::from_millis(500)).await;
        !adversary.send(0, &flood).await
    });
    assert!(disconnected, "a flooding peer was not disconnected");
    assert!(
        net.wait_for(10, |n| n.status(0).is_some_and(|s| s["rejected"]["peer_flooding"].as_u64().unwrap_or(0) >= 1)),
        "flooding not counted: {}",
        net.status(0).map(|s| s["rejected"].to_string()).unwrap_or_default()
    );
    // It may come back; it is just another peer connection.
    rt.block_on(adversary.dial(0));
    assert_closing(&net, &honest, 3, 20, "after a flood");
    // Its values are valid, so one may win a slot; then all three honest
    // validators have it, as every other slot.
    let upto = assert_no_fork(&net, &honest);
    let won = adversary_slots(&net, &adversary, upto);
    let st = net.status(0).unwrap();
    println!(
        "equivocated in {equivocated} slots, replayed {} envelopes; its values won slots {won:?}; node 0 rejected {}",
        replay.len(),
        st["rejected"]
    );
}

/// Slots whose header carries the adversary's VRF output: its value won.
fn adversary_slots(net: &Network, adversary: &Adversary, upto: u64) -> Vec<u64> {
    let headers = headers(net, 0, 1, upto);
    headers.windows(2).filter(|w| adversary.vrf.prove(&w[0].rand, w[1].seq).0 == w[1].rand).map(|w| w[1].seq).collect()
}

// ---------------------------------------------------------------------------
// Network faults: UDP relays between the validators

/// One link between two validators: a UDP relay in front of the listening
/// side that can drop (partition) or hold back (delay) every datagram.
struct Relay {
    port: u16,
    blocked: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(target).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        }
        let relay = Relay {
            port: front.local_addr().unwrap().port(),
            blocked: Arc::new(AtomicBool::new(false)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let dialer: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        // Delivery keeps order: datagrams wait in one queue per direction.
        let (front, back) = (Arc::new(front), Arc::new(back));
        for towards_listener in [true, false] {
            let (from, to) =
                if towards_listener { (front.clone(), back.clone()) } else { (back.clone(), front.clone()) };
            let (queue_tx, queue_rx) = std_mpsc::channel::<(Instant, Vec<u8>)>();
            let (blocked, delay, stop, dialer_r) =
                (relay.blocked.clone(), relay.delay_ms.clone(), relay.stop.clone(), dialer.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, src)) = from.recv_from(&mut buf) else {
                        continue;
                    };
                    if towards_listener {
                        *dialer_r.lock().unwrap() = Some(src);
                    }
                    if blocked.load(Ordering::Relaxed) {
                        continue;
                    }
                    let due = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
                    if queue_tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            });
            let (blocked, dialer_s) = (relay.blocked.clone(), dialer.clone());
            std::thread::spawn(move || {
                while let Ok((due, bytes)) = queue_rx.recv() {
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if blocked.load(Ordering::Relaxed) {
                        continue;
                    }
                    if towards_listener {
                        let _ = to.send(&bytes);
                    } else if let Some(d) = *dialer_s.lock().unwrap() {
                        let _ = to.send_to(&bytes, d);
                    }
                }
            });
        }
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A network whose every validator pair talks through a [`Relay`]; the
/// map's key is the pair (lower index first).
fn relayed_network(label: &str, n: usize, ledger_ms: u64) -> (Network, BTreeMap<(usize, usize), Relay>) {
    let mut net = Network::create(label, n, ledger_ms, 3600, &[]);
    let ids: Vec<NodeId> = net.genesis().validators.iter().map(|v| v.node_id).collect();
    let mut relays = BTreeMap::new();
    for i in 0..n {
        for j in i + 1..n {
            // Of each pair only the lower node id dials: the relay stands in
            // front of the other, and the dialer's config names the relay.
            let (dialer, listener) = if ids[i] < ids[j] { (i, j) } else { (j, i) };
            let relay = Relay::start(net.listen(listener));
            let path = net.config(dialer);
            let text = std::fs::read_to_string(&path).unwrap();
            let real = format!("address = \"{}\"", net.listen(listener));
            assert!(text.contains(&real), "{text}");
            std::fs::write(&path, text.replace(&real, &format!("address = \"127.0.0.1:{}\"", relay.port))).unwrap();
            relays.insert((i, j), relay);
        }
    }
    for i in 0..n {
        net.start_node(i);
    }
    (net, relays)
}

fn set_partition(relays: &BTreeMap<(usize, usize), Relay>, side: &[usize]) {
    for (&(i, j), r) in relays {
        r.blocked.store(side.contains(&i) != side.contains(&j), Ordering::Relaxed);
    }
}

#[test]
fn a_partition_halts_both_halves_without_a_fork_and_heals_and_delay_changes_nothing() {
    let (net, relays) = relayed_network("watt-e2e-partition", 4, 400);
    let all = [0usize, 1, 2, 3];
    assert!(net.wait_for(60, |n| all.iter().all(|&i| n.seq(i) >= 4)), "relayed network did not start: {}", net.log(0));

    // Two against two: neither half is a quorum (3 of 4); nobody closes,
    // nobody forks.
    set_partition(&relays, &[0, 1]);
    std::thread::sleep(Duration::from_secs(2)); // the ledger in flight may still close
    let halted: Vec<u64> = all.iter().map(|&i| net.seq(i)).collect();
    std::thread::sleep(Duration::from_secs(4));
    let later: Vec<u64> = all.iter().map(|&i| net.seq(i)).collect();
    assert_eq!(halted, later, "a half without a quorum closed ledgers");
    assert_no_fork(&net, &all);

    // Healed: all four close ledgers again, on one history.
    set_partition(&relays, &[]);
    assert_closing(&net, &all, 3, 40, "after the 2/2 partition healed");
    assert_no_fork(&net, &all);

    // Three against one: the three close, the one waits, then catches up.
    set_partition(&relays, &[3]);
    assert_closing(&net, &[0, 1, 2], 4, 30, "the majority side of a 3/1 partition");
    let behind = net.seq(3);
    assert!(behind + 2 <= net.seq(0), "the cut-off node kept up ({behind} vs {})", net.seq(0));
    set_partition(&relays, &[]);
    let target = net.seq(0) + 1;
    assert!(net.wait_for(40, |n| n.seq(3) >= target), "node 3 did not catch up after the partition: {}", net.log(3));
    assert_no_fork(&net, &all);

    // Every datagram 120 ms late (a round trip of 240 ms at a 400 ms
    // ledger): slower, still one history.
    for r in relays.values() {
        r.delay_ms.store(120, Ordering::Relaxed);
    }
    assert_closing(&net, &all, 3, 40, "with 120 ms of delay on every link");
    assert_no_fork(&net, &all);
}

// ---------------------------------------------------------------------------
// A wrong clock

fn libfaketime() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1");
    assert!(p.exists(), "libfaketime is missing: scripts/test.sh installs it (apt-get install libfaketime)");
    p
}

#[test]
fn a_validator_with_a_wrong_clock_cannot_push_close_times_ahead_and_nobody_forks() {
    let lib = libfaketime();
    let mut net = Network::start("watt-e2e-clock", 4, 400, 3600);
    assert!(net.wait_for(60, |n| n.seq(0) >= 3), "network did not start: {}", net.log(0));
    let all = [0usize, 1, 2, 3];
    for skew in ["+60s", "-60s"] {
        // Validator 3 restarts with its clock a minute off (libfaketime
        // shifts what the process reads from the system clock).
        net.kill(3);
        net.start_node_with_env(
            3,
            &[
                ("LD_PRELOAD", lib.to_str().unwrap()),
                ("FAKETIME", skew),
                ("DONT_FAKE_MONOTONIC", "1"),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ],
        );
        assert_closing(&net, &[0, 1, 2], 4, 30, &format!("honest validators with node 3 at {skew}"));
        let target = net.seq(0);
        assert!(
            net.wait_for(40, |n| n.seq(3) >= target),
            "node 3 at {skew} does not follow the ledger: {}",
            net.log(3)
        );
        let upto = assert_no_fork(&net, &all);
        // SPEC §4: a close time is never more than 5 s past an honest clock.
        let now = watt_node::node::now_ms();
        let headers = headers(&net, 0, upto.saturating_sub(8).max(2), upto);
        assert!(!headers.is_empty());
        for h in &headers {
            assert!(
                h.close_time <= now + 5_000,
                "ledger {} closes at {} with node 3 at {skew}, now {now}",
                h.seq,
                h.close_time
            );
        }
    }
}
