//! WATT core: the protocol (types, canonical codec, crypto), and the pure state
//! machines every validator and phone runs. IO lives in shells elsewhere
//! (`watt-client` on phones, `watt-node` on validators): this crate depends
//! on no runtime, socket or database, so the compiler keeps the rules pure.

pub mod address;
pub mod amount;
pub mod codec;
pub mod crypto;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzz;
pub mod hex;
pub mod ledger;
pub mod light;
pub mod merkle;
pub mod mnemonic;
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
