//! What the mobile core stores and reports: plain owned records, shaped for
//! the FFI (the SDKs mirror them as Kotlin data classes and Swift structs).

use serde::{Deserialize, Serialize};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::codec::{BoundedBytes, Wire};
use watt_core::crypto::Hash256;
use watt_core::ledger::{AccountEntry, LedgerHeader, Transaction};
use watt_core::wire::ExternalizeProof;

/// The wallet as stored: its account and the sealed BIP-39 entropy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRecord {
    pub account: AccountId,
    pub sealed_entropy: BoundedBytes<256>,
}

impl Wire for WalletRecord {
    const MAX_ENCODED_LEN: usize = 512;
}

/// The newest verified header and the externalize proof that verified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedTip {
    pub header: LedgerHeader,
    pub proof: ExternalizeProof,
}

impl Wire for TrustedTip {
    const MAX_ENCODED_LEN: usize = watt_core::wire::MAX_FRAME;
}

/// The wallet's account as last proven, and against which header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenAccount {
    pub header_seq: u64,
    pub entry: Option<AccountEntry>,
}

impl Wire for ProvenAccount {
    const MAX_ENCODED_LEN: usize = 1024;
}

/// What a signed transaction does, in the wallet's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxKind {
    Pay { to: AccountId, amount: Amount },
    Attest { day: u64 },
    SetSecurityCircle,
    SetReferrer { referrer: AccountId },
    Storage,
}

/// A transaction signed and stored but not yet confirmed: re-submitted until
/// it is included or expires (SPEC §7), never re-signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTx {
    pub tx: Transaction,
    pub kind: TxKind,
    pub signed_ms: u64,
    /// Refreshes in which the account's sequence had moved past this one
    /// while no node knew the transaction: after a few it was superseded.
    pub unknown_after_use: u32,
}

impl Wire for PendingTx {
    const MAX_ENCODED_LEN: usize = watt_core::wire::MAX_FRAME;
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxStatus {
    Pending,
    /// Included in ledger `seq` and its operations took effect.
    Confirmed {
        seq: u64,
    },
    /// Included in ledger `seq`; the fee was charged but the operations failed.
    Failed {
        seq: u64,
        reason: String,
    },
    /// Not included before its `max_ledger`; nothing was charged.
    Expired,
    /// Its sequence number was used by another transaction of this account.
    Superseded,
}

/// One line of the wallet's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryKind {
    Sent {
        to: AccountId,
        amount: Amount,
        fee: Amount,
    },
    Attested {
        day: u64,
    },
    /// A proven balance increase not explained by the wallet's own
    /// transactions: a payment from someone else.
    Received {
        amount: Amount,
    },
    /// A proven balance increase after a day this wallet attested was distributed.
    Reward {
        day: u64,
        amount: Amount,
    },
    SecurityCircleSet,
    ReferrerSet {
        referrer: AccountId,
    },
    Storage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: u64,
    pub time_ms: u64,
    pub kind: HistoryKind,
    pub tx_hash: Option<Hash256>,
    pub status: TxStatus,
    /// What left the balance: fee, plus the amount of a payment that took effect.
    pub charged: Amount,
}

impl Wire for HistoryEntry {
    const MAX_ENCODED_LEN: usize = 1024;
}

/// Where a node in the wallet's list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeOrigin {
    /// Named in the pinned genesis file.
    Genesis,
    /// From the proven validator directory (trust graph or PageRank).
    Directory,
    /// Added by the user: preferred over all others.
    User,
}

/// A node the wallet may talk to, and how it has behaved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub node_id: NodeId,
    pub address: String,
    pub origin: NodeOrigin,
    pub good_answers: u64,
    pub bad_answers: u64,
    pub timeouts: u64,
    pub demoted: bool,
    pub last_error: Option<String>,
}

impl Wire for NodeRecord {
    const MAX_ENCODED_LEN: usize = 4096;
}

/// Fork evidence as kept on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFork {
    pub slot: u64,
    pub a: ExternalizeProof,
    pub b: ExternalizeProof,
}

impl Wire for StoredFork {
    const MAX_ENCODED_LEN: usize = 2 * watt_core::wire::MAX_FRAME;
}

/// Today's tap, as far as this wallet knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttestState {
    NotYet,
    /// Signed and submitted; not yet seen in a verified ledger.
    Pending,
    Confirmed,
}

