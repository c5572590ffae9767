//! The wallet machine against scripted node answers: honest, lying, late,
//! forked and silent nodes, one at a time. Every answer is built from a
//! real ledger (`ScriptedNetwork`), so an honest answer verifies for real
//! and each lie is one field bent.

use super::*;
use watt_core::amount::Amount;
use watt_core::codec::BoundedVec;
use watt_core::crypto::Hash256;
use watt_core::ledger::{Invite, Operation, Params, Transaction, TransactionBody, TxOutcome};
use watt_core::light::testkit::{key, node, ScriptedNetwork};

/// Founders: key 10 (rich), key 12 (rich); key 11 has no account.
fn network() -> ScriptedNetwork {
    let mut n = ScriptedNetwork::new(&[(10, 1_000_000_000), (12, 1_000_000_000)], Params::devnet(1000, 100));
    n.close(vec![], 1000);
    n
}

fn me() -> AccountId {
    AccountId(key(10).public())
}

fn account_of(k: u8) -> AccountId {
    AccountId(key(k).public())
}

fn config() -> ClientConfig {
    ClientConfig { nodes_wanted: 2, selection_seed: Some(7), ..ClientConfig::default() }
}

fn wallet(n: &ScriptedNetwork) -> Wallet {
    let pinned = n.genesis.validators.iter().map(|v| v.node_id).collect();
    Wallet::new(TrustAnchor::from_genesis(&n.genesis), pinned, config(), 7)
}

fn records(n: &ScriptedNetwork) -> Vec<NodeRecord> {
    n.genesis
        .validators
        .iter()
        .map(|v| NodeRecord::new(v.node_id, v.addresses[0].clone(), NodeOrigin::Genesis))
        .collect()
}

fn honest(n: &ScriptedNetwork, node: NodeId) -> NodeAnswer {
    NodeAnswer { node, latest: Ok(n.latest()), account: Some(Ok(n.account(10))) }
}

fn silent(node: NodeId) -> NodeAnswer {
    NodeAnswer { node, latest: Err(NetError::Timeout(5000)), account: Some(Err(NetError::Timeout(5000))) }
}

/// Runs a refresh as the shell does, each node answering through `answer`.
/// Returns the effects, the result and the nodes asked, in order.
fn refresh(
    w: &mut Wallet,
    recs: &[NodeRecord],
    stored: Stored<'_>,
    answer: impl FnMut(NodeId) -> NodeAnswer,
) -> (Effects, Result<Refreshed, ClientError>, Vec<NodeId>) {
    refresh_as(w, Breadth::Usual, recs, stored, answer)
}

/// `refresh` as wide as `breadth` says.
fn refresh_as(
    w: &mut Wallet,
    breadth: Breadth,
    recs: &[NodeRecord],
    stored: Stored<'_>,
    mut answer: impl FnMut(NodeId) -> NodeAnswer,
) -> (Effects, Result<Refreshed, ClientError>, Vec<NodeId>) {
    // The wallet's own last tip as the clock: these scripted ledgers are
    // never stale (staleness has its own test).
    let now = w.tip().map_or(0, |t| t.header.close_time);
    let mut r = w.begin_refresh(Some(me()), breadth, now);
    let mut asked = Vec::new();
    loop {
        let batch = w.next_batch(&mut r, recs, &BTreeSet::new());
        if batch.is_empty() {
            break;
        }
        for rec in batch {
            asked.push(rec.node_id);
            w.on_node_answer(&mut r, answer(rec.node_id));
        }
    }
    let (fx, res) = w.finish_refresh(r, stored);
    (fx, res, asked)
}

fn fresh(recs: &[NodeRecord]) -> Stored<'_> {
    Stored { records: recs, tip_seq: None, account: None, has_fork: false }
}

fn demoted(fx: &Effects) -> Vec<NodeId> {
    fx.events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::NodeDemoted { node, .. } => Some(*node),
            _ => None,
        })
        .collect()
}

fn written_account(fx: &Effects) -> Option<&ProvenAccount> {
    fx.writes.iter().find_map(|w| match w {
        Write::Account(a) => Some(a),
        _ => None,
    })
}

/// A wallet that has verified `n`'s tip, and the account it proved.
fn synced(n: &ScriptedNetwork) -> (Wallet, ProvenAccount) {
    let mut w = wallet(n);
    let recs = records(n);
    let (fx, res, _) = refresh(&mut w, &recs, fresh(&recs), |id| honest(n, id));
    res.expect("honest nodes verify");
    let account = written_account(&fx).cloned().expect("the account is proven");
    (w, account)
}

// ----- refresh -----

