//! Following the network while the app is open: one node pushes each new
//! header with its proof (`Subscribe`), the wallet verifies it like any
//! answer; when no node pushes (or the one followed stops), a poll every
//! interval. Never while the app is closed: a push every ledger would cost
//! a header and a proof every few seconds all day.

use super::*;
use crate::net::{read_frame, request_within};
use crate::wallet::push::{account_due, Admit, PushWatch};
use crate::wallet::NodeAnswer;
use std::sync::Weak;
use std::time::Duration;
use watt_core::codec::decode;
use watt_core::wire::{encode_frame, HeaderPush, Request, Response, MAX_FRAME};

/// Why following one node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEnd {
    /// The client was dropped or `stop_sync` called.
    Stopped,
    /// No node left to try (None), or this one would not push.
    NoPush(Option<NodeId>, String),
    /// The node stopped pushing, or pushed something that does not verify.
    Lost(NodeId, String),
}

impl WattClient {
    /// Follows the network in the background until `stop_sync`: pushed
    /// headers from one node, a poll every `interval_ms` while none pushes.
    /// The task holds the client only weakly: dropping the last handle stops it.
    pub fn start_sync(&self, interval_ms: u64) {
        let weak = Arc::downgrade(&self.inner);
        let handle = tokio::spawn(follow_loop(weak, Duration::from_millis(interval_ms.max(100))));
        if let Ok(mut b) = self.inner.sync_task.lock() {
            if let Some(old) = b.replace(handle) {
                old.abort();
            }
        }
    }

    /// Whether the background sync task runs.
    pub(super) fn following(&self) -> bool {
        self.inner.sync_task.lock().is_ok_and(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
    }

    pub fn stop_sync(&self) {
        if let Ok(mut b) = self.inner.sync_task.lock() {
            if let Some(h) = b.take() {
                h.abort();
            }
        }
    }

    /// Subscribes to the first node the wallet would ask, returning the
    /// node, its connection and the stream its pushes come on.
    async fn subscribe(
        &self,
        watch: &PushWatch,
        skip: &BTreeSet<NodeId>,
    ) -> Result<(NodeId, quinn::Connection, quinn::RecvStream), FollowEnd> {
        let records = self.inner.store.nodes().map_err(|e| FollowEnd::NoPush(None, e.to_string()))?;
        let (rec, existing) = {
            let mut st = self.inner.state.lock().await;
            let connected = st.connected();
            let rec = st.wallet.nodes_to_ask(&records, &connected, skip).into_iter().next();
            let rec = rec.ok_or_else(|| FollowEnd::NoPush(None, "no node left to follow".into()))?;
            let existing = st.conns.get(&rec.node_id).filter(|c| c.close_reason().is_none()).cloned();
            (rec, existing)
        };
        let no_push = |e: String| FollowEnd::NoPush(Some(rec.node_id), e);
        let conn = match existing {
            Some(c) => c,
            None => {
                let timeout = Duration::from_millis(self.inner.config.connect_timeout_ms);
                let c = sync::connect(&self.inner.endpoint, &rec, timeout).await.map_err(|e| no_push(e.to_string()))?;
                self.inner.state.lock().await.put_conn(rec.node_id, c.clone(), &self.inner.retired);
                c
            }
        };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| no_push(e.to_string()))?;
        send.write_all(&encode_frame(&Request::Subscribe)).await.map_err(|e| no_push(e.to_string()))?;
        let _ = send.finish();
        let answer = read_frame(&mut recv, MAX_FRAME).await.map_err(|e| no_push(e.to_string()))?;
        if !matches!(answer.map(|b| decode::<Response>(&b)), Some(Ok(Response::Subscribed))) {
            return Err(no_push(format!("{} does not push", rec.node_id)));
        }
        let wait = Duration::from_millis(watch.wait_ms(now_ms()));
        match tokio::time::timeout(wait, conn.accept_uni()).await {
            Ok(Ok(uni)) => Ok((rec.node_id, conn, uni)),
            _ => Err(no_push(format!("{} opened no push stream", rec.node_id))),
        }
    }

