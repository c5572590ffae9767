//! The validator's async shell: a quinn endpoint for peers (`watt-peer/1`)
//! and phones (`watt/1`), a TCP admin endpoint (`/metrics`, `/status`), and
//! one task that owns the [`Herder`] and moves messages and time into it.

use crate::config::NodeConfig;
use crate::herder::{Action, Herder};
use crate::store::{LedgerRead, Store};
use crate::tls::{self, AllowedPeers};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot};
use watt_client::net::{read_frame, read_frame_charged};
use watt_core::address::NodeId;
use watt_core::codec::decode;
use watt_core::crypto::Keypair;
use watt_core::ledger::Genesis;
use watt_core::wire::{
    encode_frame, HeaderPush, PeerMessage, Request, Response, ALPN_PEER, ALPN_PHONE, MAX_FRAME, MAX_SMALL_FRAME,
};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Messages into the herder task.
enum Event {
    PeerUp { node: NodeId, conn_id: usize, tx: mpsc::Sender<Arc<Vec<u8>>> },
    PeerDown { node: NodeId, conn_id: usize },
    Peer { from: NodeId, msg: Box<PeerMessage> },
    Misbehaved { node: NodeId, reason: &'static str },
    Status { reply: oneshot::Sender<serde_json::Value> },
    Metrics { reply: oneshot::Sender<String> },
}

/// A phone's request for the herder, and where its answer goes.
struct PhoneRequest {
    req: Request,
    reply: oneshot::Sender<Response>,
}

/// What every phone connection's task shares.
#[derive(Clone)]
struct PhoneShell {
    events: mpsc::Sender<PhoneRequest>,
    /// Refusals, counted by the herder.
    refusals: mpsc::Sender<&'static str>,
    push: broadcast::Sender<Arc<HeaderPush>>,
    per_ip: Arc<IpSlots>,
    reader: crate::store::StoreReader,
    header_reads: Arc<tokio::sync::Semaphore>,
    header_queue: Arc<tokio::sync::Semaphore>,
}

/// Per-peer message budget: more than this per second is flooding.
const PEER_MSGS_PER_SEC: u32 = 5_000;
/// Per-phone-connection request budget per second.
pub const PHONE_REQS_PER_SEC: u32 = 200;
/// Request bytes per second from one address (a seal proof is ~0.5 MiB).
pub const PHONE_BYTES_PER_IP_PER_SEC: u64 = 64 << 20;
/// Request bytes one address may have in the node's memory at once, read
/// but not yet answered (64 seal proofs of ~0.5 MiB; phones behind one
/// carrier NAT share it). Charged as bytes arrive, before they are kept.
pub const PHONE_HELD_BYTES_PER_IP: u64 = 32 << 20;
/// Request bytes all phones together may have in the node's memory at once.
pub const PHONE_HELD_BYTES_TOTAL: u64 = 1 << 30;
/// A request frame must arrive whole within this (a 4 MiB proof at 1 Mbit/s
/// takes ~34 s); a trickled frame loses its stream and its bytes after it.
pub const PHONE_FRAME_DEADLINE: Duration = Duration::from_secs(60);
/// An answer must be taken by the phone within this, or its stream is reset
/// (an answer held in memory for a reader that never reads).
pub const PHONE_WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// The herder answers a phone's request within this, or the phone is told
/// to retry (its bytes are not held meanwhile).
pub const PHONE_ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// Header reads served at once off the consensus task (each is at most
/// `MAX_HEADERS_PER_REQUEST` headers from redb), and how many may wait.
const HEADER_READS_AT_ONCE: usize = 2;
const HEADER_READS_WAITING: usize = 64;
/// Under a steady stream of peers' messages, one phone request is still
/// served after this many of them.
const PEER_EVENTS_PER_PHONE_REQUEST: u32 = 32;

/// Whose budget an address spends: an IPv4 address, or an IPv6 /64 (one
/// host's usual allocation, so a host cannot multiply its budget).
fn budget_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Herder(#[from] crate::herder::HerderError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// A running validator: its address, and how to stop it.
pub struct NodeHandle {
    pub node_id: NodeId,
    pub listen: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    /// Ends with the reason when the validator stopped itself (`Action::Fatal`).
    pub task: tokio::task::JoinHandle<Result<(), String>>,
    events: mpsc::Sender<Event>,
    /// Reads what the node has committed, beside it (the daily comparison).
    pub reader: crate::store::StoreReader,
}

impl NodeHandle {
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }

    /// Waits until the validator stops by itself: `Err` with the reason when
    /// it could not go on safely (the process should exit and be restarted).
    pub async fn stopped(&mut self) -> Result<(), String> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(format!("the validator task failed: {e}")),
        }
    }

    pub async fn status(&self) -> Option<serde_json::Value> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Status { reply: tx }).await.ok()?;
        rx.await.ok()
    }
}

