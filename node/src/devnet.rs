//! `watt-node devnet`: a whole network on this machine. N validators in one
//! process on loopback QUIC, each with its own redb; M phones, each a real
//! `WattClient` with its own data dir, that tap once a day and pay each
//! other; the first `storage_phones` of them also donate small sectors, seal
//! them, and prove them every day (SPEC §6).

use crate::config::{new_network_at, NodeConfig};
use crate::node::{self, NodeHandle};
use crate::store::{LedgerRead, Store};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use watt_client::{AttestState, ClientConfig, FileKeyStore, WattClient};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::{Amount, UNITS_PER_WATT};
use watt_core::crypto::Keypair;
use watt_core::ledger::{Genesis, LedgerHeader, Params};
use watt_core::mnemonic::Mnemonic;
use watt_core::storage::graph::SectorShape;
use watt_core::storage::power::DeviceFacts;

#[derive(Debug, Clone)]
pub struct DevnetOptions {
    pub validators: usize,
    pub phones: usize,
    pub days: u64,
    pub day_seconds: u64,
    pub ledger_ms: u64,
    pub data_dir: Option<PathBuf>,
    pub json: bool,
    /// Phones that donate storage, and how: sectors each, MiB per sector, layers.
    pub storage_phones: usize,
    /// Replay validator 0's stored inputs through the simulator's ledger and
    /// say per day whether headers and the day's record agree.
    pub compare_daily: bool,
    pub sectors: u64,
    pub sector_mib: u64,
    pub layers: u32,
}

/// Ports free on loopback right now (bound then released).
fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<std::net::UdpSocket> =
        (0..n).filter_map(|_| std::net::UdpSocket::bind("127.0.0.1:0").ok()).collect();
    socks.iter().filter_map(|s| s.local_addr().ok().map(|a| a.port())).collect()
}

/// Starts `n` validators in this process on free loopback ports, with their
/// files under `dir`.
pub async fn start_local(
    dir: &std::path::Path,
    n: usize,
    params: Params,
    founders: &[AccountId],
) -> Result<(Vec<NodeHandle>, Vec<NodeConfig>, Genesis), String> {
    let ports = free_ports(n);
    if ports.len() != n {
        return Err("could not find free loopback ports".into());
    }
    let genesis_time = node::now_ms() / 1000;
    let addrs: Vec<SocketAddr> = ports.iter().map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *p)).collect();
    let net = new_network_at("WATT devnet", &addrs, None, params, genesis_time, founders)?;
    crate::config::write_network(dir, &net).map_err(|e| e.to_string())?;
    let mut handles: Vec<NodeHandle> = Vec::new();
    let mut configs: Vec<NodeConfig> = Vec::new();
    for (i, (key, mut cfg)) in net.keys.iter().zip(net.configs.clone()).enumerate() {
        cfg.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ports[i]);
        cfg.data_dir = dir.join(format!("data-{i}"));
        cfg.admin = None;
        // Every phone of a devnet dials from 127.0.0.1.
        cfg.max_connections_per_ip = usize::MAX;
        cfg.max_requests_per_ip_per_sec = u32::MAX;
        for p in cfg.peers.iter_mut() {
            let j = net.keys.iter().position(|k| NodeId(k.public()) == p.node_id).unwrap_or(0);
            p.address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ports[j]);
        }
        configs.push(cfg.clone());
        handles.push(node::start_with(cfg, net.genesis.clone(), key.clone()).await.map_err(|e| e.to_string())?);
    }
    Ok((handles, configs, net.genesis))
}

