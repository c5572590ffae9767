//! `watt`: a phone in a terminal. The wallet commands (`init`, `restore`,
//! `balance`, `pay`, `attest`, `status`, `nodes`, `history`) run the same
//! `WattClient` the Android and iOS SDKs wrap; `keys` are offline key tools.

use clap::{Parser, Subcommand};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use watt_core::address::{decode_strkey, encode_secret, AccountId, KeyKind};
use watt_core::crypto::Keypair;
use watt_core::mnemonic::Mnemonic;
use watt_node::{keyfile, logging};

#[path = "watt/phone.rs"]
mod phone;

#[derive(Parser)]
#[command(name = "watt", version, about = "WATT wallet and light client in a terminal")]
pub(crate) struct Cli {
    /// Where the wallet keeps its files [default: $WATT_DATA_DIR or ~/.watt]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// The network's genesis file [default: $WATT_GENESIS, else the copy in the data directory]
    #[arg(long, global = true)]
    genesis: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create, restore or show the wallet key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show this wallet's address, or `address check ADDR`.
    Address {
        #[command(subcommand)]
        command: Option<AddressCommand>,
    },
    /// Create a wallet and show its 24 recovery words once.
    Init,
    /// Restore the wallet from 24 recovery words read from standard input.
    Restore {
        /// Replace a different wallet in this data directory.
        #[arg(long)]
        replace: bool,
    },
    /// The balance, proven against a verified ledger.
    Balance,
    /// Pay AMOUNT WATT (e.g. 1.5) to an address.
    Pay {
        to: String,
        amount: String,
        /// Fee in WATT.
        #[arg(long, default_value = "0.0001")]
        fee: String,
        /// Return once a node accepted it, without waiting for a ledger.
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
    /// Today's tap ("I am not a robot").
    Attest {
        /// The invite an active account made for this one (`watt invite`;
        /// needed for the first tap only): `watt-invite:...`.
        #[arg(long)]
        invite: Option<String>,
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
    /// An invite for another account's first tap, to hand over as text or a QR code.
    Invite {
        /// The invitee's address (`W...`).
        address: String,
        /// Days it stays valid, today included.
        #[arg(long, default_value_t = 3)]
        days: u32,
    },
    /// Verified ledger, today's tap, pending transactions, nodes, forks.
    Status {
        /// Only local state, no network.
        #[arg(long)]
        offline: bool,
    },
    /// The nodes this wallet talks to; `nodes add ADDR N...`, `nodes remove N...`, `nodes discover`.
    Nodes {
        #[command(subcommand)]
        command: Option<NodesCommand>,
    },
    /// The wallet's history, newest first.
    History {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Donate storage: `storage donate`, `storage status`, `storage run`.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// The oldest event the wallet has not handled (a payment received, a
    /// reward, a fork), then marks it handled; waits up to WAIT_MS for one.
    Events {
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
        /// Show it without marking it handled.
        #[arg(long)]
        keep: bool,
    },
    /// Measure "open app -> verified balance" and header-proof verification.
    Bench {
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
}

#[derive(Subcommand)]
pub(crate) enum StorageCommand {
    /// Donate MIB mebibytes in sectors of SECTOR_MIB with LAYERS layers
    /// (lowering the donation drops the newest sectors).
    Donate {
        #[arg(long)]
        mib: u64,
        #[arg(long, default_value_t = 64)]
        sector_mib: u64,
        #[arg(long, default_value_t = 12)]
        layers: u32,
    },
    /// Sectors, sealing progress and commitments.
    Status,
    /// Seal (this machine counts as plugged in) for BUDGET_MS, or until
    /// every donated sector is sealed with --until-done.
    Run {
        #[arg(long, default_value_t = 10_000)]
        budget_ms: u64,
        #[arg(long)]
        until_done: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum NodesCommand {
    /// Add your own node (it is preferred over all others).
    Add {
        address: String,
        node_id: String,
    },
    Remove {
        node_id: String,
    },
    /// Fetch the proven validator directory and add trust-graph and high-PageRank nodes.
    Discover,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new account key and show its 24 recovery words once.
    New,
    /// Restore the account key from 24 recovery words read from standard input.
    Restore,
    /// Show the account address (and, with --secret, the secret seed).
    Show {
        #[arg(long)]
        secret: bool,
    },
}

#[derive(Subcommand)]
enum AddressCommand {
    /// Exit 0 if ADDR is a valid key (W account, N node, S secret), else name the problem.
    Check { addr: String },
}

pub(crate) fn data_dir(cli: &Cli) -> PathBuf {
    if let Some(d) = &cli.data_dir {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("WATT_DATA_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".watt")
}

/// An error for the person at the terminal, with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure { code: 1, message: e.to_string() }
    }
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                println!("{}", json!({ "ok": false, "error": f.message }));
            } else {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Keys(KeysCommand::New) => {
            let words = Mnemonic::generate()?;
            let pair = Keypair::from_seed(words.account_seed())?;
            let path = keyfile::save(&data_dir(cli), pair.seed())?;
            let address = AccountId(pair.public()).to_strkey();
            if cli.json {
                let phrase = words.phrase();
                println!(
                    "{}",
                    json!({ "ok": true, "address": address, "mnemonic": phrase.as_str(), "key_file": path })
                );
            } else {
                println!("address: {address}");
                println!("key file: {}", path.display());
                println!("\nrecovery words (write them down; they are shown only now):");
                for (i, w) in words.words().iter().enumerate() {
                    print!("{:>2}. {:<10}{}", i + 1, w, if i % 6 == 5 { "\n" } else { " " });
                }
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Restore) => {
            let mut phrase = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut phrase)?;
            let words = Mnemonic::parse(&phrase)?;
            let pair = Keypair::from_seed(words.account_seed())?;
            let path = keyfile::save(&data_dir(cli), pair.seed())?;
            let address = AccountId(pair.public()).to_strkey();
            if cli.json {
                println!("{}", json!({ "ok": true, "address": address, "key_file": path }));
            } else {
                println!("restored {address} into {}", path.display());
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Show { secret }) => {
            let pair = keyfile::load(&data_dir(cli))?;
            let address = AccountId(pair.public()).to_strkey();
            let secret_text = secret.then(|| zeroize::Zeroizing::new(encode_secret(pair.seed())));
            if cli.json {
                let mut v = json!({ "ok": true, "address": address });
                if let Some(s) = &secret_text {
                    v["secret"] = json!(s.as_str());
                }
                println!("{v}");
            } else {
                println!("{address}");
                if let Some(s) = &secret_text {
                    println!("{}", s.as_str());
                }
            }
            Ok(())
        }
        Command::Address { command: Some(AddressCommand::Check { addr }) } => match decode_strkey(addr.trim()) {
            Ok((kind, _)) => {
                let kind_name = match kind {
                    KeyKind::Account => "account",
                    KeyKind::Node => "node",
                    KeyKind::Secret => "secret",
                };
                if cli.json {
                    println!("{}", json!({ "ok": true, "valid": true, "kind": kind_name }));
                } else {
                    println!("valid {} ({})", kind.name(), kind.letter());
                }
                Ok(())
            }
            Err(e) => Err(Failure { code: 2, message: format!("invalid address: {e}") }),
        },
        _ => phone::run(cli),
    }
}