/// Each node costs a phone a handshake: nodes are compared once per app
/// open (until two verified), then one node answers; background work on
/// battery asks one node from the start.
#[test]
fn an_open_compares_several_nodes_once_and_then_asks_one() {
    let n = network();
    let recs = records(&n);
    let mut w = wallet(&n);
    // On battery first: one node, and the comparison is still due.
    let (_, res, asked) = refresh_as(&mut w, Breadth::One, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!((res.is_ok(), asked.len()), (true, 1));
    let (_, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!((res.is_ok(), asked.len()), (true, 2), "the app's first refresh compares nodes_wanted nodes");
    let (_, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!((res.is_ok(), asked.len()), (true, 1), "then one node is enough");
    // The app closed its connections: the next open compares again.
    w.cross_check_later();
    let (_, _, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!(asked.len(), 2);
}

/// After the cross-check one node is asked; if its headers verify but it
/// withholds the account's proof, another node proves the balance.
#[test]
fn a_single_node_withholding_the_account_proof_is_passed_over_within_the_refresh() {
    let n = network();
    let recs = records(&n);
    let (mut w, _) = synced(&n);
    let mut calls = 0;
    let (fx, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| {
        calls += 1;
        let account = if calls == 1 { Some(Err(NetError::Timeout(5000))) } else { Some(Ok(n.account(10))) };
        NodeAnswer { node: id, latest: Ok(n.latest()), account }
    });
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(asked.len(), 2, "a second node was asked for the account");
    assert!(written_account(&fx).is_some(), "and proved it");
}

/// The one node asked after a cross-check cannot hold the phone's view in
/// the past: a tip older than `stale_after_ms` sends the refresh on to
/// another node, and the comparison comes back every `CROSS_CHECK_EVERY_MS`.
#[test]
fn a_single_node_serving_an_old_tip_is_passed_over_and_the_comparison_returns() {
    let mut n = network();
    let recs = records(&n);
    let (mut w, _) = synced(&n);
    // Compared at the tip's own time, so the clock below is ten minutes short of the next comparison.
    let (_, _, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!(asked.len(), 2);
    let (old_latest, old_account) = (n.latest(), n.account(10));
    n.close(vec![], 90_000); // one ledger 90 s later
    let now = n.tip().close_time + 1_000;
    let mut r = w.begin_refresh(Some(me()), Breadth::Usual, now);
    let first = w.next_batch(&mut r, &recs, &BTreeSet::new());
    assert_eq!(first.len(), 1, "cross-checked already: one node");
    let held_back = NodeAnswer { node: first[0].node_id, latest: Ok(old_latest), account: Some(Ok(old_account)) };
    w.on_node_answer(&mut r, held_back);
    let second = w.next_batch(&mut r, &recs, &BTreeSet::new());
    assert_eq!(second.len(), 1, "a 91 s old tip is not enough: another node is asked");
    assert_ne!(second[0].node_id, first[0].node_id);
    w.on_node_answer(&mut r, honest(&n, second[0].node_id));
    assert!(w.next_batch(&mut r, &recs, &BTreeSet::new()).is_empty());
    let (_, res) = w.finish_refresh(r, fresh(&recs));
    assert_eq!(res.map(|t| t.tip.header.seq).ok(), Some(n.tip().seq));
    // Ten minutes on, an open app compares several nodes again.
    let later = now + CROSS_CHECK_EVERY_MS;
    let mut r = w.begin_refresh(Some(me()), Breadth::Usual, later);
    assert_eq!(w.next_batch(&mut r, &recs, &BTreeSet::new()).len(), 2);
}

/// A comparison that only one node answered is not one: it stays due.
/// And the one node asked, when silent or lying, is replaced at once.
#[test]
fn a_cross_check_one_node_answered_stays_due_and_a_single_bad_node_is_replaced() {
    let n = network();
    let recs = records(&n);
    let mut w = wallet(&n);
    let mut calls = 0;
    let (_, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| {
        calls += 1;
        if calls == 1 {
            honest(&n, id)
        } else {
            silent(id)
        }
    });
    assert!(res.is_ok() && asked.len() == 2, "{res:?} {asked:?}");
    let (_, _, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!(asked.len(), 2, "compared again: only one node had verified");
    let (_, _, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert_eq!(asked.len(), 1);
    // Signed by too few validators for a quorum: a lie.
    let weak = Response::Latest { header: n.tip().clone(), proof: n.proof(n.tip(), &[0, 1], 0) };
    let mut lied_once = false;
    let (fx, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| {
        if lied_once {
            honest(&n, id)
        } else {
            lied_once = true;
            NodeAnswer { node: id, latest: Ok(weak.clone()), account: None }
        }
    });
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(asked.len(), 2, "the lying node was replaced within the refresh");
    assert_eq!(demoted(&fx), vec![asked[0]]);
}

#[test]
fn honest_answers_write_the_tip_and_the_account_and_raise_a_new_ledger() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let (fx, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    let r = res.unwrap();
    assert_eq!(r.tip.header, *n.tip());
    assert_eq!(asked.len(), 2, "one batch of the nodes wanted");
    assert!(fx.writes.iter().any(|w| matches!(w, Write::Tip(t) if t.header == *n.tip())));
    let a = written_account(&fx).unwrap();
    assert_eq!(a.entry.as_ref().unwrap().balance, Amount(1_000_000_000));
    assert_eq!(fx.events, vec![ClientEvent::NewVerifiedLedger { seq: n.tip().seq, close_time_ms: n.tip().close_time }]);
}

#[test]
fn a_proof_with_too_few_signers_demotes_its_node_and_another_is_asked() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let liar = recs[0].node_id;
    let weak = Response::Latest { header: n.tip().clone(), proof: n.proof(n.tip(), &[0, 1], 0) };
    let (fx, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| {
        if id == liar {
            NodeAnswer { node: id, latest: Ok(weak.clone()), account: None }
        } else {
            silent(id)
        }
    });
    // Every node was tried (the liar's batch failed, so the rest were asked).
    assert_eq!(asked.len(), 4);
    assert!(matches!(res, Err(ClientError::Unverified(_))), "{res:?}");
    assert!(demoted(&fx).contains(&liar));
    assert!(w.is_demoted(&liar));
}

#[test]
fn a_lying_batch_is_replaced_within_the_same_refresh() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let weak = Response::Latest { header: n.tip().clone(), proof: n.proof(n.tip(), &[0, 1], 0) };
    // The first batch (two nodes) lies; the nodes asked after it are honest.
    let mut answered = 0;
    let (fx, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| {
        answered += 1;
        if answered <= 2 {
            NodeAnswer { node: id, latest: Ok(weak.clone()), account: None }
        } else {
            honest(&n, id)
        }
    });
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(asked.len(), 4, "a second batch replaced the liars");
    assert_eq!(demoted(&fx), asked[..2].to_vec());
    assert!(written_account(&fx).is_some());
}

#[test]
fn a_forged_account_proof_demotes_the_node_and_writes_no_account() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let (fx, res, _) = refresh(&mut w, &recs, fresh(&recs), |id| {
        let Response::Account { header_seq, entry, proof } = n.account(10) else { unreachable!() };
        let mut entry = entry.unwrap();
        entry.balance = Amount(entry.balance.units() * 2);
        NodeAnswer {
            node: id,
            latest: Ok(n.latest()),
            account: Some(Ok(Response::Account { header_seq, entry: Some(entry), proof })),
        }
    });
    // The headers verified, so the refresh itself succeeds; the balance does not move.
    assert!(res.is_ok());
    assert!(written_account(&fx).is_none());
    // Every node forged it: each was passed over in turn, and demoted.
    assert_eq!(demoted(&fx).len(), 4);
}

#[test]
fn an_account_proven_against_another_header_is_not_used() {
    let mut n = network();
    let old_account = n.account(10);
    n.close(vec![], 1000);
    let mut w = wallet(&n);
    let recs = records(&n);
    let (fx, res, _) = refresh(&mut w, &recs, fresh(&recs), |id| NodeAnswer {
        node: id,
        latest: Ok(n.latest()),
        account: Some(Ok(old_account.clone())),
    });
    assert!(res.is_ok());
    assert!(written_account(&fx).is_none());
    assert!(demoted(&fx).is_empty(), "a moment behind is not a lie");
}

#[test]
fn two_valid_values_for_one_slot_are_a_fork_written_raised_and_signing_stops() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let mut k = 0u8;
    let (fx, _, _) = refresh(&mut w, &recs, fresh(&recs), |id| {
        k += 1;
        NodeAnswer { node: id, latest: Ok(n.latest_with(k)), account: None }
    });
    assert!(fx.events.iter().any(|e| matches!(e, ClientEvent::ForkDetected { slot } if *slot == n.tip().seq + 1)));
    assert!(fx.writes.iter().any(|w| matches!(w, Write::Fork(f) if f.slot == n.tip().seq + 1)));
    assert!(matches!(w.signing_tip(), Err(ClientError::ForkDetected { .. })));
    let account = ProvenAccount { header_seq: n.tip().seq, entry: None };
    let op = Operation::SetReferrer { account: account_of(12) };
    assert!(matches!(w.op_body(me(), op, &account, &[]), Err(ClientError::ForkDetected { .. })));
}

#[test]
fn a_fork_already_stored_is_not_written_again() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let mut k = 0u8;
    let stored = Stored { records: &recs, tip_seq: None, account: None, has_fork: true };
    let (fx, _, _) = refresh(&mut w, &recs, stored, |id| {
        k += 1;
        NodeAnswer { node: id, latest: Ok(n.latest_with(k)), account: None }
    });
    assert!(!fx.writes.iter().any(|w| matches!(w, Write::Fork(_))));
}

#[test]
fn three_timeouts_demote_a_node_that_gets_another_chance_when_nothing_else_is_left() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    for _ in 0..3 {
        let (_, res, _) = refresh(&mut w, &recs, fresh(&recs), silent);
        assert!(matches!(res, Err(ClientError::NoNodeReachable(_))), "{res:?}");
    }
    assert!(recs.iter().all(|r| w.is_demoted(&r.node_id)));
    // Every node is down-ranked only for silence: all are asked again, and an
    // answer restores the node.
    let (_, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert!(res.is_ok());
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|id| !w.is_demoted(id)));
}