pub async fn run(opts: DevnetOptions) -> Result<Json, String> {
    let dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("watt-devnet-{}-{}", std::process::id(), node::now_ms())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Phones are founding accounts (SPEC §5 defaults table): their words
    // exist before genesis names them.
    let phones: Vec<Mnemonic> =
        (0..opts.phones).map(|_| Mnemonic::generate().map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    let founders: Vec<AccountId> = phones
        .iter()
        .map(|w| Keypair::from_seed(w.account_seed()).map(|k| AccountId(k.public())).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut params = Params::devnet(opts.ledger_ms, opts.day_seconds);
    params.attest_grace_ledgers = 2;
    params.sector_layers = opts.layers;
    // Devnet sectors are tiny: pay them visibly (SPEC §5 lets the devnet set its own cap).
    params.storage_pay_cap_per_gib_day = Amount(100_000 * UNITS_PER_WATT);
    let shape = SectorShape { sector_bytes: opts.sector_mib << 20, layers: opts.layers };
    if opts.storage_phones > 0 && opts.sectors > 0 {
        shape.validate()?;
        if watt_client::storage::sector_size_of(shape.sector_bytes).is_none() {
            return Err(format!("--sector-mib {} is not a protocol sector size (1, 16, 64 or 256)", opts.sector_mib));
        }
    }
    let (handles, configs, genesis) = start_local(&dir, opts.validators, params, &founders).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let verified = Arc::new(AtomicU64::new(0));
    let mut phone_tasks = Vec::new();
    let mut storage_dirs = Vec::new();
    for (i, words) in phones.iter().enumerate() {
        let client = open_phone(&dir.join(format!("phone-{i}")), &genesis, words, i, opts.validators).await?;
        let payee = founders[(i + 1) % founders.len()];
        let pays = i % 3 == 0;
        if i < opts.storage_phones && opts.sectors > 0 {
            storage_dirs.push(dir.join(format!("phone-{i}")));
            client.donate(opts.sectors * shape.sector_bytes, shape).map_err(|e| format!("phone {i}: {e}"))?;
        }
        phone_tasks.push(tokio::spawn(phone_loop(client, payee, pays, stop.clone(), verified.clone(), opts.ledger_ms)));
    }

    let genesis_time = genesis.genesis_time;
    let started = Instant::now();
    let deadline = Duration::from_secs(opts.days * opts.day_seconds * 3 + 60);
    let mut last_day_printed = u64::MAX;
    // The daily comparison, at each day boundary, of validator 0's stored
    // inputs with the simulator's ledger, beside the running node.
    let mut compared_through = 0u64;
    let mut comparisons: Vec<(u64, tokio::task::JoinHandle<Result<bool, crate::compare::Difference>>)> = Vec::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(st) = handles[0].status().await else { break };
        let day = st["ledger"]["day"].as_u64().unwrap_or(0);
        let seq = st["ledger"]["seq"].as_u64().unwrap_or(0);
        if day != last_day_printed && !opts.json {
            eprintln!(
                "day {day}: ledger {seq}, {} phones verified a header, {:.1}s",
                verified.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
            last_day_printed = day;
        }
        while opts.compare_daily && compared_through < day.min(opts.days) {
            let (d, reader, genesis) = (compared_through, handles[0].reader.clone(), genesis.clone());
            comparisons.push((
                d,
                tokio::task::spawn_blocking(move || {
                    crate::compare::replay(&reader, &genesis).map(|state| state.day_record(d).is_some())
                }),
            ));
            compared_through += 1;
        }
        // Done when the last day's distribution (after its grace ledgers) is in.
        if day >= opts.days && seq > 0 {
            let ledgers_into_day = st["ledger"]["close_time_ms"].as_u64().unwrap_or(0) / 1000
                - genesis_time
                - opts.days * opts.day_seconds;
            if ledgers_into_day * 1000 >= (genesis.params.attest_grace_ledgers + 2) * opts.ledger_ms {
                break;
            }
        }
        if started.elapsed() > deadline || interrupted.load(Ordering::SeqCst) {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in phone_tasks {
        let _ = t.await;
    }
    for h in handles {
        h.stop().await;
    }
    // What the donating phones counted as earned from storage, from their own records.
    let mut storage_earned = 0u64;
    for d in &storage_dirs {
        if let Ok(store) = watt_client::store::ClientStore::open(d) {
            if let Ok(Some(p)) = store.storage_plan() {
                storage_earned = storage_earned.saturating_add(p.earned.units());
            }
        }
    }
    let mut at_boundary = BTreeMap::new();
    for (d, c) in comparisons {
        let r = c.await.map_err(|e| format!("the comparison of day {d} did not finish: {e}"))?;
        at_boundary.insert(d, r);
    }
    let mut summary = summarize(&opts, &configs, &genesis, started.elapsed(), &at_boundary)?;
    summary["storage_phones"] = json!(storage_dirs.len());
    summary["storage_earned"] = json!(storage_earned);
    Ok(summary)
}

/// One simulated phone: a real [`WattClient`] with its own data dir, driven
/// like a person would: open, tap once a day, and (some) pay a friend.
async fn phone_loop(
    client: WattClient,
    payee: AccountId,
    pays: bool,
    stop: Arc<AtomicBool>,
    verified: Arc<AtomicU64>,
    ledger_ms: u64,
) {
    let mut paid_day: Option<u64> = None;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(ledger_ms.max(200))).await;
        // Every answer is verified by the light client; errors (a node
        // restarting, a day boundary) are retried on the next tick.
        if client.refresh().await.is_err() {
            continue;
        }
        verified.fetch_add(1, Ordering::Relaxed);
        let Ok(status) = client.status().await else { continue };
        let Some(day) = status.day else { continue };
        match status.attested_today {
            AttestState::NotYet => {
                if let Err(e) = client.attest(None).await {
                    tracing::debug!(error = %e, "devnet phone: tap not sent");
                }
            }
            AttestState::Confirmed if pays && paid_day != Some(day) && status.pending.is_empty() => {
                match client.pay(payee, Amount(UNITS_PER_WATT), Amount(100_000)).await {
                    Ok(_) => paid_day = Some(day),
                    Err(e) => tracing::debug!(error = %e, "devnet phone: payment not sent"),
                }
            }
            _ => {}
        }
        donate_storage(&client).await;
    }
    client.disconnect().await;
}

/// A phone on its charger: its background run (ledger duties, a short
/// slice of sealing, then the duties sealing made due).
async fn donate_storage(client: &WattClient) {
    let Ok(plan) = client.storage_status() else { return };
    if plan.donated_bytes == 0 {
        return;
    }
    match client.run_background(&DeviceFacts::plugged_in_desktop(), 200).await {
        Ok(r) => {
            if let Some(why) = r.ledger_skipped {
                tracing::debug!(why, "devnet phone: storage duties skipped");
            }
        }
        Err(e) => tracing::debug!(error = %e, "devnet phone: background run"),
    }
}

/// Opens phone `i`'s wallet under `dir`, restored from its words.
async fn open_phone(
    dir: &std::path::Path,
    genesis: &Genesis,
    words: &Mnemonic,
    i: usize,
    validators: usize,
) -> Result<WattClient, String> {
    let config =
        ClientConfig { nodes_wanted: validators.min(3), selection_seed: Some(i as u64), ..ClientConfig::default() };
    let key_store = Arc::new(FileKeyStore::new(dir.join("device.key")));
    let client =
        WattClient::open(dir, genesis.clone(), config, key_store).await.map_err(|e| format!("phone {i}: {e}"))?;
    if client.address().map_err(|e| e.to_string())?.is_none() {
        client.restore_wallet(&words.phrase(), false).map_err(|e| format!("phone {i}: {e}"))?;
    }
    Ok(client)
}

fn summarize(
    opts: &DevnetOptions,
    configs: &[NodeConfig],
    genesis: &Genesis,
    elapsed: Duration,
    at_boundary: &BTreeMap<u64, Result<bool, crate::compare::Difference>>,
) -> Result<Json, String> {
    let stores: Vec<Store> =
        configs.iter().map(|c| Store::open(&c.data_dir).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    let lasts: Vec<u64> = stores.iter().map(|s| s.last_seq().ok().flatten().unwrap_or(0)).collect();
    let common = lasts.iter().copied().min().unwrap_or(0);
    let last = lasts.iter().copied().max().unwrap_or(0);
    let mut agree = true;
    let mut headers = Vec::new();
    for seq in 1..=common {
        let hs: Vec<Option<LedgerHeader>> = stores.iter().map(|s| s.header(seq).ok().flatten()).collect();
        let first = hs[0].as_ref().map(|h| h.hash());
        if first.is_none() || hs.iter().any(|h| h.as_ref().map(|h| h.hash()) != first) {
            agree = false;
        }
        if let Some(h) = hs.into_iter().next().flatten() {
            headers.push(h);
        }
    }
    let mut intervals: Vec<u64> =
        headers.windows(2).skip(1).map(|w| w[1].close_time.saturating_sub(w[0].close_time)).collect();
    intervals.sort_unstable();
    let median_close_ms = intervals.get(intervals.len() / 2).copied().unwrap_or(0);
    let state = stores[0].load_state(genesis).map_err(|e| e.to_string())?.ok_or("no state")?;
    let mut invariant_ok = true;
    for (i, s) in stores.iter().enumerate() {
        let verdict = match s.load_state(genesis) {
            Ok(Some(st)) => st.check_invariant().map_err(|e| e.to_string()),
            Ok(None) => Err("no state".to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = verdict {
            tracing::error!(validator = i, error = %e, "supply invariant check failed");
            invariant_ok = false;
        }
    }
    // The daily comparison: one replay of validator 0's stored inputs.
    let replayed = opts.compare_daily.then(|| crate::compare::replay(&stores[0], genesis));
    let first_difference = at_boundary
        .values()
        .filter_map(|r| r.as_ref().err())
        .chain(replayed.iter().filter_map(|r| r.as_ref().err()))
        .next()
        .map_or(Json::Null, |d| json!({ "ledger": d.ledger, "what": d.what }));
    let mut days = Vec::new();
    let completed = state.header.day.min(opts.days);
    for d in 0..completed {
        let ledgers = headers.iter().filter(|h| h.day == d).count();
        let txs: usize = headers
            .iter()
            .filter(|h| h.day == d)
            .filter_map(|h| stores[0].tx_set(h.seq).ok().flatten())
            .map(|s| s.txs.len())
            .sum();
        let rec = state.day_record(d).cloned().unwrap_or_default();
        let mut day = json!({
            "day": d, "ledgers": ledgers, "txs": txs, "attesters": rec.attesters,
            "minted": rec.emitted.units(), "fees": rec.fees_paid.units(), "distributed": rec.distributed,
            "storage_provers": rec.storage_provers, "proven_bytes": rec.proven_bytes,
        });
        // Compared at the day's end while the network ran; a day that ended
        // as the network stopped, once it stopped.
        match (at_boundary.get(&d), &replayed) {
            (Some(r), _) => {
                day["compare_ok"] = json!(r.as_ref().is_ok_and(|has_record| *has_record));
                day["compared"] = json!("at the day boundary");
            }
            (None, Some(r)) => {
                let ok = r.as_ref().is_ok_and(|replay| replay.day_record(d) == state.day_record(d));
                day["compare_ok"] = json!(ok);
                day["compared"] = json!("after the network stopped");
            }
            (None, None) => {}
        }
        days.push(day);
    }
    Ok(json!({
        "validators": opts.validators,
        "phones": opts.phones,
        "days_completed": completed,
        "last_seq": last,
        "ledger_hashes_agree": agree,
        "median_close_ms": median_close_ms,
        "ledger_ms": opts.ledger_ms,
        "supply_invariant_ok": invariant_ok,
        "total_supply": state.supply().minted.units(),
        "elapsed_s": elapsed.as_secs_f64(),
        "data_dir": configs.first().and_then(|c| c.data_dir.parent()).map(|p| p.display().to_string()),
        "days": days,
        "compare_first_difference": first_difference,
    }))
}
