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

pub use client::{BackgroundReport, EventWaiter, RefreshSummary, WattClient};
pub use error::ClientError;
pub use storage::{BackgroundProgress, SectorPhase, SectorStatus, StorageDuties, StorageStatus};
pub use types::*;
pub use vault::{FileKeyStore, KeyStoreError, SecretKeyStore};

/// For the kill tests (feature `kill-points`, never in the phone library):
/// with `WATT_PAUSE_AT=<point>` the process announces the point on stderr
/// and sleeps there, so a test can SIGKILL it at that exact step.
#[cfg(feature = "kill-points")]
pub fn pause_point(point: &str) {
    if std::env::var("WATT_PAUSE_AT").is_ok_and(|p| p == point) {
        eprintln!("watt: paused at {point}");
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

/// Does nothing: kill points exist only in test builds (feature `kill-points`).
#[cfg(not(feature = "kill-points"))]
pub fn pause_point(_point: &str) {}
