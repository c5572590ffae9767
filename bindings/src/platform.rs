//! What the app supplies: the platform's key store (Android Keystore / iOS
//! Keychain) and the device facts the power policy reads.

use std::sync::Arc;
use watt_client::KeyStoreError;
use watt_core::storage::power;

/// A failure the app reports from one of its callbacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PlatformError {
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PlatformError::Failed { reason: e.reason }
    }
}

/// The app's secure key store. It returns the same 32 random bytes every
/// time (created on first use, kept in the Keystore/Keychain); the core uses
/// them to seal the wallet's recovery secret at rest and never stores them.
#[uniffi::export(with_foreign)]
pub trait SecretKeyStore: Send + Sync {
    fn wrapping_key(&self) -> Result<Vec<u8>, PlatformError>;
}

/// Adapts the app's key store to the core's.
pub(crate) struct ForeignKeyStore(pub Arc<dyn SecretKeyStore>);

impl watt_client::SecretKeyStore for ForeignKeyStore {
    fn wrapping_key(&self) -> Result<Vec<u8>, KeyStoreError> {
        self.0.wrapping_key().map_err(|e| KeyStoreError::Unavailable(e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Thermal {
    Nominal,
    Fair,
    Serious,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Network {
    None,
    Metered,
    Unmetered,
}

/// The device as the platform sees it right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DeviceFacts {
    pub battery_percent: u8,
    pub charging: bool,
    pub thermal: Thermal,
    pub low_power_mode: bool,
    pub network: Network,
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub screen_on: bool,
}

impl From<DeviceFacts> for power::DeviceFacts {
    fn from(f: DeviceFacts) -> Self {
        power::DeviceFacts {
            battery_percent: f.battery_percent.min(100),
            charging: f.charging,
            thermal: match f.thermal {
                Thermal::Nominal => power::Thermal::Nominal,
                Thermal::Fair => power::Thermal::Fair,
                Thermal::Serious => power::Thermal::Serious,
                Thermal::Critical => power::Thermal::Critical,
            },
            low_power_mode: f.low_power_mode,
            network: match f.network {
                Network::None => power::Network::None,
                Network::Metered => power::Network::Metered,
                Network::Unmetered => power::Network::Unmetered,
            },
            free_bytes: f.free_bytes,
            total_bytes: f.total_bytes,
            screen_on: f.screen_on,
        }
    }
}

/// The app reports the device's state when the core asks (BatteryManager,
/// PowerManager and StatFs on Android; UIDevice, ProcessInfo and the file
/// system on iOS).
#[uniffi::export(with_foreign)]
pub trait PlatformFacts: Send + Sync {
    fn current(&self) -> Result<DeviceFacts, PlatformError>;
}

/// What background work the device's state allows now, and why not.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PowerDecision {
    pub may_seal: bool,
    pub may_prove: bool,
    pub may_upload_small: bool,
    pub may_upload_seal_proofs: bool,
    pub reason: String,
}

impl From<power::PowerDecision> for PowerDecision {
    fn from(d: power::PowerDecision) -> Self {
        PowerDecision {
            may_seal: d.may_seal,
            may_prove: d.may_prove,
            may_upload_small: d.may_upload_small,
            may_upload_seal_proofs: d.may_upload_seal_proofs,
            reason: d.reason,
        }
    }
}

/// The power policy (SPEC §6) for the facts the app gives directly.
#[uniffi::export]
pub fn power_policy(facts: DeviceFacts, next_sector_bytes: u64, deadline_in_ms: Option<u64>) -> PowerDecision {
    power::decide(&facts.into(), next_sector_bytes, deadline_in_ms).into()
}
