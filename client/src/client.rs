//! `WattClient`: the phone's wallet and light client over QUIC and redb.
//! Every belief comes from a verified answer (SPEC §7): headers through
//! externalize proofs, the account through a sparse-Merkle proof against a
//! verified header, the wallet's own transactions through inclusion proofs.
//! Signed transactions are stored before they are sent and re-submitted until
//! they settle, so a killed process never loses or doubles one.

use crate::directory::{self, DirectoryNode, Picker};
use crate::error::ClientError;
use crate::net::{request_within, tls, NetError};
use crate::store::{ClientStore, Settlement};
use crate::types::*;
use crate::vault::{self, SecretKeyStore};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::codec::{encode, BoundedBytes, BoundedVec};
use watt_core::crypto::{Hash256, Keypair, NetworkId};
use watt_core::ledger::{
    Attest, Genesis, Invite, LedgerHeader, Operation, StateEntry, StateKey, Transaction, TransactionBody, TxOutcome,
};
use watt_core::light::{self, ForkEvidence, LightClient, LightError, LightEvent, TrustAnchor, VerifiedHeader};
use watt_core::mnemonic::Mnemonic;
use watt_core::wire::{Request, Response, TxRejection};
use zeroize::Zeroizing;

mod duties;

/// Unix milliseconds by this phone's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// For the kill tests (feature `kill-points`, never in the phone library):
/// with `WATT_PAUSE_AT=<point>` the process announces the point on stderr
/// and sleeps there, so a test can SIGKILL it at that exact step.
#[cfg(feature = "kill-points")]
fn pause_point(point: &str) {
    if std::env::var("WATT_PAUSE_AT").is_ok_and(|p| p == point) {
        eprintln!("watt: paused at {point}");
        std::thread::sleep(Duration::from_secs(600));
    }
}
#[cfg(not(feature = "kill-points"))]
fn pause_point(_point: &str) {}

/// What one `refresh` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSummary {
    pub verified_seq: u64,
    pub nodes_verified: usize,
    pub nodes_failed: usize,
    pub settled: usize,
}

pub struct WattClient {
    inner: Arc<Inner>,
}

impl Clone for WattClient {
    fn clone(&self) -> Self {
        WattClient { inner: self.inner.clone() }
    }
}