/// A node as `status()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub address: String,
    pub origin: NodeOrigin,
    pub connected: bool,
    pub good_answers: u64,
    pub bad_answers: u64,
    pub timeouts: u64,
    pub demoted: bool,
    pub last_error: Option<String>,
}

/// A pending transaction as `status()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStatus {
    pub hash: Hash256,
    pub seq_num: u64,
    pub kind: TxKind,
    pub signed_ms: u64,
}

/// Everything the app's home screen needs, from local state (no network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    pub account: Option<AccountId>,
    pub verified_seq: Option<u64>,
    pub verified_hash: Option<Hash256>,
    pub verified_close_time_ms: Option<u64>,
    /// Age of the newest verified close time by this phone's clock.
    pub verified_age_ms: Option<u64>,
    /// Older than the freshness limit (60 s by default, SPEC §7).
    pub stale: bool,
    pub balance: Option<Amount>,
    /// The ledger the balance was proven against.
    pub balance_seq: Option<u64>,
    pub day: Option<u64>,
    pub attested_today: AttestState,
    /// When the next day starts (Unix ms), by the genesis clock.
    pub next_day_starts_ms: Option<u64>,
    pub pending: Vec<PendingStatus>,
    pub nodes: Vec<NodeStatus>,
    /// The slot of fork evidence, if any; the wallet then refuses to sign.
    pub fork_slot: Option<u64>,
    pub can_sign: bool,
}

/// What the core tells the app as it happens. Kept in the wallet store
/// until the app says it handled it (`next_event` / `event_handled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientEvent {
    NewVerifiedLedger {
        seq: u64,
        close_time_ms: u64,
    },
    PaymentReceived {
        amount: Amount,
        balance: Amount,
    },
    /// One of the wallet's transactions reached its end state.
    TransactionSettled {
        hash: Hash256,
        status: TxStatus,
    },
    AttestationConfirmed {
        day: u64,
    },
    RewardPaid {
        day: u64,
        amount: Amount,
    },
    ForkDetected {
        slot: u64,
    },
    NodeDemoted {
        node: NodeId,
        reason: String,
    },
}

impl Wire for ClientEvent {
    const MAX_ENCODED_LEN: usize = 8192;
}

/// Longest reason kept in a stored event: what a node sent may be long, and
/// a stored event must always decode again.
const MAX_REASON_CHARS: usize = 1024;

impl ClientEvent {
    /// The event with its free-text reasons cut to [`MAX_REASON_CHARS`].
    pub fn bounded(self) -> ClientEvent {
        let cut = |s: String| {
            if s.chars().count() > MAX_REASON_CHARS {
                s.chars().take(MAX_REASON_CHARS).collect()
            } else {
                s
            }
        };
        match self {
            ClientEvent::NodeDemoted { node, reason } => ClientEvent::NodeDemoted { node, reason: cut(reason) },
            ClientEvent::TransactionSettled { hash, status: TxStatus::Failed { seq, reason } } => {
                ClientEvent::TransactionSettled { hash, status: TxStatus::Failed { seq, reason: cut(reason) } }
            }
            other => other,
        }
    }
}

/// A stored event and its id, for `event_handled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: u64,
    pub event: ClientEvent,
}

/// The app's listener for [`ClientEvent`]s. Called from the core's own
/// threads; it should hand the event over and return quickly.
pub trait EventListener: Send + Sync {
    fn on_event(&self, event: ClientEvent);
}

/// Tunables of the mobile core (defaults from SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Nodes asked at once.
    pub nodes_wanted: usize,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Freshness warning threshold.
    pub stale_after_ms: u64,
    /// A signed transaction expires this many ledgers after the verified tip.
    pub tx_lifetime_ledgers: u64,
    /// Seed of the random pick among high-PageRank nodes (None: from the OS).
    pub selection_seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            nodes_wanted: 3,
            request_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            stale_after_ms: 60_000,
            tx_lifetime_ledgers: 120,
            selection_seed: None,
        }
    }
}

/// Network counters, for the bench and the app's diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStats {
    pub connects: u64,
    pub requests: u64,
    /// Sequential request rounds summed over nodes (a handshake counts one).
    pub round_trips: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// `GetLatest` requests sent (polling).
    pub polls: u64,
    /// Headers a node pushed while subscribed.
    pub pushed_headers: u64,
}
