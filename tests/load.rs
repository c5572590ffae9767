//! The load test (issue 10): 1,000 phone connections from 250 loopback
//! addresses against 4 real validator processes, paying at three times what
//! ledgers hold, after one tap each. Nothing accepted may be lost; ledgers
//! keep closing on time; the pools stay bounded; a better fee gets in first;
//! one address cannot open more than its share of connections.

use watt_e2e::run;

#[test]
fn a_thousand_phones_overloading_the_network_lose_nothing_and_ledgers_keep_closing() {
    let out = run(
        "watt-node",
        &["bench", "load", "--clients", "1000", "--rate", "300", "--seconds", "15", "--max-txs", "100", "--json"],
        None,
    );
    assert_eq!(out.code, 0, "bench load failed: {}", out.stderr);
    let r: serde_json::Value = serde_json::from_str(out.stdout.lines().last().unwrap_or("")).expect("one JSON line");
    println!("{r}");
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    assert_eq!(r["clients"], 1000);
    // Offered above what ledgers hold (100 per 1 s ledger).
    assert!(f("offered_tx_per_s") > 250.0, "{r}");
    assert!(f("accepted") > 0.0 && f("applied") > 0.0, "{r}");
    assert_eq!(r["lost"], 0, "accepted transactions were lost: {r}");
    assert_eq!(r["client_errors"], 0, "{r}");
    assert!(f("max_applied_in_one_ledger") <= 100.0, "a ledger held more than max_txs_per_ledger: {r}");
    // Every accepted transaction was applied, dropped with a reason, or
    // (rarely, after the drain) still waiting in its validator's pool.
    let dropped: f64 = r["dropped_after_accept"].as_object().unwrap().values().filter_map(|v| v.as_f64()).sum();
    assert_eq!(f("applied") + dropped + f("still_pending"), f("accepted"), "{r}");
    assert!(f("still_pending") <= 10.0, "{r}");
    assert_eq!(r["attestations"]["accepted"], r["attestations"]["applied"], "{r}");
    // Ledgers keep closing near the target under load.
    assert!(f("ledgers_closed") >= 15.0, "{r}");
    assert!((f("close_ms_median") - 1000.0).abs() <= 250.0, "{r}");
    // Pools stay within their bound.
    assert!(f("pending_peak") <= f("pool_capacity"), "{r}");
    // Fee ordering: the best fee is evicted less often and waits no longer than the worst.
    let levels = r["fee_levels"].as_array().unwrap();
    let (low, high) = (&levels[0], &levels[levels.len() - 1]);
    let rate = |l: &serde_json::Value| l["evicted"].as_f64().unwrap() / l["accepted"].as_f64().unwrap().max(1.0);
    assert!(rate(high) < rate(low), "eviction is not by fee: {levels:?}");
    assert!(high["applied"].as_u64().unwrap() > low["applied"].as_u64().unwrap(), "{levels:?}");
    if low["applied"].as_u64().unwrap() > 0 {
        assert!(high["median_wait_ms"].as_u64().unwrap() <= low["median_wait_ms"].as_u64().unwrap(), "{levels:?}");
    }
    // One more connection than the per-address limit is refused.
    assert_eq!(r["per_ip_refused_at_connection"].as_u64(), r["per_ip_limit"].as_u64().map(|l| l + 1), "{r}");
    // A burst over the per-connection budget: served up to it, then closed.
    assert_eq!(r["burst_connection_closed"], true, "{r}");
    assert!(f("burst_served") <= f("per_connection_budget_per_s") && f("burst_served") > 0.0, "{r}");
    // Many connections from one address, each within its own budget: the
    // address's shared budget refuses the excess with an answer.
    assert!(f("crowd_refused") > 0.0, "{r}");
    assert_eq!(f("crowd_served") + f("crowd_refused"), f("crowd_requests"), "{r}");
}
