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
