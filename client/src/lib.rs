//! The phone library (SPEC §7): what runs on every phone, and the API the
//! Kotlin and Swift SDKs wrap. Every rule it applies lives in `watt-core`
//! (verification is the sans-IO light client, `watt_core::light`); this
//! crate is the shell around them: QUIC to several nodes, redb on the phone,
//! the wallet secret sealed by the platform's key store.

pub mod client;
pub mod directory;
pub mod error;
pub mod net;
pub mod storage;
pub mod store;
pub mod types;
pub mod vault;
pub mod wallet;

pub use client::{BackgroundReport, RefreshSummary, WattClient};
pub use error::ClientError;
pub use storage::{BackgroundProgress, SectorPhase, SectorStatus, StorageDuties, StorageStatus};
pub use types::*;
pub use vault::{FileKeyStore, KeyStoreError, SecretKeyStore};