/// Open connections per remote IP address, capped, and each address's
/// request and byte budget for the current second.
struct IpSlots {
    limit: usize,
    /// Requests per second per address (phones behind one carrier NAT share it).
    requests_per_sec: u32,
    open: std::sync::Mutex<HashMap<std::net::IpAddr, usize>>,
    spent: std::sync::Mutex<HashMap<std::net::IpAddr, (Instant, u32, u64)>>,
    /// Request bytes held per address (read, not yet answered), and in all.
    held: std::sync::Mutex<(HashMap<std::net::IpAddr, u64>, u64)>,
}

/// Bytes of one request held in memory, charged to its address until dropped.
struct Held {
    slots: Arc<IpSlots>,
    ip: std::net::IpAddr,
    bytes: u64,
}

impl Held {
    /// Takes `bytes` more, or refuses when the address or all phones together
    /// would hold more than their budget.
    fn charge(&mut self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        let (per_ip, total) = &mut *held;
        let mine = per_ip.entry(self.ip).or_insert(0);
        if *mine + bytes > PHONE_HELD_BYTES_PER_IP || *total + bytes > PHONE_HELD_BYTES_TOTAL {
            if *mine == 0 {
                per_ip.remove(&self.ip);
            }
            return false;
        }
        *mine += bytes;
        *total += bytes;
        self.bytes += bytes;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        let (per_ip, total) = &mut *held;
        *total = total.saturating_sub(self.bytes);
        if let Some(mine) = per_ip.get_mut(&self.ip) {
            *mine = mine.saturating_sub(self.bytes);
            if *mine == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// One open connection's share of its address's quota.
struct IpSlot {
    slots: Arc<IpSlots>,
    ip: std::net::IpAddr,
}

impl IpSlots {
    fn new(limit: usize, requests_per_sec: u32) -> IpSlots {
        IpSlots {
            limit,
            requests_per_sec,
            open: std::sync::Mutex::new(HashMap::new()),
            spent: std::sync::Mutex::new(HashMap::new()),
            held: std::sync::Mutex::new((HashMap::new(), 0)),
        }
    }

    /// An empty charge against `ip`'s held-bytes budget.
    fn hold(self: &Arc<Self>, ip: std::net::IpAddr) -> Held {
        Held { slots: self.clone(), ip: budget_key(ip), bytes: 0 }
    }

    fn take(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<IpSlot> {
        let ip = budget_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot { slots: self.clone(), ip })
    }

    /// Charges one request of `bytes` to `ip`; false when the address has
    /// spent its budget for this second.
    fn charge(&self, ip: std::net::IpAddr, bytes: usize) -> bool {
        let ip = budget_key(ip);
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Forget idle addresses now and then, so the map stays small.
        if spent.len() > 4 * 65_536 {
            spent.retain(|_, (since, _, _)| now.duration_since(*since) < Duration::from_secs(1));
        }
        let entry = spent.entry(ip).or_insert((now, 0, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(1) {
            *entry = (now, 0, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.2 = entry.2.saturating_add(bytes as u64);
        entry.1 <= self.requests_per_sec && entry.2 <= PHONE_BYTES_PER_IP_PER_SEC
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Starts a validator from its config.
pub async fn start(cfg: NodeConfig) -> Result<NodeHandle, NodeError> {
    let genesis = cfg.load_genesis()?;
    let key = cfg.load_key()?;
    start_with(cfg, genesis, key).await
}

pub async fn start_with(cfg: NodeConfig, genesis: Genesis, key: Keypair) -> Result<NodeHandle, NodeError> {
    let node_id = NodeId(key.public());
    let store = Store::open(&cfg.data_dir)?;
    let herder = Herder::new(genesis, key.clone(), store, cfg.ledger_ms, now_ms())?;
    let reader = herder.store_reader();
    let allowed = AllowedPeers::new(cfg.peers.iter().map(|p| p.node_id));
    let server = tls::server_config(&key, allowed.clone())?;
    let endpoint =
        quinn::Endpoint::server(server, cfg.listen).map_err(|e| NodeError::Listen { addr: cfg.listen, source: e })?;
    let listen = endpoint.local_addr().map_err(|e| NodeError::Listen { addr: cfg.listen, source: e })?;
    let (events_tx, events_rx) = mpsc::channel(4096);
    // Phones' requests wait in their own queue, served when consensus has
    // nothing to do (peers' messages and timers come first).
    let (phone_tx, phone_rx) = mpsc::channel(4096);
    // Refusals are counted when consensus has time; lost when this is full.
    let (refusals_tx, refusals_rx) = mpsc::channel(1024);
    let (push_tx, _) = broadcast::channel::<Arc<HeaderPush>>(64);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let conn_ids = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let links = Links::default();

    // Accept peers and phones.
    {
        let endpoint = endpoint.clone();
        let events = events_tx.clone();
        let ids = conn_ids.clone();
        let per_ip = Arc::new(IpSlots::new(cfg.max_connections_per_ip, cfg.max_requests_per_ip_per_sec));
        let phones = PhoneShell {
            events: phone_tx,
            refusals: refusals_tx.clone(),
            push: push_tx.clone(),
            per_ip,
            reader: herder.store_reader(),
            header_reads: Arc::new(tokio::sync::Semaphore::new(HEADER_READS_AT_ONCE)),
            header_queue: Arc::new(tokio::sync::Semaphore::new(HEADER_READS_WAITING)),
        };
        let accepted_links = links.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                // Before the handshake costs anything: one address gets so many.
                let Some(slot) = phones.per_ip.take(incoming.remote_address().ip()) else {
                    incoming.refuse();
                    let _ = refusals_tx.try_send("per_ip_connection_limit");
                    continue;
                };
                let events = events.clone();
                let ids = ids.clone();
                let phones = phones.clone();
                let links = accepted_links.clone();
                tokio::spawn(async move {
                    let _slot = slot; // released when the connection ends
                    let Ok(conn) = incoming.await else { return };
                    let (alpn, peer) = tls::connection_identity(&conn);
                    match (alpn.as_deref(), peer) {
                        (Some(a), Some(node)) if a == ALPN_PEER => {
                            let id = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            run_peer(conn, node, id, events, links).await
                        }
                        (Some(a), _) if a == ALPN_PHONE => run_phone(conn, phones).await,
                        _ => conn.close(1u32.into(), b"peers must present a known node key"),
                    }
                });
            }
        });
    }
    // The lower id of a pair dials, so each pair has one connection. The
    // higher id dials too once it has had no link to the peer for
    // `LONE_PEER_DIAL`: after this node restarts, the lower id still holds
    // the dead connection until QUIC's idle timeout (30 s), and would not
    // dial again until then.
    for p in cfg.peers.clone() {
        if node_id == p.node_id {
            continue;
        }
        let patient = node_id > p.node_id;
        let endpoint = endpoint.clone();
        let events = events_tx.clone();
        let key = key.clone();
        let ids = conn_ids.clone();
        let links = links.clone();
        tokio::spawn(async move {
            let mut alone_since = Instant::now();
            let mut first = !patient;
            loop {
                if events.is_closed() {
                    return;
                }
                if !std::mem::take(&mut first) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                // Either side dials only while it has no live link to the
                // peer: the link the other side made is as good, and a second
                // one would stay open on keep-alives.
                if links.count(&p.node_id) > 0 {
                    alone_since = Instant::now();
                    continue;
                }
                if patient && alone_since.elapsed() < LONE_PEER_DIAL {
                    continue;
                }
                if let Ok(client) = tls::client_config(&p.node_id, Some(&key)) {
                    if let Ok(connecting) = endpoint.connect_with(client, p.address, "watt-node") {
                        if let Ok(conn) = connecting.await {
                            let id = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            run_peer(conn, p.node_id, id, events.clone(), links.clone()).await;
                        }
                    }
                }
                alone_since = Instant::now();
            }
        });
    }
    if let Some(addr) = cfg.admin {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            tokio::spawn(run_admin(listener, events_tx.clone()));
        }
    }
    let task = tokio::spawn(run_herder(herder, events_rx, phone_rx, refusals_rx, push_tx, shutdown_rx, endpoint));
    Ok(NodeHandle { node_id, listen, shutdown: Some(shutdown_tx), task, events: events_tx, reader })
}

/// Runs herder work that may wait for the disk (a ledger commit, the SCP
/// state written before a ballot statement leaves) without holding up the
/// runtime's other tasks: peers' connections, phones, and in a devnet the
/// other validators sharing the process.
fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Frames waiting to go to one peer.
type PeerQueue = mpsc::Sender<Arc<Vec<u8>>>;

async fn run_herder(
    mut herder: Herder,
    mut events: mpsc::Receiver<Event>,
    mut phone_requests: mpsc::Receiver<PhoneRequest>,
    mut refusals: mpsc::Receiver<&'static str>,
    push: broadcast::Sender<Arc<HeaderPush>>,
    mut shutdown: oneshot::Receiver<()>,
    endpoint: quinn::Endpoint,
) -> Result<(), String> {
    let mut fatal = None;
    // Each connected peer: its connection's index and its outbound queue.
    let mut peers: HashMap<NodeId, (usize, PeerQueue)> = HashMap::new();
    let started = Instant::now();
    let wall0 = now_ms();
    let clock = move || wall0 + started.elapsed().as_millis() as u64;
    let mut dropped_outbound: u64 = 0;
    // Peers' messages and timers since a phone was last served.
    let mut since_phone: u32 = 0;
    loop {
        let wake = herder.next_wakeup();
        let now = clock();
        let sleep = tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now).min(1_000)));
        since_phone = since_phone.saturating_add(1);
        // A phone's turn, however busy the peers keep consensus.
        let waiting_phone =
            if since_phone > PEER_EVENTS_PER_PHONE_REQUEST { phone_requests.try_recv().ok() } else { None };
        let actions = if let Some(PhoneRequest { req, reply }) = waiting_phone {
            since_phone = 0;
            let _ = reply.send(herder.phone_request(req));
            herder.take_outbox()
        } else {
            tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = sleep => off_the_runtime(|| herder.tick(clock())),
            ev = events.recv() => match ev {
                None => break,
                Some(Event::PeerUp { node, conn_id, tx }) => {
                    peers.insert(node, (conn_id, tx));
                    herder.peer_connected(node)
                }
                Some(Event::PeerDown { node, conn_id }) => {
                    if peers.get(&node).is_some_and(|(c, _)| *c == conn_id) {
                        peers.remove(&node);
                        herder.peer_disconnected(&node);
                    }
                    Vec::new()
                }
                Some(Event::Peer { from, msg }) => off_the_runtime(|| herder.on_peer_message(from, *msg, clock())),
                Some(Event::Misbehaved { node, reason }) => {
                    *herder.stats.rejected.entry(reason).or_insert(0) += 1;
                    tracing::warn!(peer = %node, reason, "peer disconnected for bad data");
                    Vec::new()
                }

                Some(Event::Status { reply }) => {
                    let _ = reply.send(status_json(&herder, clock()));
                    Vec::new()
                }
                Some(Event::Metrics { reply }) => {
                    let _ = reply.send(metrics_text(&herder, peers.len(), dropped_outbound));
                    Vec::new()
                }
            },
            Some(PhoneRequest { req, reply }) = phone_requests.recv() => {
                since_phone = 0;
                let _ = reply.send(herder.phone_request(req));
                herder.take_outbox()
            }
            Some(reason) = refusals.recv() => {
                *herder.stats.rejected.entry(reason).or_insert(0) += 1;
                Vec::new()
            }
            }
        };
        for a in actions {
            match a {
                Action::Send(to, msg) => {
                    if let Some((_, tx)) = peers.get(&to) {
                        let frame = encode_frame(&msg);
                        herder.stats.bytes_sent += frame.len() as u64;
                        if tx.try_send(Arc::new(frame)).is_err() {
                            dropped_outbound += 1;
                        }
                    }
                }
                Action::Broadcast { msg, except } => {
                    let frame = Arc::new(encode_frame(&msg));
                    for (n, (_, tx)) in &peers {
                        if Some(*n) == except {
                            continue;
                        }
                        herder.stats.bytes_sent += frame.len() as u64;
                        if tx.try_send(frame.clone()).is_err() {
                            dropped_outbound += 1;
                        }
                    }
                }
                Action::Disconnect(node, reason) => {
                    *herder.stats.rejected.entry(reason).or_insert(0) += 1;
                    peers.remove(&node);
                    herder.peer_disconnected(&node);
                }
                Action::Push(p) => {
                    let _ = push.send(Arc::new(p));
                }
                Action::Fatal(reason) => fatal = Some(reason),
            }
        }
        if fatal.is_some() {
            break;
        }
    }
    endpoint.close(0u32.into(), b"shutting down");
    fatal.map_or(Ok(()), Err)
}

/// How long a validator goes without a link to a lower-id peer before it
/// dials that peer itself.
const LONE_PEER_DIAL: Duration = Duration::from_secs(2);

/// Live connections to each peer validator, counted by `run_peer`.
#[derive(Clone, Default)]
struct Links(Arc<std::sync::Mutex<HashMap<NodeId, usize>>>);

/// One live connection to a peer; counted down when dropped.
struct Link {
    links: Links,
    node: NodeId,
}

impl Links {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, usize>> {
        // A panic while holding this lock leaves only a count behind.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn up(&self, node: NodeId) -> Link {
        *self.map().entry(node).or_insert(0) += 1;
        Link { links: self.clone(), node }
    }
    fn count(&self, node: &NodeId) -> usize {
        self.map().get(node).copied().unwrap_or(0)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let mut map = self.links.map();
        if let Some(c) = map.get_mut(&self.node) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                map.remove(&self.node);
            }
        }
    }
}

