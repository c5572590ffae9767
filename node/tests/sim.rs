//! The simulator over many seeds (issue 17): short runs, each seed with its
//! own mix of validators, faults and adversaries, every check after every
//! ledger. `WATT_SIM_SEEDS` sets how many seeds (`scripts/test.sh --long`
//! runs 200); a failure names the seed and the command that replays it.

use watt_node::sim::{Injected, SimConfig, Simulation, Summary};

/// Seed `s`'s configuration: 4 to 7 validators, and each fault and
/// adversary on in half the seeds (bit `k` of a mix of `s`), so any 20
/// seeds in a row turn every flag on many times.
fn config(seed: u64) -> SimConfig {
    let bits = watt_core::crypto::splitmix::mix64(seed);
    let on = |k: u32| bits >> k & 1 == 1;
    let mut cfg = SimConfig::new(4 + (seed % 4) as usize, 200, 3, seed);
    cfg.day_seconds = 150;
    cfg.ledger_ms = 1_000;
    cfg.faults.loss_permille = if on(0) { 20 } else { 0 };
    cfg.faults.duplicate_permille = if on(1) { 20 } else { 0 };
    cfg.faults.jitter_ms = if on(2) { 200 } else { 0 };
    cfg.faults.partitions = on(3);
    cfg.faults.crashes = on(4);
    cfg.adversaries.equivocate = on(5);
    cfg.adversaries.silent = on(6);
    cfg.adversaries.garbage = on(7);
    cfg.adversaries.flood = on(8);
    cfg.adversaries.oversized = on(9);
    cfg.adversaries.replay = on(10);
    cfg.adversaries.half_data = on(11);
    cfg.adversaries.grind = on(12);
    cfg.adversaries.sybil = on(13);
    cfg.adversaries.offline_claim = on(14);
    cfg
}

fn flags(cfg: &SimConfig) -> String {
    let (f, a) = (&cfg.faults, &cfg.adversaries);
    let mut faults = Vec::new();
    let named = [
        (f.loss_permille > 0, "loss"),
        (f.duplicate_permille > 0, "dup"),
        (f.jitter_ms > 0, "reorder"),
        (f.partitions, "partition"),
        (f.crashes, "crash"),
    ];
    faults.extend(named.iter().filter(|(on, _)| *on).map(|(_, n)| *n));
    let mut adv = Vec::new();
    let named = [
        (a.equivocate, "equivocate"),
        (a.silent, "silent"),
        (a.garbage, "garbage"),
        (a.grind, "grind"),
        (a.flood, "flood"),
        (a.oversized, "oversized"),
        (a.replay, "replay"),
        (a.half_data, "half-data"),
        (a.sybil, "sybil"),
        (a.offline_claim, "offline-claim"),
    ];
    adv.extend(named.iter().filter(|(on, _)| *on).map(|(_, n)| *n));
    format!(
        "watt-node sim --validators {} --phones {} --days {} --day-seconds {} --ledger-ms {} --seed {} --faults {} --adversaries {}",
        cfg.validators,
        cfg.phones,
        cfg.days,
        cfg.day_seconds,
        cfg.ledger_ms,
        cfg.seed,
        faults.join(","),
        adv.join(",")
    )
}

fn run(cfg: SimConfig) -> Summary {
    Simulation::new(cfg).expect("a valid configuration").run()
}

