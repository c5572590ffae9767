//! The wallet commands: each opens the data directory's `WattClient`, does
//! one thing through verified answers, and says what happened.

use super::{data_dir, Cli, Command, Failure, NodesCommand};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use watt_client::{
    AttestState, ClientConfig, ClientError, ClientEvent, ClientStatus, FileKeyStore, HistoryKind, NodeOrigin, TxKind,
    TxStatus, WattClient,
};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::ledger::{Genesis, Invite};

/// Exit codes, one per kind of problem a script may want to tell apart.
pub mod exit {
    pub const OTHER: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const NO_WALLET: u8 = 3;
    pub const NETWORK: u8 = 4;
    pub const ALREADY_ATTESTED: u8 = 5;
    pub const DATA_DIR: u8 = 6;
    pub const FORK: u8 = 7;
    pub const FUNDS: u8 = 8;
    pub const REJECTED: u8 = 9;
}

fn failure(e: ClientError) -> Failure {
    let code = match &e {
        ClientError::NoWallet => exit::NO_WALLET,
        ClientError::WalletExists { .. }
        | ClientError::Mnemonic(_)
        | ClientError::Address(_)
        | ClientError::InvalidArgument(_)
        | ClientError::UnknownNode(_) => exit::BAD_INPUT,
        ClientError::AlreadyAttested { .. } => exit::ALREADY_ATTESTED,
        ClientError::NeedsInviter | ClientError::NoAccount | ClientError::InsufficientBalance { .. } => exit::FUNDS,
        ClientError::NoNodeReachable(_)
        | ClientError::Unverified(_)
        | ClientError::Verification(_)
        | ClientError::SettleTimeout => exit::NETWORK,
        ClientError::ForkDetected { .. } => exit::FORK,
        ClientError::Rejected(_) => exit::REJECTED,
        ClientError::KeyStore(_)
        | ClientError::Storage(_)
        | ClientError::Corrupt(_)
        | ClientError::WrongNetwork { .. } => exit::DATA_DIR,
    };
    Failure { code, message: e.to_string() }
}

fn bad_input(message: String) -> Failure {
    Failure { code: exit::BAD_INPUT, message }
}

/// The genesis to pin: `--genesis`, `$WATT_GENESIS`, or the copy kept in
/// the data directory since the first use.
fn load_genesis(cli: &Cli, dir: &Path) -> Result<Genesis, Failure> {
    let kept = dir.join("genesis.json");
    let given: Option<PathBuf> = cli.genesis.clone().or_else(|| std::env::var_os("WATT_GENESIS").map(PathBuf::from));
    let path = match (&given, kept.exists()) {
        (Some(p), _) => p.clone(),
        (None, true) => kept.clone(),
        (None, false) => {
            return Err(Failure {
                code: exit::DATA_DIR,
                message: format!(
                    "no genesis file: pass --genesis FILE (or set WATT_GENESIS) the first time you use {}",
                    dir.display()
                ),
            })
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| Failure {
        code: exit::DATA_DIR,
        message: format!("cannot read genesis {}: {e}", path.display()),
    })?;
    let genesis = Genesis::from_json(&bytes)
        .map_err(|e| Failure { code: exit::DATA_DIR, message: format!("genesis {}: {e}", path.display()) })?;
    if given.is_some() && !kept.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure { code: exit::DATA_DIR, message: format!("cannot create {}: {e}", dir.display()) })?;
        std::fs::write(&kept, &bytes)
            .map_err(|e| Failure { code: exit::DATA_DIR, message: format!("cannot write {}: {e}", kept.display()) })?;
    }
    Ok(genesis)
}

async fn open(cli: &Cli) -> Result<WattClient, Failure> {
    let dir = data_dir(cli);
    let genesis = load_genesis(cli, &dir)?;
    let key_file = std::env::var_os("WATT_KEY_FILE").map(PathBuf::from).unwrap_or_else(|| dir.join("device.key"));
    WattClient::open(&dir, genesis, ClientConfig::default(), Arc::new(FileKeyStore::new(key_file)))
        .await
        .map_err(failure)
}