/// Runs one peer connection: frames out from the herder, frames in to it.
async fn run_peer(conn: quinn::Connection, node: NodeId, conn_id: usize, events: mpsc::Sender<Event>, links: Links) {
    let _link = links.up(node);
    let (tx, mut rx) = mpsc::channel::<Arc<Vec<u8>>>(4096);
    let Ok(mut send) = conn.open_uni().await else { return };
    if events.send(Event::PeerUp { node, conn_id, tx }).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if send.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let reason = match conn.accept_uni().await {
        Err(_) => None,
        Ok(mut recv) => {
            let mut window = Instant::now();
            let mut count = 0u32;
            loop {
                match read_frame(&mut recv, MAX_FRAME).await {
                    Ok(None) => break None,
                    Err(r) => break Some(r),
                    Ok(Some(body)) => {
                        if window.elapsed() > Duration::from_secs(1) {
                            window = Instant::now();
                            count = 0;
                        }
                        count += 1;
                        if count > PEER_MSGS_PER_SEC {
                            break Some("peer_flooding");
                        }
                        match decode::<PeerMessage>(&body) {
                            Ok(msg) => {
                                if events.send(Event::Peer { from: node, msg: Box::new(msg) }).await.is_err() {
                                    break None;
                                }
                            }
                            Err(_) => break Some("malformed_message"),
                        }
                    }
                }
            }
        }
    };
    if let Some(r) = reason {
        let _ = events.send(Event::Misbehaved { node, reason: r }).await;
        conn.close(2u32.into(), r.as_bytes());
    }
    writer.abort();
    let _ = events.send(Event::PeerDown { node, conn_id }).await;
}

