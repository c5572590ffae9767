//! Storage donation through the `watt` CLI, as a user runs it: a seal killed
//! with SIGKILL again and again resumes and ends at the same commitments as
//! an uninterrupted seal; a sealed sector goes through pre-commit and its
//! seal proof to active on real validators, and lowering the donation
//! terminates it on the ledger.

use std::time::{Duration, Instant};
use watt_core::crypto::Hash256;
use watt_core::storage::graph::{SectorShape, StackedGraph};
use watt_core::storage::seal::{commitments, MemorySealStore, Sealer};
use watt_e2e::{run, Network, TempDir};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn watt(dir: &std::path::Path, genesis: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--data-dir", dir.to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = run("watt", &all, None);
    assert_eq!(out.code, 0, "watt {args:?}: {}{}", out.stdout, out.stderr);
    json(&out.stdout)
}

#[test]
fn storage_run_killed_mid_seal_resumes_to_the_same_comm_r() {
    let long = std::env::var("WATT_LONG_TESTS").is_ok_and(|v| v == "1");
    // Kills × delay stays well under the seal time, so every kill lands mid-seal.
    let (kills, sector_mib, delay_ms) = if long { (20, 128u64, 500) } else { (3, 32u64, 700) };
    let layers = 4u32;
    let net = Network::start("storage", 4, 500, 600);
    assert!(net.wait_for(60, |n| n.seq(0) >= 2), "the network closes ledgers");
    let genesis = net.dir.path().join("genesis.json");
    let wallet = TempDir::new("storage-wallet");
    watt(wallet.path(), &genesis, &["init"]);
    let end = Instant::now() + Duration::from_secs(30);
    while watt(wallet.path(), &genesis, &["status"])["verified_seq"].is_null() {
        assert!(Instant::now() < end, "no verified ledger");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mib = sector_mib.to_string();
    watt(
        wallet.path(),
        &genesis,
        &["storage", "donate", "--mib", &mib, "--sector-mib", &mib, "--layers", &layers.to_string()],
    );

    let mut last_done = 0u64;
    for k in 0..kills {
        let mut child = std::process::Command::new(watt_e2e::bin("watt"))
            .args([
                "--data-dir",
                wallet.path().to_str().unwrap(),
                "--genesis",
                genesis.to_str().unwrap(),
                "storage",
                "run",
                "--until-done",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("watt starts");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let s = watt(wallet.path(), &genesis, &["storage", "status"]);
        let sector = &s["sectors"][0];
        assert_eq!(sector["sealed"], false, "kill {k} landed after the seal finished; make the sector larger: {s}");
        let done = sector["labels_done"].as_u64().unwrap();
        assert!(done > last_done, "kill {k}: no progress past {last_done} labels ({s})");
        last_done = done;
    }
    let s = watt(wallet.path(), &genesis, &["storage", "run", "--until-done"]);
    let sector = &s["sectors"][0];
    assert_eq!(sector["sealed"], true, "{s}");
    let comm_r = sector["comm_r"].as_str().unwrap().to_string();

    // The same sector sealed in one go, in memory.
    let replica_id = Hash256::from_hex(sector["replica_id"].as_str().unwrap()).unwrap();
    let graph = StackedGraph::new(SectorShape { sector_bytes: sector_mib << 20, layers }).unwrap();
    let mut store = MemorySealStore::default();
    let mut sealer = Sealer::resume(graph.clone(), replica_id, &store).unwrap();
    while !sealer.step(&mut store, u64::MAX).unwrap().done {}
    assert_eq!(commitments(&store, &graph).unwrap().comm_r.to_hex(), comm_r);

    // Lowering the donation releases the sector's space.
    let s = watt(
        wallet.path(),
        &genesis,
        &["storage", "donate", "--mib", "0", "--sector-mib", &mib, "--layers", &layers.to_string()],
    );
    assert_eq!(s["used_bytes"], 0);
    assert!(!wallet.path().join("sectors").join("1").exists());
}

/// Runs `watt storage run` until `done` holds for its JSON (or 90 s pass).
fn run_until(
    dir: &std::path::Path,
    genesis: &std::path::Path,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    loop {
        let v = watt(dir, genesis, &["storage", "run", "--until-done"]);
        seen.push(v.clone());
        if done(&v) {
            return seen;
        }
        assert!(Instant::now() < end, "{what} did not happen within 90 s: {seen:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_donated_sector_goes_on_the_ledger_becomes_active_and_is_terminated_when_the_donation_drops() {
    let (founder, words) = watt_e2e::new_account();
    let net = Network::start_with("sector-life", 4, 500, 600, &["--founder", &founder]);
    assert!(net.wait_for(60, |n| n.seq(0) >= 2), "the network closes ledgers");
    let genesis = net.dir.path().join("genesis.json");
    let wallet = TempDir::new("sector-wallet");
    let out = run(
        "watt",
        &["--data-dir", wallet.path().to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "restore"],
        Some(&words),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The network's own parameters: 1 MiB sectors, its sector_layers.
    let layers = net.genesis().params.sector_layers.to_string();
    watt(wallet.path(), &genesis, &["storage", "donate", "--mib", "1", "--sector-mib", "1", "--layers", &layers]);
    let phase = |v: &serde_json::Value| v["sectors"][0]["phase"].as_str().unwrap_or("").to_string();
    let runs = run_until(wallet.path(), &genesis, "activation", |v| phase(v) == "active");
    let sent: Vec<String> = runs
        .iter()
        .flat_map(|v| v["ledger"]["submitted"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sent,
        vec!["pre-commit sector 1".to_string(), "prove-commit sector 1".to_string()],
        "each step sent once: {runs:#?}"
    );
    assert!(
        runs.iter().any(|v| phase(v) == "precommitted"),
        "it waited for the seed ledger as pre-committed: {runs:#?}"
    );

    // Lowering the donation drops the files now and terminates the sector on the ledger.
    let s =
        watt(wallet.path(), &genesis, &["storage", "donate", "--mib", "0", "--sector-mib", "1", "--layers", &layers]);
    assert_eq!(s["used_bytes"], 0);
    assert_eq!(s["terminating"], serde_json::json!([1]));
    let runs = run_until(wallet.path(), &genesis, "termination", |v| {
        v["terminating"].as_array().is_some_and(|t| t.is_empty())
    });
    let sent: Vec<String> = runs
        .iter()
        .flat_map(|v| v["ledger"]["submitted"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, vec!["terminate sectors [1]".to_string()], "{runs:#?}");
}
