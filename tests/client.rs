//! The mobile core end to end: `WattClient`s against real validators on
//! loopback, nodes that lie, and the `watt` CLI killed in the middle of a
//! payment.

use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use watt_client::{
    AttestState, ClientConfig, ClientError, ClientEvent, EventListener, FileKeyStore, HistoryKind, TxStatus, WattClient,
};
use watt_core::address::AccountId;
use watt_core::amount::{Amount, UNITS_PER_WATT};
use watt_core::crypto::Keypair;
use watt_core::light::LightError;
use watt_core::scp::proof::ProofError;
use watt_e2e::liar::{Lie, LyingNode};
use watt_e2e::{new_account, run, Network, TempDir};

const FOUNDER_UNITS: u64 = 1_000 * UNITS_PER_WATT;

/// Collects the core's events as the app's listener would.
#[derive(Default)]
struct Events(Mutex<Vec<ClientEvent>>);

impl EventListener for Events {
    fn on_event(&self, event: ClientEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Events {
    fn all(&self) -> Vec<ClientEvent> {
        self.0.lock().unwrap().clone()
    }
}

async fn open_phone(dir: &Path, net: &Network) -> (WattClient, Arc<Events>) {
    let config = ClientConfig {
        request_timeout_ms: 3_000,
        connect_timeout_ms: 3_000,
        selection_seed: Some(7),
        ..ClientConfig::default()
    };
    let key_store = Arc::new(FileKeyStore::new(dir.join("device.key")));
    let client = WattClient::open(dir, net.genesis(), config, key_store).await.expect("client opens");
    let events = Arc::new(Events::default());
    client.set_listener(Some(events.clone()));
    (client, events)
}

/// Refreshes until the client has verified a ledger (the network may still be starting).
async fn until_verified(client: &WattClient) -> u64 {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        match client.refresh().await {
            Ok(s) => return s.verified_seq,
            Err(e) if Instant::now() > end => panic!("no verified ledger within 60 s: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

async fn settled(client: &WattClient, hash: watt_core::crypto::Hash256) -> u64 {
    match client.wait_settled(hash, 30_000).await.expect("settles") {
        TxStatus::Confirmed { seq } => seq,
        other => panic!("transaction {hash:?} ended {other:?}"),
    }
}

async fn proven_balance(client: &WattClient) -> u64 {
    client.refresh().await.expect("refresh");
    client.balance().await.expect("proven balance").0.units()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_attest_earn_the_day_reward_and_pay_each_other() {
    let (founder_address, founder_words) = new_account();
    let day_seconds = 20;
    let net = Network::start_with(
        "phones",
        4,
        500,
        day_seconds,
        &["--founder", &founder_address, "--attest-grace-ledgers", "2"],
    );
    let founder_id: AccountId = founder_address.parse().unwrap();

    let dirs: Vec<TempDir> = (0..4).map(|i| TempDir::new(&format!("phone-{i}"))).collect();
    let mut phones = Vec::new();
    for d in &dirs {
        phones.push(open_phone(d.path(), &net).await);
    }
    assert_eq!(phones[0].0.restore_wallet(&founder_words, false).unwrap(), founder_id);
    let mut accounts = vec![founder_id];
    for (c, _) in &phones[1..] {
        let words = c.create_wallet().expect("new wallet");
        assert_eq!(words.split(' ').count(), 24);
        accounts.push(c.address().unwrap().expect("address after create"));
    }
    // Before it exists on the ledger a new wallet proves it has no account.
    until_verified(&phones[1].0).await;
    assert_eq!(phones[1].0.balance().await.expect("a proven absence").0, Amount(0));
    let no_account =
        phones[1].0.pay(founder_id, Amount(UNITS_PER_WATT), Amount(1_000)).await.expect_err("nothing to pay with");
    assert!(matches!(no_account, ClientError::NoAccount | ClientError::InsufficientBalance { .. }), "{no_account:?}");

    // Day 0: the founder taps; three new phones tap, invited by the founder.
    until_verified(&phones[0].0).await;
    // The inviter must have attested (in an earlier ledger) to invite.
    let mut taps = vec![phones[0].0.attest(None).await.expect("founder attests")];
    settled(&phones[0].0, taps[0]).await;
    for (c, _) in &phones[1..] {
        until_verified(c).await;
        let me = c.address().unwrap().expect("address");
        let invite = phones[0].0.create_invite(me, 3).await.expect("the founder invites");
        taps.push(c.attest(Some(invite)).await.expect("phone attests"));
    }
    for ((c, events), tap) in phones.iter().zip(&taps) {
        settled(c, *tap).await;
        assert_eq!(c.status().await.unwrap().attested_today, AttestState::Confirmed);
        assert!(events.all().contains(&ClientEvent::AttestationConfirmed { day: 0 }), "{:?}", events.all());
        assert!(c.history(10).unwrap().iter().any(|h| h.kind == HistoryKind::Attested { day: 0 }));
    }

    // After the day boundary each sees its day-0 reward as a proven balance.
    let end = Instant::now() + Duration::from_secs(day_seconds + 60);
    let mut rewards = [0u64; 4];
    for (i, (c, events)) in phones.iter().enumerate() {
        loop {
            let _ = c.refresh().await;
            let paid: u64 = events
                .all()
                .iter()
                .filter_map(|e| match e {
                    ClientEvent::RewardPaid { day: 0, amount } => Some(amount.units()),
                    _ => None,
                })
                .sum();
            if paid > 0 {
                rewards[i] = paid;
                break;
            }
            assert!(Instant::now() < end, "phone {i} saw no day-0 reward; events {:?}", events.all());
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let (balance, seq) = c.balance().await.expect("proven balance");
        let start = if i == 0 { FOUNDER_UNITS } else { 0 };
        assert_eq!(balance.units(), start + rewards[i], "phone {i}: proven balance is the start plus the reward");
        assert!(seq > 0);
    }
    // New accounts are on probation (× 0.5); the founder is not. Integer floors only.
    assert_eq!(rewards[1], rewards[2]);
    assert_eq!(rewards[2], rewards[3]);
    assert!((rewards[0] as i128 - 2 * rewards[1] as i128).abs() <= 2, "founder {} vs phone {}", rewards[0], rewards[1]);

    // They pay each other in a ring; every payment is proven included.
    let fee = 1_000u64; // 0.0001 WATT
    let amounts = [rewards[1] / 10, rewards[1] / 5, rewards[1] / 4];
    let before: Vec<u64> = futures_balances(&phones[1..]).await;
    let mut pays = Vec::new();
    for k in 0..3 {
        let to = accounts[1 + (k + 1) % 3];
        pays.push(phones[1 + k].0.pay(to, Amount(amounts[k]), Amount(fee)).await.expect("pay"));
    }
    for k in 0..3 {
        settled(&phones[1 + k].0, pays[k]).await;
    }
    let after: Vec<u64> = futures_balances(&phones[1..]).await;
    for k in 0..3 {
        let received = amounts[(k + 2) % 3];
        assert_eq!(
            after[k] as i128,
            before[k] as i128 - amounts[k] as i128 - fee as i128 + received as i128,
            "phone {}",
            k + 1
        );
        let history = phones[1 + k].0.history(20).unwrap();
        assert!(
            history.iter().any(|h| h.kind == HistoryKind::Received { amount: Amount(received) }),
            "phone {} history lacks the payment received: {history:?}",
            k + 1
        );
        assert!(phones[1 + k]
            .1
            .all()
            .iter()
            .any(|e| matches!(e, ClientEvent::PaymentReceived { amount, .. } if amount.units() == received)));
    }
}

async fn futures_balances(phones: &[(WattClient, Arc<Events>)]) -> Vec<u64> {
    let mut out = Vec::new();
    for (c, _) in phones {
        out.push(proven_balance(c).await);
    }
    out
}

// ----- lying nodes -----

async fn start_lying_node(net: &Network, upstream: usize) -> LyingNode {
    let keys: Vec<Keypair> = (0..net.n).map(|i| net.node_key(i)).collect();
    LyingNode::start(&net.genesis(), keys, upstream, net.listen(upstream)).await
}

/// Issue 18: a following phone gets each header pushed with its proof and
/// does not poll; a node that does not push is left for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_phone_gets_headers_by_push_and_does_not_poll() {
    let (founder_address, founder_words) = new_account();
    let net = Network::start_with("push", 4, 500, 600, &["--founder", &founder_address]);
    // The user's own node answers honestly but never pushes (it forwards the
    // `Subscribe` and not the stream): the phone asks it first, then moves on.
    let silent = start_lying_node(&net, 0).await;
    *silent.lie.lock().unwrap() = Lie::TxUnknown;
    let dir = TempDir::new("push-phone");
    let (client, _events) = open_phone(dir.path(), &net).await;
    client.restore_wallet(&founder_words, false).unwrap();
    client.add_node(&silent.address.to_string(), silent.node_id).unwrap();
    until_verified(&client).await;
    // A poll interval far longer than the test: only pushes can keep it current.
    client.start_sync(600_000);
    let end = Instant::now() + Duration::from_secs(30);
    while client.net_stats().pushed_headers == 0 {
        assert!(Instant::now() < end, "no header was pushed: {:?}", client.net_stats());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (before, seq) = (client.net_stats(), client.status().await.unwrap().verified_seq.unwrap());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = client.net_stats();
    let now = client.status().await.unwrap().verified_seq.unwrap();
    assert!(after.pushed_headers >= before.pushed_headers + 5, "{before:?} -> {after:?}");
    assert_eq!(after.polls, before.polls, "polled while following");
    assert!(now >= seq + 5, "verified {seq} -> {now} in 5 s of 500 ms ledgers");
    // Pushed headers were verified like any answer: the stored tip moved with them.
    client.stop_sync();
}

/// After its cross-check a phone talks to one node; that node alone must
/// not be able to drop the phone's transactions unseen: a small transaction
/// goes to a second node too (here the phone compares no nodes at all, so
/// its one node is the user's own, which drops everything it is sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_dropping_a_transaction_cannot_keep_it_from_the_ledger() {
    let (founder_address, founder_words) = new_account();
    let net = Network::start_with("dropper", 4, 500, 600, &["--founder", &founder_address]);
    let dropper = start_lying_node(&net, 0).await;
    *dropper.lie.lock().unwrap() = Lie::DropsTransactions;
    let dir = TempDir::new("dropped-phone");
    let config = ClientConfig {
        nodes_wanted: 1,
        request_timeout_ms: 3_000,
        connect_timeout_ms: 3_000,
        selection_seed: Some(7),
        ..ClientConfig::default()
    };
    let key_store = Arc::new(FileKeyStore::new(dir.path().join("device.key")));
    let client = WattClient::open(dir.path(), net.genesis(), config, key_store).await.expect("client opens");
    client.restore_wallet(&founder_words, false).unwrap();
    client.add_node(&dropper.address.to_string(), dropper.node_id).unwrap();
    until_verified(&client).await;
    let before = client.net_stats().connects;
    let payee = AccountId(Keypair::generate().unwrap().public());
    let paid = client.pay(payee, Amount(UNITS_PER_WATT), Amount(1_000)).await.expect("pay");
    assert!(client.net_stats().connects > before, "a second node was connected for the submission");
    settled(&client, paid).await;
}

/// Issue 16 #8: the wallet stopped asking at the first `TxUnknown` (nodes in
/// id order), and after three refreshes called an applied payment
/// superseded with nothing charged: the user paid again. It now asks the
/// other nodes and settles from their proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_denying_a_payment_cannot_make_it_look_unsent() {
    let (founder_address, founder_words) = new_account();
    let net = Network::start_with("denier", 4, 500, 600, &["--founder", &founder_address]);
    let liar = start_lying_node(&net, 0).await;
    *liar.lie.lock().unwrap() = Lie::TxUnknown;
    let dir = TempDir::new("denied-phone");
    let (client, _events) = open_phone(dir.path(), &net).await;
    client.restore_wallet(&founder_words, false).unwrap();
    client.add_node(&liar.address.to_string(), liar.node_id).unwrap();
    until_verified(&client).await;
    let before = proven_balance(&client).await;
    let payee = AccountId(Keypair::generate().unwrap().public());
    let paid = client.pay(payee, Amount(UNITS_PER_WATT), Amount(1_000)).await.expect("pay");
    settled(&client, paid).await;
    assert_eq!(proven_balance(&client).await, before - UNITS_PER_WATT - 1_000, "charged once, as proven");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_nodes_are_rejected_with_typed_errors_and_a_fork_raises_evidence() {
    let (founder_address, founder_words) = new_account();
    let mut net = Network::start_with("liars", 4, 500, 600, &["--founder", &founder_address]);
    let honest = TempDir::new("liar-warmup");
    let (warm, _) = open_phone(honest.path(), &net).await;
    until_verified(&warm).await;
    let liar = start_lying_node(&net, 0).await;
    // Let the network move on, so the liar's first header is stale.
    let first = until_verified(&warm).await;
    assert!(net.wait_for(30, |n| n.seq(1) >= first + 4), "the network stalled");

    type Case = (Lie, fn(&ClientError) -> bool);
    let cases: [Case; 4] = [
        (Lie::TooFewSigners, |e| matches!(e, ClientError::Verification(LightError::Proof(ProofError::NoQuorum)))),
        (Lie::ForgedSignature, |e| {
            matches!(e, ClientError::Verification(LightError::Proof(ProofError::BadSignature(_))))
        }),
        (Lie::WrongStateProof, |e| {
            matches!(e, ClientError::Verification(LightError::EntryMismatch | LightError::BadStateProof))
        }),
        (Lie::StaleHeader, |e| matches!(e, ClientError::Verification(LightError::Stale { .. }))),
    ];
    let payee = AccountId(Keypair::generate().unwrap().public());
    for (n, (lie, expected)) in cases.iter().enumerate() {
        *liar.lie.lock().unwrap() = *lie;
        let dir = TempDir::new("liar-phone");
        let (client, events) = open_phone(dir.path(), &net).await;
        client.restore_wallet(&founder_words, false).unwrap();
        client.add_node(&liar.address.to_string(), liar.node_id).unwrap();

        // The user's own node is always asked; the honest ones carry the refresh.
        let seq = until_verified(&client).await;
        assert_eq!(
            client.balance().await.unwrap().0.units(),
            FOUNDER_UNITS - n as u64 * (UNITS_PER_WATT + 1_000),
            "{lie:?}: balance as proven by honest nodes"
        );
        let err = client.check_node(&liar.node_id).await.expect_err("a lie is not accepted");
        assert!(expected(&err), "{lie:?}: got {err:?}");

        if *lie != Lie::StaleHeader {
            let node = client.nodes().unwrap().into_iter().find(|r| r.node_id == liar.node_id).unwrap();
            assert!(node.demoted && node.bad_answers > 0, "{lie:?}: the lying node is demoted: {node:?}");
            assert!(
                events
                    .all()
                    .iter()
                    .any(|e| matches!(e, ClientEvent::NodeDemoted { node, .. } if *node == liar.node_id)),
                "{lie:?}"
            );
        }
        // It keeps working through the honest nodes: newer ledgers and a payment.
        assert!(net.wait_for(20, |n| n.seq(1) > seq + 1));
        let again = client.refresh().await.expect("refresh through honest nodes");
        assert!(again.verified_seq > seq);
        let status = client.status().await.unwrap();
        assert_eq!(status.fork_slot, None);
        assert!(status.can_sign);
        let paid = client.pay(payee, Amount(UNITS_PER_WATT), Amount(1_000)).await.expect("pay");
        settled(&client, paid).await;
    }

    // Two conflicting chains, both signed by the validators' real keys.
    // Halt consensus (2 of 4 validators down) so both answers name one slot.
    *liar.lie.lock().unwrap() = Lie::ConflictingChain;
    net.kill(2);
    net.kill(3);
    assert!(
        net.wait_for(30, |n| {
            let s = n.seq(0);
            std::thread::sleep(Duration::from_millis(1_500));
            s > 0 && n.seq(0) == s
        }),
        "consensus did not halt"
    );
    let dir = TempDir::new("fork-phone");
    let (client, events) = open_phone(dir.path(), &net).await;
    client.restore_wallet(&founder_words, false).unwrap();
    client.add_node(&liar.address.to_string(), liar.node_id).unwrap();
    let honest_id = net.genesis().validators[0].node_id;
    client.check_node(&honest_id).await.expect("the honest node verifies");
    let err = client.check_node(&liar.node_id).await.expect_err("the conflicting chain is not accepted");
    let ClientError::ForkDetected { slot } = err else { panic!("expected fork evidence, got {err:?}") };
    assert!(events.all().contains(&ClientEvent::ForkDetected { slot }));
    let status = client.status().await.unwrap();
    assert_eq!(status.fork_slot, Some(slot));
    assert!(!status.can_sign);
    let refused = client.pay(payee, Amount(UNITS_PER_WATT), Amount(1_000)).await.expect_err("no signing on a fork");
    assert!(matches!(refused, ClientError::ForkDetected { .. }), "{refused:?}");
    // Every node the phone knows hears of it; the live validators check it and show it.
    let shown = |n: &Network, i: usize| {
        n.status(i).is_some_and(|s| s["fork_reports"].as_array().is_some_and(|a| a.contains(&serde_json::json!(slot))))
    };
    assert!(net.wait_for(20, |n| shown(n, 0) && shown(n, 1)), "the validators did not receive the fork evidence");
    // The evidence is kept across a restart.
    drop(client);
    let (reopened, _) = open_phone(dir.path(), &net).await;
    assert_eq!(reopened.status().await.unwrap().fork_slot, Some(slot));
}

// ----- the CLI: kill -9 mid-payment, and the daily tap's errors -----

fn watt(dir: &Path, genesis: &Path, args: &[&str], stdin: Option<&str>) -> watt_e2e::Run {
    let mut all = vec!["--data-dir", dir.to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    run("watt", &all, stdin)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The message of a failed `--json` command.
fn error_of(r: &watt_e2e::Run) -> String {
    let v = json(&r.stdout);
    assert_eq!(v["ok"], false, "{}", r.stdout);
    v["error"].as_str().unwrap_or_default().to_string()
}

/// Starts `watt pay`, waits until it pauses at `point`, and SIGKILLs it.
fn pay_and_kill(dir: &Path, genesis: &Path, to: &str, amount: &str, point: &str) {
    run_and_kill(dir, genesis, &["pay", to, amount], point);
}

/// Runs `watt ARGS` with a kill point, SIGKILLs it there, returns its stdout.
fn run_and_kill(dir: &Path, genesis: &Path, args: &[&str], point: &str) -> String {
    let mut all = vec!["--data-dir", dir.to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let mut child = std::process::Command::new(watt_e2e::bin("watt"))
        .args(&all)
        .env("WATT_PAUSE_AT", point)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("watt starts");
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        seen += &line;
        seen += "\n";
        if line.contains("paused at") {
            child.kill().expect("SIGKILL");
            let out = child.wait_with_output().unwrap();
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
    }
    let status = child.wait().unwrap();
    panic!("watt {args:?} ended ({status}) without pausing at {point}: {seen}");
}

#[test]
fn cli_killed_mid_payment_confirms_it_exactly_once_and_the_tap_reports_clear_errors() {
    // 3 kills by default, 20 in `scripts/test.sh --long`.
    let iterations = if std::env::var("WATT_LONG_TESTS").is_ok_and(|v| v == "1") { 20 } else { 3 };
    let (founder_address, founder_words) = new_account();
    let (payee, payee_words) = new_account();
    let mut net = Network::start_with("cli-phone", 4, 500, 600, &["--founder", &founder_address]);
    let genesis = net.dir.path().join("genesis.json");
    let wallet = TempDir::new("cli-wallet");
    assert!(net.wait_for(60, |n| n.seq(0) >= 2), "the network closes ledgers");
    let restored = watt(wallet.path(), &genesis, &["restore"], Some(&founder_words));
    assert_eq!(restored.code, 0, "{}", restored.stderr);

    let mut confirmed_seqs = Vec::new();
    for i in 0..iterations {
        let point = if i % 2 == 0 { "after-sign" } else { "after-submit" };
        pay_and_kill(wallet.path(), &genesis, &payee, "0.5", point);
        // A restart finds the signed payment and drives it to its end.
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let s = watt(wallet.path(), &genesis, &["status"], None);
            assert_eq!(s.code, 0, "{}", s.stderr);
            if json(&s.stdout)["pending"].as_array().is_some_and(|p| p.is_empty()) {
                break;
            }
            assert!(Instant::now() < end, "payment still pending after a restart: {}", s.stdout);
            std::thread::sleep(Duration::from_millis(500));
        }
        let h = watt(wallet.path(), &genesis, &["history", "--limit", "100"], None);
        let sent: Vec<serde_json::Value> =
            json(&h.stdout)["history"].as_array().unwrap().iter().filter(|e| e["kind"] == "sent").cloned().collect();
        assert_eq!(sent.len(), i + 1, "one history entry per payment: {sent:?}");
        assert!(sent.iter().all(|e| e["status"]["state"] == "confirmed"), "{sent:?}");
        confirmed_seqs = sent.iter().map(|e| e["status"]["ledger"].as_u64().unwrap()).collect();
    }
    assert_eq!(confirmed_seqs.len(), iterations);

    // Money moved exactly once per payment, on both sides.
    let fee = 1_000u64;
    let half = UNITS_PER_WATT / 2;
    let b = watt(wallet.path(), &genesis, &["balance"], None);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(json(&b.stdout)["balance_units"].as_u64().unwrap(), FOUNDER_UNITS - iterations as u64 * (half + fee));
    let payee_dir = TempDir::new("cli-payee");
    assert_eq!(watt(payee_dir.path(), &genesis, &["restore"], Some(&payee_words)).code, 0);
    let pb = watt(payee_dir.path(), &genesis, &["balance"], None);
    assert_eq!(json(&pb.stdout)["balance_units"].as_u64().unwrap(), iterations as u64 * half, "{}", pb.stdout);

    // Durable events: `watt events` killed after showing an event and before
    // marking it handled shows the same event again; handled, it is gone.
    let shown = json(&run_and_kill(wallet.path(), &genesis, &["events"], "before-event-handled"));
    let id = shown["id"].as_u64().expect("the payments queued events");
    let again = watt(wallet.path(), &genesis, &["events"], None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(json(&again.stdout)["id"].as_u64(), Some(id), "{} then {}", shown, again.stdout);
    assert_eq!(json(&again.stdout)["event"], shown["event"]);
    let next = watt(wallet.path(), &genesis, &["events"], None);
    assert_ne!(json(&next.stdout)["id"].as_u64(), Some(id), "handled, yet shown again");

    // The daily tap: once, then "already attested today" with no second transaction.
    let tap = watt(wallet.path(), &genesis, &["attest"], None);
    assert_eq!(tap.code, 0, "{} {}", tap.stdout, tap.stderr);
    let again = watt(wallet.path(), &genesis, &["attest"], None);
    assert_eq!(again.code, 5, "{} {}", again.stdout, again.stderr);
    assert!(error_of(&again).contains("already attested today"), "{}", error_of(&again));
    let h = watt(wallet.path(), &genesis, &["history"], None);
    let taps = json(&h.stdout)["history"].as_array().unwrap().iter().filter(|e| e["kind"] == "attested").count();
    assert_eq!(taps, 1);
    let s = watt(wallet.path(), &genesis, &["status"], None);
    assert!(json(&s.stdout)["pending"].as_array().unwrap().is_empty());

    // A tap before the wallet exists.
    let empty = TempDir::new("cli-empty");
    let none = watt(empty.path(), &genesis, &["attest"], None);
    assert_eq!(none.code, 3, "{}", none.stderr);
    assert!(error_of(&none).contains("no wallet"), "{}", error_of(&none));

    // A corrupt data dir: a clear message, and nothing is overwritten.
    let corrupt = TempDir::new("cli-corrupt");
    assert_eq!(watt(corrupt.path(), &genesis, &["init"], None).code, 0);
    let db = corrupt.path().join("wallet.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    // A well-formed invite (the wallet is read before the invite is checked).
    let someone = AccountId(Keypair::generate().unwrap().public());
    let invite =
        watt_core::ledger::Invite::sign(&Keypair::generate().unwrap(), &net.genesis().network_id(), &someone, 9)
            .to_text();
    let bad = watt(corrupt.path(), &genesis, &["attest", "--invite", &invite], None);
    assert_eq!(bad.code, 6, "{}", bad.stderr);
    assert!(error_of(&bad).contains("wallet.redb"), "{}", error_of(&bad));
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the damaged file is left for recovery");

    // No reachable node.
    let fresh = TempDir::new("cli-offline");
    assert_eq!(watt(fresh.path(), &genesis, &["init"], None).code, 0);
    for i in 0..net.n {
        net.kill(i);
    }
    let offline = watt(fresh.path(), &genesis, &["attest", "--invite", &invite], None);
    assert_eq!(offline.code, 4, "{}", offline.stderr);
    assert!(error_of(&offline).contains("no node"), "{}", error_of(&offline));
}
