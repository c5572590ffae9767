//! `watt-liar NET_DIR UPSTREAM_INDEX UPSTREAM_PORT LIE`: a lying node (see
//! `watt_e2e::liar`) for tests in other languages. Prints one JSON line with
//! its address and node id, then serves until killed. LIE is one of
//! conflicting-chain, too-few-signers, stale-header, tx-unknown.

use std::path::PathBuf;
use watt_e2e::liar::{Lie, LyingNode};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, upstream, port, lie] = args.as_slice() else {
        eprintln!("usage: watt-liar NET_DIR UPSTREAM_INDEX UPSTREAM_PORT LIE");
        std::process::exit(64);
    };
    let dir = PathBuf::from(dir);
    let upstream: usize = upstream.parse().expect("an index");
    let port: u16 = port.parse().expect("a port");
    let lie = match lie.as_str() {
        "conflicting-chain" => Lie::ConflictingChain,
        "too-few-signers" => Lie::TooFewSigners,
        "stale-header" => Lie::StaleHeader,
        "tx-unknown" => Lie::TxUnknown,
        other => {
            eprintln!("unknown lie {other:?}");
            std::process::exit(64);
        }
    };
    let genesis = watt_core::ledger::Genesis::from_json(&std::fs::read(dir.join("genesis.json")).expect("genesis"))
        .expect("a valid genesis");
    let keys = (0..genesis.validators.len()).map(|i| watt_e2e::node_key_in(&dir, i)).collect();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let node = LyingNode::start(&genesis, keys, upstream, ([127, 0, 0, 1], port).into()).await;
        *node.lie.lock().expect("not poisoned") = lie;
        println!("{{\"address\": \"{}\", \"node_id\": \"{}\"}}", node.address, node.node_id);
        std::future::pending::<()>().await;
    });
}