fn seeds() -> u64 {
    std::env::var("WATT_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(24)
}

/// Seeds `first, first + 2, …`: two tests share the seeds, one per core.
fn run_seeds(first: u64) {
    let mut failed = Vec::new();
    for seed in (first..=seeds()).step_by(2) {
        let cfg = config(seed);
        let command = flags(&cfg);
        eprintln!("{command}");
        let s = run(cfg);
        eprintln!("seed {seed}: {}", s.json());
        if let Some(v) = &s.violation {
            failed.push(format!("seed {seed}: {v}\n  replay: {command}"));
        }
    }
    assert!(failed.is_empty(), "{} seeds failed:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn odd_seeds_pass_every_check() {
    run_seeds(1);
}

#[test]
fn even_seeds_pass_every_check() {
    run_seeds(2);
}

/// Every flag is on in at least one of the default seeds.
#[test]
fn the_default_seeds_turn_every_flag_on() {
    let cfgs: Vec<SimConfig> = (1..=24).map(config).collect();
    let any = |f: &dyn Fn(&SimConfig) -> bool| cfgs.iter().any(f);
    assert!(any(&|c| c.faults.loss_permille > 0) && any(&|c| c.faults.duplicate_permille > 0));
    assert!(any(&|c| c.faults.jitter_ms > 0) && any(&|c| c.faults.partitions) && any(&|c| c.faults.crashes));
    let a = |f: &dyn Fn(&watt_node::sim::Adversaries) -> bool| cfgs.iter().any(|c| f(&c.adversaries));
    assert!(a(&|x| x.equivocate) && a(&|x| x.silent) && a(&|x| x.garbage) && a(&|x| x.grind));
    assert!(a(&|x| x.flood) && a(&|x| x.oversized) && a(&|x| x.replay) && a(&|x| x.half_data));
    assert!(a(&|x| x.sybil) && a(&|x| x.offline_claim));
    assert!((4..=7).all(|n| cfgs.iter().any(|c| c.validators == n)));
}

/// A deliberately broken rule (one validator's payout queue pays a tap
/// twice once day 0 is distributed) is caught, and the seed replays it:
/// the same check fails at the same ledger with the same words, twice.
#[test]
fn a_tap_paid_twice_is_caught_and_its_seed_replays_it_exactly() {
    let cfg = || SimConfig { inject: Some(Injected::PayoutTwice { day: 0 }), ..config(3) };
    let first = run(cfg());
    let v = first.violation.clone().expect("the broken rule is caught");
    assert!(["no_fatal", "agreement", "supply"].contains(&v.check), "{v}");
    assert!(v.detail.contains("supply") || v.check != "no_fatal", "{v}");
    let again = run(cfg());
    assert_eq!(again.violation, Some(v), "the same seed fails the same way");
    assert_eq!(again.final_ledger, first.final_ledger);
    assert_eq!((again.delivered, again.dropped), (first.delivered, first.dropped));
}

/// The daily comparison replays a validator's stored inputs through the
/// simulator's ledger: a clean store compares equal, and a store with one
/// tx set replaced is caught at exactly that ledger.
#[test]
fn the_comparison_names_the_ledger_whose_stored_tx_set_was_changed() {
    let mut cfg = SimConfig::new(4, 50, 1, 11);
    cfg.day_seconds = 120;
    cfg.ledger_ms = 1_000;
    let mut sim = Simulation::new(cfg).expect("a valid configuration");
    let summary = sim.run();
    assert!(summary.violation.is_none(), "{:?}", summary.violation);
    let genesis = sim.genesis().clone();
    let mut store = sim.store_of(0).expect("validator 0 is up").clone();
    let clean = watt_node::compare::compare_store(&store, &genesis, 0).expect("compares");
    assert_eq!(clean["compare_ok"], true, "{clean}");
    // Ledger 40's tx set swapped for ledger 41's (its own, valid elsewhere).
    use watt_node::store::LedgerRead;
    let other = store.tx_set(41).expect("reads").expect("stored");
    store.overwrite_tx_set(40, &other);
    let damaged = watt_node::compare::compare_store(&store, &genesis, 0).expect("compares");
    assert_eq!(damaged["compare_ok"], false, "{damaged}");
    assert_eq!(damaged["first_difference"]["ledger"], 40, "{damaged}");
}

/// Bad flags get an error that names them, before anything runs.
#[test]
fn unknown_flags_and_impossible_networks_are_refused_by_name() {
    let flags = |faults: &[&str], adversaries: &[&str], validators: usize| {
        let f: Vec<String> = faults.iter().map(|s| s.to_string()).collect();
        let a: Vec<String> = adversaries.iter().map(|s| s.to_string()).collect();
        SimConfig::from_flags(validators, 10, 1, 600, 1_000, 1, &f, &a)
    };
    let e = flags(&["loss", "meteor"], &[], 4).expect_err("an unknown fault");
    assert!(e.contains("meteor"), "{e}");
    let e = flags(&[], &["bribery"], 4).expect_err("an unknown adversary");
    assert!(e.contains("bribery"), "{e}");
    assert!(flags(&[], &[], 0).is_err(), "no validators");
    assert!(flags(&["all"], &["all"], 7).is_ok());
    assert!(Injected::parse("payout-twice:x").is_err());
    assert!(Injected::parse("something:1").is_err());
    assert_eq!(Injected::parse("payout-twice:2"), Ok(Injected::PayoutTwice { day: 2 }));
}
