//! `watt-node bench load`: validators as real `watt-node run` processes and,
//! in this process, many phone connections (one QUIC connection per client,
//! spread over loopback source addresses 127.0.0.2, .3, …) that tap once and
//! then pay at a fixed total rate above what ledgers can hold. Afterwards
//! every accepted transaction is looked up: applied, dropped by the pool
//! with a reason the sender is told (evicted for a better fee, expired), or
//! lost. Lost must be zero.

use crate::config::{new_network_at, write_network};
use crate::node::{fetch_admin, now_ms, request_on};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::codec::BoundedVec;
use watt_core::crypto::splitmix::SplitMix64;
use watt_core::crypto::{Hash256, Keypair};
use watt_core::ledger::{Attest, Genesis, LedgerHeader, Operation, Params, Transaction, TransactionBody};
use watt_core::wire::{Request, Response, TxRejection};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub validators: usize,
    pub clients: usize,
    /// Payments offered per second, all clients together.
    pub rate: u64,
    pub seconds: u64,
    pub ledger_ms: u64,
    pub max_txs_per_ledger: u32,
    /// Connections per loopback source address.
    pub clients_per_ip: usize,
}

/// Fee levels clients pick from (fee = level × 100 units per operation).
const FEE_LEVELS: u64 = 8;

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    offered: u64,
    /// (hash, fee level, accepted at ms) of every accepted payment.
    accepted: Vec<(Hash256, u64, u64)>,
    attest_accepted: Option<Hash256>,
    rejected: BTreeMap<String, u64>,
    errors: u64,
    /// Outcome of each accepted transaction after the drain.
    applied: Vec<(u64, u64, u64)>, // (fee level, accepted at ms, applied in ledger)
    attest_applied: bool,
    dropped: BTreeMap<String, u64>,
    evicted_by_level: BTreeMap<u64, u64>,
    /// Accepted and still in the accepting validator's pool after the drain.
    still_pending: u64,
    lost: Vec<Hash256>,
}

/// A `watt-node run` process started by a bench; killed when dropped.
pub(crate) struct Validator {
    child: std::process::Child,
    pub(crate) listen: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) node: NodeId,
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback UDP port free right now (bound, then released).
fn free_port() -> Result<u16, String> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(s.local_addr().map_err(|e| e.to_string())?.port())
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn start_validators(
    dir: &Path,
    opts: &LoadOptions,
    founders: &[AccountId],
) -> Result<(Genesis, Vec<Validator>), String> {
    let mut params = Params::devnet(opts.ledger_ms, 86_400);
    params.max_txs_per_ledger = opts.max_txs_per_ledger;
    start_validator_processes(dir, opts.validators, params, founders)
}

/// Writes a new network under `dir` and starts each validator as its own
/// `watt-node run` process (this program), so what the bench measures in its
/// own process is the client alone.
pub(crate) fn start_validator_processes(
    dir: &Path,
    validators: usize,
    params: Params,
    founders: &[AccountId],
) -> Result<(Genesis, Vec<Validator>), String> {
    let listen: Vec<SocketAddr> = (0..validators)
        .map(|_| free_port().map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)))
        .collect::<Result<_, _>>()?;
    let admin: Vec<SocketAddr> = (0..validators)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let net = new_network_at("WATT load", &listen, Some(&admin), params, now_ms() / 1000, founders)?;
    let configs = write_network(dir, &net).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut validators = Vec::new();
    for (i, cfg) in configs.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("node-{i}.log"))).map_err(|e| e.to_string())?;
        let child = std::process::Command::new(&exe)
            .args(["run", "--config"])
            .arg(cfg)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start validator {i}: {e}"))?;
        validators.push(Validator {
            child,
            listen: listen[i],
            admin: admin[i],
            node: net.genesis.validators[i].node_id,
        });
    }
    Ok((net.genesis, validators))
}

async fn status(v: &Validator) -> Option<Json> {
    serde_json::from_str(&fetch_admin(v.admin, "/status").await.ok()?).ok()
}

