//! Security review (issue 10): no secret seed or recovery phrase reaches a
//! log line, an error message or any output other than the one screen that
//! shows the words to their owner; phones cannot pose as validators.

use std::path::Path;
use std::time::Duration;
use watt_core::address::encode_secret;
use watt_core::mnemonic::Mnemonic;
use watt_e2e::{run, Network, TempDir};

/// Runs `watt` with every log level on: exit code, and output and logs together.
fn watt_traced(dir: &Path, genesis: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    use std::io::Write;
    let mut cmd = std::process::Command::new(watt_e2e::bin("watt"));
    cmd.args(["--data-dir", dir.to_str().unwrap(), "--genesis", genesis.to_str().unwrap()])
        .args(args)
        .env("RUST_LOG", "trace")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("watt starts");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("stdin written");
    }
    drop(input);
    let out = child.wait_with_output().expect("watt finishes");
    (
        out.status.code().unwrap_or(-1),
        format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// Fails if `text` holds the secret in any form: three consecutive recovery
/// words, the `S...` seed, or its hex.
fn assert_no_secret(what: &str, text: &str, words: &str, secrets: &[String]) {
    let w: Vec<&str> = words.split(' ').collect();
    for window in w.windows(3) {
        let run_of_three = window.join(" ");
        assert!(!text.contains(&run_of_three), "{what} shows recovery words ({run_of_three:?})");
    }
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} shows a secret seed");
    }
}

#[test]
fn no_secret_reaches_a_log_line_an_error_or_any_output_but_the_words_screen() {
    // The one place the words are shown: `keys new`, once, on stdout.
    let home = TempDir::new("secrets-keys");
    let new = run("watt", &["--data-dir", home.path().to_str().unwrap(), "keys", "new", "--json"], None);
    assert_eq!(new.code, 0, "{}", new.stderr);
    let v: serde_json::Value = serde_json::from_str(new.stdout.lines().last().unwrap()).unwrap();
    let words = v["mnemonic"].as_str().unwrap().to_string();
    let address = v["address"].as_str().unwrap().to_string();
    let mnemonic = Mnemonic::parse(&words).expect("valid words");
    let seed = mnemonic.account_seed();
    let secrets = vec![encode_secret(&seed), watt_core::hex::encode(seed.expose())];
    assert!(!new.stderr.contains(&secrets[0]));

    let mut net = Network::start_with("watt-e2e-secrets", 4, 400, 3600, &["--founder", &address]);
    assert!(net.wait_for(60, |n| n.seq(0) >= 3), "network did not start: {}", net.log(0));
    // One validator logs everything it does.
    net.kill(0);
    net.start_node_with_env(0, &[("RUST_LOG", "trace")]);
    assert!(net.wait_for(60, |n| n.seq(0) >= n.seq(1) && n.seq(0) >= 4), "node 0 did not come back: {}", net.log(0));
    let genesis = net.dir.path().join("genesis.json");

    // Everything a phone does, traced, including failures.
    let wallet = TempDir::new("secrets-wallet");
    let w = wallet.path();
    let mut outputs = Vec::new();
    outputs.push(("restore", watt_traced(w, &genesis, &["restore"], Some(&words))));
    outputs.push(("attest", watt_traced(w, &genesis, &["attest"], None)));
    let payee = run(
        "watt",
        &["--data-dir", TempDir::new("secrets-payee").path().to_str().unwrap(), "keys", "new", "--json"],
        None,
    );
    let payee: serde_json::Value = serde_json::from_str(payee.stdout.lines().last().unwrap()).unwrap();
    let payee = payee["address"].as_str().unwrap().to_string();
    outputs.push(("pay", watt_traced(w, &genesis, &["pay", &payee, "1.5"], None)));
    outputs.push(("pay too much", watt_traced(w, &genesis, &["pay", &payee, "999999"], None)));
    outputs.push(("balance", watt_traced(w, &genesis, &["balance"], None)));
    outputs.push(("status", watt_traced(w, &genesis, &["--json", "status"], None)));
    outputs.push(("history", watt_traced(w, &genesis, &["history"], None)));
    outputs.push(("keys show", watt_traced(w, &genesis, &["keys", "show"], None)));
    // Restoring the same words again, and with one word wrong (refused: the
    // message names the bad word without repeating the phrase).
    outputs.push(("restore again", watt_traced(w, &genesis, &["restore"], Some(&words))));
    let mut wrong: Vec<&str> = words.split(' ').collect();
    wrong[23] = "zzzz";
    let other = TempDir::new("secrets-wrong");
    let wrong_out = watt_traced(other.path(), &genesis, &["restore"], Some(&wrong.join(" ")));
    assert!(wrong_out.0 != 0 && wrong_out.1.contains("zzzz"), "the bad word is named: {wrong_out:?}");
    outputs.push(("restore with a wrong word", wrong_out));
    // Restore, tap and payment really happened (so the traced paths ran);
    // paying more than the balance and restoring twice failed.
    let codes: Vec<(&str, i32)> = outputs.iter().map(|(w, (c, _))| (*w, *c)).collect();
    assert_eq!(&codes[..3], &[("restore", 0), ("attest", 0), ("pay", 0)], "{codes:?}");
    assert_ne!(codes[3].1, 0, "paying more than the balance: {codes:?}");
    for (what, (_, text)) in &outputs {
        assert_no_secret(what, text, &words, &secrets);
    }
    // The wallet's files on disk hold the seed sealed, never in the clear.
    for entry in walk(w) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert_no_secret(&entry.display().to_string(), &text, &words, &secrets);
        assert!(!bytes.windows(32).any(|win| win == seed.expose()), "{} holds the raw seed", entry.display());
    }

    // Validators: no node key in any log, even at trace level.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..4 {
        let key = encode_secret(net.node_key(i).seed());
        assert!(!net.log(i).contains(&key), "node {i}'s log shows its key");
    }
    assert!(net.log(0).len() > 1_000, "node 0 logged at trace level");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A phone (no client certificate) asking for the peer protocol is refused:
/// only a validator's key opens `watt-peer/1`.
#[test]
fn a_phone_cannot_pose_as_a_validator() {
    let net = Network::start("watt-e2e-impostor", 4, 500, 3600);
    assert!(net.wait_for(60, |n| n.seq(0) >= 3), "network did not start: {}", net.log(0));
    let node0 = net.genesis().validators[0].node_id;
    let addr = net.listen(0);
    let peers_before = net.status(0).unwrap()["peers"].as_array().unwrap().len();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let accepted_as_peer = rt.block_on(async {
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        // The phone's TLS (no client certificate) with the peer ALPN.
        let mut tls = watt_client::net::tls::pinned_client_builder(&node0).unwrap().with_no_client_auth();
        tls.alpn_protocols = vec![watt_core::wire::ALPN_PEER.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut cfg = quinn::ClientConfig::new(std::sync::Arc::new(quic));
        cfg.transport_config(watt_client::net::tls::transport(watt_client::net::tls::Link::Phone));
        let Ok(conn) = ep.connect_with(cfg, addr, "watt-node").unwrap().await else { return false };
        // If it were taken for a peer, the node would open its stream and send.
        tokio::time::timeout(Duration::from_secs(3), conn.accept_uni()).await.is_ok_and(|r| r.is_ok())
    });
    assert!(!accepted_as_peer, "a connection without a validator key was served as a peer");
    let st = net.status(0).unwrap();
    assert_eq!(st["peers"].as_array().unwrap().len(), peers_before, "the node lists no new peer");
}
