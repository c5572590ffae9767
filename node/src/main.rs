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