pub fn run(cli: &Cli) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure { code: exit::OTHER, message: format!("cannot start the runtime: {e}") })?;
    rt.block_on(run_async(cli))
}

fn print(cli: &Cli, v: Value, text: impl FnOnce() -> String) {
    if cli.json {
        println!("{v}");
    } else {
        println!("{}", text());
    }
}

fn event_json(e: &ClientEvent) -> Value {
    match e {
        ClientEvent::NewVerifiedLedger { seq, close_time_ms } => {
            json!({ "kind": "new_verified_ledger", "ledger": seq, "close_time_ms": close_time_ms })
        }
        ClientEvent::PaymentReceived { amount, balance } => {
            json!({ "kind": "payment_received", "amount_units": amount.units(), "balance_units": balance.units() })
        }
        ClientEvent::TransactionSettled { hash, status } => {
            json!({ "kind": "transaction_settled", "hash": hash.to_hex(), "status": tx_status_json(status) })
        }
        ClientEvent::AttestationConfirmed { day } => json!({ "kind": "attestation_confirmed", "day": day }),
        ClientEvent::RewardPaid { day, amount } => {
            json!({ "kind": "reward_paid", "day": day, "amount_units": amount.units() })
        }
        ClientEvent::ForkDetected { slot } => json!({ "kind": "fork_detected", "slot": slot }),
        ClientEvent::NodeDemoted { node, reason } => {
            json!({ "kind": "node_demoted", "node": node.to_string(), "reason": reason })
        }
    }
}

fn tx_status_json(s: &TxStatus) -> Value {
    match s {
        TxStatus::Pending => json!({ "state": "pending" }),
        TxStatus::Confirmed { seq } => json!({ "state": "confirmed", "ledger": seq }),
        TxStatus::Failed { seq, reason } => json!({ "state": "failed", "ledger": seq, "reason": reason }),
        TxStatus::Expired => json!({ "state": "expired" }),
        TxStatus::Superseded => json!({ "state": "superseded" }),
    }
}

fn tx_status_text(s: &TxStatus) -> String {
    match s {
        TxStatus::Pending => "pending".into(),
        TxStatus::Confirmed { seq } => format!("confirmed in ledger {seq}"),
        TxStatus::Failed { seq, reason } => format!("failed in ledger {seq}: {reason}"),
        TxStatus::Expired => "expired (nothing charged)".into(),
        TxStatus::Superseded => "superseded".into(),
    }
}

fn status_json(s: &ClientStatus) -> Value {
    json!({
        "ok": true,
        "account": s.account.map(|a| a.to_string()),
        "verified_seq": s.verified_seq,
        "verified_hash": s.verified_hash.map(|h| h.to_hex()),
        "verified_age_ms": s.verified_age_ms,
        "stale": s.stale,
        "balance_units": s.balance.map(|b| b.units()),
        "balance": s.balance.map(|b| b.to_string()),
        "balance_seq": s.balance_seq,
        "day": s.day,
        "attested_today": match s.attested_today { AttestState::NotYet => "no", AttestState::Pending => "pending", AttestState::Confirmed => "yes" },
        "next_day_starts_ms": s.next_day_starts_ms,
        "pending": s.pending.iter().map(|p| json!({ "hash": p.hash.to_hex(), "seq_num": p.seq_num, "kind": kind_name(&p.kind) })).collect::<Vec<_>>(),
        "nodes": s.nodes.iter().map(|n| json!({
            "node_id": n.node_id.to_string(), "address": n.address, "origin": origin_name(n.origin), "connected": n.connected,
            "good": n.good_answers, "bad": n.bad_answers, "timeouts": n.timeouts, "demoted": n.demoted,
        })).collect::<Vec<_>>(),
        "fork_slot": s.fork_slot,
        "can_sign": s.can_sign,
    })
}

fn kind_name(k: &TxKind) -> String {
    match k {
        TxKind::Pay { to, amount } => format!("pay {amount} to {to}"),
        TxKind::Attest { day } => format!("attest day {day}"),
        TxKind::SetSecurityCircle => "set security circle".into(),
        TxKind::SetReferrer { referrer } => format!("set referrer {referrer}"),
        TxKind::Storage => "storage".into(),
    }
}