#[test]
fn a_node_that_lied_is_never_asked_again_even_when_nothing_else_is_left() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let weak = Response::Latest { header: n.tip().clone(), proof: n.proof(n.tip(), &[0], 0) };
    let (_, res, _) =
        refresh(&mut w, &recs, fresh(&recs), |id| NodeAnswer { node: id, latest: Ok(weak.clone()), account: None });
    assert!(matches!(res, Err(ClientError::Unverified(_))));
    let (_, res, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    assert!(asked.is_empty(), "liars were asked again: {asked:?}");
    assert!(matches!(res, Err(ClientError::Unverified(ref m)) if m.contains("add a node you trust")), "{res:?}");
}

#[test]
fn an_error_answer_is_a_failure_but_not_a_lie() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let (fx, res, _) = refresh(&mut w, &recs, fresh(&recs), |id| NodeAnswer {
        node: id,
        latest: Ok(Response::error("busy")),
        account: None,
    });
    assert!(matches!(res, Err(ClientError::NoNodeReachable(ref m)) if m.contains("busy")), "{res:?}");
    assert!(demoted(&fx).is_empty());
}

#[test]
fn an_answer_of_the_wrong_kind_demotes() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let (fx, _, _) = refresh(&mut w, &recs, fresh(&recs), |id| NodeAnswer {
        node: id,
        latest: Ok(Response::Subscribed),
        account: None,
    });
    assert_eq!(demoted(&fx).len(), 4);
}