async fn run_phone(conn: quinn::Connection, shell: PhoneShell) {
    let ip = conn.remote_address().ip();
    // Phones open no unidirectional streams; whatever arrives on one is
    // refused unread, so quinn discards it instead of buffering it.
    let drain = conn.clone();
    tokio::spawn(async move {
        while let Ok(mut recv) = drain.accept_uni().await {
            let _ = recv.stop(6u32.into());
        }
    });
    let mut window = Instant::now();
    let mut count = 0u32;
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        if window.elapsed() > Duration::from_secs(1) {
            window = Instant::now();
            count = 0;
        }
        count += 1;
        if count > PHONE_REQS_PER_SEC {
            conn.close(3u32.into(), b"request rate exceeded");
            return;
        }
        let shell = shell.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let refuse = |reason| {
                let _ = shell.refusals.try_send(reason);
            };
            let mut held = shell.per_ip.hold(ip);
            let read = tokio::time::timeout(
                PHONE_FRAME_DEADLINE,
                read_frame_charged(&mut recv, MAX_FRAME, |n| held.charge(n)),
            )
            .await;
            // One frame per stream: anything after it is refused unread.
            let _ = recv.stop(0u32.into());
            let body = match read {
                Ok(Ok(Some(body))) => body,
                Ok(Ok(None)) => return,
                Ok(Err("over_budget")) => {
                    // Not misbehaviour by itself (a NAT's phones share it):
                    // this request is dropped, its bytes freed, the phone may retry.
                    drop(held);
                    refuse("per_ip_held_bytes");
                    answer(&shell, ip, &mut send, rate_limited()).await;
                    return;
                }
                Ok(Err(_)) => {
                    drop(held);
                    answer(&shell, ip, &mut send, bad_request()).await;
                    return;
                }
                Err(_) => {
                    refuse("phone_frame_deadline");
                    return;
                }
            };
            // The address's shared budget: over it, an answer that says so,
            // and none of the work (signature or proof checks) is done.
            if !shell.per_ip.charge(ip, body.len()) {
                drop((body, held));
                refuse("per_ip_request_budget");
                answer(&shell, ip, &mut send, rate_limited()).await;
                return;
            }
            // Only transactions (which may carry proofs) may be large.
            let req = match decode::<Request>(&body) {
                // Fork evidence carries two proofs: as large as a quorum's signatures.
                Ok(r)
                    if body.len() <= MAX_SMALL_FRAME
                        || matches!(r, Request::SubmitTx(_) | Request::ReportFork { .. }) =>
                {
                    r
                }
                _ => {
                    drop((body, held));
                    answer(&shell, ip, &mut send, bad_request()).await;
                    return;
                }
            };
            drop(body);
            let subscribe = matches!(req, Request::Subscribe);
            let resp = match req {
                // Committed headers are read on a blocking thread, never
                // on the consensus task; a bounded queue waits for it.
                Request::GetHeaders { from, count } => {
                    drop(held);
                    let Ok(_queued) = shell.header_queue.try_acquire() else {
                        refuse("header_reads_busy");
                        answer(&shell, ip, &mut send, busy()).await;
                        return;
                    };
                    let Ok(_permit) = shell.header_reads.acquire().await else { return };
                    let reader = shell.reader.clone();
                    match tokio::task::spawn_blocking(move || {
                        crate::herder::headers_answer(|f, c| reader.headers(f, c), from, count)
                    })
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Response::error("cannot read headers"),
                    }
                }
                req => {
                    let (tx, rx) = oneshot::channel();
                    if shell.events.send(PhoneRequest { req, reply: tx }).await.is_err() {
                        return;
                    }
                    // The request (a transaction's bytes) stays charged until
                    // the herder has taken it.
                    match tokio::time::timeout(PHONE_ANSWER_DEADLINE, rx).await {
                        Ok(Ok(resp)) => resp,
                        Ok(Err(_)) => return,
                        Err(_) => {
                            drop(held);
                            refuse("phone_answer_deadline");
                            answer(&shell, ip, &mut send, busy()).await;
                            return;
                        }
                    }
                }
            };
            answer(&shell, ip, &mut send, resp).await;
            if subscribe {
                let mut sub = shell.push.subscribe();
                let Ok(mut uni) = conn.open_uni().await else { return };
                while let Ok(p) = sub.recv().await {
                    match tokio::time::timeout(PHONE_WRITE_DEADLINE, uni.write_all(&encode_frame(p.as_ref()))).await {
                        Ok(Ok(())) => {}
                        _ => return,
                    }
                }
            }
        });
    }
}