fn origin_name(o: NodeOrigin) -> &'static str {
    match o {
        NodeOrigin::Genesis => "genesis",
        NodeOrigin::Directory => "directory",
        NodeOrigin::User => "user",
    }
}

async fn settle(
    cli: &Cli,
    client: &WattClient,
    hash: watt_core::crypto::Hash256,
    what: &str,
    no_wait: bool,
    timeout_s: u64,
) -> Result<(), Failure> {
    if no_wait {
        print(cli, json!({ "ok": true, "hash": hash.to_hex(), "status": { "state": "pending" } }), || {
            format!("{what} submitted: {}", hash.to_hex())
        });
        return Ok(());
    }
    let status = client.wait_settled(hash, timeout_s * 1000).await.map_err(failure)?;
    let ok = matches!(status, TxStatus::Confirmed { .. });
    print(cli, json!({ "ok": ok, "hash": hash.to_hex(), "status": tx_status_json(&status) }), || {
        format!("{what} {}: {}", tx_status_text(&status), hash.to_hex())
    });
    if ok {
        Ok(())
    } else {
        Err(Failure { code: exit::REJECTED, message: format!("{what} {}", tx_status_text(&status)) })
    }
}

async fn run_async(cli: &Cli) -> Result<(), Failure> {
    if let Command::Bench { rounds } = &cli.command {
        let report =
            watt_node::bench::client_bench(*rounds).await.map_err(|e| Failure { code: exit::OTHER, message: e })?;
        print(cli, report.clone(), || watt_node::bench::client_bench_text(&report));
        return Ok(());
    }
    let client = open(cli).await?;
    match &cli.command {
        Command::Init => {
            let phrase = client.create_wallet().map_err(failure)?;
            let address = client.address().map_err(failure)?.map(|a| a.to_string()).unwrap_or_default();
            if cli.json {
                println!("{}", json!({ "ok": true, "address": address, "mnemonic": phrase.as_str() }));
            } else {
                println!("address: {address}");
                println!("\nrecovery words (write them down; they are shown only now):");
                for (i, w) in phrase.split(' ').enumerate() {
                    print!("{:>2}. {:<10}{}", i + 1, w, if i % 6 == 5 { "\n" } else { " " });
                }
            }
        }
        Command::Restore { replace } => {
            let mut phrase = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut phrase)
                .map_err(|e| bad_input(format!("cannot read the words from standard input: {e}")))?;
            let account = client.restore_wallet(&phrase, *replace).map_err(failure)?;
            print(cli, json!({ "ok": true, "address": account.to_string() }), || format!("restored {account}"));
        }
        Command::Address { command: None } => {
            let a = client.address().map_err(failure)?.ok_or_else(|| failure(ClientError::NoWallet))?;
            print(cli, json!({ "ok": true, "address": a.to_string() }), || a.to_string());
        }
        Command::Balance => {
            client.address().map_err(failure)?.ok_or_else(|| failure(ClientError::NoWallet))?;
            let (balance, seq) = client.balance().await.map_err(failure)?;
            print(
                cli,
                json!({ "ok": true, "balance_units": balance.units(), "balance": balance.to_string(), "ledger": seq }),
                || format!("{balance} (proven at ledger {seq})"),
            );
        }
        Command::Pay { to, amount, fee, no_wait, timeout_s } => {
            let to: AccountId = to.trim().parse().map_err(|e| bad_input(format!("invalid address {to:?}: {e}")))?;
            let amount: Amount = amount.parse().map_err(|e| bad_input(format!("{e}")))?;
            let fee: Amount = fee.parse().map_err(|e| bad_input(format!("fee: {e}")))?;
            let hash = client.pay(to, amount, fee).await.map_err(failure)?;
            settle(cli, &client, hash, &format!("payment of {amount} to {to}"), *no_wait, *timeout_s).await?;
        }
        Command::Attest { invite, no_wait, timeout_s } => {
            let invite = match invite {
                Some(i) => Some(Invite::from_text(i).map_err(|e| bad_input(format!("invalid invite: {e}")))?),
                None => None,
            };
            let hash = client.attest(invite).await.map_err(failure)?;
            settle(cli, &client, hash, "attestation", *no_wait, *timeout_s).await?;
        }
        Command::Invite { address, days } => {
            let invitee: AccountId =
                address.trim().parse().map_err(|e| bad_input(format!("invalid address {address:?}: {e}")))?;
            let invite = client.create_invite(invitee, *days).await.map_err(failure)?;
            if cli.json {
                println!(
                    "{}",
                    json!({ "invite": invite.to_text(), "invitee": invitee.to_string(), "expiry_day": invite.expiry_day })
                );
            } else {
                println!("{}", invite.to_text());
            }
        }
        Command::Status { offline } => {
            let refreshed = if *offline { None } else { Some(client.refresh().await) };
            let s = client.status().await.map_err(failure)?;
            let mut v = status_json(&s);
            if let Some(Err(e)) = &refreshed {
                v["warning"] = json!(e.to_string());
            }
            print(cli, v, || {
                let mut out = String::new();
                out += &format!(
                    "account:  {}\n",
                    s.account.map(|a| a.to_string()).unwrap_or_else(|| "(no wallet: run `watt init`)".into())
                );
                match (s.verified_seq, s.verified_age_ms) {
                    (Some(seq), Some(age)) => {
                        out += &format!(
                            "ledger:   {seq} verified, {:.1} s old{}\n",
                            age as f64 / 1000.0,
                            if s.stale { " (STALE)" } else { "" }
                        )
                    }
                    _ => out += "ledger:   none verified yet\n",
                }
                if let (Some(b), Some(seq)) = (s.balance, s.balance_seq) {
                    out += &format!("balance:  {b} (proven at ledger {seq})\n");
                }
                if let Some(day) = s.day {
                    let tap = match s.attested_today {
                        AttestState::NotYet => "not yet",
                        AttestState::Pending => "pending",
                        AttestState::Confirmed => "done",
                    };
                    out += &format!("day:      {day}, today's tap {tap}");
                    if let Some(next) = s.next_day_starts_ms {
                        out +=
                            &format!(", next day in {} s", next.saturating_sub(watt_client::client::now_ms()) / 1000);
                    }
                    out += "\n";
                }
                for p in &s.pending {
                    out += &format!("pending:  #{} {} {}\n", p.seq_num, kind_name(&p.kind), p.hash.to_hex());
                }
                let connected = s.nodes.iter().filter(|n| n.connected).count();
                out += &format!("nodes:    {connected} connected of {}\n", s.nodes.len());
                if let Some(slot) = s.fork_slot {
                    out += &format!("FORK EVIDENCE at slot {slot}: this wallet refuses to sign\n");
                }
                if let Some(Err(e)) = &refreshed {
                    out += &format!("warning:  {e}\n");
                }
                out.trim_end().to_string()
            });
        }
        Command::Nodes { command } => match command {
            None => {
                let nodes = client.nodes().map_err(failure)?;
                let list: Vec<Value> = nodes
                    .iter()
                    .map(|n| json!({ "node_id": n.node_id.to_string(), "address": n.address, "origin": origin_name(n.origin), "good": n.good_answers, "bad": n.bad_answers, "timeouts": n.timeouts, "demoted": n.demoted }))
                    .collect();
                print(cli, json!({ "ok": true, "nodes": list }), || {
                    nodes
                        .iter()
                        .map(|n| {
                            format!(
                                "{} {} {}{}",
                                n.node_id,
                                n.address,
                                origin_name(n.origin),
                                if n.demoted { " DEMOTED" } else { "" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            Some(NodesCommand::Add { address, node_id }) => {
                let id: NodeId =
                    node_id.trim().parse().map_err(|e| bad_input(format!("invalid node id {node_id:?}: {e}")))?;
                client.add_node(address, id).map_err(failure)?;
                print(cli, json!({ "ok": true }), || format!("added {id} at {address}"));
            }
            Some(NodesCommand::Remove { node_id }) => {
                let id: NodeId =
                    node_id.trim().parse().map_err(|e| bad_input(format!("invalid node id {node_id:?}: {e}")))?;
                client.remove_node(&id).await.map_err(failure)?;
                print(cli, json!({ "ok": true }), || format!("removed {id}"));
            }
            Some(NodesCommand::Discover) => {
                let added = client.refresh_directory().await.map_err(failure)?;
                print(cli, json!({ "ok": true, "added": added }), || {
                    format!("{added} nodes added from the proven directory")
                });
            }
        },
        Command::Events { wait_ms, keep } => {
            let next = client.wait_event(*wait_ms).await.map_err(failure)?;
            let v = match &next {
                Some(e) => json!({ "ok": true, "id": e.id, "event": event_json(&e.event) }),
                None => json!({ "ok": true, "id": null, "event": null }),
            };
            print(cli, v.clone(), || match &next {
                Some(e) => format!("event {}: {}", e.id, event_json(&e.event)),
                None => "no event waiting".into(),
            });
            if let (Some(e), false) = (next, *keep) {
                // Shown, not yet handled: a kill here shows it again next time.
                watt_client::pause_point("before-event-handled");
                client.event_handled(e.id).map_err(failure)?;
            }
        }
        Command::History { limit } => {
            let h = client.history(*limit).map_err(failure)?;
            let lines: Vec<Value> = h
                .iter()
                .map(|e| {
                    let (kind, detail) = match &e.kind {
                        HistoryKind::Sent { to, amount, fee } => ("sent", json!({ "to": to.to_string(), "amount_units": amount.units(), "fee_units": fee.units() })),
                        HistoryKind::Attested { day } => ("attested", json!({ "day": day })),
                        HistoryKind::Received { amount } => ("received", json!({ "amount_units": amount.units() })),
                        HistoryKind::Reward { day, amount } => ("reward", json!({ "day": day, "amount_units": amount.units() })),
                        HistoryKind::SecurityCircleSet => ("security_circle", json!({})),
                        HistoryKind::ReferrerSet { referrer } => ("referrer", json!({ "referrer": referrer.to_string() })),
                        HistoryKind::Storage => ("storage", json!({})),
                    };
                    json!({ "id": e.id, "time_ms": e.time_ms, "kind": kind, "detail": detail, "hash": e.tx_hash.map(|h| h.to_hex()), "status": tx_status_json(&e.status) })
                })
                .collect();
            print(cli, json!({ "ok": true, "history": lines }), || {
                h.iter()
                    .map(|e| {
                        let what = match &e.kind {
                            HistoryKind::Sent { to, amount, fee } => format!("sent {amount} to {to} (fee {fee})"),
                            HistoryKind::Attested { day } => format!("attested day {day}"),
                            HistoryKind::Received { amount } => format!("received {amount}"),
                            HistoryKind::Reward { day, amount } => format!("reward {amount} for day {day}"),
                            HistoryKind::SecurityCircleSet => "security circle set".into(),
                            HistoryKind::ReferrerSet { referrer } => format!("referrer set to {referrer}"),
                            HistoryKind::Storage => "storage".into(),
                        };
                        format!("#{:<4} {what}: {}", e.id, tx_status_text(&e.status))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Storage { command } => storage(cli, &client, command).await?,
        _ => return Err(Failure { code: exit::OTHER, message: "unhandled command".into() }),
    }
    Ok(())
}

fn storage_json(s: &watt_client::StorageStatus) -> Value {
    json!({
        "ok": true,
        "donated_bytes": s.donated_bytes,
        "used_bytes": s.used_bytes,
        "earned": s.earned.units(),
        "last_proven_period": s.last_proven_period,
        "next_deadline_ms": s.next_deadline_ms,
        "terminating": s.terminating,
        "sectors": s.sectors.iter().map(|x| json!({
            "number": x.number, "sector_bytes": x.sector_bytes, "layers": x.layers, "replica_id": x.replica_id.to_hex(),
            "sealed": x.sealed, "phase": format!("{:?}", x.phase).to_lowercase(), "labels_done": x.labels_done, "labels_total": x.labels_total, "comm_r": x.comm_r.map(|c| c.to_hex()),
        })).collect::<Vec<_>>(),
    })
}

fn storage_text(s: &watt_client::StorageStatus) -> String {
    use watt_client::SectorPhase as P;
    let mut out = format!(
        "donated {} MiB, {} MiB in sectors, earned {} WATT\n",
        s.donated_bytes >> 20,
        s.used_bytes >> 20,
        s.earned
    );
    if let Some(p) = s.last_proven_period {
        out += &format!("last proven period: day {p}\n");
    }
    for x in &s.sectors {
        let state = match x.phase {
            P::Sealing => format!("sealing {:.1}%", 100.0 * x.labels_done as f64 / x.labels_total.max(1) as f64),
            P::Sealed => "sealed, pre-commit on the way".to_string(),
            P::PreCommitted => "pre-committed, seal proof next".to_string(),
            P::Active => "active (proven every period)".to_string(),
            P::Faulty => "faulty: missed a period's proof".to_string(),
            P::Unprovable => "not provable on this network (size or layers)".to_string(),
        };
        out += &format!("  sector {}: {} MiB, {} layers, {state}\n", x.number, x.sector_bytes >> 20, x.layers);
    }
    out
}

/// A desktop is plugged in, cool and on an unmetered network.
fn desktop_facts() -> watt_core::storage::power::DeviceFacts {
    watt_core::storage::power::DeviceFacts::plugged_in_desktop()
}

async fn storage(cli: &Cli, client: &WattClient, command: &crate::StorageCommand) -> Result<(), Failure> {
    use crate::StorageCommand as S;
    match command {
        S::Donate { mib, sector_mib, layers } => {
            let shape = watt_core::storage::graph::SectorShape { sector_bytes: sector_mib << 20, layers: *layers };
            let s = client.donate(mib << 20, shape).map_err(failure)?;
            print(cli, storage_json(&s), || storage_text(&s));
        }
        S::Status => {
            let s = client.storage_status().map_err(failure)?;
            print(cli, storage_json(&s), || storage_text(&s));
        }
        S::Run { budget_ms, until_done } => {
            // The client's one background run (ledger duties, sealing, then
            // what sealing made due), repeated with --until-done until idle.
            let facts = desktop_facts();
            let mut total = 0u64;
            let mut done = watt_client::StorageDuties::default();
            let mut skipped: Option<String>;
            loop {
                let budget = if *until_done { 1_000 } else { *budget_ms };
                let r = client.run_background(&facts, budget).await.map_err(failure)?;
                total += r.sealing.labels_done;
                done.submitted.extend(r.duties.submitted);
                done.resealing.extend(r.duties.resealing);
                done.deferred = r.duties.deferred;
                skipped = r.ledger_skipped;
                if !cli.json {
                    let s = client.storage_status().map_err(failure)?;
                    if let Some(x) = s.sectors.iter().find(|x| !x.sealed) {
                        eprintln!("watt: sealing sector {}: {}/{} labels", x.number, x.labels_done, x.labels_total);
                    }
                }
                if !r.sealing.decision.may_seal {
                    return Err(Failure {
                        code: exit::OTHER,
                        message: format!("storage work not allowed now: {}", r.sealing.decision.reason),
                    });
                }
                if r.sealing.idle || !*until_done {
                    break;
                }
            }
            let ledger = match skipped {
                Some(why) if done.submitted.is_empty() => json!({ "skipped": why }),
                _ => json!({ "submitted": done.submitted, "resealing": done.resealing, "deferred": done.deferred }),
            };
            let s = client.storage_status().map_err(failure)?;
            let mut v = storage_json(&s);
            v["labels_done_now"] = json!(total);
            v["ledger"] = ledger.clone();
            print(cli, v, || format!("{total} labels this run; ledger: {ledger}\n{}", storage_text(&s)));
        }
    }
    Ok(())
}
