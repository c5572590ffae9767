//! `watt-node bench ...`: figures measured on this machine, printed as a table
//! or one JSON object. Compare ratios from one run, not absolute numbers
//! across machines.

use serde_json::{json, Value as Json};
use std::time::Instant;
use watt_core::scp::sim::{SimConfig, Simulation, Topology};

/// Consensus cost per externalized slot in the deterministic simulator, with
/// real Ed25519 signatures: messages, rounds, and CPU per slot per node.
pub fn scp(slots: u64) -> Json {
    let mut rows = Vec::new();
    for topology in [Topology::core(4), Topology::core(7), Topology::orgs(3, 3)] {
        let mut cfg = SimConfig::new(1, slots);
        cfg.real_signatures = true;
        let started = Instant::now();
        let report = Simulation::new(&topology, &[], cfg).run();
        let cpu = started.elapsed();
        let n = topology.len() as f64;
        let s = report.slot_stats.len().max(1) as f64;
        let messages: u64 = report.slot_stats.values().map(|x| x.messages).sum();
        let ballot: u64 = report.slot_stats.values().map(|x| u64::from(x.ballot_counter)).sum();
        let nomination: u64 = report.slot_stats.values().map(|x| u64::from(x.nomination_rounds)).sum();
        let latency: u64 = report.slot_stats.values().map(|x| x.latency_ms).sum();
        rows.push(json!({
            "topology": topology.name,
            "nodes": topology.len(),
            "slots": slots,
            "all_externalized": report.live,
            "agreed": report.safe,
            "messages_per_slot": messages as f64 / s,
            "messages_per_slot_per_node": messages as f64 / s / n,
            "ballot_rounds_per_slot": ballot as f64 / s,
            "nomination_rounds_per_slot": nomination as f64 / s,
            "virtual_latency_ms_per_slot": latency as f64 / s,
            "cpu_ms_per_slot_per_node": cpu.as_secs_f64() * 1000.0 / s / n,
        }));
    }
    json!({ "bench": "scp", "note": "deterministic simulator, 5-50 ms link delay, Ed25519 signatures, one core", "results": rows })
}

