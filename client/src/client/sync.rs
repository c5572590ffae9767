//! Sync: asking nodes and feeding the wallet their answers. Each round
//! connects where needed, sends `GetLatest` and `GetAccount` together (one
//! round trip), settles pending transactions and attributes credits.

use super::*;
use crate::net::{request_within, tls, NetError};
use crate::wallet::{self, Book, Breadth, NodeAnswer, Refreshed, SettleStep, Stored, TxCheck, Write};
use std::net::SocketAddr;
use std::time::Duration;
use watt_core::ledger::{AccountEntry, LedgerHeader, StateEntry, StateKey};
use watt_core::light;
use watt_core::wire::{Request, Response};

/// What one `refresh` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSummary {
    pub verified_seq: u64,
    pub nodes_verified: usize,
    pub nodes_failed: usize,
    pub settled: usize,
}

/// A node's answers and what asking cost.
struct Asked {
    answer: NodeAnswer,
    conn: Option<quinn::Connection>,
    connected_now: bool,
    round_trips: u64,
    bytes_rx: u64,
    bytes_tx: u64,
}

/// Fork evidence no node took yet is sent again at most this often.
const FORK_RESEND_MS: u64 = 60_000;

/// Most directory pages a phone reads (each at most 512 KiB).
const MAX_DIRECTORY_PAGES: usize = 8;