#[test]
fn a_stale_header_from_a_node_is_refused_once_a_newer_one_is_verified() {
    let mut n = network();
    let old = n.latest();
    n.close(vec![], 1000);
    n.close(vec![], 1000);
    let (mut w, _) = synced(&n);
    let recs = records(&n);
    let stored = Stored { records: &recs, tip_seq: Some(n.tip().seq), account: None, has_fork: false };
    let (fx, res, _) =
        refresh(&mut w, &recs, stored, |id| NodeAnswer { node: id, latest: Ok(old.clone()), account: None });
    assert!(matches!(res, Err(ClientError::Unverified(ref m)) if m.contains("older")), "{res:?}");
    assert!(!fx.writes.iter().any(|w| matches!(w, Write::Tip(_))));
    assert!(!fx.events.iter().any(|e| matches!(e, ClientEvent::NewVerifiedLedger { .. })));
}

#[test]
fn a_tip_the_store_already_has_is_not_written_or_raised_again() {
    let n = network();
    let (mut w, _) = synced(&n);
    let recs = records(&n);
    let stored = Stored { records: &recs, tip_seq: Some(n.tip().seq), account: None, has_fork: false };
    let (fx, res, _) = refresh(&mut w, &recs, stored, |id| honest(&n, id));
    assert!(res.is_ok());
    assert!(!fx.writes.iter().any(|w| matches!(w, Write::Tip(_))));
    assert!(fx.events.is_empty(), "{:?}", fx.events);
}

#[test]
fn the_users_own_node_is_asked_first_and_always() {
    let n = network();
    let mut w = wallet(&n);
    let mut recs = records(&n);
    recs[3].origin = NodeOrigin::User;
    let own = recs[3].node_id;
    let batch = w.nodes_to_ask(&recs, &BTreeSet::new(), &BTreeSet::new());
    assert_eq!(batch[0].node_id, own);
    assert_eq!(batch.len(), 2);
}

#[test]
fn with_no_nodes_configured_the_error_says_so() {
    let n = network();
    let mut w = wallet(&n);
    let (_, res, _) = refresh(&mut w, &[], fresh(&[]), |id| honest(&n, id));
    assert!(matches!(res, Err(ClientError::NoNodeReachable(ref m)) if m.contains("no nodes")), "{res:?}");
}

#[test]
fn a_planted_tip_in_the_store_is_refused_on_restore() {
    let n = network();
    let mut w = wallet(&n);
    let Response::Latest { header, .. } = n.latest() else { unreachable!() };
    let planted = TrustedTip { header: header.clone(), proof: n.proof(&header, &[1], 0) };
    assert!(matches!(w.restore(Some(&planted), None, &[]), Err(ClientError::Corrupt(_))));
}

#[test]
fn standing_changes_are_written_for_the_nodes_that_answered() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let (fx, _, asked) = refresh(&mut w, &recs, fresh(&recs), |id| honest(&n, id));
    let Some(Write::Nodes(changed)) = fx.writes.iter().find(|w| matches!(w, Write::Nodes(_))) else {
        panic!("no standing written")
    };
    let mut written: Vec<NodeId> = changed.iter().map(|r| r.node_id).collect();
    let mut asked = asked;
    written.sort();
    asked.sort();
    assert_eq!(written, asked);
    assert!(changed.iter().all(|r| r.good_answers == 1));
}

/// A pushed header comes without a batch: the refresh must still count its
/// node as asked (it once ended every push with "every node was demoted").
#[test]
fn a_pushed_header_alone_makes_a_refresh() {
    let n = network();
    let mut w = wallet(&n);
    let recs = records(&n);
    let mut r = w.begin_refresh(Some(me()), Breadth::Usual, 0);
    w.on_node_answer(&mut r, NodeAnswer { node: node(2), latest: Ok(n.latest()), account: None });
    let (fx, res) = w.finish_refresh(r, fresh(&recs));
    assert_eq!(res.map(|r| r.tip.header.seq).ok(), Some(n.tip().seq));
    assert!(fx.writes.iter().any(|w| matches!(w, Write::Tip(_))));
}

// ----- settling transactions -----

/// A pending transaction signed by key 10.
fn pending(n: &ScriptedNetwork, seq_num: u64, kind: TxKind, op: Operation, max_ledger: Option<u64>) -> PendingTx {
    let body = TransactionBody {
        source: me(),
        seq_num,
        fee: Amount::ZERO,
        max_ledger,
        ops: BoundedVec::try_from_vec(vec![op]).unwrap(),
    };
    PendingTx { tx: n.sign(body, 10), kind, signed_ms: 0, unknown_after_use: 0 }
}

fn referrer_tx(n: &ScriptedNetwork, seq_num: u64) -> PendingTx {
    let op = Operation::SetReferrer { account: account_of(12) };
    pending(n, seq_num, TxKind::SetReferrer { referrer: account_of(12) }, op, Some(n.tip().seq + 50))
}

fn included(n: &mut ScriptedNetwork, tx: &Transaction) -> TxOutcome {
    n.close(vec![tx.clone()], 1000)[0].outcome.clone()
}

