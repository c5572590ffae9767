//! uniffi bindings of `watt-core` for the Kotlin and Swift SDKs.
//!
//! This crate only adapts: logic stays in `watt-core`, where it is tested
//! without an FFI. Async methods run on a tokio runtime the library owns
//! (the app's threads only wait on them), amounts cross as base units
//! (`u64`, 1 WATT = 10^7), addresses and hashes as text.

uniffi::setup_scaffolding!();

mod logging;
mod platform;
mod types;
mod wallet;

pub use logging::{set_log_sink, LogLevel, LogSink};
pub use platform::{DeviceFacts, Network, PlatformError, PlatformFacts, PowerDecision, SecretKeyStore, Thermal};
pub use types::*;
pub use wallet::{open_wallet, Wallet, WalletConfig};

use std::str::FromStr;
use watt_core::address::{decode_strkey, KeyKind as CoreKind};
use watt_core::Amount;

/// Android loads the library with `System.loadLibrary`: start Logcat logging.
/// The JVM finds this entry point by its exact name, so it must be unmangled
/// (the one exported symbol we name ourselves; first compiled by
/// `scripts/test-arm64.sh`).
#[cfg(target_os = "android")]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "system" fn JNI_OnLoad(_vm: jni::JavaVM, _reserved: *mut std::ffi::c_void) -> jni::sys::jint {
    logging::install();
    jni::sys::JNI_VERSION_1_6
}

/// What a valid key text names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyKind {
    Account,
    Node,
    Secret,
}

/// Checks a `W...`, `N...` or `S...` key and says which it is.
#[uniffi::export]
pub fn check_address(text: String) -> Result<KeyKind, WattError> {
    let (kind, _) = decode_strkey(text.trim()).map_err(|e| WattError::InvalidAddress { reason: e.to_string() })?;
    Ok(match kind {
        CoreKind::Account => KeyKind::Account,
        CoreKind::Node => KeyKind::Node,
        CoreKind::Secret => KeyKind::Secret,
    })
}

/// Parses "12.5 WATT" (or "12.5") into base units (1 WATT = 10^7 units).
#[uniffi::export]
pub fn parse_amount(text: String) -> Result<u64, WattError> {
    Amount::from_str(&text).map(Amount::units).map_err(|e| WattError::InvalidAmount { reason: e.to_string() })
}

/// Formats base units exactly, e.g. 125000000 → "12.5 WATT".
#[uniffi::export]
pub fn format_amount(units: u64) -> String {
    Amount(units).to_string()
}

/// The core library's version.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_map_core_results() {
        let w = watt_core::address::encode_strkey(CoreKind::Account, &[5; 32]);
        assert_eq!(check_address(w.clone()).unwrap(), KeyKind::Account);
        assert!(matches!(check_address(w[1..].to_string()), Err(WattError::InvalidAddress { .. })));
        assert_eq!(parse_amount("12.5 WATT".into()).unwrap(), 125_000_000);
        assert!(matches!(parse_amount("1.00000001".into()), Err(WattError::InvalidAmount { .. })));
        assert_eq!(format_amount(125_000_000), "12.5 WATT");
    }
}