impl WattClient {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.request_timeout_ms)
    }

    /// Asks the active nodes for the latest ledger and the wallet's account,
    /// verifies everything, settles pending transactions and re-sends the
    /// others. Nodes that lie are demoted and replaced within the same call.
    pub async fn refresh(&self) -> Result<RefreshSummary, ClientError> {
        self.refresh_with(Breadth::Usual).await
    }

    /// `refresh`, asking as many nodes at once as `breadth` says.
    pub async fn refresh_with(&self, breadth: Breadth) -> Result<RefreshSummary, ClientError> {
        let mut st = self.inner.state.lock().await;
        self.refresh_locked(&mut st, breadth).await
    }

    pub(super) async fn refresh_locked(&self, st: &mut State, breadth: Breadth) -> Result<RefreshSummary, ClientError> {
        let me = self.address()?;
        let store = &self.inner.store;
        let records = store.nodes()?;
        let before = store.account()?;
        let mut round = st.wallet.begin_refresh(me, breadth, now_ms());
        loop {
            let connected = st.connected();
            let batch = st.wallet.next_batch(&mut round, &records, &connected);
            if batch.is_empty() {
                break;
            }
            for asked in self.ask_all(st, &batch, me).await {
                self.count(&asked);
                match asked.conn {
                    Some(c) => st.put_conn(asked.answer.node, c, &self.inner.retired),
                    None => {
                        st.drop_conn(&asked.answer.node, &self.inner.retired);
                    }
                }
                st.wallet.on_node_answer(&mut round, asked.answer);
            }
        }
        self.conclude(st, round, &records, before.as_ref()).await
    }

    /// The end of every sync round (polled or pushed): commit what the
    /// answers proved, settle pending transactions, attribute credits.
    pub(super) async fn conclude(
        &self,
        st: &mut State,
        round: crate::wallet::Refresh,
        records: &[NodeRecord],
        before: Option<&ProvenAccount>,
    ) -> Result<RefreshSummary, ClientError> {
        let store = &self.inner.store;
        let tip_seq = store.tip()?.map(|t| t.header.seq);
        let stored = Stored { records, tip_seq, account: before, has_fork: store.fork()?.is_some() };
        let (fx, result) = st.wallet.finish_refresh(round, stored);
        self.commit(fx)?;
        self.report_fork(st);
        let Refreshed { tip, verified_nodes, failures } = result?;
        let settled = self.settle_pending(st).await?;
        self.credit(&tip.header, before)?;
        tracing::debug!(
            seq = tip.header.seq,
            nodes_verified = verified_nodes,
            nodes_failed = failures.len(),
            settled,
            "refreshed"
        );
        for f in &failures {
            tracing::info!(failure = %f, "a node's answer was not used");
        }
        Ok(RefreshSummary {
            verified_seq: tip.header.seq,
            nodes_verified: verified_nodes,
            nodes_failed: failures.len(),
            settled,
        })
    }

    fn count(&self, a: &Asked) {
        let mut s = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.connects += u64::from(a.connected_now);
        s.polls += 1;
        s.requests += 1 + u64::from(a.answer.account.is_some());
        s.round_trips += a.round_trips;
        s.bytes_received += a.bytes_rx;
        s.bytes_sent += a.bytes_tx;
    }

    /// Connects where needed and asks every node at once.
    async fn ask_all(&self, st: &State, batch: &[NodeRecord], me: Option<AccountId>) -> Vec<Asked> {
        let mut set = tokio::task::JoinSet::new();
        for r in batch {
            let existing = st.conns.get(&r.node_id).filter(|c| c.close_reason().is_none()).cloned();
            let endpoint = self.inner.endpoint.clone();
            let rec = r.clone();
            let req_timeout = self.timeout();
            let conn_timeout = Duration::from_millis(self.inner.config.connect_timeout_ms);
            set.spawn(async move { ask_one(endpoint, existing, rec, me, req_timeout, conn_timeout).await });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(a) = r {
                out.push(a);
            }
        }
        out.sort_by_key(|a| a.answer.node);
        out
    }

    /// Settles pending transactions a verified ledger included, ends the ones
    /// proven unusable, and re-sends the rest.
    async fn settle_pending(&self, st: &mut State) -> Result<usize, ClientError> {
        let pending = self.inner.store.pending()?;
        if pending.is_empty() {
            return Ok(0);
        }
        let account = self.inner.store.account()?;
        let conns = st.good_conns();
        let mut settled = 0;
        for p in pending {
            let mut check = TxCheck::new(p.tx.hash());
            let mut fx = Effects::default();
            for (node, conn) in &conns {
                let answer = request_within(conn, &Request::GetTx { hash: p.tx.hash() }, self.timeout()).await;
                let header = match answer.as_ref().ok().and_then(|a| Wallet::tx_answer_seq(&check, a)) {
                    Some(seq) => self.verified_header(st, seq, conn).await,
                    None => None,
                };
                st.wallet.on_tx_answer(&mut check, *node, answer, header.as_ref(), &mut fx);
                if check.proven() {
                    break;
                }
            }
            match st.wallet.settle(&p, &check, account.as_ref(), now_ms()) {
                SettleStep::Settled(w) => {
                    settled += usize::from(matches!(&w, Write::Settle { .. }));
                    fx.writes.push(w);
                }
                SettleStep::Count(counted) => fx.writes.push(Write::Pending(counted)),
                SettleStep::Wait => {}
                SettleStep::Resubmit => {
                    let to = self.submission_conns(st, &p.tx).await;
                    self.submit(&to, &p.tx).await;
                }
            }
            self.commit(fx)?;
        }
        Ok(settled)
    }

    /// Credits the wallet's own transactions do not explain, as history.
    fn credit(&self, tip: &LedgerHeader, before: Option<&ProvenAccount>) -> Result<(), ClientError> {
        let store = &self.inner.store;
        let now = store.account()?;
        let book = Book {
            before,
            now: now.as_ref(),
            pending: &store.pending()?,
            history: &store.history(512)?,
            rewarded_through: store.rewarded_through()?,
            confirmed_attest_days: &store.confirmed_attest_days()?,
        };
        self.commit(wallet::attribute_credits(tip, book))
    }

    /// A verified header at `seq`: held, or fetched from `conn` and linked
    /// down by `prev_hash` from the tip.
    pub(super) async fn verified_header(
        &self,
        st: &mut State,
        seq: u64,
        conn: &quinn::Connection,
    ) -> Option<LedgerHeader> {
        if let Some(h) = st.wallet.header_at(seq) {
            return Some(h);
        }
        let req = st.wallet.headers_request(seq)?;
        let answer = request_within(conn, &req, self.timeout()).await.ok()?;
        st.wallet.on_headers(seq, answer)
    }

    /// A state entry proven against the verified tip or a header chained to it.
    pub(super) async fn proven_entry(&self, st: &mut State, key: StateKey) -> Result<Option<StateEntry>, ClientError> {
        for (node, conn) in st.good_conns() {
            let Ok(answer) = request_within(&conn, &Request::GetEntry { key }, self.timeout()).await else { continue };
            let Response::Entry { header_seq, .. } = &answer else { continue };
            let Some(header) = self.verified_header(st, *header_seq, &conn).await else { continue };
            let mut fx = Effects::default();
            let proven = st.wallet.on_entry(node, &key, &header, &answer, &mut fx);
            self.commit(fx)?;
            if let Some(e) = proven {
                return Ok(e);
            }
        }
        Err(ClientError::Unverified(format!("no node proved {key:?} against a verified ledger")))
    }

    /// Asks one node (even a demoted one) for the latest ledger and the
    /// wallet's account and says exactly what, if anything, fails to verify.
    pub async fn check_node(&self, node_id: &NodeId) -> Result<u64, ClientError> {
        let me = self.address()?;
        let records = self.inner.store.nodes()?;
        let rec = records
            .iter()
            .find(|r| r.node_id == *node_id)
            .cloned()
            .ok_or_else(|| ClientError::UnknownNode(node_id.to_string()))?;
        let mut st = self.inner.state.lock().await;
        let asked = self
            .ask_all(&st, &[rec], me)
            .await
            .pop()
            .ok_or_else(|| ClientError::NoNodeReachable(node_id.to_string()))?;
        self.count(&asked);
        if let Some(c) = asked.conn {
            st.put_conn(*node_id, c, &self.inner.retired);
        }
        let stored =
            Stored { records: &records, tip_seq: None, account: None, has_fork: self.inner.store.fork()?.is_some() };
        let (fx, r) = st.wallet.check_node(asked.answer, me, stored);
        self.commit(fx)?;
        self.report_fork(&st);
        r
    }

    /// Sends the wallet's fork evidence to every node it knows, in the
    /// background, until a node takes it: again at most once a minute while
    /// none has (a node may be down, or busy with other reports). The
    /// evidence stays in the store and goes out again after a restart.
    fn report_fork(&self, st: &State) {
        let Some(f) = st.wallet.light().fork.clone() else { return };
        let Ok(records) = self.inner.store.nodes() else { return };
        {
            let mut r = self.inner.fork_report.lock().unwrap_or_else(|e| e.into_inner());
            let now = now_ms();
            if r.delivered || r.in_flight || r.last_sent_ms.is_some_and(|t| now.saturating_sub(t) < FORK_RESEND_MS) {
                return;
            }
            r.in_flight = true;
            r.last_sent_ms = Some(now);
        }
        let conns = st.conns.clone();
        let endpoint = self.inner.endpoint.clone();
        let (req_timeout, conn_timeout) = (self.timeout(), Duration::from_millis(self.inner.config.connect_timeout_ms));
        let req = Request::ReportFork { slot: f.slot, a: f.a, b: f.b };
        let retired = self.inner.retired.clone();
        let report = self.inner.fork_report.clone();
        tokio::spawn(async move {
            let mut delivered = false;
            for rec in records {
                let (conn, own) = match conns.get(&rec.node_id).filter(|c| c.close_reason().is_none()) {
                    Some(c) => (c.clone(), false),
                    None => match connect(&endpoint, &rec, conn_timeout).await {
                        Ok(c) => (c, true),
                        Err(e) => {
                            tracing::info!(node = %rec.node_id, error = %e, "fork evidence not delivered");
                            continue;
                        }
                    },
                };
                let answer = request_within(&conn, &req, req_timeout).await;
                delivered |= matches!(answer, Ok(Response::ForkReported { .. }));
                tracing::info!(node = %rec.node_id, ?answer, "fork evidence sent");
                if own {
                    conn.close(0u32.into(), b"reported");
                    super::retire(&retired, &conn);
                }
            }
            let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
            r.in_flight = false;
            r.delivered |= delivered;
        });
    }

    /// Fetches the validator directory with its proofs, keeps the proven
    /// entries, and adds nodes run by trust-graph neighbours (security
    /// circles, breadth-first) and high-PageRank nodes to the node list.
    pub async fn refresh_directory(&self) -> Result<usize, ClientError> {
        self.refresh().await?;
        let mut st = self.inner.state.lock().await;
        let proven = self.directory(&mut st).await?;
        let me = self.address()?;
        let mut circles: BTreeMap<AccountId, Vec<AccountId>> = BTreeMap::new();
        if let Some(me) = me {
            let mut frontier = vec![me];
            for _depth in 0..2 {
                let mut next = Vec::new();
                for a in frontier.into_iter().take(10) {
                    if circles.contains_key(&a) {
                        continue;
                    }
                    if let Ok(Some(entry)) = self.proven_account_of(&mut st, &a).await {
                        let members: Vec<AccountId> = entry.security_circle.iter().copied().collect();
                        next.extend(members.iter().copied());
                        circles.insert(a, members);
                    }
                }
                frontier = next;
            }
        }
        let neighbours = me.map(|m| crate::directory::trust_neighbours(&m, &circles, 50)).unwrap_or_default();
        let records = self.inner.store.nodes()?;
        let added = st.wallet.pick_from_directory(&neighbours, &proven, &records);
        self.inner.store.put_nodes(&added)?;
        Ok(added.len())
    }

    /// The directory, page by page (validator-set members first), at most
    /// `MAX_DIRECTORY_PAGES`, every entry proven against the verified tip;
    /// from the first node that serves all of it.
    async fn directory(
        &self,
        st: &mut State,
    ) -> Result<Vec<(NodeId, watt_core::ledger::state::NodeEntry)>, ClientError> {
        let tip = st.wallet.tip().cloned().ok_or_else(|| ClientError::Unverified("no verified ledger".into()))?;
        'nodes: for (node, conn) in st.conns.clone() {
            let mut proven = Vec::new();
            let mut after = None;
            for _page in 0..MAX_DIRECTORY_PAGES {
                let Ok(Response::Nodes { header_seq, nodes, next }) =
                    request_within(&conn, &Request::GetNodes { after }, self.timeout()).await
                else {
                    continue 'nodes;
                };
                if header_seq != tip.header.seq {
                    continue 'nodes;
                }
                for n in nodes.iter() {
                    let key = StateKey::Node(n.node_id);
                    let bytes = watt_core::codec::encode(&StateEntry::Node(n.entry.clone()));
                    if let Err(e) = light::verify_entry(&tip.header, &key, Some(&bytes), &n.proof) {
                        let mut fx = Effects::default();
                        st.wallet.on_invalid(node, &e, &mut fx);
                        self.commit(fx)?;
                        continue 'nodes;
                    }
                    proven.push((n.node_id, n.entry.clone()));
                }
                match next {
                    Some(n) if !nodes.is_empty() => after = Some(n),
                    _ => break,
                }
            }
            return Ok(proven);
        }
        Err(ClientError::Unverified("no node served a directory proven against the verified ledger".into()))
    }

    /// Any account's entry, proven against the verified tip (for the trust graph).
    async fn proven_account_of(
        &self,
        st: &mut State,
        account: &AccountId,
    ) -> Result<Option<AccountEntry>, ClientError> {
        let tip = st.wallet.tip().cloned().ok_or_else(|| ClientError::Unverified("no verified ledger".into()))?;
        for conn in st.conns.values() {
            if let Ok(Response::Account { header_seq, entry, proof }) =
                request_within(conn, &Request::GetAccount { account: *account }, self.timeout()).await
            {
                if header_seq == tip.header.seq {
                    return Ok(light::verify_account(&tip, account, entry.as_ref(), &proof)?);
                }
            }
        }
        Err(ClientError::Unverified("no node proved the account against the verified ledger".into()))
    }
}

