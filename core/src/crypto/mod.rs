//! Hashing and signatures (SPEC §1): BLAKE3-256 with domain tags, Ed25519 via `ring`.

mod hash;
mod keys;
pub mod splitmix;
pub mod vrf;

pub use hash::{hash_tagged, Domain, Hash256, TaggedHasher};
pub use keys::{verify, Keypair, NetworkId, PublicKey, SecretSeed, Signature, SignatureError};