async fn headers(ep: &quinn::Endpoint, v: &Validator, from: u64, to: u64) -> Vec<LedgerHeader> {
    let mut out = Vec::new();
    let mut next = from;
    while next <= to {
        let count = (to - next + 1).min(256) as u32;
        match crate::node::phone_request(ep, v.listen, &v.node, &Request::GetHeaders { from: next, count }).await {
            Ok(Response::Headers { headers }) if !headers.is_empty() => {
                next += headers.len() as u64;
                out.extend(headers.iter().cloned());
            }
            _ => break,
        }
    }
    out
}

/// One request with a body of raw bytes; the answer, if any.
async fn raw_request(conn: &quinn::Connection, body: &[u8]) -> Option<Response> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    send.write_all(&frame).await.ok()?;
    send.finish().ok()?;
    let answer = watt_client::net::read_frame(&mut recv, watt_core::wire::MAX_FRAME).await.ok()??;
    watt_core::codec::decode::<Response>(&answer).ok()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn reason_name(r: &TxRejection) -> String {
    match r {
        TxRejection::BadSequence { .. } => "BadSequence".into(),
        other => format!("{other:?}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_client(
    conn: quinn::Connection,
    key: Keypair,
    genesis: Arc<Genesis>,
    payees: Arc<Vec<AccountId>>,
    anchor: (u64, Hash256),
    start: Instant,
    offer_until: Instant,
    check_at: Instant,
    interval: Duration,
    seed: u64,
) -> ClientLog {
    let network = genesis.network_id();
    let me = AccountId(key.public());
    let mut rng = SplitMix64::new(seed);
    let mut log = ClientLog::default();
    let mut seq = 1u64;
    let sign = |seq: u64, fee: u64, op: Operation| -> Option<Transaction> {
        let ops = BoundedVec::try_from_vec(vec![op]).ok()?;
        Some(TransactionBody { source: me, seq_num: seq, fee: Amount(fee), max_ledger: None, ops }.sign(&key, &network))
    };
    // The day's tap first (the fee-free lane).
    let tap = Operation::Attest(Attest {
        day: 0,
        anchor_seq: anchor.0,
        anchor_hash: anchor.1,
        invite: None,
        device_token: None,
    });
    if let Some(tx) = sign(seq, 0, tap) {
        match request_on(&conn, &Request::SubmitTx(tx)).await {
            Ok(Response::TxAccepted { hash }) => {
                log.attest_accepted = Some(hash);
                seq += 1;
            }
            Ok(Response::TxRejected { reason, .. }) => {
                *log.rejected.entry(format!("attest {}", reason_name(&reason))).or_insert(0) += 1
            }
            _ => log.errors += 1,
        }
    }
    // Payments on a fixed schedule, starting at a random phase.
    let mut next = start + interval.mul_f64((rng.next_u64() % 1000) as f64 / 1000.0);
    while next < offer_until {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let level = 1 + rng.next_u64() % FEE_LEVELS;
        let to = payees[(rng.next_u64() % payees.len() as u64) as usize];
        let Some(tx) = sign(seq, level * 100, Operation::Pay { to, amount: Amount(1) }) else { continue };
        log.offered += 1;
        match request_on(&conn, &Request::SubmitTx(tx)).await {
            Ok(Response::TxAccepted { hash }) => {
                log.accepted.push((hash, level, now_ms()));
                seq += 1;
            }
            Ok(Response::TxRejected { reason, .. }) => {
                if let TxRejection::BadSequence { expected } = reason {
                    // An earlier payment was dropped: carry on from where the ledger is.
                    seq = expected;
                }
                *log.rejected.entry(reason_name(&reason)).or_insert(0) += 1;
            }
            _ => log.errors += 1,
        }
    }
    // After the drain: where did each accepted transaction go?
    tokio::time::sleep_until(check_at.into()).await;
    let mut lookups: Vec<(Hash256, Option<(u64, u64)>)> =
        log.accepted.iter().map(|(h, l, t)| (*h, Some((*l, *t)))).collect();
    lookups.extend(log.attest_accepted.map(|h| (h, None)));
    for (hash, payment) in lookups {
        let mut answer = request_on(&conn, &Request::GetTx { hash }).await;
        if answer.is_err() {
            // The request budget is per second; one retry after a pause.
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            answer = request_on(&conn, &Request::GetTx { hash }).await;
        }
        match (answer, payment) {
            (Ok(Response::Tx { header_seq, .. }), Some((level, at))) => log.applied.push((level, at, header_seq)),
            (Ok(Response::Tx { .. }), None) => log.attest_applied = true,
            (Ok(Response::TxRejected { reason, .. }), payment) => {
                if let (TxRejection::Evicted, Some((level, _))) = (&reason, payment) {
                    *log.evicted_by_level.entry(level).or_insert(0) += 1;
                }
                *log.dropped.entry(reason_name(&reason)).or_insert(0) += 1;
            }
            (Ok(Response::TxAccepted { .. }), _) => log.still_pending += 1,
            (Ok(Response::TxUnknown { .. }), _) => log.lost.push(hash),
            _ => log.errors += 1,
        }
    }
    log
}

pub async fn run(opts: LoadOptions) -> Result<Json, String> {
    if opts.clients == 0 || opts.validators == 0 || opts.rate == 0 || opts.clients_per_ip == 0 {
        return Err("clients, validators, rate and clients per address must be positive".into());
    }
    let ips_needed = opts.clients.div_ceil(opts.clients_per_ip);
    if ips_needed > 250 * 250 {
        return Err(format!(
            "{} clients at {} per address need more loopback addresses than 127.0.x.y has",
            opts.clients, opts.clients_per_ip
        ));
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("watt-load-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let keys: Vec<Keypair> =
        (0..opts.clients).map(|_| Keypair::generate().map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    let accounts: Vec<AccountId> = keys.iter().map(|k| AccountId(k.public())).collect();
    let (genesis, validators) = start_validators(&dir, &opts, &accounts)?;
    let result = drive(&opts, &dir, keys, accounts, genesis, &validators).await;
    drop(validators); // kills them
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn drive(
    opts: &LoadOptions,
    dir: &Path,
    keys: Vec<Keypair>,
    accounts: Vec<AccountId>,
    genesis: Genesis,
    validators: &[Validator],
) -> Result<Json, String> {
    // Wait for the network to close its first ledgers.
    let ready = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seqs = Vec::new();
        for v in validators {
            seqs.push(status(v).await.and_then(|s| s["ledger"]["seq"].as_u64()).unwrap_or(0));
        }
        if seqs.iter().all(|s| *s >= 3) {
            break;
        }
        if Instant::now() > ready {
            let log = std::fs::read_to_string(dir.join("node-0.log")).unwrap_or_default();
            return Err(format!("validators did not start closing ledgers (seqs {seqs:?}): {log}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let probe = quinn::Endpoint::client("127.0.0.1:0".parse().map_err(|_| "address")?).map_err(|e| e.to_string())?;
    let start_seq = status(&validators[0]).await.and_then(|s| s["ledger"]["seq"].as_u64()).unwrap_or(0);
    let anchor = headers(&probe, &validators[0], start_seq, start_seq)
        .await
        .first()
        .map(|h| (h.seq, h.hash()))
        .ok_or("no anchor header")?;

    // Connect every client: client k from 127.0.(2 + k / per_ip / 250).(2 + k / per_ip % 250).
    let connect_started = Instant::now();
    let mut endpoints: Vec<quinn::Endpoint> = Vec::new();
    let mut conns = Vec::new();
    for k in 0..opts.clients {
        let ip_index = k / opts.clients_per_ip;
        if ip_index == endpoints.len() {
            let ip = Ipv4Addr::new(127, 0, 2 + (ip_index / 250) as u8, 2 + (ip_index % 250) as u8);
            let ep = quinn::Endpoint::client(SocketAddr::new(IpAddr::V4(ip), 0))
                .map_err(|e| format!("cannot bind {ip}: {e}"))?;
            endpoints.push(ep);
        }
        let v = &validators[k % validators.len()];
        let cfg = crate::tls::client_config(&v.node, None).map_err(|e| e.to_string())?;
        conns.push(endpoints[ip_index].connect_with(cfg, v.listen, "watt-node").map_err(|e| e.to_string())?);
    }
    let mut connected = Vec::new();
    for c in conns {
        connected.push(c.await.map_err(|e| format!("a client could not connect: {e}"))?);
    }
    let connect_s = connect_started.elapsed().as_secs_f64();

    // Offer load.
    let genesis = Arc::new(genesis);
    let payees = Arc::new(accounts);
    let start = Instant::now();
    let offer_until = start + Duration::from_secs(opts.seconds);
    let drain = Duration::from_millis(opts.ledger_ms * 10).max(Duration::from_secs(6));
    let check_at = offer_until + drain;
    let interval = Duration::from_secs_f64(opts.clients as f64 / opts.rate as f64);
    let mut tasks = Vec::new();
    for (k, (conn, key)) in connected.iter().cloned().zip(keys).enumerate() {
        tasks.push(tokio::spawn(run_client(
            conn,
            key,
            genesis.clone(),
            payees.clone(),
            anchor,
            start,
            offer_until,
            check_at,
            interval,
            k as u64 + 1,
        )));
    }
    // Watch the pools while the load runs.
    let pending_peak = Arc::new(AtomicU64::new(0));
    let watcher = {
        let admins: Vec<SocketAddr> = validators.iter().map(|v| v.admin).collect();
        let peak = pending_peak.clone();
        tokio::spawn(async move {
            while Instant::now() < check_at {
                for a in &admins {
                    if let Some(p) = fetch_admin(*a, "/status")
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_str::<Json>(&b).ok())
                        .and_then(|s| s["pending_txs"].as_u64())
                    {
                        peak.fetch_max(p, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.map_err(|e| format!("a client task failed: {e}"))?);
    }
    let _ = watcher.await;
    let end_seq = status(&validators[0]).await.and_then(|s| s["ledger"]["seq"].as_u64()).unwrap_or(0);

    // Per-address limit: one more address opens one connection over the
    // limit; the last must be refused.
    let per_ip_limit = crate::config::default_max_connections_per_ip();
    let extra_ip = Ipv4Addr::new(127, 0, 1, 250);
    let extra = quinn::Endpoint::client(SocketAddr::new(IpAddr::V4(extra_ip), 0))
        .map_err(|e| format!("cannot bind {extra_ip}: {e}"))?;
    let v0 = &validators[0];
    let mut held = Vec::new();
    let mut refused_at = None;
    for i in 0..=per_ip_limit {
        let cfg = crate::tls::client_config(&v0.node, None).map_err(|e| e.to_string())?;
        match extra.connect_with(cfg, v0.listen, "watt-node").map_err(|e| e.to_string())?.await {
            Ok(c) => held.push(c),
            Err(_) => {
                refused_at = Some(i + 1);
                break;
            }
        }
    }
    drop(held);

    // Per-connection budget: a burst of twice the requests a connection may
    // make in a second; the node serves up to the budget and then hangs up.
    let burst_ip = Ipv4Addr::new(127, 0, 1, 251);
    let burst = quinn::Endpoint::client(SocketAddr::new(IpAddr::V4(burst_ip), 0))
        .map_err(|e| format!("cannot bind {burst_ip}: {e}"))?;
    let cfg = crate::tls::client_config(&v0.node, None).map_err(|e| e.to_string())?;
    let conn = burst
        .connect_with(cfg, v0.listen, "watt-node")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("burst connection: {e}"))?;
    let budget = crate::node::PHONE_REQS_PER_SEC as usize;
    let requests: Vec<_> = (0..budget * 2)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { request_on(&conn, &Request::GetLatest).await.is_ok() })
        })
        .collect();
    let mut burst_served = 0;
    for r in requests {
        burst_served += usize::from(r.await.unwrap_or(false));
    }
    let burst_closed = conn.close_reason().is_some();

    // Per-address budget: connections from one more address together make
    // more requests in a second than the address may (each connection
    // staying under its own budget); the rest are answered "too many".
    // The requests are malformed on purpose: the node answers them without
    // the herder, so the burst lands inside one second even here.
    let crowd_ip = Ipv4Addr::new(127, 0, 1, 252);
    let crowd = quinn::Endpoint::client(SocketAddr::new(IpAddr::V4(crowd_ip), 0))
        .map_err(|e| format!("cannot bind {crowd_ip}: {e}"))?;
    let per_conn = budget * 3 / 4;
    let conns_needed = (crate::config::default_max_requests_per_ip_per_sec() as usize * 3 / 2).div_ceil(per_conn);
    let mut crowd_conns = Vec::new();
    for _ in 0..conns_needed {
        let cfg = crate::tls::client_config(&v0.node, None).map_err(|e| e.to_string())?;
        crowd_conns.push(
            crowd
                .connect_with(cfg, v0.listen, "watt-node")
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| format!("crowd connection: {e}"))?,
        );
    }
    let requests: Vec<_> = crowd_conns
        .iter()
        .flat_map(|c| (0..per_conn).map(move |_| c.clone()))
        .map(|c| tokio::spawn(async move { raw_request(&c, &[0xff; 8]).await }))
        .collect();
    let (mut crowd_served, mut crowd_limited) = (0usize, 0usize);
    for r in requests {
        match r.await {
            Ok(Some(Response::Error { message })) if message.as_slice().starts_with(b"too many") => crowd_limited += 1,
            Ok(Some(_)) => crowd_served += 1,
            _ => {}
        }
    }

    // Figures.
    let rss: Vec<f64> = validators.iter().map(|v| peak_rss_mib(v.child.id()).unwrap_or(0.0)).collect();
    let chain = headers(&probe, &validators[0], start_seq, end_seq).await;
    let close_of: BTreeMap<u64, u64> = chain.iter().map(|h| (h.seq, h.close_time)).collect();
    let mut intervals: Vec<u64> = chain.windows(2).map(|w| w[1].close_time.saturating_sub(w[0].close_time)).collect();
    intervals.sort_unstable();
    let mut offered = 0;
    let mut accepted = 0;
    let mut applied = 0;
    let mut lost = Vec::new();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = 0;
    let mut still_pending = 0;
    let mut taps = (0u64, 0u64);
    let mut by_level: BTreeMap<u64, (Vec<u64>, u64, u64)> = BTreeMap::new(); // waits, accepted, evicted
    let mut per_ledger: BTreeMap<u64, u64> = BTreeMap::new();
    for l in &logs {
        offered += l.offered;
        accepted += l.accepted.len() as u64;
        applied += l.applied.len() as u64;
        lost.extend(l.lost.iter().copied());
        errors += l.errors;
        still_pending += l.still_pending;
        taps.0 += u64::from(l.attest_accepted.is_some());
        taps.1 += u64::from(l.attest_applied);
        for (k, v) in &l.rejected {
            *rejected.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &l.dropped {
            *dropped.entry(k.clone()).or_insert(0) += v;
        }
        for (_, level, _) in &l.accepted {
            by_level.entry(*level).or_default().1 += 1;
        }
        for (level, n) in &l.evicted_by_level {
            by_level.entry(*level).or_default().2 += n;
        }
        for (level, at, seq) in &l.applied {
            *per_ledger.entry(*seq).or_insert(0) += 1;
            if let Some(close) = close_of.get(seq) {
                by_level.entry(*level).or_default().0.push(close.saturating_sub(*at));
            }
        }
    }
    let fee_levels: Vec<Json> = by_level
        .iter_mut()
        .map(|(level, (waits, acc, ev))| {
            waits.sort_unstable();
            json!({ "fee_per_op": level * 100, "accepted": acc, "evicted": ev, "applied": waits.len(), "median_wait_ms": percentile(waits, 0.5) })
        })
        .collect();
    let secs = opts.seconds as f64;
    Ok(json!({
        "bench": "load",
        "validators": opts.validators,
        "clients": opts.clients,
        "source_addresses": opts.clients.div_ceil(opts.clients_per_ip),
        "connect_s": connect_s,
        "seconds": opts.seconds,
        "ledger_ms": opts.ledger_ms,
        "max_txs_per_ledger": opts.max_txs_per_ledger,
        "offered_tx_per_s": offered as f64 / secs,
        "accepted_tx_per_s": accepted as f64 / secs,
        // Applied during the offer and the drain, so per ledger, not per second.
        "applied_per_ledger_mean": applied as f64 / end_seq.saturating_sub(start_seq).max(1) as f64,
        "offered": offered,
        "accepted": accepted,
        "applied": applied,
        "max_applied_in_one_ledger": per_ledger.values().copied().max().unwrap_or(0),
        "attestations": { "accepted": taps.0, "applied": taps.1 },
        "rejected_at_submit": rejected,
        "dropped_after_accept": dropped,
        "still_pending": still_pending,
        "lost": lost.len(),
        "lost_hashes": lost.iter().take(10).map(|h| h.to_hex()).collect::<Vec<_>>(),
        "client_errors": errors,
        "ledgers_closed": end_seq.saturating_sub(start_seq),
        "close_ms_median": percentile(&intervals, 0.5),
        "close_ms_p99": percentile(&intervals, 0.99),
        "pending_peak": pending_peak.load(Ordering::Relaxed),
        // What one validator's pool may hold: four ledgers of each lane.
        "pool_capacity": (u64::from(genesis.params.max_txs_per_ledger) + u64::from(genesis.params.max_attestations_per_ledger)) * 4,
        "peak_rss_mib": rss,
        "fee_levels": fee_levels,
        "per_ip_limit": per_ip_limit,
        "per_ip_refused_at_connection": refused_at,
        "per_connection_budget_per_s": budget,
        "burst_requests": budget * 2,
        "burst_served": burst_served,
        "burst_connection_closed": burst_closed,
        "per_ip_requests_per_s": crate::config::default_max_requests_per_ip_per_sec(),
        "crowd_requests": conns_needed * per_conn,
        "crowd_served": crowd_served,
        "crowd_refused": crowd_limited,
    }))
}

pub fn print_text(r: &Json) {
    println!(
        "clients {} over {} addresses, {} validators, {} s at {} ms ledgers (max {} txs/ledger)",
        r["clients"], r["source_addresses"], r["validators"], r["seconds"], r["ledger_ms"], r["max_txs_per_ledger"]
    );
    println!(
        "offered {:.0} tx/s, accepted {:.0} tx/s, applied {:.1} per ledger (most in one ledger {}); still pending {}, lost {}",
        r["offered_tx_per_s"].as_f64().unwrap_or(0.0),
        r["accepted_tx_per_s"].as_f64().unwrap_or(0.0),
        r["applied_per_ledger_mean"].as_f64().unwrap_or(0.0),
        r["max_applied_in_one_ledger"],
        r["still_pending"],
        r["lost"]
    );
    println!(
        "ledgers closed {}, close interval median {} ms, p99 {} ms",
        r["ledgers_closed"], r["close_ms_median"], r["close_ms_p99"]
    );
    println!(
        "pending peak {} (pool bound {}), peak RSS per validator (MiB) {}",
        r["pending_peak"], r["pool_capacity"], r["peak_rss_mib"]
    );
    println!("rejected at submit {}, dropped after accept {}", r["rejected_at_submit"], r["dropped_after_accept"]);
    println!("attestations {}", r["attestations"]);
    for l in r["fee_levels"].as_array().into_iter().flatten() {
        println!(
            "  fee {:>4}: accepted {:>6} evicted {:>6} applied {:>6} median wait {:>6} ms",
            l["fee_per_op"], l["accepted"], l["evicted"], l["applied"], l["median_wait_ms"]
        );
    }
    println!("per-address limit {}: connection {} refused", r["per_ip_limit"], r["per_ip_refused_at_connection"]);
    println!(
        "per-connection budget {}/s: a burst of {} got {} answers, connection closed: {}",
        r["per_connection_budget_per_s"], r["burst_requests"], r["burst_served"], r["burst_connection_closed"]
    );
    println!(
        "per-address budget {}/s: {} requests over many connections, {} served, {} refused",
        r["per_ip_requests_per_s"], r["crowd_requests"], r["crowd_served"], r["crowd_refused"]
    );
}
