//! The wallet's decisions, sans IO (as quinn-proto sits under quinn): which
//! nodes to ask, what their answers prove, which records to write and which
//! events to raise, which transactions to sign. Inputs are node answers, the
//! stored records and `now`; outputs are [`Effects`] (writes and events, which
//! the shell commits in one store transaction) and transaction bodies. Every
//! check is `watt_core::light`'s; nothing here verifies a second way.
//!
//! `WattClient` is the shell: it connects, sends, feeds the answers back and
//! commits. The unit tests script the answers (lying, late, forked, silent).

mod credits;
pub mod duties;
pub mod push;
mod settle;
mod tx;

#[cfg(test)]
mod tests;

pub use credits::{attribute_credits, Book};
pub(crate) use settle::history_of;
pub use settle::{SettleStep, TxCheck};
pub use tx::{check_payment, is_final_rejection, next_seq, refused_submission, sent_to_one_node};

use crate::directory::{self, DirectoryNode, Picker};
use crate::error::ClientError;
use crate::net::NetError;
use crate::store::Settlement;
use crate::types::*;
use std::collections::{BTreeMap, BTreeSet};
use watt_core::address::{AccountId, NodeId};
use watt_core::ledger::{AccountEntry, LedgerHeader, StateEntry, StateKey};
use watt_core::light::{self, ForkEvidence, LightClient, LightError, LightEvent, TrustAnchor, VerifiedHeader};
use watt_core::wire::{Request, Response};

/// Verified headers kept for linking answers about older ledgers.
const RECENT_HEADERS: usize = 256;
/// Headers this close below the tip are linked by a chain of them (about
/// 250 bytes each); older ones come with their own proof.
const CHAIN_LINK_MAX: u64 = 4;

/// A record the shell writes; [`Effects`] are committed in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Tip(TrustedTip),
    Account(ProvenAccount),
    Fork(StoredFork),
    /// Node records whose standing changed.
    Nodes(Vec<NodeRecord>),
    /// A pending transaction moves to history; `events` are raised only if
    /// it was still pending (a second settlement writes and raises nothing).
    Settle {
        settlement: Settlement,
        events: Vec<ClientEvent>,
    },
    /// A pending transaction's counters changed.
    Pending(PendingTx),
    History(HistoryEntry),
    RewardedThrough(u64),
}

/// What a step decided: records to write and events to raise, together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    pub writes: Vec<Write>,
    pub events: Vec<ClientEvent>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }

    pub fn append(&mut self, mut other: Effects) {
        self.writes.append(&mut other.writes);
        self.events.append(&mut other.events);
    }

    fn light(&mut self, events: Vec<LightEvent>) {
        self.events.extend(events.into_iter().filter_map(|e| match e {
            LightEvent::NodeDemoted { node, reason } => Some(ClientEvent::NodeDemoted { node, reason }),
            LightEvent::ForkDetected(slot) => Some(ClientEvent::ForkDetected { slot }),
            LightEvent::NewVerifiedHeader(_) => None,
        }));
    }
}

/// One node's answers to a sync round: `GetLatest`, and `GetAccount` when
/// there is a wallet (sent together: one round trip).
#[derive(Debug, Clone)]
pub struct NodeAnswer {
    pub node: NodeId,
    pub latest: Result<Response, NetError>,
    pub account: Option<Result<Response, NetError>>,
}

/// How many nodes a refresh asks at once. Any one node's answer is checked
/// against the quorum's signatures, so asking more buys only freshness and
/// fork detection; each node also costs the phone a QUIC handshake (~5 KB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breadth {
    /// `nodes_wanted` nodes, compared, when a cross-check is due (the first
    /// refresh after the wallet opened or the app closed its connections,
    /// then every `CROSS_CHECK_EVERY_MS`, and until two nodes have
    /// verified); otherwise one.
    Usual,
    /// One node: background work on battery and pushed headers. A node
    /// that fails or lies is still replaced within the refresh.
    One,
}

/// While an app stays open, several nodes are compared again this often.
pub const CROSS_CHECK_EVERY_MS: u64 = 10 * 60 * 1000;

/// A refresh in progress: the nodes asked so far and what they proved.
#[derive(Debug)]
pub struct Refresh {
    me: Option<AccountId>,
    /// Nodes asked per batch.
    width: usize,
    now_ms: u64,
    tried: BTreeSet<NodeId>,
    failures: Vec<String>,
    verified_nodes: usize,
    best_account: Option<(u64, Option<AccountEntry>)>,
    lied: bool,
    fx: Effects,
}