/// Writes an answer and finishes the stream. The answer's bytes are charged
/// to the address while the phone takes them (one that never reads cannot
/// make the node hold answers), and a phone that has not taken it within
/// `PHONE_WRITE_DEADLINE` has its stream reset.
async fn answer(shell: &PhoneShell, ip: std::net::IpAddr, send: &mut quinn::SendStream, resp: Response) {
    let mut frame = encode_frame(&resp);
    drop(resp);
    let mut held = shell.per_ip.hold(ip);
    if !held.charge(frame.len()) {
        let _ = shell.refusals.try_send("per_ip_held_bytes");
        frame = encode_frame(&rate_limited());
    }
    match tokio::time::timeout(PHONE_WRITE_DEADLINE, send.write_all(&frame)).await {
        Ok(Ok(())) => {
            let _ = send.finish();
        }
        Ok(Err(_)) => {}
        Err(_) => {
            let _ = send.reset(7u32.into());
            let _ = shell.refusals.try_send("phone_write_deadline");
        }
    }
}

fn busy() -> Response {
    Response::error("the node is busy; try again in a second")
}

fn rate_limited() -> Response {
    Response::error("too many requests from this address; try again in a second")
}

fn bad_request() -> Response {
    Response::error("malformed or oversize request")
}

fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    s[((s.len() - 1) as f64 * p).round() as usize]
}

