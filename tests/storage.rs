//! Storage donation through the `watt` CLI, as a user runs it: a seal killed
//! with SIGKILL again and again resumes and ends at the same commitments as
//! an uninterrupted seal.

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
    watt(wallet.path(), &genesis, &["storage", "donate", "--mib", &mib, "--sector-mib", &mib, "--layers", &layers.to_string()]);

    let mut last_done = 0u64;
    for k in 0..kills {
        let mut child = std::process::Command::new(watt_e2e::bin("watt"))
            .args(["--data-dir", wallet.path().to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "storage", "run", "--until-done"])
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
    let s = watt(wallet.path(), &genesis, &["storage", "donate", "--mib", "0", "--sector-mib", &mib, "--layers", &layers.to_string()]);
    assert_eq!(s["used_bytes"], 0);
    assert!(!wallet.path().join("sectors").join("1").exists());
}