impl Refresh {
    pub fn verified_nodes(&self) -> usize {
        self.verified_nodes
    }
}

/// What the store holds that a refresh compares against.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub records: &'a [NodeRecord],
    pub tip_seq: Option<u64>,
    pub account: Option<&'a ProvenAccount>,
    pub has_fork: bool,
}

/// A refresh that verified at least one node.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub tip: VerifiedHeader,
    pub verified_nodes: usize,
    pub failures: Vec<String>,
}

/// The wallet's verified view and its node choice.
pub struct Wallet {
    light: LightClient,
    recent: BTreeMap<u64, LedgerHeader>,
    picker: Picker,
    /// The genesis validators, always in the default node set's pool.
    pinned: Vec<NodeId>,
    config: ClientConfig,
    /// When several nodes were last compared; `None` makes the next usual
    /// refresh compare them (see [`Breadth`]).
    cross_checked_ms: Option<u64>,
}

impl Wallet {
    pub fn new(anchor: TrustAnchor, pinned: Vec<NodeId>, config: ClientConfig, seed: u64) -> Wallet {
        Wallet {
            light: LightClient::new(anchor),
            recent: BTreeMap::new(),
            picker: Picker::new(seed),
            pinned,
            config,
            cross_checked_ms: None,
        }
    }

    /// Takes back what the store kept. The tip is verified again: a damaged
    /// or planted tip is refused.
    pub fn restore(
        &mut self,
        tip: Option<&TrustedTip>,
        fork: Option<StoredFork>,
        nodes: &[NodeRecord],
    ) -> Result<(), ClientError> {
        if let Some(tip) = tip {
            let v = light::verify_latest(&self.light.anchor, &tip.header, &tip.proof)
                .map_err(|e| ClientError::Corrupt(format!("the stored ledger tip does not verify: {e}")))?;
            self.light.restore_latest(v);
        }
        if let Some(f) = fork {
            self.light.restore_fork(ForkEvidence { slot: f.slot, a: f.a, b: f.b });
        }
        for r in nodes {
            let s = light::Standing {
                good_answers: r.good_answers,
                bad_answers: r.bad_answers,
                timeouts: r.timeouts,
                demoted: r.demoted,
            };
            self.light.standing.insert(r.node_id, s);
        }
        Ok(())
    }