/// `watt-node status`: ledger, peers, quorum health, pending transactions.
pub fn status_json(h: &Herder, now: u64) -> serde_json::Value {
    let lcl = h.lcl();
    let genesis = h.genesis();
    let me = h.node_id();
    let qset = genesis.validators.iter().find(|v| v.node_id == me).map(|v| v.quorum_set.clone());
    let mut health = Vec::new();
    let mut up = std::collections::BTreeSet::new();
    up.insert(me);
    if let Some(q) = &qset {
        for n in q.nodes() {
            if n == me {
                continue;
            }
            // Silent for 10 ledgers: missing; last heard on an older slot: delayed.
            let state = match h.heard.get(&n) {
                None => "missing",
                Some((_, at)) if now.saturating_sub(*at) > 10 * h.genesis().params.ledger_close_ms.max(1_000) => {
                    "missing"
                }
                Some((slot, _)) if *slot + 1 < lcl.seq => "delayed",
                Some(_) => "agree",
            };
            if state != "missing" {
                up.insert(n);
            }
            health.push(json!({ "node": n.to_string(), "state": state, "connected": h.peers().contains(&n) }));
        }
    }
    let qsets: std::collections::BTreeMap<NodeId, watt_core::scp::QuorumSet> =
        genesis.validators.iter().map(|v| (v.node_id, v.quorum_set.clone())).collect();
    let intersection = match watt_core::scp::intersection::check_intersection(&qsets) {
        watt_core::scp::intersection::Intersection::Intersects => json!(true),
        watt_core::scp::intersection::Intersection::Split { .. } => json!(false),
        watt_core::scp::intersection::Intersection::TooLarge { .. } => json!(null),
    };
    let survivable =
        qset.as_ref().map(|q| watt_core::scp::intersection::failures_survivable(q, &me, &|n| up.contains(n)));
    json!({
        "node_id": me.to_string(),
        "ledger": { "seq": lcl.seq, "hash": lcl.hash().to_hex(), "close_time_ms": lcl.close_time, "lag_ms": now.saturating_sub(lcl.close_time), "day": lcl.day },
        "peers": h.peers().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "quorum": { "validators": health, "intersection": intersection, "failures_survivable": survivable },
        "pending_txs": h.pool.len(),
        "fork_reports": h.fork_reports.keys().collect::<Vec<_>>(),
        "rejected": h.stats.rejected,
        "ledgers_closed": h.stats.ledgers_closed,
        "consensus_ms_median": percentile(&h.stats.consensus_ms, 0.5),
        "consensus_ms_p99": percentile(&h.stats.consensus_ms, 0.99),
        "bytes_sent": h.stats.bytes_sent,
        "close_interval_ms_median": percentile(&h.stats.close_intervals_ms, 0.5),
        // The latest samples, oldest first: what a window of interest
        // (after start-up, during a test) is measured from.
        "consensus_ms_recent": recent(&h.stats.consensus_ms),
        "close_interval_ms_recent": recent(&h.stats.close_intervals_ms),
    })
}

