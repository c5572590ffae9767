//! WATT core: the protocol (types, canonical codec, crypto), and the pure state
//! machines every validator and phone runs. IO lives in shells elsewhere.

pub mod address;
pub mod amount;
pub mod codec;
pub mod crypto;
pub mod fuzz;
pub mod hex;
pub mod ledger;
pub mod light;
pub mod merkle;
pub mod mnemonic;
#[cfg(feature = "client")]
pub mod mobile;
#[cfg(feature = "client")]
pub mod net;
pub mod scp;
pub mod storage;
pub mod wire;

#[cfg(test)]
mod arbitrary;
#[cfg(test)]
mod roundtrip_tests;

pub use address::{AccountId, AddressError, NodeId};
pub use amount::{Amount, AmountError};
pub use codec::{decode, encode, CodecError, Wire};
pub use crypto::{Hash256, Keypair, NetworkId, PublicKey, SecretSeed, Signature};