    pub fn light(&self) -> &LightClient {
        &self.light
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn tip(&self) -> Option<&VerifiedHeader> {
        self.light.latest()
    }

    pub fn fork_slot(&self) -> Option<u64> {
        self.light.fork.as_ref().map(|f| f.slot)
    }

    pub fn is_demoted(&self, node: &NodeId) -> bool {
        self.light.standing.get(node).is_some_and(|s| s.demoted)
    }

    /// The tip, when the wallet may sign on it: never after fork evidence.
    pub fn signing_tip(&self) -> Result<VerifiedHeader, ClientError> {
        if let Some(slot) = self.fork_slot() {
            return Err(ClientError::ForkDetected { slot });
        }
        self.tip().cloned().ok_or_else(|| ClientError::Unverified("no verified ledger".into()))
    }

    // ----- node choice -----

    /// The nodes to ask now: the user's own first, then nodes already
    /// connected that behave, then the default set (trust graph, PageRank
    /// picks); never nodes that lied, and unreachable ones only when nothing
    /// else is left.
    pub fn nodes_to_ask(
        &mut self,
        records: &[NodeRecord],
        connected: &BTreeSet<NodeId>,
        skip: &BTreeSet<NodeId>,
    ) -> Vec<NodeRecord> {
        self.pick_nodes(records, connected, skip, self.config.nodes_wanted)
    }

    /// The cross-check is due again: the app closed its connections, so the
    /// next usual refresh compares several nodes.
    pub fn cross_check_later(&mut self) {
        self.cross_checked_ms = None;
    }

    /// `nodes_to_ask`, at most `want` of them.
    fn pick_nodes(
        &mut self,
        records: &[NodeRecord],
        connected: &BTreeSet<NodeId>,
        skip: &BTreeSet<NodeId>,
        want: usize,
    ) -> Vec<NodeRecord> {
        let want = want.max(1);
        let standing = &self.light.standing;
        let demoted = |id: &NodeId| standing.get(id).is_some_and(|s| s.demoted);
        let all_demoted = records.iter().all(|r| demoted(&r.node_id) || skip.contains(&r.node_id));
        let only_unreachable = |id: &NodeId| standing.get(id).is_none_or(|s| s.bad_answers == 0);
        let usable = |r: &&NodeRecord| {
            !skip.contains(&r.node_id) && (!demoted(&r.node_id) || (all_demoted && only_unreachable(&r.node_id)))
        };
        let mut out: Vec<NodeRecord> =
            records.iter().filter(|r| r.origin == NodeOrigin::User).filter(usable).cloned().collect();
        // Stable sets are cheap: keep nodes already connected.
        for r in records.iter().filter(usable) {
            if out.len() < want && connected.contains(&r.node_id) && !out.iter().any(|o| o.node_id == r.node_id) {
                out.push(r.clone());
            }
        }
        if out.len() < want {
            let anchor = &self.light.anchor;
            let dir: Vec<DirectoryNode> = records
                .iter()
                .filter(|r| r.origin != NodeOrigin::User)
                .map(|r| DirectoryNode {
                    node_id: r.node_id,
                    owner: None,
                    quorum_set: anchor
                        .quorum_sets
                        .get(&r.node_id)
                        .cloned()
                        .unwrap_or_else(|| watt_core::scp::QuorumSet::flat(0, vec![])),
                })
                .collect();
            let exclude: BTreeSet<NodeId> =
                records.iter().filter(|r| !usable(r)).map(|r| r.node_id).chain(out.iter().map(|o| o.node_id)).collect();
            let picks =
                directory::default_node_set(&[], &dir, &self.pinned, &exclude, want - out.len(), &mut self.picker);
            out.extend(picks.iter().filter_map(|id| records.iter().find(|r| r.node_id == *id).cloned()));
        }
        out.truncate(want.max(out.iter().filter(|r| r.origin == NodeOrigin::User).count()));
        out
    }

    /// The directory's proven entries become candidates: trust-graph
    /// neighbours first, then PageRank picks, as many as twice the nodes asked.
    pub fn pick_from_directory(
        &mut self,
        neighbours: &[AccountId],
        proven: &[(NodeId, watt_core::ledger::state::NodeEntry)],
        records: &[NodeRecord],
    ) -> Vec<NodeRecord> {
        let dir: Vec<DirectoryNode> = proven
            .iter()
            .map(|(id, e)| DirectoryNode { node_id: *id, owner: Some(e.owner), quorum_set: e.quorum_set.clone() })
            .collect();
        let exclude: BTreeSet<NodeId> = records.iter().filter(|r| r.demoted).map(|r| r.node_id).collect();
        let want = self.config.nodes_wanted.max(1) * 2;
        let picks = directory::default_node_set(neighbours, &dir, &self.pinned, &exclude, want, &mut self.picker);
        picks
            .into_iter()
            .filter(|id| !records.iter().any(|r| r.node_id == *id))
            .filter_map(|id| {
                let (_, e) = proven.iter().find(|(n, _)| *n == id)?;
                let addr = e.addresses.first().and_then(|a| std::str::from_utf8(a).ok())?;
                Some(NodeRecord::new(id, addr.to_string(), NodeOrigin::Directory))
            })
            .collect()
    }

    // ----- refresh -----

    pub fn begin_refresh(&self, me: Option<AccountId>, breadth: Breadth, now_ms: u64) -> Refresh {
        let due = self.cross_checked_ms.is_none_or(|at| now_ms.saturating_sub(at) >= CROSS_CHECK_EVERY_MS);
        let width = match breadth {
            Breadth::Usual if due => self.config.nodes_wanted.max(1),
            Breadth::Usual | Breadth::One => 1,
        };
        Refresh {
            me,
            width,
            now_ms,
            tried: BTreeSet::new(),
            failures: Vec::new(),
            verified_nodes: 0,
            best_account: None,
            lied: false,
            fx: Effects::default(),
        }
    }

    /// The next nodes to ask: none once one node's answer verified, with
    /// the wallet's account proven and a tip no older than `stale_after_ms`,
    /// or every known node was tried (nodes that fail are replaced within the
    /// refresh). After a cross-check one node is asked at a time, so that one
    /// must not be able to keep the shown balance, or the ledger time that
    /// storage duties are planned by, behind: a node whose headers verify but
    /// which withholds the account's proof or serves an old tip is passed over.
    pub fn next_batch(
        &mut self,
        r: &mut Refresh,
        records: &[NodeRecord],
        connected: &BTreeSet<NodeId>,
    ) -> Vec<NodeRecord> {
        let fresh = !self.light.is_stale(r.now_ms, self.config.stale_after_ms);
        if r.verified_nodes > 0 && (r.me.is_none() || r.best_account.is_some()) && fresh {
            return Vec::new();
        }
        let batch = self.pick_nodes(records, connected, &r.tried, r.width);
        r.tried.extend(batch.iter().map(|n| n.node_id));
        batch
    }

    /// One node's answers: verified, or the node's standing pays for them.
    pub fn on_node_answer(&mut self, r: &mut Refresh, a: NodeAnswer) {
        let node = a.node;
        // Answers may come without a batch (a pushed header): still asked.
        r.tried.insert(node);
        let Some(v) = self.judge_latest(node, a.latest, &mut r.fx, &mut r.failures, &mut r.lied) else { return };
        r.verified_nodes += 1;
        self.remember(v.header.clone());
        let (Some(me), Some(Ok(Response::Account { header_seq, entry, proof }))) = (r.me, a.account) else { return };
        if header_seq != v.header.seq {
            return; // a moment behind or ahead: not provable against this header
        }
        match light::verify_account(&v, &me, entry.as_ref(), &proof) {
            Ok(e) => {
                if r.best_account.as_ref().is_none_or(|(s, _)| *s < header_seq) {
                    r.best_account = Some((header_seq, e));
                }
            }
            Err(e) => {
                r.fx.light(self.light.on_invalid(node, &e));
                r.failures.push(format!("{node}: {e}"));
                r.lied = true;
            }
        }
    }

    /// A `GetLatest` answer through the light client.
    fn judge_latest(
        &mut self,
        node: NodeId,
        latest: Result<Response, NetError>,
        fx: &mut Effects,
        failures: &mut Vec<String>,
        lied: &mut bool,
    ) -> Option<VerifiedHeader> {
        let e = match latest {
            Ok(Response::Latest { header, proof }) => match light::verify_latest(&self.light.anchor, &header, &proof) {
                Ok(v) => {
                    let (r, ev) = self.light.on_verified(node, v, &proof);
                    fx.light(ev);
                    match r {
                        Ok(v) => return Some(v),
                        Err(e) => e,
                    }
                }
                Err(e) => {
                    fx.light(self.light.on_invalid(node, &e));
                    e
                }
            },
            Ok(Response::Error { message }) => {
                failures.push(format!("{node}: {}", String::from_utf8_lossy(&message)));
                return None;
            }
            Ok(other) => {
                fx.light(self.light.on_invalid(node, &LightError::BadValue));
                failures.push(format!("{node}: unexpected answer {}", response_name(&other)));
                return None;
            }
            Err(e) => {
                fx.light(self.light.on_timeout(node));
                failures.push(format!("{node}: {e}"));
                return None;
            }
        };
        failures.push(format!("{node}: {e}"));
        *lied = true;
        None
    }

    /// Ends a refresh: the tip, the account and the nodes' standing to
    /// write, in that order, and the events they raise.
    pub fn finish_refresh(&mut self, r: Refresh, stored: Stored<'_>) -> (Effects, Result<Refreshed, ClientError>) {
        let Refresh { tried, failures, verified_nodes, best_account, lied, mut fx, width, now_ms, .. } = r;
        if width > 1 && verified_nodes >= 2 {
            self.cross_checked_ms = Some(now_ms);
        }
        fx.writes.extend(self.standing_writes(stored.records));
        if !stored.has_fork {
            if let Some(f) = &self.light.fork {
                fx.writes.push(Write::Fork(StoredFork { slot: f.slot, a: f.a.clone(), b: f.b.clone() }));
            }
        }
        let why = |failures: &[String]| failures.join("; ");
        if tried.is_empty() {
            let e = if stored.records.is_empty() {
                ClientError::NoNodeReachable("no nodes are configured".into())
            } else {
                ClientError::Unverified(
                    "every known node was demoted for answers that did not verify: add a node you trust".into(),
                )
            };
            return (fx, Err(e));
        }
        let Some(tip) = self.light.latest().cloned() else {
            let e = if lied {
                ClientError::Unverified(why(&failures))
            } else {
                ClientError::NoNodeReachable(why(&failures))
            };
            return (fx, Err(e));
        };
        if verified_nodes == 0 {
            // Nothing new verified now: keep the stored view, say why.
            let e = if lied {
                ClientError::Unverified(why(&failures))
            } else {
                ClientError::NoNodeReachable(why(&failures))
            };
            return (fx, Err(e));
        }
        if stored.tip_seq.is_none_or(|s| s < tip.header.seq) {
            if let Some(proof) = self.light.proof_of(tip.header.seq + 1).cloned() {
                fx.writes.push(Write::Tip(TrustedTip { header: tip.header.clone(), proof }));
            }
            fx.events
                .push(ClientEvent::NewVerifiedLedger { seq: tip.header.seq, close_time_ms: tip.header.close_time });
        }
        if let Some((seq, entry)) = best_account {
            if stored.account.is_none_or(|b| b.header_seq <= seq) {
                fx.writes.push(Write::Account(ProvenAccount { header_seq: seq, entry }));
            }
        }
        (fx, Ok(Refreshed { tip, verified_nodes, failures }))
    }

    /// Node records whose standing differs from what the light client counted.
    pub fn standing_writes(&self, records: &[NodeRecord]) -> Option<Write> {
        let changed: Vec<NodeRecord> = records
            .iter()
            .filter_map(|r| {
                let s = self.light.standing.get(&r.node_id)?;
                let mut n = r.clone();
                n.good_answers = s.good_answers;
                n.bad_answers = s.bad_answers;
                n.timeouts = s.timeouts;
                n.demoted = s.demoted;
                (n != *r).then_some(n)
            })
            .collect();
        (!changed.is_empty()).then_some(Write::Nodes(changed))
    }

    /// Asks one node (even a demoted one) and says exactly what, if
    /// anything, fails to verify. Its standing changes like any answer's.
    pub fn check_node(
        &mut self,
        a: NodeAnswer,
        me: Option<AccountId>,
        stored: Stored<'_>,
    ) -> (Effects, Result<u64, ClientError>) {
        let node = a.node;
        let mut fx = Effects::default();
        let r = self.check_answer(a, me, &mut fx);
        fx.writes.extend(self.standing_writes(stored.records));
        if !stored.has_fork {
            if let Some(f) = &self.light.fork {
                fx.writes.push(Write::Fork(StoredFork { slot: f.slot, a: f.a.clone(), b: f.b.clone() }));
            }
        }
        tracing::debug!(%node, ok = r.is_ok(), "checked a node");
        (fx, r)
    }

    fn check_answer(&mut self, a: NodeAnswer, me: Option<AccountId>, fx: &mut Effects) -> Result<u64, ClientError> {
        let node = a.node;
        let (header, proof) = match a.latest {
            Ok(Response::Latest { header, proof }) => (header, proof),
            Ok(Response::Error { message }) => {
                return Err(ClientError::NoNodeReachable(String::from_utf8_lossy(&message).into_owned()))
            }
            Ok(other) => return Err(ClientError::Unverified(format!("unexpected answer {}", response_name(&other)))),
            Err(e) => {
                fx.light(self.light.on_timeout(node));
                return Err(ClientError::NoNodeReachable(e.to_string()));
            }
        };
        let verified = light::verify_latest(&self.light.anchor, &header, &proof).map_err(|e| {
            fx.light(self.light.on_invalid(node, &e));
            ClientError::Verification(e)
        })?;
        let (r, ev) = self.light.on_verified(node, verified, &proof);
        fx.light(ev);
        let v = r?;
        // Fork evidence outranks anything else this answer may get wrong.
        if let Some(slot) = self.fork_slot() {
            return Err(ClientError::ForkDetected { slot });
        }
        if let (Some(me), Some(Ok(Response::Account { header_seq, entry, proof }))) = (me, a.account) {
            if header_seq == v.header.seq {
                if let Err(e) = light::verify_account(&v, &me, entry.as_ref(), &proof) {
                    fx.light(self.light.on_invalid(node, &e));
                    return Err(ClientError::Verification(e));
                }
            }
        }
        Ok(v.header.seq)
    }

    // ----- older headers and state entries -----

    fn remember(&mut self, header: LedgerHeader) {
        self.recent.insert(header.seq, header);
        while self.recent.len() > RECENT_HEADERS {
            self.recent.pop_first();
        }
    }

    /// A verified header at `seq` this wallet already holds (the tip, or one
    /// chained down from it).
    pub fn header_at(&self, seq: u64) -> Option<LedgerHeader> {
        match self.light.latest() {
            Some(t) if t.header.seq == seq => Some(t.header.clone()),
            _ => self.recent.get(&seq).cloned(),
        }
    }

    /// The request that proves header `seq` (below the tip, not held): the
    /// headers up to the tip when they are few (linked by `prev_hash`), else
    /// the header with its own externalize proof, about a kilobyte however
    /// old it is.
    pub fn headers_request(&self, seq: u64) -> Option<Request> {
        let tip = self.light.latest()?.header.seq;
        if self.header_at(seq).is_some() || seq >= tip {
            return None;
        }
        if tip - seq <= CHAIN_LINK_MAX {
            return Some(Request::GetHeaders { from: seq, count: (tip - seq) as u32 });
        }
        Some(Request::GetProvenHeader { seq })
    }

    /// The answer to [`Wallet::headers_request`]: headers kept when they
    /// link down from the tip by `prev_hash`, or one header kept when its
    /// proof verifies; returns the one at `seq`.
    pub fn on_headers(&mut self, seq: u64, answer: Response) -> Option<LedgerHeader> {
        let tip = self.light.latest()?.header.clone();
        if let Response::Latest { header, proof } = &answer {
            let v = light::verify_latest(&self.light.anchor, header, proof).ok()?;
            if v.header.seq != seq {
                return None;
            }
            self.remember(v.header.clone());
            return Some(v.header);
        }
        let Response::Headers { headers } = answer else { return None };
        let count = tip.seq.checked_sub(seq)? as usize;
        if headers.len() != count || headers.first().map(|h| h.seq) != Some(seq) {
            return None;
        }
        light::verify_chain(&tip, &headers).ok()?;
        for h in headers.iter() {
            self.remember(h.clone());
        }
        headers.first().cloned()
    }

    /// An `Entry` answer for `key` under a header this wallet verified
    /// (`header`: the one at the answer's `header_seq`). A proof that does
    /// not check demotes the node.
    pub fn on_entry(
        &mut self,
        node: NodeId,
        key: &StateKey,
        header: &LedgerHeader,
        answer: &Response,
        fx: &mut Effects,
    ) -> Option<Option<StateEntry>> {
        let Response::Entry { header_seq, entry, proof } = answer else { return None };
        if *header_seq != header.seq {
            return None;
        }
        match light::verify_entry(header, key, entry.as_deref(), proof) {
            Ok(e) => Some(e),
            Err(e) => {
                fx.light(self.light.on_invalid(node, &e));
                None
            }
        }
    }

    /// The node followed stopped pushing: counted as a timeout (three in a
    /// row demote it, as for any silent node), and its standing written.
    pub fn on_push_silence(&mut self, node: NodeId, records: &[NodeRecord]) -> Effects {
        let mut fx = Effects::default();
        fx.light(self.light.on_timeout(node));
        fx.writes.extend(self.standing_writes(records));
        fx
    }

    /// A node whose answer failed a check the shell ran (a directory page).
    pub fn on_invalid(&mut self, node: NodeId, e: &LightError, fx: &mut Effects) {
        fx.light(self.light.on_invalid(node, e));
    }
}

impl NodeRecord {
    pub fn new(node_id: NodeId, address: String, origin: NodeOrigin) -> NodeRecord {
        NodeRecord {
            node_id,
            address,
            origin,
            good_answers: 0,
            bad_answers: 0,
            timeouts: 0,
            demoted: false,
            last_error: None,
        }
    }
}

/// The answer's kind, for messages.
pub fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Hello { .. } => "Hello",
        Response::Latest { .. } => "Latest",
        Response::Headers { .. } => "Headers",
        Response::Account { .. } => "Account",
        Response::Entry { .. } => "Entry",
        Response::TxAccepted { .. } => "TxAccepted",
        Response::TxRejected { .. } => "TxRejected",
        Response::Tx { .. } => "Tx",
        Response::TxUnknown { .. } => "TxUnknown",
        Response::Nodes { .. } => "Nodes",
        Response::QsetChanges { .. } => "QsetChanges",
        Response::Subscribed => "Subscribed",
        Response::ForkReported { .. } => "ForkReported",
        Response::Error { .. } => "Error",
    }
}