#[test]
fn a_result_proven_under_the_tip_settles_and_raises_it() {
    let mut n = network();
    let p = pending(
        &n,
        1,
        TxKind::Pay { to: account_of(12), amount: Amount(5) },
        Operation::Pay { to: account_of(12), amount: Amount(5) },
        None,
    );
    assert_eq!(included(&mut n, &p.tx), TxOutcome::Success);
    let (mut w, account) = synced(&n);
    let mut check = TxCheck::new(p.tx.hash());
    let mut fx = Effects::default();
    let answer = n.tx(&p.tx.hash());
    let seq = Wallet::tx_answer_seq(&check, &answer).unwrap();
    let header = w.header_at(seq);
    w.on_tx_answer(&mut check, node(0), Ok(answer), header.as_ref(), &mut fx);
    assert!(check.proven());
    let SettleStep::Settled(Write::Settle { settlement, events }) = w.settle(&p, &check, Some(&account), 9) else {
        panic!("not settled")
    };
    assert_eq!(settlement.history.status, TxStatus::Confirmed { seq });
    assert_eq!(settlement.history.charged, Amount(5));
    assert_eq!(
        events,
        vec![ClientEvent::TransactionSettled { hash: p.tx.hash(), status: TxStatus::Confirmed { seq } }]
    );
}

#[test]
fn a_node_saying_txunknown_while_another_is_silent_proves_nothing() {
    let mut n = network();
    // The account's sequence moved past this transaction and it was counted
    // unknown three times: "unknown everywhere" now would supersede it. One
    // denying node and one silent one must not.
    let other = referrer_tx(&n, 1);
    included(&mut n, &other.tx);
    let (mut w, account) = synced(&n);
    let mut p =
        pending(&n, 1, TxKind::SetSecurityCircle, Operation::SetSecurityCircle { members: BoundedVec::new() }, None);
    p.unknown_after_use = 3;
    let mut check = TxCheck::new(p.tx.hash());
    let mut fx = Effects::default();
    w.on_tx_answer(&mut check, node(0), Ok(Response::TxUnknown { hash: p.tx.hash() }), None, &mut fx);
    w.on_tx_answer(&mut check, node(1), Err(NetError::Timeout(5000)), None, &mut fx);
    assert_eq!(w.settle(&p, &check, Some(&account), 0), SettleStep::Resubmit);
}

#[test]
fn a_transaction_a_node_holds_in_its_pool_is_waited_for_not_sent_again() {
    let n = network();
    let (mut w, account) = synced(&n);
    let p = referrer_tx(&n, 1);
    let mut check = TxCheck::new(p.tx.hash());
    let mut fx = Effects::default();
    w.on_tx_answer(&mut check, node(0), Ok(Response::TxUnknown { hash: p.tx.hash() }), None, &mut fx);
    w.on_tx_answer(&mut check, node(1), Ok(Response::TxAccepted { hash: p.tx.hash() }), None, &mut fx);
    assert_eq!(w.settle(&p, &check, Some(&account), 0), SettleStep::Wait);
}

/// Helper review of issue 18: one node claiming forever that it holds a
/// transaction kept it pending forever. Its expiry is proven by the account
/// alone: past its last ledger with its sequence number unused.
#[test]
fn a_node_claiming_to_hold_a_transaction_cannot_stop_it_expiring() {
    let mut n = network();
    n.close(vec![], 1000);
    let (mut w, account) = synced(&n);
    let p = pending(&n, 1, TxKind::Attest { day: 0 }, Operation::SetReferrer { account: account_of(12) }, Some(1));
    let mut check = TxCheck::new(p.tx.hash());
    let mut fx = Effects::default();
    w.on_tx_answer(&mut check, node(0), Ok(Response::TxAccepted { hash: p.tx.hash() }), None, &mut fx);
    let SettleStep::Settled(Write::Settle { settlement, .. }) = w.settle(&p, &check, Some(&account), 0) else {
        panic!("a lie kept it pending")
    };
    assert_eq!(settlement.history.status, TxStatus::Expired);
    assert_eq!(settlement.release_day, Some(0));
}

#[test]
fn large_transactions_go_to_one_node_and_small_ones_to_all() {
    let n = network();
    let small = referrer_tx(&n, 1);
    assert!(!sent_to_one_node(&small.tx));
    let proof = watt_core::codec::BoundedBytes::try_from_vec(vec![7u8; 64 * 1024]).unwrap();
    let big = pending(&n, 2, TxKind::Storage, Operation::PostReveal { period: 1, proof }, None);
    assert!(sent_to_one_node(&big.tx));
}

#[test]
fn unknown_everywhere_past_its_lifetime_expires_and_frees_the_day() {
    let mut n = network();
    n.close(vec![], 1000);
    let (mut w, account) = synced(&n);
    let p = pending(&n, 1, TxKind::Attest { day: 0 }, Operation::SetReferrer { account: account_of(12) }, Some(1));
    let mut check = TxCheck::new(p.tx.hash());
    let mut fx = Effects::default();
    for i in 0..2 {
        w.on_tx_answer(&mut check, node(i), Ok(Response::TxUnknown { hash: p.tx.hash() }), None, &mut fx);
    }
    let SettleStep::Settled(Write::Settle { settlement, .. }) = w.settle(&p, &check, Some(&account), 0) else {
        panic!("not expired")
    };
    assert_eq!(settlement.history.status, TxStatus::Expired);
    assert_eq!(settlement.release_day, Some(0));
    assert_eq!(settlement.attested_day, None);
}

