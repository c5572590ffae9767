//! The mobile core's errors: each says what happened and what the person
//! can do about it; the FFI maps them one-to-one onto SDK exceptions.

use crate::store::StoreError;
use crate::vault::KeyStoreError;
use watt_core::amount::Amount;
use watt_core::light::LightError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("no wallet yet: create one, or restore it from its 24 recovery words")]
    NoWallet,
    #[error("this data directory already holds a wallet ({account}); restoring another would hide it")]
    WalletExists { account: String },
    #[error("recovery words: {0}")]
    Mnemonic(String),
    #[error("invalid address: {0}")]
    Address(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("already attested today (day {day}); the next day starts in {next_day_in_s} s")]
    AlreadyAttested { day: u64, next_day_in_s: u64 },
    #[error(
        "this account is not a miner yet (new, or only paid into): its first tap needs an invite from an active account (`watt invite`)"
    )]
    NeedsInviter,
    #[error("this account is not on the ledger yet: attest first or receive a payment")]
    NoAccount,
    #[error("insufficient balance: {available} available, {needed} needed (amount + fee + pending payments)")]
    InsufficientBalance { available: Amount, needed: Amount },
    #[error("no node could be reached: {0}")]
    NoNodeReachable(String),
    #[error("no node gave an answer that verifies: {0}")]
    Unverified(String),
    #[error("a node answered with data that does not verify: {0}")]
    Verification(#[from] LightError),
    #[error("fork evidence at slot {slot}: two valid proofs for different ledgers; this wallet stopped signing")]
    ForkDetected { slot: u64 },
    #[error("the network refused the transaction: {0}")]
    Rejected(String),
    #[error("timed out waiting for the transaction to settle (it stays pending and will be re-submitted)")]
    SettleTimeout,
    #[error("the wallet's key store: {0}")]
    KeyStore(#[from] KeyStoreError),
    #[error("{0}")]
    Storage(String),
    #[error("the data directory is damaged: {0}")]
    Corrupt(String),
    #[error("this data directory belongs to another network (genesis {stored}, not {given})")]
    WrongNetwork { stored: String, given: String },
    #[error("unknown node {0}")]
    UnknownNode(String),
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { .. } => ClientError::Corrupt(e.to_string()),
            StoreError::Open { ref reason, .. } if looks_corrupt(reason) => ClientError::Corrupt(e.to_string()),
            other => ClientError::Storage(other.to_string()),
        }
    }
}

/// redb reports a damaged file in several ways; all of them mean "corrupt".
fn looks_corrupt(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    ["corrupt", "invalid", "magic", "checksum", "not a redb", "upgrade", "unexpected", "eof", "fill whole buffer"]
        .iter()
        .any(|k| r.contains(k))
}
