//! `WattClient`: the shell around the sans-IO [`Wallet`]: QUIC to several
//! nodes, the redb wallet store, the platform's key store. The wallet decides
//! what every answer proves and what to write; the shell sends the requests,
//! feeds back the answers and commits each decision in one store transaction
//! with the events it raises (held until the app marks them handled).
//! Signed transactions are stored before they are sent and re-sent until
//! they settle, so a killed process never loses or doubles one.

use crate::error::ClientError;
use crate::store::ClientStore;
use crate::types::*;
use crate::vault::{self, SecretKeyStore};
use crate::wallet::{Effects, Wallet};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::codec::BoundedBytes;
use watt_core::crypto::Keypair;
use watt_core::ledger::Genesis;
use watt_core::light::TrustAnchor;
use watt_core::mnemonic::Mnemonic;
use zeroize::Zeroizing;

mod background;
mod duties;
mod follow;
mod send;
mod sync;

pub use background::BackgroundReport;
pub use sync::RefreshSummary;

/// Unix milliseconds by this phone's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Clone)]
pub struct WattClient {
    inner: Arc<Inner>,
}

struct Inner {
    genesis: Genesis,
    config: ClientConfig,
    store: ClientStore,
    key_store: Arc<dyn SecretKeyStore>,
    endpoint: quinn::Endpoint,
    state: tokio::sync::Mutex<State>,
    listener: RwLock<Option<Arc<dyn EventListener>>>,
    /// Woken when events are queued (`wait_event`).
    queued: Arc<tokio::sync::Notify>,
    stats: Mutex<NetStats>,
    sync_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// When fork evidence was last sent out, and whether a node took it.
    fork_report: Arc<Mutex<ForkReport>>,
    /// UDP bytes (sent, received) of connections already closed or replaced.
    retired: Arc<Mutex<(u64, u64)>>,
}

/// Waits for the wallet's next event, holding the wallet only while it looks.
pub struct EventWaiter {
    inner: std::sync::Weak<Inner>,
    queued: Arc<tokio::sync::Notify>,
}

impl EventWaiter {
    fn next(&self) -> Result<Option<StoredEvent>, ClientError> {
        let inner = self.inner.upgrade().ok_or_else(|| ClientError::Storage("the wallet was closed".into()))?;
        WattClient { inner }.next_event()
    }

    /// The oldest unhandled event, waiting up to `timeout_ms` for one; an
    /// error once the wallet was closed.
    pub async fn wait(&self, timeout_ms: u64) -> Result<Option<StoredEvent>, ClientError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            // Registered before the check, so an event queued in between still wakes us.
            let woken = self.queued.notified();
            if let Some(e) = self.next()? {
                return Ok(Some(e));
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return self.next();
            }
        }
    }
}

/// Delivery of the wallet's fork evidence to the nodes.
#[derive(Debug, Default)]
struct ForkReport {
    last_sent_ms: Option<u64>,
    in_flight: bool,
    /// A node answered `ForkReported`: delivered (once per process).
    delivered: bool,
}

/// Adds a connection's UDP byte counts to `retired` as it leaves.
fn retire(retired: &Mutex<(u64, u64)>, conn: &quinn::Connection) {
    let s = conn.stats();
    let mut r = retired.lock().unwrap_or_else(|e| e.into_inner());
    r.0 = r.0.saturating_add(s.udp_tx.bytes);
    r.1 = r.1.saturating_add(s.udp_rx.bytes);
}

struct State {
    wallet: Wallet,
    conns: BTreeMap<NodeId, quinn::Connection>,
}

impl State {
    /// Keeps `conn` for `node`; a connection it replaces is retired.
    fn put_conn(&mut self, node: NodeId, conn: quinn::Connection, retired: &Mutex<(u64, u64)>) {
        if let Some(old) = self.conns.insert(node, conn.clone()) {
            if old.stable_id() != conn.stable_id() {
                retire(retired, &old);
            }
        }
    }

    fn drop_conn(&mut self, node: &NodeId, retired: &Mutex<(u64, u64)>) -> Option<quinn::Connection> {
        let c = self.conns.remove(node)?;
        retire(retired, &c);
        Some(c)
    }

    fn connected(&self) -> BTreeSet<NodeId> {
        self.conns.iter().filter(|(_, c)| c.close_reason().is_none()).map(|(n, _)| *n).collect()
    }