fn recent(samples: &[u64]) -> &[u64] {
    &samples[samples.len().saturating_sub(RECENT_SAMPLES)..]
}

/// Samples of each latency `status` lists.
pub const RECENT_SAMPLES: usize = 64;

/// Prometheus text exposition.
pub fn metrics_text(h: &Herder, peers: usize, dropped: u64) -> String {
    use prometheus_client::encoding::text::encode as encode_metrics;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    let mut reg = Registry::default();
    let gauge = |reg: &mut Registry, name: &str, help: &str, v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        reg.register(name, help, g);
    };
    let lcl = h.lcl();
    gauge(&mut reg, "watt_ledger_seq", "Last closed ledger", lcl.seq as i64);
    gauge(&mut reg, "watt_ledger_close_time_ms", "Close time of the last ledger", lcl.close_time as i64);
    gauge(
        &mut reg,
        "watt_consensus_latency_ms_median",
        "Nomination to externalize, median",
        percentile(&h.stats.consensus_ms, 0.5) as i64,
    );
    gauge(&mut reg, "watt_peers", "Connected peers", peers as i64);
    gauge(&mut reg, "watt_pending_txs", "Transactions in the pending pool", h.pool.len() as i64);
    gauge(
        &mut reg,
        "watt_fork_reports",
        "Slots with fork evidence reported by phones and checked by this node",
        h.fork_reports.len() as i64,
    );
    gauge(&mut reg, "watt_outbound_dropped", "Messages dropped on full peer queues", dropped as i64);
    let rejected: Family<Vec<(String, String)>, Counter> = Family::default();
    for (reason, n) in &h.stats.rejected {
        rejected.get_or_create(&vec![("reason".to_string(), reason.to_string())]).inc_by(*n);
    }
    reg.register("watt_rejected_messages", "Rejected messages by reason", rejected);
    let mut out = String::new();
    let _ = encode_metrics(&mut out, &reg);
    out
}

