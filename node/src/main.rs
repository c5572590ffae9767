//! `watt-node`: a WATT validator and the local devnet.

use clap::{Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use watt_core::ledger::Genesis;
use watt_node::logging;

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

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(BenchCommand::Scp { slots, json }) => {
            let report = watt_node::bench::scp(slots);
            if json {
                println!("{report}");
            } else {
                watt_node::bench::print_table(&report);
            }
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