    /// Open connections to nodes in good standing.
    fn good_conns(&self) -> Vec<(NodeId, quinn::Connection)> {
        self.conns.iter().filter(|(n, _)| !self.wallet.is_demoted(n)).map(|(k, v)| (*k, v.clone())).collect()
    }
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
        pin_genesis(data_dir, &genesis)?;
        let seed = config.selection_seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            // Only spreads phones over nodes: a failed read leaves a fixed pick, not a weakness.
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
            u64::from_le_bytes(b)
        });
        let pinned = genesis.validators.iter().map(|v| v.node_id).collect();
        let mut wallet = Wallet::new(TrustAnchor::from_genesis(&genesis), pinned, config.clone(), seed);
        if store.nodes()?.is_empty() {
            let seeds: Vec<NodeRecord> = genesis
                .validators
                .iter()
                .filter_map(|v| v.addresses.first().map(|a| NodeRecord::new(v.node_id, a.clone(), NodeOrigin::Genesis)))
                .collect();
            store.put_nodes(&seeds)?;
        }
        wallet.restore(store.tip()?.as_ref(), store.fork()?, &store.nodes()?)?;
        let endpoint =
            client_endpoint().map_err(|e| ClientError::NoNodeReachable(format!("cannot open a UDP socket: {e}")))?;
        Ok(WattClient {
            inner: Arc::new(Inner {
                genesis,
                config,
                store,
                key_store,
                endpoint,
                state: tokio::sync::Mutex::new(State { wallet, conns: BTreeMap::new() }),
                listener: RwLock::new(None),
                queued: Arc::new(tokio::sync::Notify::new()),
                stats: Mutex::new(NetStats::default()),
                sync_task: Mutex::new(None),
                fork_report: Arc::new(Mutex::new(ForkReport::default())),
                retired: Arc::new(Mutex::new((0, 0))),
            }),
        })
    }

    pub fn genesis(&self) -> &Genesis {
        &self.inner.genesis
    }

    // ----- events -----

    /// A listener told of each event as it is queued (a wake-up: the queue
    /// itself, [`WattClient::next_event`], is what the app must drain).
    pub fn set_listener(&self, listener: Option<Arc<dyn EventListener>>) {
        if let Ok(mut l) = self.inner.listener.write() {
            *l = listener;
        }
    }

    /// Commits a wallet decision and its events in one store transaction,
    /// then tells the listener and anyone waiting.
    fn commit(&self, fx: Effects) -> Result<(), ClientError> {
        let queued = self.inner.store.commit(fx)?;
        if queued.is_empty() {
            return Ok(());
        }
        let listener = self.inner.listener.read().ok().and_then(|l| l.clone());
        if let Some(l) = listener {
            for e in &queued {
                l.on_event(e.event.clone());
            }
        }
        self.inner.queued.notify_waiters();
        Ok(())
    }

    /// The oldest event not yet marked handled: the same one until
    /// [`WattClient::event_handled`] is called with its id, across restarts.
    pub fn next_event(&self) -> Result<Option<StoredEvent>, ClientError> {
        Ok(self.inner.store.next_event()?)
    }

    /// Marks event `id` handled; false if no such event was waiting.
    pub fn event_handled(&self, id: u64) -> Result<bool, ClientError> {
        Ok(self.inner.store.event_handled(id)?)
    }

    /// [`WattClient::next_event`], waiting up to `timeout_ms` for one.
    pub async fn wait_event(&self, timeout_ms: u64) -> Result<Option<StoredEvent>, ClientError> {
        self.event_waiter().wait(timeout_ms).await
    }

    /// A handle that waits for events without keeping the wallet open: the
    /// SDKs' event streams wait through it, so closing the wallet (its
    /// database included) never waits for a pending wait to time out.
    pub fn event_waiter(&self) -> EventWaiter {
        EventWaiter { inner: Arc::downgrade(&self.inner), queued: self.inner.queued.clone() }
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
        sync::parse_addr(address).map_err(ClientError::InvalidArgument)?;
        self.inner.store.put_nodes(&[NodeRecord::new(node_id, address.to_string(), NodeOrigin::User)])?;
        Ok(())
    }

    pub async fn remove_node(&self, node_id: &NodeId) -> Result<(), ClientError> {
        if !self.inner.store.remove_node(node_id)? {
            return Err(ClientError::UnknownNode(node_id.to_string()));
        }
        if let Some(c) = self.inner.state.lock().await.drop_conn(node_id, &self.inner.retired) {
            c.close(0u32.into(), b"removed");
        }
        Ok(())
    }

    // ----- what the app shows -----

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
        let store = &self.inner.store;
        let light = st.wallet.light();
        let tip = light.latest().cloned();
        let now = now_ms();
        let account = store.account()?;
        let day = tip.as_ref().map(|t| t.header.day);
        let attested_today = match day {
            None => AttestState::NotYet,
            Some(d) => {
                let on_ledger = account
                    .as_ref()
                    .and_then(|a| a.entry.as_ref())
                    .is_some_and(|e| e.last_attest_day == Some(d) || e.prev_attest_day == Some(d));
                if on_ledger || store.confirmed_attest_days()?.contains(&d) {
                    AttestState::Confirmed
                } else if store.attested(d)?.is_some() {
                    AttestState::Pending
                } else {
                    AttestState::NotYet
                }
            }
        };
        let pending = store
            .pending()?
            .into_iter()
            .map(|p| PendingStatus {
                hash: p.tx.hash(),
                seq_num: p.tx.body.seq_num,
                kind: p.kind,
                signed_ms: p.signed_ms,
            })
            .collect();
        let connected = st.connected();
        let nodes = store
            .nodes()?
            .into_iter()
            .map(|r| NodeStatus {
                connected: connected.contains(&r.node_id),
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
            stale: light.is_stale(now, self.inner.config.stale_after_ms),
            balance: account.as_ref().map(|a| a.entry.as_ref().map_or(Amount::ZERO, |e| e.balance)),
            balance_seq: account.as_ref().map(|a| a.header_seq),
            day,
            attested_today,
            next_day_starts_ms: day.map(|d| light.day_start_ms(d.saturating_add(1))),
            pending,
            nodes,
            fork_slot: st.wallet.fork_slot(),
            can_sign: light.may_sign(),
        })
    }

    pub fn net_stats(&self) -> NetStats {
        *self.inner.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every UDP byte this wallet sent and received (QUIC's own counts,
    /// headers and handshakes included), over all its connections so far.
    pub async fn traffic(&self) -> (u64, u64) {
        let st = self.inner.state.lock().await;
        let (mut up, mut down) = *self.inner.retired.lock().unwrap_or_else(|e| e.into_inner());
        for c in st.conns.values() {
            let s = c.stats();
            up = up.saturating_add(s.udp_tx.bytes);
            down = down.saturating_add(s.udp_rx.bytes);
        }
        (up, down)
    }

    /// Closes every connection (the next request reconnects): the app was
    /// closed, so its next open compares several nodes again.
    pub async fn disconnect(&self) {
        let mut st = self.inner.state.lock().await;
        st.wallet.cross_check_later();
        for (_, c) in std::mem::take(&mut st.conns) {
            c.close(0u32.into(), b"bye");
            retire(&self.inner.retired, &c);
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

    fn data_dir(&self) -> &Path {
        self.inner.store.path().parent().unwrap_or_else(|| Path::new("."))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut b) = self.sync_task.lock() {
            if let Some(h) = b.take() {
                h.abort();
            }
        }
    }
}

/// The data directory belongs to one network: the first open writes the
/// genesis hash, later opens with another genesis are refused.
fn pin_genesis(data_dir: &Path, genesis: &Genesis) -> Result<(), ClientError> {
    let pin_path = data_dir.join("genesis.hash");
    let given = genesis.hash().to_hex();
    match std::fs::read_to_string(&pin_path) {
        Ok(stored) if stored.trim() != given => {
            Err(ClientError::WrongNetwork { stored: stored.trim().to_string(), given })
        }
        Ok(_) => Ok(()),
        Err(_) => {
            std::fs::write(&pin_path, &given).map_err(|e| ClientError::Storage(format!("{}: {e}", pin_path.display())))
        }
    }
}

fn account_of(m: &Mnemonic) -> Result<AccountId, ClientError> {
    let k = Keypair::from_seed(m.account_seed()).map_err(|e| ClientError::Mnemonic(e.to_string()))?;
    Ok(AccountId(k.public()))
}

/// A client UDP socket: dual-stack where the system allows, IPv4 otherwise.
fn client_endpoint() -> std::io::Result<quinn::Endpoint> {
    let any6 = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0));
    let any4 = std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0));
    quinn::Endpoint::client(any6).or_else(|_| quinn::Endpoint::client(any4))
}

/// The data directory's conventional layout, for shells that want to show it.
pub fn wallet_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet.redb")
}