struct Inner {
    genesis: Genesis,
    network_id: NetworkId,
    config: ClientConfig,
    store: ClientStore,
    key_store: Arc<dyn SecretKeyStore>,
    endpoint: quinn::Endpoint,
    state: tokio::sync::Mutex<State>,
    listener: RwLock<Option<Arc<dyn EventListener>>>,
    stats: Mutex<NetStats>,
    background: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct State {
    light: LightClient,
    conns: BTreeMap<NodeId, quinn::Connection>,
    /// Recently verified headers by seq (tip and chain-verified ones).
    recent: BTreeMap<u64, LedgerHeader>,
    picker: Picker,
}

/// One node's answers to a refresh round.
struct NodeAnswer {
    node: NodeId,
    conn: Option<quinn::Connection>,
    latest: Result<Response, NetError>,
    account: Option<Result<Response, NetError>>,
    connected_now: bool,
    round_trips: u64,
    bytes_rx: u64,
    bytes_tx: u64,
}

impl WattClient {
    /// Opens (or creates) the phone's state under `data_dir` for the network
    /// `genesis` pins. Must run inside a tokio runtime.
    pub async fn open(
        data_dir: &Path,
        genesis: Genesis,
        config: ClientConfig,
        key_store: Arc<dyn SecretKeyStore>,
    ) -> Result<WattClient, ClientError> {
        let store = ClientStore::open(data_dir)?;
        let pin_path = data_dir.join("genesis.hash");
        let given = genesis.hash().to_hex();
        match std::fs::read_to_string(&pin_path) {
            Ok(stored) if stored.trim() != given => {
                return Err(ClientError::WrongNetwork { stored: stored.trim().to_string(), given })
            }
            Ok(_) => {}
            Err(_) => std::fs::write(&pin_path, &given)
                .map_err(|e| ClientError::Storage(format!("{}: {e}", pin_path.display())))?,
        }
        let mut light = LightClient::new(TrustAnchor::from_genesis(&genesis));
        if let Some(tip) = store.tip()? {
            // Re-verify what was stored: a damaged or planted tip is refused.
            let v = light::verify_latest(&light.anchor, &tip.header, &tip.proof)
                .map_err(|e| ClientError::Corrupt(format!("the stored ledger tip does not verify: {e}")))?;
            light.restore_latest(v);
        }
        if let Some(f) = store.fork()? {
            light.restore_fork(ForkEvidence { slot: f.slot, a: f.a, b: f.b });
        }
        for r in store.nodes()? {
            light.standing.insert(
                r.node_id,
                light::Standing {
                    good_answers: r.good_answers,
                    bad_answers: r.bad_answers,
                    timeouts: r.timeouts,
                    demoted: r.demoted,
                },
            );
        }
        if store.nodes()?.is_empty() {
            let seeds: Vec<NodeRecord> = genesis
                .validators
                .iter()
                .filter_map(|v| v.addresses.first().map(|a| node_record(v.node_id, a.clone(), NodeOrigin::Genesis)))
                .collect();
            store.put_nodes(&seeds)?;
        }
        let endpoint =
            client_endpoint().map_err(|e| ClientError::NoNodeReachable(format!("cannot open a UDP socket: {e}")))?;
        let seed = config.selection_seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
            u64::from_le_bytes(b)
        });
        Ok(WattClient {
            inner: Arc::new(Inner {
                network_id: genesis.network_id(),
                genesis,
                config,
                store,
                key_store,
                endpoint,
                state: tokio::sync::Mutex::new(State {
                    light,
                    conns: BTreeMap::new(),
                    recent: BTreeMap::new(),
                    picker: Picker::new(seed),
                }),
                listener: RwLock::new(None),
                stats: Mutex::new(NetStats::default()),
                background: Mutex::new(None),
            }),
        })
    }

    pub fn genesis(&self) -> &Genesis {
        &self.inner.genesis
    }

    pub fn set_listener(&self, listener: Option<Arc<dyn EventListener>>) {
        if let Ok(mut l) = self.inner.listener.write() {
            *l = listener;
        }
    }

    fn emit(&self, events: Vec<ClientEvent>) {
        let listener = self.inner.listener.read().ok().and_then(|l| l.clone());
        if let Some(l) = listener {
            for e in events {
                l.on_event(e);
            }
        }
    }

    // ----- wallet -----

    /// Creates a wallet and returns its 24 recovery words (show them once).
    pub fn create_wallet(&self) -> Result<Zeroizing<String>, ClientError> {
        if let Some(w) = self.inner.store.wallet()? {
            return Err(ClientError::WalletExists { account: w.account.to_string() });
        }
        let m = Mnemonic::generate().map_err(|e| ClientError::Mnemonic(e.to_string()))?;
        self.store_wallet(&m, false)?;
        Ok(m.phrase())
    }

    /// Restores a wallet from its words. Refuses to replace another wallet
    /// unless `replace` (its history and pending transactions are dropped).
    pub fn restore_wallet(&self, phrase: &str, replace: bool) -> Result<AccountId, ClientError> {
        let m = Mnemonic::parse(phrase).map_err(|e| ClientError::Mnemonic(e.to_string()))?;
        let account = account_of(&m)?;
        if let Some(w) = self.inner.store.wallet()? {
            if w.account == account {
                return Ok(account);
            }
            if !replace {
                return Err(ClientError::WalletExists { account: w.account.to_string() });
            }
        }
        self.store_wallet(&m, replace)?;
        Ok(account)
    }

    fn store_wallet(&self, m: &Mnemonic, replace: bool) -> Result<AccountId, ClientError> {
        let account = account_of(m)?;
        let sealed = vault::seal(self.inner.key_store.as_ref(), &m.entropy()[..])?;
        let record = WalletRecord {
            account,
            sealed_entropy: BoundedBytes::try_from_vec(sealed)
                .map_err(|_| ClientError::Storage("sealed secret too large".into()))?,
        };
        if !self.inner.store.set_wallet(&record, replace)? {
            return Err(ClientError::WalletExists { account: account.to_string() });
        }
        Ok(account)
    }

    /// The 24 recovery words, unsealed with the platform key.
    pub fn export_mnemonic(&self) -> Result<Zeroizing<String>, ClientError> {
        Ok(self.mnemonic()?.phrase())
    }

    fn mnemonic(&self) -> Result<Mnemonic, ClientError> {
        let w = self.inner.store.wallet()?.ok_or(ClientError::NoWallet)?;
        let plain = vault::open(self.inner.key_store.as_ref(), &w.sealed_entropy)?;
        let entropy: Zeroizing<[u8; 32]> = Zeroizing::new(
            plain
                .as_slice()
                .try_into()
                .map_err(|_| ClientError::Corrupt("the sealed wallet secret has the wrong length".into()))?,
        );
        let m = Mnemonic::from_entropy(&entropy).map_err(|e| ClientError::Mnemonic(e.to_string()))?;
        if account_of(&m)? != w.account {
            return Err(ClientError::Corrupt("the wallet secret does not belong to the stored account".into()));
        }
        Ok(m)
    }

    fn keypair(&self) -> Result<Keypair, ClientError> {
        Keypair::from_seed(self.mnemonic()?.account_seed())
            .map_err(|e| ClientError::KeyStore(crate::vault::KeyStoreError::Unavailable(e.to_string())))
    }

    pub fn address(&self) -> Result<Option<AccountId>, ClientError> {
        Ok(self.inner.store.wallet()?.map(|w| w.account))
    }

    fn account_id(&self) -> Result<AccountId, ClientError> {
        self.address()?.ok_or(ClientError::NoWallet)
    }

    // ----- nodes -----

    pub fn nodes(&self) -> Result<Vec<NodeRecord>, ClientError> {
        Ok(self.inner.store.nodes()?)
    }

    /// Adds the user's own node; it is preferred over all others.
    pub fn add_node(&self, address: &str, node_id: NodeId) -> Result<(), ClientError> {
        parse_addr(address).map_err(ClientError::InvalidArgument)?;
        self.inner.store.put_nodes(&[node_record(node_id, address.to_string(), NodeOrigin::User)])?;
        Ok(())
    }

    pub async fn remove_node(&self, node_id: &NodeId) -> Result<(), ClientError> {
        if !self.inner.store.remove_node(node_id)? {
            return Err(ClientError::UnknownNode(node_id.to_string()));
        }
        if let Some(c) = self.inner.state.lock().await.conns.remove(node_id) {
            c.close(0u32.into(), b"removed");
        }
        Ok(())
    }

    /// The nodes to ask now: the user's own first, then the default set
    /// (trust graph, then PageRank picks), never demoted ones.
    fn active_nodes(&self, st: &mut State, records: &[NodeRecord], skip: &BTreeSet<NodeId>) -> Vec<NodeRecord> {
        let want = self.inner.config.nodes_wanted.max(1);
        let demoted = |id: &NodeId| st.light.standing.get(id).is_some_and(|s| s.demoted);
        // Nodes demoted only for being unreachable get another chance when
        // nothing else is left; nodes that lied never do.
        let all_demoted = records.iter().all(|r| demoted(&r.node_id) || skip.contains(&r.node_id));
        let only_unreachable = |id: &NodeId| st.light.standing.get(id).is_none_or(|s| s.bad_answers == 0);
        let usable = |r: &&NodeRecord| {
            !skip.contains(&r.node_id) && (!demoted(&r.node_id) || (all_demoted && only_unreachable(&r.node_id)))
        };
        let mut out: Vec<NodeRecord> =
            records.iter().filter(|r| r.origin == NodeOrigin::User).filter(usable).cloned().collect();
        // Keep nodes we are connected to and that behave: stable sets are cheap.
        for r in records.iter().filter(usable) {
            if out.len() < want && st.conns.contains_key(&r.node_id) && !out.iter().any(|o| o.node_id == r.node_id) {
                out.push(r.clone());
            }
        }
        if out.len() < want {
            let dir: Vec<DirectoryNode> = records
                .iter()
                .filter(|r| r.origin != NodeOrigin::User)
                .map(|r| DirectoryNode { node_id: r.node_id, owner: None, quorum_set: self.qset_of(&r.node_id) })
                .collect();
            let pinned: Vec<NodeId> = self.inner.genesis.validators.iter().map(|v| v.node_id).collect();
            let exclude: BTreeSet<NodeId> =
                records.iter().filter(|r| !usable(r)).map(|r| r.node_id).chain(out.iter().map(|o| o.node_id)).collect();
            let picks = directory::default_node_set(&[], &dir, &pinned, &exclude, want - out.len(), &mut st.picker);
            out.extend(picks.iter().filter_map(|id| records.iter().find(|r| r.node_id == *id).cloned()));
        }
        out.truncate(want.max(out.iter().filter(|r| r.origin == NodeOrigin::User).count()));
        out
    }

    fn qset_of(&self, node: &NodeId) -> watt_core::scp::QuorumSet {
        self.inner
            .genesis
            .validators
            .iter()
            .find(|v| v.node_id == *node)
            .map(|v| v.quorum_set.clone())
            .unwrap_or_else(|| watt_core::scp::QuorumSet::flat(0, vec![]))
    }

    /// Most directory pages a phone reads (each at most 512 KiB).
    const MAX_DIRECTORY_PAGES: usize = 8;

    /// Fetches the validator directory with its proofs, keeps the proven
    /// entries, and adds nodes run by trust-graph neighbours (security
    /// circles, breadth-first) and high-PageRank nodes to the node list.
    pub async fn refresh_directory(&self) -> Result<usize, ClientError> {
        self.refresh().await?;
        let mut st = self.inner.state.lock().await;
        let Some(tip) = st.light.latest().cloned() else {
            return Err(ClientError::Unverified("no verified ledger".into()));
        };
        let conns: Vec<(NodeId, quinn::Connection)> = st.conns.iter().map(|(k, v)| (*k, v.clone())).collect();
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        let mut proven: Vec<(NodeId, watt_core::ledger::state::NodeEntry)> = Vec::new();
        let mut answered_by = None;
        'nodes: for (node, conn) in &conns {
            // Page by page (validator-set members come first), at most
            // MAX_DIRECTORY_PAGES: every entry proven against the verified header.
            proven.clear();
            let mut after = None;
            for _page in 0..Self::MAX_DIRECTORY_PAGES {
                let Ok(Response::Nodes { header_seq, nodes, next }) =
                    request_within(conn, &Request::GetNodes { after }, timeout).await
                else {
                    continue 'nodes;
                };
                if header_seq != tip.header.seq {
                    continue 'nodes;
                }
                for n in nodes.iter() {
                    let entry = StateEntry::Node(n.entry.clone());
                    if let Err(e) = prove_state(&tip.header, &StateKey::Node(n.node_id), &entry, &n.proof) {
                        drop(st.light.on_invalid(*node, &e));
                        continue 'nodes;
                    }
                    proven.push((n.node_id, n.entry.clone()));
                }
                match next {
                    Some(n) if !nodes.is_empty() => after = Some(n),
                    _ => break,
                }
            }
            answered_by = Some(*node);
            break;
        }
        drop(st);
        if answered_by.is_none() {
            return Err(ClientError::Unverified(
                "no node served a directory proven against the verified ledger".into(),
            ));
        }
        // Trust graph: circles of the wallet and its neighbours, proven one by one.
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
                    if let Ok(Some(entry)) = self.proven_account_of(&a).await {
                        let members: Vec<AccountId> = entry.security_circle.iter().copied().collect();
                        next.extend(members.iter().copied());
                        circles.insert(a, members);
                    }
                }
                frontier = next;
            }
        }
        let neighbours = me.map(|m| directory::trust_neighbours(&m, &circles, 50)).unwrap_or_default();
        let dir: Vec<DirectoryNode> = proven
            .iter()
            .map(|(id, e)| DirectoryNode { node_id: *id, owner: Some(e.owner), quorum_set: e.quorum_set.clone() })
            .collect();
        let pinned: Vec<NodeId> = self.inner.genesis.validators.iter().map(|v| v.node_id).collect();
        let records = self.inner.store.nodes()?;
        let exclude: BTreeSet<NodeId> = records.iter().filter(|r| r.demoted).map(|r| r.node_id).collect();
        let mut st = self.inner.state.lock().await;
        let picks = directory::default_node_set(
            &neighbours,
            &dir,
            &pinned,
            &exclude,
            self.inner.config.nodes_wanted.max(1) * 2,
            &mut st.picker,
        );
        drop(st);
        let mut added = Vec::new();
        for id in picks {
            if records.iter().any(|r| r.node_id == id) {
                continue;
            }
            let Some((_, e)) = proven.iter().find(|(n, _)| *n == id) else { continue };
            if let Some(addr) = e.addresses.first().and_then(|a| std::str::from_utf8(a).ok()) {
                added.push(node_record(id, addr.to_string(), NodeOrigin::Directory));
            }
        }
        self.inner.store.put_nodes(&added)?;
        Ok(added.len())
    }

    /// Any account's entry, proven against the verified tip (for the trust graph).
    async fn proven_account_of(
        &self,
        account: &AccountId,
    ) -> Result<Option<watt_core::ledger::AccountEntry>, ClientError> {
        let st = self.inner.state.lock().await;
        let tip = st.light.latest().cloned().ok_or_else(|| ClientError::Unverified("no verified ledger".into()))?;
        let conns: Vec<quinn::Connection> = st.conns.values().cloned().collect();
        drop(st);
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        for conn in conns {
            if let Ok(Response::Account { header_seq, entry, proof }) =
                request_within(&conn, &Request::GetAccount { account: *account }, timeout).await
            {
                if header_seq == tip.header.seq {
                    return Ok(light::verify_account(&tip, account, entry.as_ref(), &proof)?);
                }
            }
        }
        Err(ClientError::Unverified("no node proved the account against the verified ledger".into()))
    }

    // ----- sync -----

    /// Asks the active nodes for the latest ledger and the wallet's account,
    /// verifies everything, settles pending transactions and re-submits the
    /// others. Nodes that lie are demoted and replaced within the same call.
    pub async fn refresh(&self) -> Result<RefreshSummary, ClientError> {
        let mut events = Vec::new();
        let result = {
            let mut st = self.inner.state.lock().await;
            self.refresh_locked(&mut st, &mut events).await
        };
        self.emit(events);
        result
    }

    async fn refresh_locked(
        &self,
        st: &mut State,
        events: &mut Vec<ClientEvent>,
    ) -> Result<RefreshSummary, ClientError> {
        let me = self.address()?;
        let records = self.inner.store.nodes()?;
        let before_account = self.inner.store.account()?;
        let mut tried: BTreeSet<NodeId> = BTreeSet::new();
        let mut failures: Vec<String> = Vec::new();
        let mut verified_nodes = 0usize;
        let mut best_account: Option<(u64, Option<watt_core::ledger::AccountEntry>)> = None;
        let mut light_events = Vec::new();
        let mut had_lie: Option<LightError> = None;
        // Ask the active set; replace nodes that fail until one verifies or
        // every known node was tried.
        loop {
            let batch = self.active_nodes(st, &records, &tried);
            if batch.is_empty() {
                break;
            }
            tried.extend(batch.iter().map(|r| r.node_id));
            let answers = self.ask_all(st, &batch, me).await;
            for a in answers {
                {
                    let mut s = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
                    s.connects += a.connected_now as u64;
                    s.requests += 1 + a.account.is_some() as u64;
                    s.round_trips += a.round_trips;
                    s.bytes_received += a.bytes_rx;
                    s.bytes_sent += a.bytes_tx;
                }
                match a.conn {
                    Some(c) => {
                        st.conns.insert(a.node, c);
                    }
                    None => {
                        st.conns.remove(&a.node);
                    }
                }
                let verified = match a.latest {
                    Ok(Response::Latest { header, proof }) => {
                        match light::verify_latest(&st.light.anchor, &header, &proof) {
                            Ok(v) => {
                                let (r, ev) = st.light.on_verified(a.node, v, &proof);
                                light_events.extend(ev);
                                match r {
                                    Ok(v) => Some(v),
                                    Err(e) => {
                                        failures.push(format!("{}: {e}", a.node));
                                        had_lie = Some(e);
                                        None
                                    }
                                }
                            }
                            Err(e) => {
                                light_events.extend(st.light.on_invalid(a.node, &e));
                                failures.push(format!("{}: {e}", a.node));
                                had_lie = Some(e);
                                None
                            }
                        }
                    }
                    Ok(Response::Error { message }) => {
                        failures.push(format!("{}: {}", a.node, String::from_utf8_lossy(&message)));
                        None
                    }
                    Ok(other) => {
                        let e = LightError::BadValue;
                        light_events.extend(st.light.on_invalid(a.node, &e));
                        failures.push(format!("{}: unexpected answer {}", a.node, response_name(&other)));
                        None
                    }
                    Err(e) => {
                        light_events.extend(st.light.on_timeout(a.node));
                        failures.push(format!("{}: {e}", a.node));
                        None
                    }
                };
                let Some(v) = verified else { continue };
                verified_nodes += 1;
                st.recent.insert(v.header.seq, v.header.clone());
                if let (Some(me), Some(Ok(Response::Account { header_seq, entry, proof }))) = (me, a.account) {
                    if header_seq == v.header.seq {
                        match light::verify_account(&v, &me, entry.as_ref(), &proof) {
                            Ok(e) => {
                                if best_account.as_ref().is_none_or(|(s, _)| *s < header_seq) {
                                    best_account = Some((header_seq, e));
                                }
                            }
                            Err(e) => {
                                light_events.extend(st.light.on_invalid(a.node, &e));
                                failures.push(format!("{}: {e}", a.node));
                                had_lie = Some(e);
                            }
                        }
                    }
                }
            }
            if verified_nodes > 0 {
                break;
            }
        }
        while st.recent.len() > 256 {
            st.recent.pop_first();
        }
        self.persist_standing(st, &records)?;
        for e in light_events {
            match e {
                LightEvent::NewVerifiedHeader(_) => {}
                LightEvent::NodeDemoted { node, reason } => events.push(ClientEvent::NodeDemoted { node, reason }),
                LightEvent::ForkDetected(slot) => events.push(ClientEvent::ForkDetected { slot }),
            }
        }
        if let Some(f) = &st.light.fork {
            if self.inner.store.fork()?.is_none() {
                self.inner.store.set_fork(&StoredFork { slot: f.slot, a: f.a.clone(), b: f.b.clone() })?;
            }
        }
        let Some(tip) = st.light.latest().cloned() else {
            return Err(if tried.is_empty() {
                ClientError::NoNodeReachable("no nodes are configured".into())
            } else if had_lie.is_some() {
                ClientError::Unverified(failures.join("; "))
            } else {
                ClientError::NoNodeReachable(failures.join("; "))
            });
        };
        if verified_nodes == 0 {
            // Nothing new verified now: keep the stored view, report why.
            return Err(match had_lie {
                Some(_) => ClientError::Unverified(failures.join("; ")),
                None => ClientError::NoNodeReachable(failures.join("; ")),
            });
        }
        let stored_tip = self.inner.store.tip()?;
        if stored_tip.as_ref().is_none_or(|t| t.header.seq < tip.header.seq) {
            let proof = st.light.proof_of(tip.header.seq + 1).cloned();
            if let Some(proof) = proof {
                self.inner.store.set_tip(&TrustedTip { header: tip.header.clone(), proof })?;
            }
            events.push(ClientEvent::NewVerifiedLedger { seq: tip.header.seq, close_time_ms: tip.header.close_time });
        }
        if let Some((seq, entry)) = best_account {
            if before_account.as_ref().is_none_or(|b| b.header_seq <= seq) {
                self.inner.store.set_account(&ProvenAccount { header_seq: seq, entry })?;
            }
        }
        let settled = self.settle_pending(st, &tip, events).await?;
        self.attribute_credits(&tip, before_account, events)?;
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

    fn persist_standing(&self, st: &State, records: &[NodeRecord]) -> Result<(), ClientError> {
        let mut changed = Vec::new();
        for r in records {
            if let Some(s) = st.light.standing.get(&r.node_id) {
                let mut n = r.clone();
                n.good_answers = s.good_answers;
                n.bad_answers = s.bad_answers;
                n.timeouts = s.timeouts;
                n.demoted = s.demoted;
                if n != *r {
                    changed.push(n);
                }
            }
        }
        Ok(self.inner.store.put_nodes(&changed)?)
    }

    /// Connects where needed and asks every node at once: `GetLatest` and
    /// `GetAccount` go out together on two streams (one round trip).
    async fn ask_all(&self, st: &State, batch: &[NodeRecord], me: Option<AccountId>) -> Vec<NodeAnswer> {
        let mut set = tokio::task::JoinSet::new();
        for r in batch {
            let existing = st.conns.get(&r.node_id).filter(|c| c.close_reason().is_none()).cloned();
            let endpoint = self.inner.endpoint.clone();
            let rec = r.clone();
            let req_timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
            let conn_timeout = Duration::from_millis(self.inner.config.connect_timeout_ms);
            set.spawn(async move {
                let (conn, connected_now) = match existing {
                    Some(c) => (c, false),
                    None => match connect(&endpoint, &rec, conn_timeout).await {
                        Ok(c) => (c, true),
                        Err(e) => {
                            return NodeAnswer {
                                node: rec.node_id,
                                conn: None,
                                latest: Err(e),
                                account: None,
                                connected_now: false,
                                round_trips: 1,
                                bytes_rx: 0,
                                bytes_tx: 0,
                            }
                        }
                    },
                };
                let before =
                    if connected_now { (0, 0) } else { (conn.stats().udp_rx.bytes, conn.stats().udp_tx.bytes) };
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
                NodeAnswer {
                    node: rec.node_id,
                    conn: alive.then_some(conn),
                    latest,
                    account,
                    connected_now,
                    round_trips: 1 + connected_now as u64,
                    bytes_rx: stats.udp_rx.bytes.saturating_sub(before.0),
                    bytes_tx: stats.udp_tx.bytes.saturating_sub(before.1),
                }
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(a) = r {
                out.push(a);
            }
        }
        out.sort_by_key(|a| a.node);
        out
    }

    /// Asks one node (even a demoted one) for the latest ledger and the
    /// wallet's account and says exactly what, if anything, fails to verify.
    /// Its standing is updated like any answer's.
    pub async fn check_node(&self, node_id: &NodeId) -> Result<u64, ClientError> {
        let me = self.address()?;
        let rec = self
            .inner
            .store
            .nodes()?
            .into_iter()
            .find(|r| r.node_id == *node_id)
            .ok_or_else(|| ClientError::UnknownNode(node_id.to_string()))?;
        let mut events = Vec::new();
        let r = async {
            let mut st = self.inner.state.lock().await;
            let answer = self
                .ask_all(&st, &[rec], me)
                .await
                .pop()
                .ok_or_else(|| ClientError::NoNodeReachable(node_id.to_string()))?;
            if let Some(c) = answer.conn.clone() {
                st.conns.insert(*node_id, c);
            }
            let (header, proof) = match answer.latest {
                Ok(Response::Latest { header, proof }) => (header, proof),
                Ok(Response::Error { message }) => {
                    return Err(ClientError::NoNodeReachable(String::from_utf8_lossy(&message).into_owned()))
                }
                Ok(other) => {
                    return Err(ClientError::Unverified(format!("unexpected answer {}", response_name(&other))))
                }
                Err(e) => {
                    events.extend(light_to_client(st.light.on_timeout(*node_id)));
                    return Err(ClientError::NoNodeReachable(e.to_string()));
                }
            };
            let verified = match light::verify_latest(&st.light.anchor, &header, &proof) {
                Ok(v) => v,
                Err(e) => {
                    events.extend(light_to_client(st.light.on_invalid(*node_id, &e)));
                    return Err(ClientError::Verification(e));
                }
            };
            let (r, ev) = st.light.on_verified(*node_id, verified, &proof);
            events.extend(light_to_client(ev));
            let v = r?;
            // Fork evidence outranks anything else this answer may get wrong.
            if let Some(f) = &st.light.fork {
                return Err(ClientError::ForkDetected { slot: f.slot });
            }
            if let (Some(me), Some(Ok(Response::Account { header_seq, entry, proof }))) = (me, answer.account) {
                if header_seq == v.header.seq {
                    if let Err(e) = light::verify_account(&v, &me, entry.as_ref(), &proof) {
                        events.extend(light_to_client(st.light.on_invalid(*node_id, &e)));
                        return Err(ClientError::Verification(e));
                    }
                }
            }
            Ok(v.header.seq)
        }
        .await;
        {
            let st = self.inner.state.lock().await;
            let records = self.inner.store.nodes()?;
            self.persist_standing(&st, &records)?;
            if let Some(f) = &st.light.fork {
                if self.inner.store.fork()?.is_none() {
                    self.inner.store.set_fork(&StoredFork { slot: f.slot, a: f.a.clone(), b: f.b.clone() })?;
                }
            }
        }
        self.emit(events);
        r
    }

    /// A verified header at `seq`: the tip, a cached one, or fetched and
    /// linked down by `prev_hash` from the tip.
    async fn header_at(
        &self,
        st: &mut State,
        seq: u64,
        tip: &VerifiedHeader,
        conn: &quinn::Connection,
    ) -> Option<LedgerHeader> {
        if let Some(h) = st.recent.get(&seq) {
            return Some(h.clone());
        }
        if seq >= tip.header.seq || tip.header.seq - seq > u64::from(watt_core::wire::MAX_HEADERS_PER_REQUEST) {
            return None;
        }
        let count = (tip.header.seq - seq) as u32;
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        let Ok(Response::Headers { headers }) =
            request_within(conn, &Request::GetHeaders { from: seq, count }, timeout).await
        else {
            return None;
        };
        if headers.len() != count as usize || headers.first().map(|h| h.seq) != Some(seq) {
            return None;
        }
        light::verify_chain(&tip.header, &headers).ok()?;
        for h in headers.iter() {
            st.recent.insert(h.seq, h.clone());
        }
        headers.first().cloned()
    }

    /// Settles pending transactions that a verified ledger included, expires
    /// the ones proven unusable, and re-submits the rest.
    async fn settle_pending(
        &self,
        st: &mut State,
        tip: &VerifiedHeader,
        events: &mut Vec<ClientEvent>,
    ) -> Result<usize, ClientError> {
        let pending = self.inner.store.pending()?;
        if pending.is_empty() {
            return Ok(0);
        }
        let account = self.inner.store.account()?;
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        let conns: Vec<(NodeId, quinn::Connection)> = st
            .conns
            .iter()
            .filter(|(n, _)| !st.light.standing.get(n).is_some_and(|s| s.demoted))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut settled = 0;
        for mut p in pending {
            let hash = p.tx.hash();
            let mut outcome: Option<(u64, watt_core::ledger::TxResult)> = None;
            // A node saying it does not know the transaction proves nothing:
            // ask every other node for a proof before believing it.
            let mut unknown_to = 0usize;
            for (node, conn) in &conns {
                match request_within(conn, &Request::GetTx { hash }, timeout).await {
                    Ok(Response::Tx { header_seq, result, path }) => {
                        if result.tx_hash != hash {
                            let e = LightError::BadInclusion;
                            let ev = st.light.on_invalid(*node, &e);
                            events.extend(light_to_client(ev));
                            continue;
                        }
                        let Some(header) = self.header_at(st, header_seq, tip, conn).await else { continue };
                        if watt_core::merkle::root_from_path(&result.leaf(), &path) != header.results_hash {
                            let ev = st.light.on_invalid(*node, &LightError::BadInclusion);
                            events.extend(light_to_client(ev));
                            continue;
                        }
                        outcome = Some((header_seq, result));
                        break;
                    }
                    Ok(Response::TxUnknown { .. }) => {
                        unknown_to += 1;
                        continue;
                    }
                    _ => continue,
                }
            }
            // Unknown only when no node could prove it and every node asked said so.
            let unknown = outcome.is_none() && unknown_to > 0 && unknown_to == conns.len();
            if let Some((seq, result)) = outcome {
                let (status, took_effect) = match &result.outcome {
                    TxOutcome::Success => (TxStatus::Confirmed { seq }, true),
                    TxOutcome::OpFailed { reason, .. } => {
                        (TxStatus::Failed { seq, reason: format!("{reason:?}") }, false)
                    }
                    TxOutcome::Rejected(f) => (TxStatus::Failed { seq, reason: format!("{f:?}") }, false),
                };
                let attest_day = match p.kind {
                    TxKind::Attest { day } => Some(day),
                    _ => None,
                };
                let already = matches!(
                    result.outcome,
                    TxOutcome::OpFailed { reason: watt_core::ledger::OpFailure::AlreadyAttested, .. }
                );
                let s = Settlement {
                    hash,
                    history: history_of(&p, status.clone(), result.fee_charged),
                    attested_day: attest_day.filter(|_| took_effect || already),
                    release_day: attest_day.filter(|_| !took_effect && !already),
                };
                if self.inner.store.settle(s)? {
                    settled += 1;
                    events.push(ClientEvent::TransactionSettled { hash, status });
                    if let (Some(day), true) = (attest_day, took_effect) {
                        events.push(ClientEvent::AttestationConfirmed { day });
                    }
                }
                continue;
            }
            let used = account.as_ref().and_then(|a| a.entry.as_ref()).map_or(0, |e| e.seq_num);
            let proven_at = account.as_ref().map_or(0, |a| a.header_seq);
            if unknown {
                let expired = p.tx.body.max_ledger.is_some_and(|m| proven_at > m) && used < p.tx.body.seq_num;
                if expired || (used >= p.tx.body.seq_num && p.unknown_after_use >= 3) {
                    let status = if expired { TxStatus::Expired } else { TxStatus::Superseded };
                    let day = match p.kind {
                        TxKind::Attest { day } => Some(day),
                        _ => None,
                    };
                    let s = Settlement {
                        hash,
                        history: history_of(&p, status.clone(), Amount::ZERO),
                        attested_day: None,
                        release_day: day,
                    };
                    if self.inner.store.settle(s)? {
                        settled += 1;
                        events.push(ClientEvent::TransactionSettled { hash, status });
                    }
                    continue;
                }
                if used >= p.tx.body.seq_num {
                    p.unknown_after_use += 1;
                    self.inner.store.update_pending(&p)?;
                    continue;
                }
            }
            self.submit(&conns, &p.tx).await;
        }
        Ok(settled)
    }

    /// Sends a signed transaction to every connected node; returns the
    /// rejections heard (an empty list when at least one node took it).
    async fn submit(&self, conns: &[(NodeId, quinn::Connection)], tx: &Transaction) -> (usize, Vec<TxRejection>) {
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        let mut accepted = 0;
        let mut rejections = Vec::new();
        for (_, conn) in conns {
            match request_within(conn, &Request::SubmitTx(tx.clone()), timeout).await {
                Ok(Response::TxAccepted { .. }) | Ok(Response::TxRejected { reason: TxRejection::Duplicate, .. }) => {
                    accepted += 1
                }
                Ok(Response::TxRejected { reason, .. }) => rejections.push(reason),
                _ => {}
            }
        }
        (accepted, rejections)
    }

    /// Proven balance increases not explained by the wallet's own settled
    /// transactions become history: a reward when a day this wallet attested
    /// has since ended (payouts follow the day boundary), a payment otherwise.
    fn attribute_credits(
        &self,
        tip: &VerifiedHeader,
        before: Option<ProvenAccount>,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let Some(now) = self.inner.store.account()? else { return Ok(()) };
        let (Some(before), Some(new_entry)) = (before, now.entry.as_ref()) else { return Ok(()) };
        if now.header_seq <= before.header_seq {
            return Ok(());
        }
        let old_balance = before.entry.as_ref().map_or(0, |e| e.balance.units());
        // Our own transactions applied in (before, now] that are still unsettled
        // make the difference ambiguous: wait until they settle.
        let pending = self.inner.store.pending()?;
        let old_seq = before.entry.as_ref().map_or(0, |e| e.seq_num);
        if pending.iter().any(|p| p.tx.body.seq_num <= new_entry.seq_num && p.tx.body.seq_num > old_seq) {
            return Ok(());
        }
        let spent: u64 = self
            .inner
            .store
            .history(512)?
            .iter()
            .filter_map(|h| match (&h.status, &h.kind) {
                (TxStatus::Confirmed { seq } | TxStatus::Failed { seq, .. }, _)
                    if *seq > before.header_seq && *seq <= now.header_seq =>
                {
                    Some(h.charged.units())
                }
                _ => None,
            })
            .sum();
        let credited = (new_entry.balance.units() + spent).saturating_sub(old_balance);
        if credited == 0 {
            return Ok(());
        }
        let amount = Amount(credited);
        let rewarded = self.inner.store.rewarded_through()?;
        let reward_day = self
            .inner
            .store
            .confirmed_attest_days()?
            .into_iter()
            .filter(|d| *d < tip.header.day && rewarded.is_none_or(|r| *d > r))
            .max();
        let kind = match reward_day {
            Some(day) => {
                self.inner.store.set_rewarded_through(day)?;
                events.push(ClientEvent::RewardPaid { day, amount });
                HistoryKind::Reward { day, amount }
            }
            None => {
                events.push(ClientEvent::PaymentReceived { amount, balance: new_entry.balance });
                HistoryKind::Received { amount }
            }
        };
        self.inner.store.add_history(HistoryEntry {
            id: 0,
            time_ms: tip.header.close_time,
            kind,
            tx_hash: None,
            status: TxStatus::Confirmed { seq: now.header_seq },
            charged: Amount::ZERO,
        })?;
        Ok(())
    }

    // ----- transactions -----

    fn next_seq(&self, entry_seq: u64) -> Result<u64, ClientError> {
        let pending_max = self.inner.store.pending()?.iter().map(|p| p.tx.body.seq_num).max().unwrap_or(0);
        Ok(entry_seq.max(pending_max) + 1)
    }

    async fn fresh_view(
        &self,
        st: &mut State,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(VerifiedHeader, ProvenAccount), ClientError> {
        self.refresh_locked(st, events).await?;
        if let Some(f) = &st.light.fork {
            return Err(ClientError::ForkDetected { slot: f.slot });
        }
        let tip = st.light.latest().cloned().ok_or_else(|| ClientError::Unverified("no verified ledger".into()))?;
        let account = self
            .inner
            .store
            .account()?
            .ok_or_else(|| ClientError::Unverified("no node proved this account's state".into()))?;
        Ok((tip, account))
    }

    /// Signs, stores, then sends (in that order: a crash after signing leaves
    /// the transaction pending, to be re-sent, never re-signed).
    async fn sign_and_send(
        &self,
        st: &mut State,
        body: TransactionBody,
        kind: TxKind,
        attest_day: Option<u64>,
    ) -> Result<Hash256, ClientError> {
        let key = self.keypair()?;
        let tx = body.sign(&key, &self.inner.network_id);
        drop(key);
        let hash = tx.hash();
        let p = PendingTx { tx: tx.clone(), kind, signed_ms: now_ms(), unknown_after_use: 0 };
        if !self.inner.store.add_pending(&p, attest_day)? {
            let day = attest_day.unwrap_or(0);
            return Err(ClientError::AlreadyAttested { day, next_day_in_s: self.next_day_in_s(day) });
        }
        pause_point("after-sign");
        let conns: Vec<(NodeId, quinn::Connection)> = st.conns.iter().map(|(k, v)| (*k, v.clone())).collect();
        let (accepted, rejections) = self.submit(&conns, &tx).await;
        if accepted == 0 && !rejections.is_empty() && rejections.iter().all(is_final_rejection) {
            let reason = format!("{:?}", rejections[0]);
            let release = attest_day;
            self.inner.store.settle(Settlement {
                hash,
                history: history_of(&p, TxStatus::Failed { seq: 0, reason: reason.clone() }, Amount::ZERO),
                attested_day: None,
                release_day: release,
            })?;
            return Err(ClientError::Rejected(reason));
        }
        pause_point("after-submit");
        Ok(hash)
    }

    fn next_day_in_s(&self, day: u64) -> u64 {
        let g = &self.inner.genesis;
        let next = (g.genesis_time + (day + 1) * g.params.day_seconds) * 1000;
        next.saturating_sub(now_ms()) / 1000
    }

    /// Pays `amount` to `to` with `fee`; returns the transaction hash once a
    /// node accepted it (or it is stored to be re-sent).
    pub async fn pay(&self, to: AccountId, amount: Amount, fee: Amount) -> Result<Hash256, ClientError> {
        let mut events = Vec::new();
        let r = async {
            let me = self.account_id()?;
            if to == me {
                return Err(ClientError::InvalidArgument("cannot pay your own address".into()));
            }
            if amount.units() == 0 {
                return Err(ClientError::InvalidArgument("the amount must be more than zero".into()));
            }
            let mut st = self.inner.state.lock().await;
            let (tip, account) = self.fresh_view(&mut st, &mut events).await?;
            let entry = account.entry.ok_or(ClientError::NoAccount)?;
            let pending_out: u64 = self
                .inner
                .store
                .pending()?
                .iter()
                .map(|p| {
                    p.tx.body.fee.units() + if let TxKind::Pay { amount, .. } = &p.kind { amount.units() } else { 0 }
                })
                .sum();
            let needed = amount
                .units()
                .checked_add(fee.units())
                .and_then(|n| n.checked_add(pending_out))
                .ok_or(ClientError::InvalidArgument("amount too large".into()))?;
            if entry.balance.units() < needed {
                return Err(ClientError::InsufficientBalance { available: entry.balance, needed: Amount(needed) });
            }
            let body = TransactionBody {
                source: me,
                seq_num: self.next_seq(entry.seq_num)?,
                fee,
                max_ledger: Some(tip.header.seq + self.inner.config.tx_lifetime_ledgers),
                ops: BoundedVec::try_from_vec(vec![Operation::Pay { to, amount }])
                    .map_err(|_| ClientError::InvalidArgument("too many operations".into()))?,
            };
            self.sign_and_send(&mut st, body, TxKind::Pay { to, amount }, None).await
        }
        .await;
        self.emit(events);
        r
    }

    /// An invite for `invitee`'s first tap, valid for `valid_days` days from
    /// today (SPEC §5): signed by this wallet, shown as a QR code or a link
    /// (`Invite::to_text`). Only a miner past probation that tapped within 7
    /// days and has invitations left can use it; the ledger checks that.
    pub async fn create_invite(&self, invitee: AccountId, valid_days: u32) -> Result<Invite, ClientError> {
        let mut events = Vec::new();
        let r = async {
            let mut st = self.inner.state.lock().await;
            let (tip, _) = self.fresh_view(&mut st, &mut events).await?;
            let expiry_day = tip.header.day.saturating_add(u64::from(valid_days.max(1)) - 1);
            let key = self.keypair()?;
            Ok(Invite::sign(&key, &self.inner.network_id, &invitee, expiry_day))
        }
        .await;
        self.emit(events);
        r
    }

    /// Today's tap. The first tap of a new account (or of a wallet that was
    /// only paid into) needs an `invite` from its inviter.
    pub async fn attest(&self, invite: Option<Invite>) -> Result<Hash256, ClientError> {
        let mut events = Vec::new();
        let r = async {
            let me = self.account_id()?;
            let mut st = self.inner.state.lock().await;
            let (tip, account) = self.fresh_view(&mut st, &mut events).await?;
            let day = tip.header.day;
            let already = self.inner.store.attested(day)?.is_some()
                || account
                    .entry
                    .as_ref()
                    .is_some_and(|e| e.last_attest_day == Some(day) || e.prev_attest_day == Some(day));
            if already {
                return Err(ClientError::AlreadyAttested { day, next_day_in_s: self.next_day_in_s(day) });
            }
            // A new key, or a wallet someone paid into, becomes a miner only
            // through its own invited first tap (SPEC §5).
            let needs_invite = !account.entry.as_ref().is_some_and(|e| e.is_miner());
            if needs_invite && invite.is_none() {
                return Err(ClientError::NeedsInviter);
            }
            if let Some(i) = invite.as_ref().filter(|_| needs_invite) {
                if i.verify(&self.inner.network_id, &me).is_err() {
                    return Err(ClientError::InvalidArgument(
                        "this invite was made for another account or another network".into(),
                    ));
                }
                if i.expiry_day < day {
                    return Err(ClientError::InvalidArgument(format!(
                        "this invite expired on day {} (today is day {day}): ask for a new one",
                        i.expiry_day
                    )));
                }
            }
            let seq_num = match &account.entry {
                Some(e) => self.next_seq(e.seq_num)?,
                None => 1,
            };
            let body = TransactionBody {
                source: me,
                seq_num,
                fee: Amount::ZERO,
                max_ledger: Some(tip.header.seq + self.inner.config.tx_lifetime_ledgers),
                ops: BoundedVec::try_from_vec(vec![Operation::Attest(Attest {
                    day,
                    anchor_seq: tip.header.seq,
                    anchor_hash: tip.header.hash(),
                    invite: invite.filter(|_| needs_invite),
                    device_token: None,
                })])
                .map_err(|_| ClientError::InvalidArgument("too many operations".into()))?,
            };
            self.sign_and_send(&mut st, body, TxKind::Attest { day }, Some(day)).await
        }
        .await;
        self.emit(events);
        r
    }

    /// Sets the wallet's security circle (at most 5 accounts).
    pub async fn set_security_circle(&self, members: Vec<AccountId>) -> Result<Hash256, ClientError> {
        let members = BoundedVec::try_from_vec(members)
            .map_err(|_| ClientError::InvalidArgument("a security circle has at most 5 members".into()))?;
        self.simple_op(Operation::SetSecurityCircle { members }, TxKind::SetSecurityCircle).await
    }

    /// Names the account that referred this one (first 7 days only).
    pub async fn set_referrer(&self, referrer: AccountId) -> Result<Hash256, ClientError> {
        self.simple_op(Operation::SetReferrer { account: referrer }, TxKind::SetReferrer { referrer }).await
    }

    /// A one-operation, fee-free transaction with the next sequence number
    /// and the usual lifetime.
    fn fee_free_body(
        &self,
        me: AccountId,
        entry_seq: u64,
        tip: &VerifiedHeader,
        op: Operation,
    ) -> Result<TransactionBody, ClientError> {
        Ok(TransactionBody {
            source: me,
            seq_num: self.next_seq(entry_seq)?,
            fee: Amount::ZERO,
            max_ledger: Some(tip.header.seq + self.inner.config.tx_lifetime_ledgers),
            ops: BoundedVec::try_from_vec(vec![op])
                .map_err(|_| ClientError::InvalidArgument("too many operations".into()))?,
        })
    }

    async fn simple_op(&self, op: Operation, kind: TxKind) -> Result<Hash256, ClientError> {
        let mut events = Vec::new();
        let r = async {
            let me = self.account_id()?;
            let mut st = self.inner.state.lock().await;
            let (tip, account) = self.fresh_view(&mut st, &mut events).await?;
            let entry = account.entry.ok_or(ClientError::NoAccount)?;
            let body = self.fee_free_body(me, entry.seq_num, &tip, op)?;
            self.sign_and_send(&mut st, body, kind, None).await
        }
        .await;
        self.emit(events);
        r
    }

    /// Refreshes until `hash` is no longer pending, then returns how it ended.
    pub async fn wait_settled(&self, hash: Hash256, timeout_ms: u64) -> Result<TxStatus, ClientError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let step = Duration::from_millis((self.inner.genesis.params.ledger_close_ms / 2).clamp(100, 2_000));
        loop {
            if let Some(h) = self.inner.store.history(1024)?.into_iter().find(|h| h.tx_hash == Some(hash)) {
                return Ok(h.status);
            }
            if !self.inner.store.pending()?.iter().any(|p| p.tx.hash() == hash) {
                return Err(ClientError::InvalidArgument(format!("unknown transaction {}", hash.to_hex())));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::SettleTimeout);
            }
            let _ = self.refresh().await;
            tokio::time::sleep(step).await;
        }
    }

    /// The balance proven against a freshly verified ledger.
    pub async fn balance(&self) -> Result<(Amount, u64), ClientError> {
        self.refresh().await?;
        let a = self
            .inner
            .store
            .account()?
            .ok_or_else(|| ClientError::Unverified("no node proved this account's state".into()))?;
        Ok((a.entry.map_or(Amount::ZERO, |e| e.balance), a.header_seq))
    }

    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self.inner.store.history(limit)?)
    }

    /// The home screen's facts, from local state only.
    pub async fn status(&self) -> Result<ClientStatus, ClientError> {
        let st = self.inner.state.lock().await;
        let tip = st.light.latest().cloned();
        let now = now_ms();
        let account = self.inner.store.account()?;
        let day = tip.as_ref().map(|t| t.header.day);
        let attested_today = match day {
            None => AttestState::NotYet,
            Some(d) => {
                let confirmed = self.inner.store.confirmed_attest_days()?.contains(&d)
                    || account
                        .as_ref()
                        .and_then(|a| a.entry.as_ref())
                        .is_some_and(|e| e.last_attest_day == Some(d) || e.prev_attest_day == Some(d));
                if confirmed {
                    AttestState::Confirmed
                } else if self.inner.store.attested(d)?.is_some() {
                    AttestState::Pending
                } else {
                    AttestState::NotYet
                }
            }
        };
        let g = &self.inner.genesis;
        let pending = self
            .inner
            .store
            .pending()?
            .into_iter()
            .map(|p| PendingStatus {
                hash: p.tx.hash(),
                seq_num: p.tx.body.seq_num,
                kind: p.kind,
                signed_ms: p.signed_ms,
            })
            .collect();
        let nodes = self
            .inner
            .store
            .nodes()?
            .into_iter()
            .map(|r| NodeStatus {
                connected: st.conns.get(&r.node_id).is_some_and(|c| c.close_reason().is_none()),
                node_id: r.node_id,
                address: r.address,
                origin: r.origin,
                good_answers: r.good_answers,
                bad_answers: r.bad_answers,
                timeouts: r.timeouts,
                demoted: r.demoted,
                last_error: r.last_error,
            })
            .collect();
        Ok(ClientStatus {
            account: self.address()?,
            verified_seq: tip.as_ref().map(|t| t.header.seq),
            verified_hash: tip.as_ref().map(|t| t.header.hash()),
            verified_close_time_ms: tip.as_ref().map(|t| t.header.close_time),
            verified_age_ms: tip.as_ref().map(|t| now.saturating_sub(t.header.close_time)),
            stale: st.light.is_stale(now, self.inner.config.stale_after_ms),
            balance: account.as_ref().map(|a| a.entry.as_ref().map_or(Amount::ZERO, |e| e.balance)),
            balance_seq: account.as_ref().map(|a| a.header_seq),
            day,
            attested_today,
            next_day_starts_ms: day.map(|d| (g.genesis_time + (d + 1) * g.params.day_seconds) * 1000),
            pending,
            nodes,
            fork_slot: st.light.fork.as_ref().map(|f| f.slot),
            can_sign: st.light.may_sign(),
        })
    }

    pub fn net_stats(&self) -> NetStats {
        *self.inner.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes every connection (the next request reconnects).
    pub async fn disconnect(&self) {
        let mut st = self.inner.state.lock().await;
        for (_, c) in std::mem::take(&mut st.conns) {
            c.close(0u32.into(), b"bye");
        }
    }

    // ----- storage donation (SPEC §6) -----

    /// Donates `bytes` of this device's storage in sectors of `shape`
    /// (lowering it drops the newest sectors first).
    pub fn donate(
        &self,
        bytes: u64,
        shape: watt_core::storage::graph::SectorShape,
    ) -> Result<crate::StorageStatus, ClientError> {
        crate::storage::donate(&self.inner.store, self.data_dir(), bytes, shape)
    }

    pub fn storage_status(&self) -> Result<crate::StorageStatus, ClientError> {
        crate::storage::status(&self.inner.store, self.data_dir())
    }

    /// Does the most urgent storage work the device's state allows, within
    /// `budget_ms` (runs on the calling thread: call it from a worker).
    pub fn run_background(
        &self,
        facts: &watt_core::storage::power::DeviceFacts,
        budget_ms: u64,
    ) -> Result<crate::BackgroundProgress, ClientError> {
        let owner = self.account_id()?;
        let tip = self.inner.store.tip()?.map(|t| (t.header.seq, t.header.rand));
        crate::storage::run_background(
            &self.inner.store,
            self.data_dir(),
            &owner.0 .0,
            tip,
            facts,
            Duration::from_millis(budget_ms),
        )
    }

    fn data_dir(&self) -> &Path {
        self.inner.store.path().parent().unwrap_or_else(|| Path::new("."))
    }

    /// Refreshes every `interval_ms` in the background until `stop_sync`.
    pub fn start_sync(&self, interval_ms: u64) {
        let me = self.clone();
        let handle = tokio::spawn(async move {
            loop {
                let _ = me.refresh().await;
                tokio::time::sleep(Duration::from_millis(interval_ms.max(100))).await;
            }
        });
        if let Ok(mut b) = self.inner.background.lock() {
            if let Some(old) = b.replace(handle) {
                old.abort();
            }
        }
    }

    pub fn stop_sync(&self) {
        if let Ok(mut b) = self.inner.background.lock() {
            if let Some(h) = b.take() {
                h.abort();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut b) = self.background.lock() {
            if let Some(h) = b.take() {
                h.abort();
            }
        }
    }
}

fn account_of(m: &Mnemonic) -> Result<AccountId, ClientError> {
    let k = Keypair::from_seed(m.account_seed()).map_err(|e| ClientError::Mnemonic(e.to_string()))?;
    Ok(AccountId(k.public()))
}

fn node_record(node_id: NodeId, address: String, origin: NodeOrigin) -> NodeRecord {
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

fn history_of(p: &PendingTx, status: TxStatus, fee_charged: Amount) -> HistoryEntry {
    let took_effect = matches!(status, TxStatus::Confirmed { .. });
    let kind = match &p.kind {
        TxKind::Pay { to, amount } => HistoryKind::Sent { to: *to, amount: *amount, fee: fee_charged },
        TxKind::Attest { day } => HistoryKind::Attested { day: *day },
        TxKind::SetSecurityCircle => HistoryKind::SecurityCircleSet,
        TxKind::SetReferrer { referrer } => HistoryKind::ReferrerSet { referrer: *referrer },
        TxKind::Storage => HistoryKind::Storage,
    };
    let moved = match (&p.kind, took_effect) {
        (TxKind::Pay { amount, .. }, true) => amount.units(),
        _ => 0,
    };
    HistoryEntry {
        id: 0,
        time_ms: now_ms(),
        kind,
        tx_hash: Some(p.tx.hash()),
        status,
        charged: Amount(fee_charged.units().saturating_add(moved)),
    }
}

/// Rejections that no retry can fix.
fn is_final_rejection(r: &TxRejection) -> bool {
    matches!(
        r,
        TxRejection::Malformed
            | TxRejection::BadSignature
            | TxRejection::WrongNetwork
            | TxRejection::Expired
            | TxRejection::AlreadyAttested
    )
}

fn light_to_client(events: Vec<LightEvent>) -> Vec<ClientEvent> {
    events
        .into_iter()
        .filter_map(|e| match e {
            LightEvent::NodeDemoted { node, reason } => Some(ClientEvent::NodeDemoted { node, reason }),
            LightEvent::ForkDetected(slot) => Some(ClientEvent::ForkDetected { slot }),
            LightEvent::NewVerifiedHeader(_) => None,
        })
        .collect()
}

fn response_name(r: &Response) -> &'static str {
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
        Response::Error { .. } => "Error",
    }
}

/// A state entry proven against a verified header's root.
fn prove_state(
    header: &LedgerHeader,
    key: &StateKey,
    entry: &StateEntry,
    proof: &watt_core::ledger::StateProof,
) -> Result<(), LightError> {
    match watt_core::ledger::smt::verify(&header.state_root, &key.hash(), proof) {
        Ok(watt_core::ledger::smt::Proven::Present(vh)) if vh == watt_core::ledger::smt::value_hash(&encode(entry)) => {
            Ok(())
        }
        _ => Err(LightError::BadStateProof),
    }
}

fn parse_addr(address: &str) -> Result<SocketAddr, String> {
    address.parse::<SocketAddr>().map_err(|_| format!("not an IP:port address: {address:?}"))
}

async fn connect(
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

/// A client UDP socket: dual-stack where the system allows, IPv4 otherwise.
fn client_endpoint() -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::client("[::]:0".parse().expect("literal address"))
        .or_else(|_| quinn::Endpoint::client("0.0.0.0:0".parse().expect("literal address")))
}

/// The data directory's conventional layout, for shells that want to show it.
pub fn wallet_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet.redb")
}
