//! `watt-node devnet` as a user runs it: validators agree, ledgers close on
//! time, phones' taps and payments are real, the supply invariant holds.

use watt_e2e::{run, TempDir};

/// One devnet at a time: two at once on 2 cores measure contention, not the network.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn devnet(args: &[&str]) -> serde_json::Value {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut all = vec!["devnet"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run("watt-node", &all, None);
    assert_eq!(out.code, 0, "devnet failed: {}\n{}", out.stdout, out.stderr);
    serde_json::from_str(out.stdout.lines().last().unwrap_or("")).expect("last line is JSON")
}

#[test]
fn devnet_4_validators_agree_and_close_on_time() {
    let v =
        devnet(&["--validators", "4", "--phones", "10", "--days", "2", "--day-seconds", "10", "--ledger-ms", "500"]);
    assert_eq!(v["ledger_hashes_agree"], true, "{v}");
    assert!(v["last_seq"].as_u64().unwrap() >= 30, "{v}");
    let median = v["median_close_ms"].as_u64().unwrap() as f64;
    assert!((median - 500.0).abs() <= 125.0, "median close {median} ms not within 25% of 500: {v}");
    assert_eq!(v["days_completed"], 2);
}

#[test]
fn devnet_phones_attest_pay_and_get_paid() {
    let dir = TempDir::new("devnet-ledger");
    let v = devnet(&[
        "--validators",
        "4",
        "--phones",
        "50",
        "--days",
        "3",
        "--day-seconds",
        "10",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--compare-daily",
    ]);
    assert_eq!(v["ledger_hashes_agree"], true, "{v}");
    assert_eq!(v["supply_invariant_ok"], true, "{v}");
    // The daily comparison: the stored inputs replayed through the
    // simulator's ledger give every header and day record.
    assert_eq!(v["compare_first_difference"], serde_json::Value::Null, "{v}");
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 3, "{v}");
    for d in days {
        assert_eq!(d["attesters"], 50, "every phone tapped once on day {}: {v}", d["day"]);
        assert!(d["minted"].as_u64().unwrap() > 0, "{v}");
        assert!(d["txs"].as_u64().unwrap() >= 50, "{v}");
        assert!(d["fees"].as_u64().unwrap() > 0, "payments with fees happened: {v}");
        assert_eq!(d["compare_ok"], true, "day {}: {v}", d["day"]);
    }
    // Each day was compared as it ended, beside the running network (the
    // devnet runs into day 3 until day 2's distribution is in).
    for d in days {
        assert_eq!(d["compared"], "at the day boundary", "day {}: {v}", d["day"]);
    }
    let out = run("watt-node", &["compare", "--data-dir", dir.path().to_str().unwrap(), "--day", "1", "--json"], None);
    assert_eq!(out.code, 0, "compare found a difference: {}{}", out.stdout, out.stderr);
    // The independent audit agrees with what the ledger paid, day by day.
    for d in 0..3 {
        let out = run(
            "watt-node",
            &["audit", "--data-dir", dir.path().to_str().unwrap(), "--day", &d.to_string(), "--json"],
            None,
        );
        assert_eq!(out.code, 0, "audit of day {d} found a difference: {}{}", out.stdout, out.stderr);
        let a: serde_json::Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        assert_eq!(a["agrees"], true, "{a}");
    }
}

#[test]
fn devnet_phones_donate_storage_prove_it_daily_and_get_paid_for_it() {
    let dir = TempDir::new("devnet-storage");
    let v = devnet(&[
        "--validators",
        "4",
        "--phones",
        "10",
        "--days",
        "3",
        "--day-seconds",
        "20",
        "--ledger-ms",
        "500",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(v["ledger_hashes_agree"], true, "{v}");
    assert_eq!(v["supply_invariant_ok"], true, "{v}");
    let days = v["days"].as_array().unwrap();
    // Sectors seal and are proven on day 0; every later day each donor proves all of them.
    let donors = v["storage_phones"].as_u64().unwrap();
    assert_eq!(donors, 5, "{v}");
    for d in &days[1..3] {
        assert_eq!(d["storage_provers"].as_u64().unwrap(), donors, "every donor proved on day {}: {v}", d["day"]);
        assert_eq!(d["proven_bytes"].as_u64().unwrap(), (donors * 2) << 20, "two 1 MiB sectors each: {v}");
    }
    // The donors' balances grew by what their storage earned, which they count from proven day records.
    assert!(v["storage_earned"].as_u64().unwrap() > 0, "{v}");
    for d in 1..3 {
        let out = run(
            "watt-node",
            &["audit", "--data-dir", dir.path().to_str().unwrap(), "--day", &d.to_string(), "--json"],
            None,
        );
        assert_eq!(out.code, 0, "audit of day {d}: {}{}", out.stdout, out.stderr);
        let a: serde_json::Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        assert_eq!(a["agrees"], true, "{a}");
        assert_eq!(a["proven_bytes"], ((donors * 2) << 20).to_string(), "the audit replays the same proofs: {a}");
    }
}
