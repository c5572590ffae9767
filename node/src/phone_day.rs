//! `watt-node bench phone-day`: one phone through a day as people use it,
//! against validators running as their own processes (so this process's CPU
//! is the phone's): the app opened cold (a new process: stored tip, new
//! connections) with the tap, following pushed headers while it is open;
//! one background run on battery for the PoSt commit and reveal of its
//! sector; the app opened again after the day's distribution, warm, where
//! the reward is seen. Bytes are QUIC's own UDP counts (handshakes included).

use crate::load::start_validator_processes;
use serde_json::{json, Value as Json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use watt_client::{ClientConfig, ClientEvent, FileKeyStore, SectorPhase, WattClient};
use watt_core::address::AccountId;
use watt_core::crypto::Keypair;
use watt_core::ledger::Params;
use watt_core::mnemonic::Mnemonic;
use watt_core::storage::power::{DeviceFacts, Network, Thermal};

/// Mainnet's donation in the goal: 16 GiB in 64 MiB sectors.
const GOAL_DONATED_BYTES: u64 = 16 << 30;
const MAINNET_SECTOR_BYTES: u64 = 64 << 20;

/// Options of one run.
#[derive(Debug, Clone, Copy)]
pub struct PhoneDay {
    pub validators: usize,
    pub ledger_ms: u64,
    pub day_seconds: u64,
    /// How long each app open follows the network.
    pub open_seconds: u64,
    /// While open, the balance is proven again this often (and whenever a
    /// transaction is pending); every pushed header is verified regardless.
    pub account_every_ms: u64,
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces) start at state.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn on_battery() -> DeviceFacts {
    DeviceFacts {
        battery_percent: 80,
        charging: false,
        thermal: Thermal::Nominal,
        low_power_mode: false,
        network: Network::Unmetered,
        free_bytes: 40 << 30,
        total_bytes: 128 << 30,
        screen_on: false,
    }
}

/// One measured step: CPU, bytes and wall time between two snapshots.
struct Step {
    name: &'static str,
    cpu: f64,
    up: u64,
    down: u64,
    wall: f64,
    /// The wallet's own counters over the step: connections made, requests.
    connects: u64,
    requests: u64,
    extra: Json,
}

impl Step {
    fn json(&self) -> Json {
        json!({ "step": self.name, "cpu_s": self.cpu, "bytes_up": self.up, "bytes_down": self.down,
                "wall_s": self.wall, "connects": self.connects, "requests": self.requests, "detail": self.extra })
    }
}

async fn open(dir: &Path, genesis: &watt_core::ledger::Genesis) -> Result<WattClient, String> {
    let config = ClientConfig { nodes_wanted: 3, selection_seed: Some(1), ..ClientConfig::default() };
    let keys = Arc::new(FileKeyStore::new(dir.join("device.key")));
    WattClient::open(dir, genesis.clone(), config, keys).await.map_err(|e| e.to_string())
}

async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> F,
) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        if Instant::now() > end {
            return Err(format!("{what} did not happen within {secs} s"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

async fn day_of(c: &WattClient) -> u64 {
    c.status().await.ok().and_then(|s| s.day).unwrap_or(0)
}

/// Before the measured day: a wallet, a sealed and proven (active) sector.
async fn set_up(dir: &Path, genesis: &watt_core::ledger::Genesis, words: &Mnemonic) -> Result<u64, String> {
    let c = open(dir, genesis).await?;
    c.restore_wallet(&words.phrase(), false).map_err(|e| e.to_string())?;
    until("a verified ledger", 60, || async { c.refresh().await.is_ok() }).await?;
    let shape = watt_core::storage::graph::SectorShape { sector_bytes: 1 << 20, layers: genesis.params.sector_layers };
    c.donate(1 << 20, shape).map_err(|e| e.to_string())?;
    let facts = DeviceFacts::plugged_in_desktop();
    until("an active sector", 180, || async {
        let _ = c.run_background(&facts, 2_000).await;
        c.storage_status().is_ok_and(|s| s.sectors.iter().any(|x| x.phase == SectorPhase::Active))
    })
    .await?;
    let day = day_of(&c).await;
    c.disconnect().await;
    Ok(day)
}

/// Snapshots around `work`, on client `c`.
async fn measure<T>(
    name: &'static str,
    c: &WattClient,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<(Step, T), String> {
    let (cpu0, (up0, down0), t, n0) = (cpu_seconds(), c.traffic().await, Instant::now(), c.net_stats());
    let out = work.await?;
    let ((up1, down1), n1) = (c.traffic().await, c.net_stats());
    let step = Step {
        name,
        cpu: cpu_seconds() - cpu0,
        up: up1 - up0,
        down: down1 - down0,
        wall: t.elapsed().as_secs_f64(),
        connects: n1.connects - n0.connects,
        requests: n1.requests - n0.requests,
        extra: Json::Null,
    };
    Ok((step, out))
}

/// An app open: a sync, following pushed headers for `secs`, then closed.
async fn app_open(c: &WattClient, account_every_ms: u64, secs: u64, tap: bool) -> Result<Json, String> {
    let pushed0 = c.net_stats().pushed_headers;
    c.balance().await.map_err(|e| e.to_string())?;
    c.start_sync(account_every_ms);
    let tapped = if tap {
        let hash = c.attest(None).await.map_err(|e| e.to_string())?;
        Some(format!("{:?}", c.wait_settled(hash, 60_000).await.map_err(|e| e.to_string())?))
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(secs)).await;
    c.stop_sync();
    Ok(json!({ "pushed_headers": c.net_stats().pushed_headers - pushed0, "tap": tapped }))
}

/// Runs the day and reports it.
pub async fn phone_day(o: PhoneDay) -> Result<Json, String> {
    let dir =
        std::env::temp_dir().join(format!("watt-bench-phone-day-{}-{}", std::process::id(), crate::node::now_ms()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let words = Mnemonic::generate().map_err(|e| e.to_string())?;
    let me = AccountId(Keypair::from_seed(words.account_seed()).map_err(|e| e.to_string())?.public());
    // Devnet's short sector shapes and windows, mainnet's PoSt: its chain
    // steps and samples make the reveal what a phone sends every day.
    let main = Params::mainnet();
    let params = Params {
        post_chain_steps: main.post_chain_steps,
        post_samples: main.post_samples,
        ..Params::devnet(o.ledger_ms, o.day_seconds)
    };
    let result = async {
        let (genesis, _validators) = start_validator_processes(&dir, o.validators, params.clone(), &[me])?;
        let phone = dir.join("phone");
        let active_day = set_up(&phone, &genesis, &words).await?;
        // The measured day starts with the next one: the sector is due in it.
        let c = open(&phone, &genesis).await?;
        until("the next day", o.day_seconds * 2, || async { c.refresh().await.is_ok() && day_of(&c).await > active_day })
            .await?;
        let day = day_of(&c).await;
        drop(c);
        // 1. The morning: the app starts cold (a new process) and taps.
        let c = open(&phone, &genesis).await?;
        let (mut cold, detail) = measure("cold open + tap", &c, app_open(&c, o.account_every_ms, o.open_seconds, true)).await?;
        cold.extra = detail;
        c.disconnect().await;
        // 2. Background, on battery: the PoSt commit and its reveal.
        let (mut post, report) = measure("background PoSt", &c, async {
            c.run_background(&on_battery(), 1_000).await.map_err(|e| e.to_string())
        })
        .await?;
        post.extra = json!({ "submitted": report.duties.submitted, "deferred": report.duties.deferred, "skipped": report.ledger_skipped });
        c.disconnect().await;
        // 3. The day ends and is paid; later the app is opened again, warm.
        // Waited for on a second wallet of the same account (another data
        // directory), so the phone's own counts stay those of its two opens:
        // until the day's reward has been paid into the account.
        let watcher = open(&dir.join("watcher"), &genesis).await?;
        watcher.restore_wallet(&words.phrase(), false).map_err(|e| e.to_string())?;
        until("a verified balance", 60, || async { watcher.balance().await.is_ok() }).await?;
        let before = watcher.balance().await.map_err(|e| e.to_string())?.0;
        until("the day's reward", o.day_seconds * 3, || async {
            tokio::time::sleep(Duration::from_millis(o.ledger_ms)).await;
            watcher.balance().await.is_ok_and(|(b, _)| b > before)
        })
        .await?;
        drop(watcher);
        let (mut warm, detail) = measure("warm open", &c, app_open(&c, o.account_every_ms, o.open_seconds, false)).await?;
        warm.extra = detail;
        let reward = drain_reward(&c, day)?;
        c.disconnect().await;
        let post_goal = post_cpu_at_goal(&phone, &params)?;
        Ok::<Json, String>(report_json(&o, [cold, post, warm], reward, post_goal))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The reward for `day`, from the durable event queue (handled as read).
fn drain_reward(c: &WattClient, day: u64) -> Result<Option<u64>, String> {
    let mut reward = None;
    while let Some(e) = c.next_event().map_err(|e| e.to_string())? {
        if let ClientEvent::RewardPaid { day: d, amount } = &e.event {
            if *d == day {
                reward = Some(amount.units());
            }
        }
        c.event_handled(e.id).map_err(|e| e.to_string())?;
    }
    Ok(reward)
}

/// The PoSt's CPU at 16 GiB donated in mainnet's 64 MiB sectors, scaled from
/// this phone's sector: the walk costs per step (mainnet's steps), the
/// reveal builds the replica tree of each sector a sample touches.
fn post_cpu_at_goal(phone: &Path, p: &Params) -> Result<Json, String> {
    use watt_core::storage::graph::{SectorShape, StackedGraph};
    use watt_core::storage::proof::{post_beacon, ProvenSector};
    use watt_core::storage::prover::{self, ProvingSector};
    let main = Params::mainnet();
    let store = watt_core::storage::seal::FileSealStore::open(&watt_client::storage::sector_dir(phone, 1))
        .map_err(|e| e.to_string())?;
    let shape = SectorShape { sector_bytes: 1 << 20, layers: p.sector_layers };
    let graph = StackedGraph::new(shape)?;
    // Repeated: the process clock ticks in 10 ms steps.
    const REPS: u32 = 20;
    let t = cpu_seconds();
    let mut comm_r_last = watt_core::crypto::Hash256::ZERO;
    for _ in 0..REPS {
        let leaves = watt_core::storage::seal::replica_leaves(&store, &graph).map_err(|e| e.to_string())?;
        comm_r_last = watt_core::merkle::root(&leaves);
    }
    let tree_s_per_mib = (cpu_seconds() - t) / f64::from(REPS);
    let sector = ProvingSector {
        sector: ProvenSector { sector_number: 1, sector_bytes: 1 << 20, comm_r_last },
        layers: p.sector_layers,
        store: &store,
    };
    let t = cpu_seconds();
    let beacon = post_beacon(&watt_core::crypto::Hash256([7; 32]));
    for _ in 0..REPS {
        prover::walk(&beacon, &[1; 32], std::slice::from_ref(&sector), u64::from(main.post_chain_steps))
            .map_err(|e| e.to_string())?;
    }
    let walk_s = (cpu_seconds() - t) / f64::from(REPS);
    let sectors = (GOAL_DONATED_BYTES / MAINNET_SECTOR_BYTES) as f64;
    // Expected distinct sectors among `post_samples` uniform draws.
    let touched = sectors * (1.0 - (1.0 - 1.0 / sectors).powf(f64::from(main.post_samples)));
    let tree_s = touched * tree_s_per_mib * (MAINNET_SECTOR_BYTES >> 20) as f64;
    Ok(json!({
        "donated_bytes": GOAL_DONATED_BYTES, "sectors": sectors, "post_chain_steps": main.post_chain_steps,
        "post_samples": main.post_samples, "walk_cpu_s": walk_s, "sectors_touched_by_samples": touched,
        "tree_cpu_s_per_mib": tree_s_per_mib, "reveal_trees_cpu_s": tree_s,
        // The reveal walks the chain again before opening it.
        "post_cpu_s": 2.0 * walk_s + tree_s,
    }))
}

/// Bytes a reveal's replica paths add in 64 MiB sectors over 1 MiB ones.
fn longer_replica_paths() -> u64 {
    let depth = |bytes: u64| u64::from((bytes / 32).trailing_zeros());
    let extra = depth(MAINNET_SECTOR_BYTES) - depth(1 << 20);
    u64::from(Params::mainnet().post_samples) * extra * 32
}

fn report_json(o: &PhoneDay, steps: [Step; 3], reward: Option<u64>, post_goal: Json) -> Json {
    let [cold, post, warm] = steps;
    let total = |s: &[&Step]| s.iter().map(|x| x.up + x.down).sum::<u64>();
    let pushed =
        cold.extra["pushed_headers"].as_u64().unwrap_or(0) + warm.extra["pushed_headers"].as_u64().unwrap_or(0);
    json!({
        "bench": "phone_day",
        "validators": o.validators, "ledger_ms": o.ledger_ms, "day_seconds": o.day_seconds, "open_seconds": o.open_seconds,
        "account_every_ms": o.account_every_ms,
        "steps": [cold.json(), post.json(), warm.json()],
        "total_bytes": total(&[&cold, &post, &warm]),
        "sync_and_tap_bytes": total(&[&cold, &warm]),
        "post_bytes": total(&[&post]),
        "sync_and_tap_cpu_s": cold.cpu + warm.cpu,
        "post_cpu_s_this_sector": post.cpu,
        "pushed_headers": pushed,
        "reward_seen_units": reward,
        "post_at_16_gib": post_goal,
        // The measured sector is 1 MiB; in mainnet's 64 MiB sectors each
        // sample's replica path is longer by these hashes.
        "total_bytes_with_64_mib_sectors": total(&[&cold, &post, &warm]) + longer_replica_paths(),
    })
}