#[test]
fn unknown_everywhere_with_its_sequence_used_is_counted_then_superseded() {
    let mut n = network();
    let other = referrer_tx(&n, 1);
    included(&mut n, &other.tx);
    let (mut w, account) = synced(&n);
    // Same sequence number, a different body: never going to land.
    let mut p =
        pending(&n, 1, TxKind::SetSecurityCircle, Operation::SetSecurityCircle { members: BoundedVec::new() }, None);
    for round in 0..4 {
        let mut check = TxCheck::new(p.tx.hash());
        let mut fx = Effects::default();
        w.on_tx_answer(&mut check, node(0), Ok(Response::TxUnknown { hash: p.tx.hash() }), None, &mut fx);
        match w.settle(&p, &check, Some(&account), 0) {
            SettleStep::Count(c) => {
                assert!(round < 3, "counted past the limit");
                assert_eq!(c.unknown_after_use, round + 1);
                p = c;
            }
            SettleStep::Settled(Write::Settle { settlement, .. }) => {
                assert_eq!(round, 3);
                assert_eq!(settlement.history.status, TxStatus::Superseded);
                return;
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    panic!("never superseded");
}

#[test]
fn a_result_with_a_forged_path_demotes_and_settles_nothing() {
    let mut n = network();
    let p = referrer_tx(&n, 1);
    included(&mut n, &p.tx);
    let (mut w, account) = synced(&n);
    let Response::Tx { header_seq, mut result, path } = n.tx(&p.tx.hash()) else { panic!() };
    result.fee_charged = Amount(1); // a different result under the same path
    let mut check = TxCheck::new(p.tx.hash());
    let mut fx = Effects::default();
    let header = w.header_at(header_seq);
    w.on_tx_answer(&mut check, node(2), Ok(Response::Tx { header_seq, result, path }), header.as_ref(), &mut fx);
    assert!(!check.proven());
    assert_eq!(demoted(&fx), vec![node(2)]);
    assert_eq!(w.settle(&p, &check, Some(&account), 0), SettleStep::Resubmit);
}

#[test]
fn a_result_for_another_transaction_demotes() {
    let mut n = network();
    let p = referrer_tx(&n, 1);
    included(&mut n, &p.tx);
    let (mut w, _) = synced(&n);
    let answer = n.tx(&p.tx.hash());
    let mut check = TxCheck::new(Hash256([9; 32]));
    let mut fx = Effects::default();
    assert_eq!(Wallet::tx_answer_seq(&check, &answer), None);
    w.on_tx_answer(&mut check, node(1), Ok(answer), None, &mut fx);
    assert_eq!(demoted(&fx), vec![node(1)]);
}

#[test]
fn a_result_under_an_older_header_settles_once_the_header_is_chained_down() {
    let mut n = network();
    let p = referrer_tx(&n, 1);
    included(&mut n, &p.tx);
    for _ in 0..3 {
        n.close(vec![], 1000);
    }
    let (mut w, account) = synced(&n);
    let answer = n.tx(&p.tx.hash());
    let mut check = TxCheck::new(p.tx.hash());
    let seq = Wallet::tx_answer_seq(&check, &answer).unwrap();
    assert!(w.header_at(seq).is_none());
    let Some(Request::GetHeaders { from, count }) = w.headers_request(seq) else { panic!("no request") };
    let header = w.on_headers(seq, n.headers(from, count));
    assert_eq!(header.as_ref(), n.headers.get(seq as usize - 1));
    let mut fx = Effects::default();
    w.on_tx_answer(&mut check, node(0), Ok(answer), header.as_ref(), &mut fx);
    assert!(matches!(w.settle(&p, &check, Some(&account), 0), SettleStep::Settled(_)));
}

/// Helper review of issue 18: a payment included more than 1,024 ledgers
/// before the tip (the app closed for two hours) could never be linked, so
/// it stayed pending and was resubmitted for ever. An old header now comes
/// with its own externalize proof.
#[test]
fn a_result_far_below_the_tip_settles_through_its_headers_own_proof() {
    let mut n = network();
    let p = referrer_tx(&n, 1);
    included(&mut n, &p.tx);
    for _ in 0..1100 {
        n.close(vec![], 1000);
    }
    let (mut w, account) = synced(&n);
    let answer = n.tx(&p.tx.hash());
    let mut check = TxCheck::new(p.tx.hash());
    let seq = Wallet::tx_answer_seq(&check, &answer).unwrap();
    assert_eq!(w.headers_request(seq), Some(Request::GetProvenHeader { seq }));
    // A header proven by too few signers, or another header, is not taken.
    let Response::Latest { header, proof } = n.proven_header(seq) else { panic!() };
    let weak = Response::Latest { header: header.clone(), proof: n.proof(&header, &[0, 1], 0) };
    assert_eq!(w.on_headers(seq, weak), None);
    assert_eq!(w.on_headers(seq + 1, Response::Latest { header: header.clone(), proof: proof.clone() }), None);
    let header = w.on_headers(seq, Response::Latest { header, proof });
    assert_eq!(header.as_ref().map(|h| h.seq), Some(seq));
    w.on_tx_answer(&mut check, node(0), Ok(answer), header.as_ref(), &mut Effects::default());
    assert!(matches!(w.settle(&p, &check, Some(&account), 0), SettleStep::Settled(_)));
}

#[test]
fn headers_that_do_not_link_to_the_tip_are_refused() {
    let mut n = network();
    for _ in 0..3 {
        n.close(vec![], 1000);
    }
    let (mut w, _) = synced(&n);
    let seq = n.tip().seq - 2;
    let Some(Request::GetHeaders { from, count }) = w.headers_request(seq) else { panic!() };
    let Response::Headers { headers } = n.headers(from, count) else { panic!() };
    let mut bent = headers.to_vec();
    bent[0].close_time += 1;
    let answer = Response::Headers { headers: BoundedVec::try_from_vec(bent).unwrap() };
    assert_eq!(w.on_headers(seq, answer), None);
    assert_eq!(w.header_at(seq), None);
}

#[test]
fn an_attestation_that_failed_as_already_attested_keeps_its_day_claimed() {
    let mut n = network();
    // Two taps for day 0 from key 10: the second fails as already attested.
    let anchor = n.tip().clone();
    let attest = |seq_num: u64| {
        let op = Operation::Attest(watt_core::ledger::Attest {
            day: 0,
            anchor_seq: anchor.seq,
            anchor_hash: anchor.hash(),
            invite: None,
            device_token: None,
        });
        pending(&n, seq_num, TxKind::Attest { day: 0 }, op, None)
    };
    let first = attest(1);
    let second = attest(2);
    assert_eq!(included(&mut n, &first.tx), TxOutcome::Success);
    let outcome = included(&mut n, &second.tx);
    assert!(
        matches!(outcome, TxOutcome::OpFailed { reason: watt_core::ledger::OpFailure::AlreadyAttested, .. }),
        "{outcome:?}"
    );
    let (mut w, account) = synced(&n);
    let mut check = TxCheck::new(second.tx.hash());
    let answer = n.tx(&second.tx.hash());
    let seq = Wallet::tx_answer_seq(&check, &answer).unwrap();
    let header = match w.header_at(seq) {
        Some(h) => Some(h),
        None => {
            let Some(Request::GetHeaders { from, count }) = w.headers_request(seq) else { panic!() };
            w.on_headers(seq, n.headers(from, count))
        }
    };
    w.on_tx_answer(&mut check, node(0), Ok(answer), header.as_ref(), &mut Effects::default());
    let SettleStep::Settled(Write::Settle { settlement, events }) = w.settle(&second, &check, Some(&account), 0) else {
        panic!()
    };
    assert_eq!(settlement.attested_day, Some(0));
    assert_eq!(settlement.release_day, None);
    assert!(!events.iter().any(|e| matches!(e, ClientEvent::AttestationConfirmed { .. })));
}

// ----- credits -----

fn proven(seq: u64, balance: u64, seq_num: u64) -> ProvenAccount {
    let n = network();
    let Response::Account { entry, .. } = n.account(10) else { unreachable!() };
    let mut e = entry.unwrap();
    e.balance = Amount(balance);
    e.seq_num = seq_num;
    ProvenAccount { header_seq: seq, entry: Some(e) }
}

fn header_on_day(day: u64) -> LedgerHeader {
    let mut h = network().tip().clone();
    h.day = day;
    h
}

#[test]
fn a_balance_increase_after_an_attested_day_ended_is_that_days_reward() {
    let (before, now) = (proven(5, 100, 1), proven(9, 160, 1));
    let book = Book {
        before: Some(&before),
        now: Some(&now),
        pending: &[],
        history: &[],
        rewarded_through: None,
        confirmed_attest_days: &[2, 3],
    };
    let fx = attribute_credits(&header_on_day(4), book);
    assert_eq!(fx.events, vec![ClientEvent::RewardPaid { day: 3, amount: Amount(60) }]);
    assert!(fx.writes.contains(&Write::RewardedThrough(3)));
}

#[test]
fn a_balance_increase_with_no_attested_day_ended_is_a_payment() {
    let (before, now) = (proven(5, 100, 1), proven(9, 130, 1));
    let book = Book {
        before: Some(&before),
        now: Some(&now),
        pending: &[],
        history: &[],
        rewarded_through: Some(3),
        confirmed_attest_days: &[3, 4],
    };
    let fx = attribute_credits(&header_on_day(4), book);
    assert_eq!(fx.events, vec![ClientEvent::PaymentReceived { amount: Amount(30), balance: Amount(130) }]);
}

#[test]
fn own_spending_is_not_counted_as_income_and_unsettled_own_transactions_make_credits_wait() {
    let n = network();
    let (before, now) = (proven(5, 100, 1), proven(9, 90, 2));
    let sent = HistoryEntry {
        id: 0,
        time_ms: 0,
        kind: HistoryKind::Sent { to: account_of(12), amount: Amount(40), fee: Amount(0) },
        tx_hash: None,
        status: TxStatus::Confirmed { seq: 7 },
        charged: Amount(40),
    };
    let book = Book {
        before: Some(&before),
        now: Some(&now),
        pending: &[],
        history: std::slice::from_ref(&sent),
        rewarded_through: None,
        confirmed_attest_days: &[],
    };
    let fx = attribute_credits(&header_on_day(0), book);
    assert_eq!(fx.events, vec![ClientEvent::PaymentReceived { amount: Amount(30), balance: Amount(90) }]);
    let waiting = [referrer_tx(&n, 2)];
    let fx = attribute_credits(&header_on_day(0), Book { pending: &waiting, ..book });
    assert!(fx.is_empty(), "credited while its own transaction was unsettled: {fx:?}");
}

// ----- building transactions -----

#[test]
fn a_payment_beyond_the_balance_left_by_pending_ones_is_refused() {
    let n = network();
    let (w, account) = synced(&n);
    let pay = |amount| Operation::Pay { to: account_of(12), amount };
    let big =
        pending(&n, 1, TxKind::Pay { to: account_of(12), amount: Amount(900_000_000) }, pay(Amount(900_000_000)), None);
    let r = w.pay_body(me(), account_of(12), Amount(200_000_000), Amount(0), &account, std::slice::from_ref(&big));
    assert!(matches!(r, Err(ClientError::InsufficientBalance { .. })), "{r:?}");
    let ok =
        w.pay_body(me(), account_of(12), Amount(50_000_000), Amount(0), &account, std::slice::from_ref(&big)).unwrap();
    assert_eq!(ok.seq_num, 2, "after the pending one");
    assert_eq!(ok.max_ledger, Some(n.tip().seq + config().tx_lifetime_ledgers));
    assert!(matches!(
        w.pay_body(me(), me(), Amount(1), Amount(0), &account, &[]),
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        w.pay_body(me(), account_of(12), Amount(0), Amount(0), &account, &[]),
        Err(ClientError::InvalidArgument(_))
    ));
}

#[test]
fn a_first_tap_needs_an_invite_made_for_this_account_that_has_not_expired() {
    let n = network();
    let (w, _) = synced(&n);
    let newcomer = account_of(11);
    let nobody = ProvenAccount { header_seq: n.tip().seq, entry: None };
    let net = n.genesis.network_id();
    assert!(matches!(w.attest_body(newcomer, None, &nobody, false, &[], 0), Err(ClientError::NeedsInviter)));
    let for_other = Invite::sign(&key(10), &net, &account_of(13), 5);
    assert!(matches!(
        w.attest_body(newcomer, Some(for_other), &nobody, false, &[], 0),
        Err(ClientError::InvalidArgument(_))
    ));
    // The tip is on day 0: an invite that expires on day 0 is still good today.
    let last_day = Invite::sign(&key(10), &net, &newcomer, 0);
    let (body, day) = w.attest_body(newcomer, Some(last_day.clone()), &nobody, false, &[], 0).unwrap();
    assert_eq!((body.seq_num, day), (1, 0));
    let Operation::Attest(a) = &body.ops[0] else { panic!() };
    assert_eq!(a.invite.as_ref(), Some(&last_day));
    assert_eq!(a.anchor_hash, n.tip().hash());
}

#[test]
fn an_invite_past_its_day_is_refused_with_the_days_named() {
    let mut n = ScriptedNetwork::new(&[(10, 1_000_000_000)], Params::devnet(1000, 100));
    // Past day 0 (100 s days, 1 s ledgers).
    n.close(vec![], 150_000);
    let (w, _) = synced(&n);
    assert_eq!(n.tip().day, 1);
    let newcomer = account_of(11);
    let nobody = ProvenAccount { header_seq: n.tip().seq, entry: None };
    let expired = Invite::sign(&key(10), &n.genesis.network_id(), &newcomer, 0);
    let r = w.attest_body(newcomer, Some(expired), &nobody, false, &[], 0);
    assert!(matches!(r, Err(ClientError::InvalidArgument(ref m)) if m.contains("expired on day 0")), "{r:?}");
}

#[test]
fn a_second_tap_on_one_day_is_refused_with_the_time_to_the_next_day() {
    let n = network();
    let (w, account) = synced(&n);
    let start = n.genesis.genesis_time * 1000;
    let r = w.attest_body(me(), None, &account, true, &[], start + 40_000);
    assert!(matches!(r, Err(ClientError::AlreadyAttested { day: 0, next_day_in_s: 60 })), "{r:?}");
    // A founder is a miner: no invite needed, and none is carried.
    let (body, _) = w
        .attest_body(me(), Some(Invite::sign(&key(12), &n.genesis.network_id(), &me(), 9)), &account, false, &[], 0)
        .unwrap();
    let Operation::Attest(a) = &body.ops[0] else { panic!() };
    assert!(a.invite.is_none());
}

#[test]
fn a_transaction_is_dead_only_when_no_node_took_it_and_every_refusal_is_final() {
    use watt_core::wire::TxRejection as R;
    assert_eq!(refused_submission(0, &[R::BadSignature, R::Expired]).as_deref(), Some("BadSignature"));
    assert_eq!(refused_submission(1, &[R::BadSignature]), None);
    assert_eq!(refused_submission(0, &[R::BadSignature, R::InsufficientFee]), None);
    assert_eq!(refused_submission(0, &[]), None, "silence is not a refusal");
    let n = network();
    assert_eq!(next_seq(4, &[referrer_tx(&n, 7), referrer_tx(&n, 5)]), 8);
    assert_eq!(next_seq(9, &[referrer_tx(&n, 7)]), 10);
}

// ----- state entries -----

#[test]
fn an_entry_of_another_kind_under_a_valid_proof_demotes() {
    let n = network();
    let (mut w, _) = synced(&n);
    let tip = n.tip().clone();
    let mut fx = Effects::default();
    let honest_entry = n.entry(&StateKey::Account(me()));
    assert!(matches!(w.on_entry(node(0), &StateKey::Account(me()), &tip, &honest_entry, &mut fx), Some(Some(_))));
    // The account's bytes and proof, offered as another account's entry.
    let other = StateKey::Account(account_of(12));
    assert_eq!(w.on_entry(node(1), &other, &tip, &honest_entry, &mut fx), None);
    assert_eq!(demoted(&fx), vec![node(1)]);
}
