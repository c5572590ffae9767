//! The records, enums and errors the SDKs see, mirrored from the mobile core
//! (`watt_client`) with FFI-friendly field types.

use watt_client as core;

/// Everything that can go wrong, one variant per thing an app does
/// differently; each message says what a person can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WattError {
    #[error("invalid address: {reason}")]
    InvalidAddress { reason: String },
    #[error("invalid amount: {reason}")]
    InvalidAmount { reason: String },
    #[error("{detail}")]
    InvalidArgument { detail: String },
    #[error("no wallet yet: create one, or restore it from its 24 recovery words")]
    NoWallet,
    #[error("this device already holds a wallet ({account})")]
    WalletExists { account: String },
    #[error("recovery words: {reason}")]
    InvalidRecoveryWords { reason: String },
    #[error("already attested today (day {day}); the next day starts in {next_day_in_s} s")]
    AlreadyAttested { day: u64, next_day_in_s: u64 },
    #[error("the first tap of a new or paid-into account needs an invite from an active account")]
    NeedsInviter,
    #[error("this account is not on the ledger yet: tap first or receive a payment")]
    NoAccount,
    #[error("insufficient balance: {available_units} units available, {needed_units} needed")]
    InsufficientBalance { available_units: u64, needed_units: u64 },
    #[error("no node could be reached: {detail}")]
    NoNodeReachable { detail: String },
    #[error("no node gave an answer that verifies: {detail}")]
    Unverified { detail: String },
    #[error("fork evidence at slot {slot}: two valid proofs for different ledgers; signing stopped")]
    ForkDetected { slot: u64 },
    #[error("the network refused the transaction: {reason}")]
    Rejected { reason: String },
    #[error("not settled yet; the transaction stays pending and is re-submitted")]
    SettleTimeout,
    #[error("the platform key store: {reason}")]
    KeyStore { reason: String },
    #[error("the wallet's storage: {reason}")]
    Storage { reason: String },
    #[error("this wallet's data belongs to another network: {reason}")]
    WrongNetwork { reason: String },
    #[error("unknown node {node_id}")]
    UnknownNode { node_id: String },
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl From<core::ClientError> for WattError {
    fn from(e: core::ClientError) -> Self {
        use core::ClientError as E;
        let text = e.to_string();
        match e {
            E::NoWallet => WattError::NoWallet,
            E::WalletExists { account } => WattError::WalletExists { account },
            E::Mnemonic(reason) => WattError::InvalidRecoveryWords { reason },
            E::Address(reason) => WattError::InvalidAddress { reason },
            E::InvalidArgument(detail) => WattError::InvalidArgument { detail },
            E::AlreadyAttested { day, next_day_in_s } => WattError::AlreadyAttested { day, next_day_in_s },
            E::NeedsInviter => WattError::NeedsInviter,
            E::NoAccount => WattError::NoAccount,
            E::InsufficientBalance { available, needed } => {
                WattError::InsufficientBalance { available_units: available.units(), needed_units: needed.units() }
            }
            E::NoNodeReachable(detail) => WattError::NoNodeReachable { detail },
            E::Unverified(detail) => WattError::Unverified { detail },
            E::Verification(_) => WattError::Unverified { detail: text },
            E::ForkDetected { slot } => WattError::ForkDetected { slot },
            E::Rejected(reason) => WattError::Rejected { reason },
            E::SettleTimeout => WattError::SettleTimeout,
            E::KeyStore(_) => WattError::KeyStore { reason: text },
            E::Storage(_) | E::Corrupt(_) => WattError::Storage { reason: text },
            E::WrongNetwork { .. } => WattError::WrongNetwork { reason: text },
            E::UnknownNode(node_id) => WattError::UnknownNode { node_id },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AttestState {
    NotYet,
    Pending,
    Confirmed,
}

impl From<core::AttestState> for AttestState {
    fn from(s: core::AttestState) -> Self {
        match s {
            core::AttestState::NotYet => AttestState::NotYet,
            core::AttestState::Pending => AttestState::Pending,
            core::AttestState::Confirmed => AttestState::Confirmed,
        }
    }
}

/// Where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TxState {
    Pending,
    Confirmed {
        ledger: u64,
    },
    Failed {
        ledger: u64,
        reason: String,
    },
    /// Passed its last ledger without being included: nothing was charged.
    Expired,
    Superseded,
}

impl From<core::TxStatus> for TxState {
    fn from(s: core::TxStatus) -> Self {
        match s {
            core::TxStatus::Pending => TxState::Pending,
            core::TxStatus::Confirmed { seq } => TxState::Confirmed { ledger: seq },
            core::TxStatus::Failed { seq, reason } => TxState::Failed { ledger: seq, reason },
            core::TxStatus::Expired => TxState::Expired,
            core::TxStatus::Superseded => TxState::Superseded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum HistoryKind {
    Sent { to: String, amount_units: u64, fee_units: u64 },
    Attested { day: u64 },
    Received { amount_units: u64 },
    Reward { day: u64, amount_units: u64 },
    SecurityCircleSet,
    ReferrerSet { referrer: String },
    Storage,
}

impl From<core::HistoryKind> for HistoryKind {
    fn from(k: core::HistoryKind) -> Self {
        match k {
            core::HistoryKind::Sent { to, amount, fee } => {
                HistoryKind::Sent { to: to.to_string(), amount_units: amount.units(), fee_units: fee.units() }
            }
            core::HistoryKind::Attested { day } => HistoryKind::Attested { day },
            core::HistoryKind::Received { amount } => HistoryKind::Received { amount_units: amount.units() },
            core::HistoryKind::Reward { day, amount } => HistoryKind::Reward { day, amount_units: amount.units() },
            core::HistoryKind::SecurityCircleSet => HistoryKind::SecurityCircleSet,
            core::HistoryKind::ReferrerSet { referrer } => HistoryKind::ReferrerSet { referrer: referrer.to_string() },
            core::HistoryKind::Storage => HistoryKind::Storage,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryItem {
    pub id: u64,
    pub time_ms: u64,
    pub kind: HistoryKind,
    pub tx_hash: Option<String>,
    pub state: TxState,
    /// What left the balance: the fee, plus the amount of a payment that took effect.
    pub charged_units: u64,
}

impl From<core::HistoryEntry> for HistoryItem {
    fn from(h: core::HistoryEntry) -> Self {
        HistoryItem {
            id: h.id,
            time_ms: h.time_ms,
            kind: h.kind.into(),
            tx_hash: h.tx_hash.map(|x| x.to_hex()),
            state: h.status.into(),
            charged_units: h.charged.units(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NodeOrigin {
    Genesis,
    Directory,
    User,
}

impl From<core::NodeOrigin> for NodeOrigin {
    fn from(o: core::NodeOrigin) -> Self {
        match o {
            core::NodeOrigin::Genesis => NodeOrigin::Genesis,
            core::NodeOrigin::Directory => NodeOrigin::Directory,
            core::NodeOrigin::User => NodeOrigin::User,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeState {
    pub node_id: String,
    pub address: String,
    pub origin: NodeOrigin,
    pub connected: bool,
    pub good_answers: u64,
    pub bad_answers: u64,
    pub timeouts: u64,
    pub demoted: bool,
    pub last_error: Option<String>,
}

impl From<core::NodeStatus> for NodeState {
    fn from(n: core::NodeStatus) -> Self {
        NodeState {
            node_id: n.node_id.to_string(),
            address: n.address,
            origin: n.origin.into(),
            connected: n.connected,
            good_answers: n.good_answers,
            bad_answers: n.bad_answers,
            timeouts: n.timeouts,
            demoted: n.demoted,
            last_error: n.last_error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingTx {
    pub tx_hash: String,
    pub seq_num: u64,
    pub description: String,
    pub signed_ms: u64,
}

fn describe(kind: &core::TxKind) -> String {
    match kind {
        core::TxKind::Pay { to, amount } => format!("pay {amount} to {to}"),
        core::TxKind::Attest { day } => format!("tap for day {day}"),
        core::TxKind::SetSecurityCircle => "set security circle".into(),
        core::TxKind::SetReferrer { referrer } => format!("set referrer {referrer}"),
        core::TxKind::Storage => "storage".into(),
    }
}

/// Everything the status screen shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletStatus {
    pub account: Option<String>,
    pub verified_ledger: Option<u64>,
    pub verified_hash: Option<String>,
    pub verified_age_ms: Option<u64>,
    /// The newest verified ledger is older than the freshness limit.
    pub stale: bool,
    pub balance_units: Option<u64>,
    pub balance_ledger: Option<u64>,
    pub day: Option<u64>,
    pub attested_today: AttestState,
    /// When the next day starts (Unix ms): the tap's countdown.
    pub next_day_starts_ms: Option<u64>,
    pub pending: Vec<PendingTx>,
    pub nodes: Vec<NodeState>,
    pub fork_slot: Option<u64>,
    pub can_sign: bool,
}

impl From<core::ClientStatus> for WalletStatus {
    fn from(s: core::ClientStatus) -> Self {
        WalletStatus {
            account: s.account.map(|a| a.to_string()),
            verified_ledger: s.verified_seq,
            verified_hash: s.verified_hash.map(|h| h.to_hex()),
            verified_age_ms: s.verified_age_ms,
            stale: s.stale,
            balance_units: s.balance.map(|b| b.units()),
            balance_ledger: s.balance_seq,
            day: s.day,
            attested_today: s.attested_today.into(),
            next_day_starts_ms: s.next_day_starts_ms,
            pending: s
                .pending
                .iter()
                .map(|p| PendingTx {
                    tx_hash: p.hash.to_hex(),
                    seq_num: p.seq_num,
                    description: describe(&p.kind),
                    signed_ms: p.signed_ms,
                })
                .collect(),
            nodes: s.nodes.into_iter().map(Into::into).collect(),
            fork_slot: s.fork_slot,
            can_sign: s.can_sign,
        }
    }
}

/// A balance and the ledger it was proven against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ProvenBalance {
    pub units: u64,
    pub ledger: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct RefreshSummary {
    pub verified_ledger: u64,
    pub nodes_verified: u32,
    pub nodes_failed: u32,
    pub settled: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct NetStats {
    pub connects: u64,
    pub requests: u64,
    pub round_trips: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// `GetLatest` requests sent (polling).
    pub polls: u64,
    /// Headers a node pushed while the wallet followed it.
    pub pushed_headers: u64,
}

/// What the core tells the app as it happens.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum WalletEvent {
    NewVerifiedLedger { ledger: u64, close_time_ms: u64 },
    PaymentReceived { amount_units: u64, balance_units: u64 },
    TransactionSettled { tx_hash: String, state: TxState },
    AttestationConfirmed { day: u64 },
    RewardPaid { day: u64, amount_units: u64 },
    ForkDetected { slot: u64 },
    NodeDemoted { node_id: String, reason: String },
}

/// An event from the wallet's durable queue, with the id to hand back to
/// `event_handled` once the app has dealt with it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QueuedEvent {
    pub id: u64,
    pub event: WalletEvent,
}

impl From<core::StoredEvent> for QueuedEvent {
    fn from(e: core::StoredEvent) -> Self {
        QueuedEvent { id: e.id, event: e.event.into() }
    }
}

impl From<core::ClientEvent> for WalletEvent {
    fn from(e: core::ClientEvent) -> Self {
        use core::ClientEvent as E;
        match e {
            E::NewVerifiedLedger { seq, close_time_ms } => {
                WalletEvent::NewVerifiedLedger { ledger: seq, close_time_ms }
            }
            E::PaymentReceived { amount, balance } => {
                WalletEvent::PaymentReceived { amount_units: amount.units(), balance_units: balance.units() }
            }
            E::TransactionSettled { hash, status } => {
                WalletEvent::TransactionSettled { tx_hash: hash.to_hex(), state: status.into() }
            }
            E::AttestationConfirmed { day } => WalletEvent::AttestationConfirmed { day },
            E::RewardPaid { day, amount } => WalletEvent::RewardPaid { day, amount_units: amount.units() },
            E::ForkDetected { slot } => WalletEvent::ForkDetected { slot },
            E::NodeDemoted { node, reason } => WalletEvent::NodeDemoted { node_id: node.to_string(), reason },
        }
    }
}

/// Where a sector stands (`watt_client::SectorPhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SectorPhase {
    Sealing,
    Sealed,
    PreCommitted,
    Active,
    Faulty,
    Unprovable,
}

impl From<core::SectorPhase> for SectorPhase {
    fn from(p: core::SectorPhase) -> Self {
        match p {
            core::SectorPhase::Sealing => SectorPhase::Sealing,
            core::SectorPhase::Sealed => SectorPhase::Sealed,
            core::SectorPhase::PreCommitted => SectorPhase::PreCommitted,
            core::SectorPhase::Active => SectorPhase::Active,
            core::SectorPhase::Faulty => SectorPhase::Faulty,
            core::SectorPhase::Unprovable => SectorPhase::Unprovable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SectorState {
    pub number: u64,
    pub sector_bytes: u64,
    pub layers: u32,
    pub sealed: bool,
    pub phase: SectorPhase,
    pub labels_done: u64,
    pub labels_total: u64,
    pub comm_r: Option<String>,
}

/// The donation and its sectors (the storage screen).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StorageState {
    pub donated_bytes: u64,
    pub used_bytes: u64,
    pub sectors: Vec<SectorState>,
    /// Storage rewards counted from distributed days, in units.
    pub earned_units: u64,
    pub last_proven_period: Option<u64>,
    /// When the current period's proof window closes (Unix ms).
    pub next_deadline_ms: Option<u64>,
    /// Dropped sectors still to be terminated on the ledger.
    pub terminating: Vec<u64>,
}

impl From<core::StorageStatus> for StorageState {
    fn from(s: core::StorageStatus) -> Self {
        StorageState {
            donated_bytes: s.donated_bytes,
            used_bytes: s.used_bytes,
            earned_units: s.earned.units(),
            last_proven_period: s.last_proven_period,
            next_deadline_ms: s.next_deadline_ms,
            terminating: s.terminating,
            sectors: s
                .sectors
                .into_iter()
                .map(|x| SectorState {
                    number: x.number,
                    sector_bytes: x.sector_bytes,
                    layers: x.layers,
                    sealed: x.sealed,
                    phase: x.phase.into(),
                    labels_done: x.labels_done,
                    labels_total: x.labels_total,
                    comm_r: x.comm_r.map(|c| c.to_hex()),
                })
                .collect(),
        }
    }
}

/// What one background run did, and what the power policy allowed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BackgroundReport {
    pub decision: crate::platform::PowerDecision,
    pub labels_done: u64,
    pub sectors_sealed: u32,
    pub idle: bool,
    /// Ledger operations sent this run ("pre-commit sector 1", "PoSt reveal for period 3").
    pub submitted: Vec<String>,
    /// Work that was due but waits (power policy, network).
    pub deferred: Vec<String>,
    /// Why the ledger part did not run (no node reachable, no account yet).
    pub ledger_skipped: Option<String>,
}
