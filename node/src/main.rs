//! `watt-node`: a WATT validator and the local devnet.

use clap::{Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use watt_core::ledger::Genesis;
use watt_node::config::NodeConfig as NodeConfigWithAdmin;
use watt_node::logging;
use watt_node::store::LedgerRead;

#[derive(Parser)]
#[command(name = "watt-node", version, about = "WATT validator node and local devnet")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Genesis files.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Measure this machine: figures as a table, or JSON with --json.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Write a node key and config; with --new-network, a genesis and N validators' configs.
    Init {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[arg(long)]
        new_network: bool,
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value = "WATT testnet")]
        network: String,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        #[arg(long, default_value_t = 11625)]
        port: u16,
        #[arg(long, default_value_t = 5000)]
        ledger_ms: u64,
        #[arg(long, default_value_t = 86_400)]
        day_seconds: u64,
        /// A founding account (W...), past probation from day 0; repeatable.
        #[arg(long = "founder")]
        founders: Vec<String>,
        /// Ledgers at the start of a day that still accept yesterday's taps.
        #[arg(long)]
        attest_grace_ledgers: Option<u64>,
    },
    /// Run a validator.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Serve Prometheus text (`/metrics`) and status (`/status`) here (overrides `admin`).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Ask a running validator (its admin endpoint) how it is doing.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        #[arg(long)]
        json: bool,
    },
    /// Print stored ledger headers (seq, hash, close time, day, txs) from a data directory.
    Headers {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        count: u32,
    },
    /// Replay a node's stored inputs through the simulator's ledger and
    /// report the first ledger whose header differs, and the day's record.
    Compare {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        day: u64,
        #[arg(long)]
        json: bool,
    },
    /// Recompute a day's distribution from stored history by an independent path.
    Audit {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        day: u64,
        #[arg(long)]
        json: bool,
    },
    /// The whole network in virtual time, from one seed: validators, phones,
    /// faults and adversaries, every check after every ledger (SPEC §14).
    /// A failed check prints the seed and the ledger; the same command
    /// replays it exactly.
    Sim {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 100)]
        phones: usize,
        #[arg(long, default_value_t = 3)]
        days: u64,
        #[arg(long, default_value_t = 3_600)]
        day_seconds: u64,
        #[arg(long, default_value_t = 5_000)]
        ledger_ms: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Network faults, comma-separated: loss, dup, reorder, partition, crash, or all.
        #[arg(long, value_delimiter = ',')]
        faults: Vec<String>,
        /// Adversaries, comma-separated: equivocate, silent, garbage, flood,
        /// oversized, replay, or all.
        #[arg(long, value_delimiter = ',')]
        adversaries: Vec<String>,
        /// A deliberately broken rule the checks must catch: payout-twice:DAY.
        #[arg(long)]
        inject: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A whole network on this machine: validators, phones, days.
    Devnet {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 10)]
        phones: usize,
        #[arg(long, default_value_t = 2)]
        days: u64,
        #[arg(long, default_value_t = 20)]
        day_seconds: u64,
        #[arg(long, default_value_t = 1000)]
        ledger_ms: u64,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Phones (the first ones) that donate storage and prove it daily.
        #[arg(long, default_value_t = 5)]
        storage_phones: usize,
        /// Sectors each donating phone seals.
        #[arg(long, default_value_t = 2)]
        sectors: u64,
        /// Sector size in MiB (1, 16, 64 or 256).
        #[arg(long, default_value_t = 1)]
        sector_mib: u64,
        /// Layers of the stacked graph (the network's `sector_layers`).
        #[arg(long, default_value_t = 2)]
        layers: u32,
        /// Replay validator 0's stored inputs through the simulator's ledger
        /// and report `compare_ok` per day.
        #[arg(long)]
        compare_daily: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// SCP in the simulator: messages, rounds and CPU per slot for core-4, core-7 and 3x3 orgs.
    Scp {
        #[arg(long, default_value_t = 50)]
        slots: u64,
        #[arg(long)]
        json: bool,
    },
    /// Many phone connections against validator processes: offered vs
    /// accepted tx/s, close times, pool and memory bounds, lost transactions.
    Load {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Payments offered per second, all clients together.
        #[arg(long, default_value_t = 300)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 1000)]
        ledger_ms: u64,
        /// The ledger limit the offered rate is measured against.
        #[arg(long, default_value_t = 100)]
        max_txs: u32,
        /// Connections per loopback source address (127.0.x.y).
        #[arg(long, default_value_t = 4)]
        clients_per_ip: usize,
        #[arg(long)]
        json: bool,
    },
    /// Phones flooding one validator with header reads: its close interval and consensus time, quiet and flooded.
    PhoneFlood {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 250)]
        ledger_ms: u64,
        /// Ledgers closed before measuring (the chain phones read).
        #[arg(long, default_value_t = 200)]
        warmup: u64,
        /// Ledgers measured quiet, then as many flooded.
        #[arg(long, default_value_t = 40)]
        ledgers: u64,
        /// Phone connections from one address (each paced to its request budget).
        #[arg(long, default_value_t = 10)]
        connections: usize,
        #[arg(long)]
        json: bool,
    },
    /// Consensus on loopback QUIC for 4 and 7 validators: latency, close interval, bytes per ledger.
    Consensus {
        #[arg(long, default_value_t = 20)]
        ledgers: u64,
        #[arg(long, default_value_t = 1000)]
        ledger_ms: u64,
        #[arg(long)]
        json: bool,
    },
    /// Ledger application with many accounts: payments/s, attestations/s, day boundary, proof size.
    Ledger {
        #[arg(long, default_value_t = 1_000_000)]
        accounts: usize,
        #[arg(long)]
        json: bool,
    },
    /// Storage proofs: seal time, re-seal cost per GiB (regeneration ratio),
    /// seal-proof and PoSt sizes and times, detection probability.
    Storage {
        #[arg(long, default_value_t = 16)]
        sector_mib: u64,
        #[arg(long, default_value_t = 4)]
        layers: u32,
        #[arg(long)]
        json: bool,
    },
    /// The phone: header-proof verification CPU (4/7/21 validators), bytes and
    /// round trips from "open app" to a verified balance (7 validators, loopback).
    Client {
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        #[arg(long)]
        json: bool,
    },
    /// One phone through a day against validator processes: a cold open with
    /// the tap, a background PoSt on battery, a warm open that sees the
    /// reward; bytes and CPU-seconds of each, and the PoSt's CPU at 16 GiB.
    PhoneDay {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Mainnet's 5 s by default: pushed headers while open scale with it.
        #[arg(long, default_value_t = 5_000)]
        ledger_ms: u64,
        #[arg(long, default_value_t = 120)]
        day_seconds: u64,
        /// Seconds each app open follows pushed headers.
        #[arg(long, default_value_t = 20)]
        open_seconds: u64,
        /// While open, the balance is proven again this often (ms).
        #[arg(long, default_value_t = 15_000)]
        account_every_ms: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Check a genesis file and print the hash that nodes and phones pin.
    Hash {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime starts")
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Init {
            dir,
            new_network,
            validators,
            network,
            host,
            port,
            ledger_ms,
            day_seconds,
            founders,
            attest_grace_ledgers,
        } => {
            if !new_network {
                let key = match watt_core::crypto::Keypair::generate() {
                    Ok(k) => k,
                    Err(e) => return fail(e),
                };
                if let Err(e) = watt_node::keyfile::save_as(&dir, std::path::Path::new("node.key"), key.seed()) {
                    return fail(e);
                }
                println!("node id: {}", watt_core::address::NodeId(key.public()));
                println!(
                    "vrf key: {}",
                    watt_core::crypto::vrf::VrfKeypair::from_seed(key.seed().expose())
                        .public()
                        .0
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                println!("key file: {}", dir.join("node.key").display());
                return ExitCode::SUCCESS;
            }
            let mut params =
                watt_core::ledger::Params { ledger_close_ms: ledger_ms, ..watt_core::ledger::Params::mainnet() }
                    .with_day_seconds(day_seconds);
            if let Some(g) = attest_grace_ledgers {
                params.attest_grace_ledgers = g;
            }
            let mut founding = Vec::new();
            for f in &founders {
                match f.parse::<watt_core::address::AccountId>() {
                    Ok(a) => founding.push(a),
                    Err(e) => return fail(format!("--founder {f}: {e}")),
                }
            }
            let genesis_time = watt_node::node::now_ms() / 1000;
            let net =
                match watt_node::config::new_network(&network, validators, host, port, params, genesis_time, &founding)
                {
                    Ok(n) => n,
                    Err(e) => return fail(e),
                };
            match watt_node::config::write_network(&dir, &net) {
                Ok(paths) => {
                    println!("genesis: {} (hash {})", dir.join("genesis.json").display(), net.genesis.hash());
                    for p in paths {
                        println!("config:  {}", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Run { config, metrics } => {
            let mut cfg = match watt_node::config::NodeConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            if metrics.is_some() {
                cfg.admin = metrics;
            }
            runtime().block_on(async move {
                let mut handle = match watt_node::node::start(cfg).await {
                    Ok(h) => h,
                    Err(e) => return fail(e),
                };
                eprintln!("validator {} listening on {}", handle.node_id, handle.listen);
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {
                        handle.stop().await;
                        ExitCode::SUCCESS
                    }
                    // It stopped itself: exit non-zero so a supervisor restarts it from disk.
                    r = handle.stopped() => match r {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(e) => fail(e),
                    },
                }
            })
        }
        Command::Status { config, admin, json } => {
            let addr = match (admin, config) {
                (Some(a), _) => a,
                (None, Some(c)) => match watt_node::config::NodeConfig::load(&c) {
                    Ok(NodeConfigWithAdmin { admin: Some(a), .. }) => a,
                    Ok(_) => return fail("the config has no admin address"),
                    Err(e) => return fail(e),
                },
                (None, None) => return fail("give --config FILE or --admin ADDR"),
            };
            match runtime().block_on(watt_node::node::fetch_admin(addr, "/status")) {
                Ok(body) => {
                    if json {
                        println!("{body}");
                    } else {
                        match serde_json::from_str::<serde_json::Value>(&body) {
                            Ok(v) => {
                                println!(
                                    "ledger {} {} (lag {} ms)",
                                    v["ledger"]["seq"],
                                    v["ledger"]["hash"].as_str().unwrap_or(""),
                                    v["ledger"]["lag_ms"]
                                );
                                println!("peers {}", v["peers"].as_array().map_or(0, |p| p.len()));
                                for n in v["quorum"]["validators"].as_array().into_iter().flatten() {
                                    println!(
                                        "  {} {}",
                                        n["node"].as_str().unwrap_or(""),
                                        n["state"].as_str().unwrap_or("")
                                    );
                                }
                                println!(
                                    "quorum intersection {}, failures survivable {}",
                                    v["quorum"]["intersection"], v["quorum"]["failures_survivable"]
                                );
                                println!("pending txs {}", v["pending_txs"]);
                            }
                            Err(_) => println!("{body}"),
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("no answer from {addr}: {e} (is the node running?)")),
            }
        }
        Command::Headers { data_dir, from, count } => {
            let dir = if data_dir.join("ledger.redb").exists() { data_dir } else { data_dir.join("data-0") };
            let store = match watt_node::store::Store::open(&dir) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            match store.headers(from, count) {
                Ok(hs) => {
                    let mut prev: Option<u64> = None;
                    for h in hs {
                        let txs = store.tx_set(h.seq).ok().flatten().map_or(0, |s| s.txs.len());
                        let gap = prev.map_or(0, |p| h.close_time.saturating_sub(p));
                        println!(
                            "{}",
                            json!({ "seq": h.seq, "hash": h.hash().to_hex(), "close_time_ms": h.close_time, "interval_ms": gap, "day": h.day, "txs": txs })
                        );
                        prev = Some(h.close_time);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Compare { data_dir, day, json } => {
            verdict(watt_node::compare::compare_dir(&data_dir, day), "compare_ok", json)
        }
        Command::Audit { data_dir, day, json } => verdict(watt_node::audit::audit_day(&data_dir, day), "agrees", json),
        Command::Sim { validators, phones, days, day_seconds, ledger_ms, seed, faults, adversaries, inject, json } => {
            let inject = match inject.as_deref().map(watt_node::sim::Injected::parse).transpose() {
                Ok(i) => i,
                Err(e) => return fail(e),
            };
            let cfg = match watt_node::sim::SimConfig::from_flags(
                validators,
                phones,
                days,
                day_seconds,
                ledger_ms,
                seed,
                &faults,
                &adversaries,
            ) {
                Ok(c) => watt_node::sim::SimConfig { inject, ..c },
                Err(e) => return fail(e),
            };
            let mut sim = match watt_node::sim::Simulation::new(cfg) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let summary = sim.run_with(|day| {
                if json {
                    println!("{}", json!({ "day": day }));
                } else {
                    println!(
                        "day {:>3}: {} ledgers, {} txs, {} attesters, minted {}, fees {}, checks {}",
                        day.day,
                        day.ledgers,
                        day.txs,
                        day.attesters,
                        day.minted,
                        day.fees,
                        if day.checks_passed { "passed" } else { "FAILED" }
                    );
                }
            });
            let report = summary.json();
            if json {
                println!("{}", json!({ "summary": report }));
            } else {
                println!("{report:#}");
            }
            match &summary.violation {
                None => ExitCode::SUCCESS,
                Some(v) => {
                    eprintln!("error: {v} (seed {seed}: the same command replays it)");
                    ExitCode::from(3)
                }
            }
        }
        Command::Devnet {
            validators,
            phones,
            days,
            day_seconds,
            ledger_ms,
            data_dir,
            json,
            storage_phones,
            sectors,
            sector_mib,
            layers,
            compare_daily,
        } => {
            let opts = watt_node::devnet::DevnetOptions {
                compare_daily,
                validators,
                phones,
                days,
                day_seconds,
                ledger_ms,
                data_dir,
                json,
                storage_phones,
                sectors,
                sector_mib,
                layers,
            };
            match runtime().block_on(watt_node::devnet::run(opts)) {
                Ok(summary) => {
                    let agree = summary["ledger_hashes_agree"].as_bool().unwrap_or(false);
                    if json {
                        println!("{summary}");
                    } else {
                        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
                    }
                    if agree {
                        ExitCode::SUCCESS
                    } else {
                        fail("validators disagree on ledger hashes")
                    }
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(BenchCommand::Scp { slots, json }) => {
            let report = watt_node::bench::scp(slots);
            if json {
                println!("{report}");
            } else {
                watt_node::bench::print_table(&report);
            }
            ExitCode::SUCCESS
        }
        Command::Bench(BenchCommand::Load {
            validators,
            clients,
            rate,
            seconds,
            ledger_ms,
            max_txs,
            clients_per_ip,
            json,
        }) => {
            let opts = watt_node::load::LoadOptions {
                validators,
                clients,
                rate,
                seconds,
                ledger_ms,
                max_txs_per_ledger: max_txs,
                clients_per_ip,
            };
            match runtime().block_on(watt_node::load::run(opts)) {
                Ok(report) => {
                    if json {
                        println!("{report}");
                    } else {
                        watt_node::load::print_text(&report);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(BenchCommand::PhoneFlood { validators, ledger_ms, warmup, ledgers, connections, json }) => {
            let report =
                runtime().block_on(watt_node::bench::phone_flood(validators, ledger_ms, warmup, ledgers, connections));
            print_json(&report, json);
            ExitCode::SUCCESS
        }
        Command::Bench(BenchCommand::Consensus { ledgers, ledger_ms, json }) => {
            let report = runtime().block_on(watt_node::bench::consensus(&[4, 7, 10], ledgers, ledger_ms));
            if json {
                println!("{report}");
            } else {
                watt_node::bench::print_table(&report);
            }
            ExitCode::SUCCESS
        }
        Command::Bench(BenchCommand::PhoneDay {
            validators,
            ledger_ms,
            day_seconds,
            open_seconds,
            account_every_ms,
            json,
        }) => {
            let o =
                watt_node::phone_day::PhoneDay { validators, ledger_ms, day_seconds, open_seconds, account_every_ms };
            match runtime().block_on(watt_node::phone_day::phone_day(o)) {
                Ok(report) if json => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    println!("{report:#}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(BenchCommand::Client { rounds, json }) => {
            match runtime().block_on(watt_node::bench::client_bench(rounds)) {
                Ok(report) => {
                    if json {
                        println!("{report}");
                    } else {
                        print!("{}", watt_node::bench::client_bench_text(&report));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(BenchCommand::Storage { sector_mib, layers, json }) => {
            match watt_node::bench::storage(sector_mib, layers) {
                Ok(report) => {
                    print_json(&report, json);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(BenchCommand::Ledger { accounts, json }) => {
            let report = watt_node::bench::ledger(accounts.max(30_000));
            print_json(&report, json);
            ExitCode::SUCCESS
        }
        Command::Genesis(GenesisCommand::Hash { file, json }) => {
            let result = std::fs::read(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|bytes| Genesis::from_json(&bytes).map_err(|e| format!("{}: {e}", file.display())));
            match result {
                Ok(g) => {
                    if json {
                        println!(
                            "{}",
                            json!({ "ok": true, "hash": g.hash().to_hex(), "network": g.network_passphrase, "validators": g.validators.len() })
                        );
                    } else {
                        println!("{}", g.hash());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// A report as one JSON line (`--json`) or indented for people.
/// Prints a report and exits 0 if its `field` is true, 3 if not (a
/// difference found), 1 if it could not be made.
fn verdict(report: Result<serde_json::Value, String>, field: &str, json: bool) -> ExitCode {
    match report {
        Ok(report) => {
            let ok = report[field].as_bool().unwrap_or(false);
            print_json(&report, json);
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        Err(e) => fail(e),
    }
}

fn print_json(report: &serde_json::Value, json: bool) {
    if json {
        println!("{report}");
    } else {
        println!("{report:#}");
    }
}