    /// One pushed header through the wallet (with the account proven again
    /// when due), then the usual end of a sync round.
    async fn on_pushed(
        &self,
        node: NodeId,
        conn: &quinn::Connection,
        push: HeaderPush,
        account_due_now: bool,
    ) -> Result<(), ClientError> {
        let me = self.address()?;
        let account = match (me, account_due_now) {
            (Some(a), true) => {
                let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
                Some(request_within(conn, &Request::GetAccount { account: a }, timeout).await)
            }
            _ => None,
        };
        let records = self.inner.store.nodes()?;
        let before = self.inner.store.account()?;
        let mut st = self.inner.state.lock().await;
        let mut round = st.wallet.begin_refresh(me, crate::wallet::Breadth::One, now_ms());
        let latest = Ok(Response::Latest { header: push.header, proof: push.proof });
        st.wallet.on_node_answer(&mut round, NodeAnswer { node, latest, account });
        self.conclude(&mut st, round, &records, before.as_ref()).await.map(|_| ())
    }

    /// The node followed went quiet: counted like a silent answer.
    async fn push_silence(&self, node: NodeId) {
        let Ok(records) = self.inner.store.nodes() else { return };
        let fx = self.inner.state.lock().await.wallet.on_push_silence(node, &records);
        let _ = self.commit(fx);
    }
}

/// Follows one node after another; when none pushes, polls every
/// `interval` and tries them all again. Ends when the client is gone.
async fn follow_loop(weak: Weak<Inner>, interval: Duration) {
    let mut tried: BTreeSet<NodeId> = BTreeSet::new();
    loop {
        let end = follow_one(&weak, interval, &tried).await;
        tracing::debug!(?end, "stopped following a node");
        let Some(inner) = weak.upgrade() else { return };
        // Whatever happened, the view stays current by one poll meanwhile.
        let _ = WattClient { inner }.refresh().await;
        match end {
            FollowEnd::Stopped => return,
            FollowEnd::NoPush(Some(node), _) | FollowEnd::Lost(node, _) => {
                tried.insert(node);
            }
            FollowEnd::NoPush(None, _) => {
                tried.clear();
                tokio::time::sleep(interval).await;
            }
        }
    }
}

/// Follows one node's pushes until it stops. Between pushes only the
/// connection is held, never the client.
async fn follow_one(weak: &Weak<Inner>, interval: Duration, skip: &BTreeSet<NodeId>) -> FollowEnd {
    let Some(inner) = weak.upgrade() else { return FollowEnd::Stopped };
    let client = WattClient { inner };
    let mut watch = PushWatch::new(client.inner.genesis.params.ledger_close_ms, now_ms());
    let (node, conn, mut uni) = match client.subscribe(&watch, skip).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    drop(client);
    let mut last_account: Option<u64> = None;
    loop {
        let wait = Duration::from_millis(watch.wait_ms(now_ms()).max(1));
        let frame = tokio::time::timeout(wait, read_frame(&mut uni, MAX_FRAME)).await;
        let Some(inner) = weak.upgrade() else { return FollowEnd::Stopped };
        let client = WattClient { inner };
        let push = match frame.map(|f| f.map(|b| b.map(|b| decode::<HeaderPush>(&b)))) {
            Ok(Ok(Some(Ok(push)))) => push,
            other => {
                client.push_silence(node).await;
                return FollowEnd::Lost(node, format!("stopped pushing: {other:?}"));
            }
        };
        {
            let mut s = client.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
            s.pushed_headers += 1;
        }
        let (tip, known) = {
            let st = client.inner.state.lock().await;
            let known = st.wallet.light().proof_of(push.proof.slot).is_some_and(|p| p.value == push.proof.value);
            (st.wallet.tip().map(|t| t.header.seq), known)
        };
        match watch.on_push(now_ms(), push.header.seq, tip, known) {
            Admit::Verify => {}
            Admit::Skip => continue,
            Admit::Drop => return FollowEnd::Lost(node, "pushes nothing new".into()),
        }
        let pending = client.inner.store.pending().map(|p| !p.is_empty()).unwrap_or(true);
        let due = account_due(last_account, now_ms(), interval.as_millis() as u64, pending);
        if due {
            last_account = Some(now_ms());
        }
        if let Err(e) = client.on_pushed(node, &conn, push, due).await {
            return FollowEnd::Lost(node, e.to_string());
        }
    }
}