pub fn print_table(report: &Json) {
    let Some(rows) = report["results"].as_array() else { return };
    if let Some(note) = report["note"].as_str() {
        println!("# {note}");
    }
    let Some(first) = rows.first().and_then(|r| r.as_object()) else { return };
    let keys: Vec<&String> = first.keys().collect();
    println!("{}", keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("\t"));
    for r in rows {
        let cells: Vec<String> = keys
            .iter()
            .map(|k| match &r[k.as_str()] {
                Json::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        println!("{}", cells.join("\t"));
    }
}

/// Ledger application at scale (SPEC §3, §5): payments and attestations per
/// second with `accounts` in state, next to the bare Ed25519 verify rate
/// measured in the same run; the day-boundary ledger with every account
/// attesting; and the state proof size.
pub fn ledger(accounts: usize) -> Json {
    use watt_core::address::AccountId;
    use watt_core::amount::{Amount, UNITS_PER_WATT};
    use watt_core::codec::BoundedVec;
    use watt_core::crypto::{Hash256, Keypair, SecretSeed};
    use watt_core::ledger::apply::canonical_order;
    use watt_core::ledger::*;

    let key = |i: u64| Keypair::from_seed(SecretSeed::from_bytes(*blake3::hash(&i.to_le_bytes()).as_bytes())).expect("seed");
    let v = key(u64::MAX);
    let mut params = Params::mainnet();
    params.reserve = Amount(1_000_000_000 * UNITS_PER_WATT);
    let g = Genesis {
        network_passphrase: "WATT bench".into(),
        genesis_time: 1_700_000_000,
        protocol_version: 1,
        validators: BoundedVec::try_from_vec(vec![GenesisValidator {
            name: "v".into(),
            node_id: watt_core::address::NodeId(v.public()),
            vrf_key: v.public(),
            quorum_set: watt_core::scp::QuorumSet::flat(1, vec![watt_core::address::NodeId(v.public())]),
            addresses: vec![],
        }])
        .expect("one"),
        reserve_account: AccountId(key(u64::MAX - 1).public()),
        founding_accounts: BoundedVec::new(),
        params,
    };
    let net = g.network_id();
    let senders_n = 25_000usize.min(accounts);
    let t = Instant::now();
    let senders: Vec<Keypair> = (0..senders_n as u64).map(key).collect();
    let mut ids: Vec<AccountId> = senders.iter().map(|k| AccountId(k.public())).collect();
    ids.extend((senders_n as u64..accounts as u64).map(|i| AccountId(watt_core::crypto::PublicKey(*blake3::hash(&i.to_be_bytes()).as_bytes()))));
    let mut state = LedgerState::from_genesis(&g);
    // Everyone but the senders attests on day 0, so day 1's first ledgers distribute to ~all.
    state.bench_seed(&ids[senders_n..], Amount(100 * UNITS_PER_WATT), Some(0));
    state.bench_seed(&ids[..senders_n], Amount(100 * UNITS_PER_WATT), None);
    let seed_s = t.elapsed().as_secs_f64();

    // Bare single-core verify rate, same machine, same run.
    let msgs: Vec<(Vec<u8>, watt_core::crypto::Signature)> = (0..4_000u32)
        .map(|i| {
            let m = i.to_le_bytes().to_vec();
            let s = senders[i as usize % senders.len()].sign(&net, watt_core::crypto::Domain::Transaction, &m);
            (m, s)
        })
        .collect();
    let t = Instant::now();
    for (i, (m, s)) in msgs.iter().enumerate() {
        let _ = watt_core::crypto::verify(&senders[i % senders.len()].public(), &net, watt_core::crypto::Domain::Transaction, m, s);
    }
    let verify_rate = msgs.len() as f64 / t.elapsed().as_secs_f64();

    let close = std::cell::Cell::new(state.header.close_time);
    let next = |state: &mut LedgerState, txs: Vec<Transaction>| -> (f64, usize) {
        let mut txs = txs;
        txs.sort_by(canonical_order);
        close.set(close.get() + 5_000);
        let set = TxSet { prev_header_hash: state.header.hash(), txs: BoundedVec::try_from_vec(txs).unwrap_or_default() };
        let inputs = HeaderInputs { close_time: close.get(), rand: Hash256::ZERO, prev_proof_hash: Hash256::ZERO, upgrades: vec![], participants: vec![] };
        let t = Instant::now();
        let out = state.apply(&inputs, &set).expect("bench ledger applies");
        let ok = out.results.iter().filter(|r| r.outcome == TxOutcome::Success).count();
        (t.elapsed().as_secs_f64(), ok)
    };
    // Payments: 1,000 per ledger (max_txs_per_ledger).
    let mut pay_time = 0.0;
    let mut pay_ok = 0;
    let mut worst = 0.0f64;
    for l in 0..5usize {
        let txs: Vec<Transaction> = (0..1_000usize)
            .map(|i| {
                let s = &senders[(l * 1_000 + i) % senders.len()];
                let to = ids[(senders_n + (l * 7919 + i * 31) % (accounts - senders_n).max(1)).min(accounts - 1)];
                TransactionBody {
                    source: AccountId(s.public()),
                    seq_num: state.account(&AccountId(s.public())).map_or(0, |a| a.seq_num) + 1,
                    fee: Amount(100),
                    max_ledger: None,
                    ops: BoundedVec::try_from_vec(vec![Operation::Pay { to, amount: Amount(1) }]).expect("one op"),
                }
                .sign(s, &net)
            })
            .collect();
        let (secs, ok) = next(&mut state, txs);
        pay_time += secs;
        pay_ok += ok;
        worst = worst.max(secs);
    }
    // Attestations: 5,000 per ledger (max_attestations_per_ledger), from the senders, day 0.
    let mut att_time = 0.0;
    let mut att_ok = 0;
    for l in 0..4usize {
        let anchor = (state.header.seq, state.header.hash());
        let txs: Vec<Transaction> = (0..5_000usize)
            .filter_map(|i| senders.get(l * 5_000 + i))
            .map(|s| {
                TransactionBody {
                    source: AccountId(s.public()),
                    seq_num: state.account(&AccountId(s.public())).map_or(0, |a| a.seq_num) + 1,
                    fee: Amount::ZERO,
                    max_ledger: None,
                    ops: BoundedVec::try_from_vec(vec![Operation::Attest(Attest { day: 0, anchor_seq: anchor.0, anchor_hash: anchor.1, inviter: None, device_token: None })])
                        .expect("one op"),
                }
                .sign(s, &net)
            })
            .collect();
        let (secs, ok) = next(&mut state, txs);
        att_time += secs;
        att_ok += ok;
        worst = worst.max(secs);
    }
    // Into day 1: the distribution ledger (after the grace ledgers), then a payout ledger.
    close.set((g.genesis_time + g.params.day_seconds) * 1000);
    let mut boundary = 0.0f64;
    let mut payout_ledger = 0.0f64;
    for _ in 0..(g.params.attest_grace_ledgers + 2) {
        let before = state.day_record(0).is_some_and(|d| d.distributed);
        let (secs, _) = next(&mut state, vec![]);
        if !before && state.day_record(0).is_some_and(|d| d.distributed) {
            boundary = secs;
        } else if before {
            payout_ledger = payout_ledger.max(secs);
        }
    }
    let proof_bytes = watt_core::codec::encode(&state.prove(&StateKey::Account(ids[accounts / 2])).1).len();
    let payments_per_s = pay_ok as f64 / pay_time;
    let attestations_per_s = att_ok as f64 / att_time;
    json!({
        "bench": "ledger",
        "accounts": accounts,
        "attesters_on_boundary_day": state.day_record(0).map_or(0, |d| d.attesters),
        "seed_s": seed_s,
        "bare_verify_per_s_one_core": verify_rate,
        "payments_per_s": payments_per_s,
        "payments_ratio_to_verify": payments_per_s / verify_rate,
        "payments_applied": pay_ok,
        "attestations_per_s": attestations_per_s,
        "attestations_ratio_to_verify": attestations_per_s / verify_rate,
        "attestations_applied": att_ok,
        "worst_tx_ledger_ms": worst * 1000.0,
        "day_boundary_ledger_ms": boundary * 1000.0,
        "payout_ledger_ms": payout_ledger * 1000.0,
        "close_target_ms": g.params.ledger_close_ms,
        "state_proof_bytes": proof_bytes,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Consensus on loopback QUIC (validators in one process): latency from
/// nomination to externalize, close interval, and bytes sent per ledger per
/// validator, for each network size.
pub async fn consensus(sizes: &[usize], ledgers: u64, ledger_ms: u64) -> Json {
    let mut rows = Vec::new();
    for &n in sizes {
        let dir = std::env::temp_dir().join(format!("watt-bench-consensus-{}-{n}-{}", std::process::id(), crate::node::now_ms()));
        let params = watt_core::ledger::Params::devnet(ledger_ms, 86_400);
        let Ok((handles, _, _)) = crate::devnet::start_local(&dir, n, params, &[]).await else {
            rows.push(json!({ "validators": n, "error": "could not start" }));
            continue;
        };
        let started = Instant::now();
        let limit = std::time::Duration::from_millis(ledger_ms * (ledgers + 20) * 3);
        // Warm up 2 ledgers, then measure `ledgers` more.
        let mut first_bytes = 0u64;
        let mut first_seq = 0u64;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let Some(st) = handles[0].status().await else { break };
            let seq = st["ledger"]["seq"].as_u64().unwrap_or(0);
            if first_seq == 0 && seq >= 3 {
                first_seq = seq;
                for h in &handles {
                    first_bytes += h.status().await.map_or(0, |s| s["bytes_sent"].as_u64().unwrap_or(0));
                }
            }
            if (first_seq > 0 && seq >= first_seq + ledgers) || started.elapsed() > limit {
                break;
            }
        }
        let mut consensus = Vec::new();
        let mut p99 = Vec::new();
        let mut intervals = Vec::new();
        let mut bytes = 0u64;
        let mut last = 0u64;
        for h in &handles {
            if let Some(s) = h.status().await {
                consensus.push(s["consensus_ms_median"].as_u64().unwrap_or(0));
                p99.push(s["consensus_ms_p99"].as_u64().unwrap_or(0));
                intervals.push(s["close_interval_ms_median"].as_u64().unwrap_or(0));
                bytes += s["bytes_sent"].as_u64().unwrap_or(0);
                last = last.max(s["ledger"]["seq"].as_u64().unwrap_or(0));
            }
        }
        for h in handles {
            h.stop().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        consensus.sort_unstable();
        intervals.sort_unstable();
        let measured = last.saturating_sub(first_seq).max(1);
        rows.push(json!({
            "validators": n,
            "ledgers_measured": measured,
            "consensus_ms_median": consensus.get(consensus.len() / 2).copied().unwrap_or(0),
            "consensus_ms_p99": p99.iter().copied().max().unwrap_or(0),
            "close_interval_ms_median": intervals.get(intervals.len() / 2).copied().unwrap_or(0),
            "close_interval_vs_target": intervals.get(intervals.len() / 2).copied().unwrap_or(0) as f64 / ledger_ms as f64,
            "bytes_per_ledger_per_validator": (bytes.saturating_sub(first_bytes)) as f64 / measured as f64 / n as f64,
        }));
    }
    json!({ "bench": "consensus", "ledger_ms": ledger_ms, "note": "validators in one process on loopback QUIC, 2 cores shared", "results": rows })
}