async fn run_admin(listener: tokio::net::TcpListener, events: mpsc::Sender<Event>) {
    while let Ok((mut sock, peer)) = listener.accept().await {
        if !peer.ip().is_loopback() {
            continue; // the admin endpoint answers this machine only
        }
        let events = events.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            let Ok(n) = sock.read(&mut buf).await else { return };
            let head = String::from_utf8_lossy(&buf[..n]);
            let answer = if head.starts_with("GET /metrics") {
                let (tx, rx) = oneshot::channel();
                if events.send(Event::Metrics { reply: tx }).await.is_err() {
                    return;
                }
                rx.await.map(|b| ("text/plain; version=0.0.4", b))
            } else {
                let (tx, rx) = oneshot::channel();
                if events.send(Event::Status { reply: tx }).await.is_err() {
                    return;
                }
                rx.await.map(|v| ("application/json", v.to_string()))
            };
            // The validator stopping between the request and its answer.
            let (status, ctype, body) = match answer {
                Ok((ctype, body)) => ("200 OK", ctype, body),
                Err(_) => ("503 Service Unavailable", "text/plain", "the validator is stopping\n".to_string()),
            };
            let resp =
                format!("HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

/// Fetches `/status` from a node's admin endpoint.
pub async fn fetch_admin(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{addr}{path} answered without an HTTP body"))
    })
}

/// A phone-side request over QUIC (used by the devnet and tools until the
/// mobile core's client lands).
pub async fn phone_request(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    node: &NodeId,
    req: &Request,
) -> Result<Response, String> {
    let client = tls::client_config(node, None).map_err(|e| e.to_string())?;
    let conn = endpoint
        .connect_with(client, addr, "watt-node")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let r = request_on(&conn, req).await;
    conn.close(0u32.into(), b"");
    r
}

/// One phone request on `conn` (used by the devnet and tests).
pub async fn request_on(conn: &quinn::Connection, req: &Request) -> Result<Response, String> {
    watt_client::net::request(conn, req).await.map_err(|e| e.to_string())
}