/// One node: connect if needed, then `GetLatest` and `GetAccount` on two streams.
async fn ask_one(
    endpoint: quinn::Endpoint,
    existing: Option<quinn::Connection>,
    rec: NodeRecord,
    me: Option<AccountId>,
    req_timeout: Duration,
    conn_timeout: Duration,
) -> Asked {
    let (conn, connected_now) = match existing {
        Some(c) => (c, false),
        None => match connect(&endpoint, &rec, conn_timeout).await {
            Ok(c) => (c, true),
            Err(e) => {
                let answer = NodeAnswer { node: rec.node_id, latest: Err(e), account: None };
                return Asked { answer, conn: None, connected_now: false, round_trips: 1, bytes_rx: 0, bytes_tx: 0 };
            }
        },
    };
    let before = if connected_now { (0, 0) } else { (conn.stats().udp_rx.bytes, conn.stats().udp_tx.bytes) };
    let latest = request_within(&conn, &Request::GetLatest, req_timeout);
    let (latest, account) = match me {
        Some(a) => {
            let req = Request::GetAccount { account: a };
            let acct = request_within(&conn, &req, req_timeout);
            let (l, a) = tokio::join!(latest, acct);
            (l, Some(a))
        }
        None => (latest.await, None),
    };
    let stats = conn.stats();
    let alive = !matches!(latest, Err(NetError::Lost(_)));
    Asked {
        answer: NodeAnswer { node: rec.node_id, latest, account },
        conn: alive.then_some(conn),
        connected_now,
        round_trips: 1 + u64::from(connected_now),
        bytes_rx: stats.udp_rx.bytes.saturating_sub(before.0),
        bytes_tx: stats.udp_tx.bytes.saturating_sub(before.1),
    }
}

pub(super) fn parse_addr(address: &str) -> Result<SocketAddr, String> {
    address.parse::<SocketAddr>().map_err(|_| format!("not an IP:port address: {address:?}"))
}

pub(super) async fn connect(
    endpoint: &quinn::Endpoint,
    rec: &NodeRecord,
    timeout: Duration,
) -> Result<quinn::Connection, NetError> {
    let err = |reason: String| NetError::Connect { addr: rec.address.clone(), reason };
    let addr = match parse_addr(&rec.address) {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(rec.address.as_str())
            .await
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| err("no address for that name".into()))?,
    };
    let cfg = tls::phone_client_config(&rec.node_id).map_err(|e| err(e.to_string()))?;
    let connecting = endpoint.connect_with(cfg, addr, "watt-node").map_err(|e| err(e.to_string()))?;
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(err(e.to_string())),
        Err(_) => Err(NetError::Timeout(timeout.as_millis() as u64)),
    }
}
