use super::hash::{Domain, Hash256};
use ring::signature::{self, KeyPair as _};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `network_id` = BLAKE3 of the network passphrase (SPEC §1). Every signature
/// covers it, so nothing signed on one network is valid on another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkId(pub Hash256);

impl NetworkId {
    pub fn from_passphrase(passphrase: &str) -> NetworkId {
        NetworkId(Hash256(*blake3::hash(passphrase.as_bytes()).as_bytes()))
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkId({:?})", self.0)
    }
}

/// An Ed25519 public key (accounts and nodes alike; their text forms differ).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "crate::codec::fixed_bytes")] pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}…)", &crate::hex::encode(&self.0)[..12])
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "crate::codec::fixed_bytes")] pub [u8; 64]);

impl Signature {
    pub const ZERO: Signature = Signature([0; 64]);
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &crate::hex::encode(&self.0)[..12])
    }
}

/// The 32-byte Ed25519 seed. Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretSeed(pub(crate) [u8; 32]);

impl SecretSeed {
    pub fn from_bytes(bytes: [u8; 32]) -> SecretSeed {
        SecretSeed(bytes)
    }
    /// The raw seed, for encrypting at rest or exporting as an `S...` strkey.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn generate() -> Result<SecretSeed, SignatureError> {
        use ring::rand::SecureRandom;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut seed).map_err(|_| SignatureError::NoRandomness)?;
        let s = SecretSeed(seed);
        seed.zeroize();
        Ok(s)
    }
}

impl fmt::Debug for SecretSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSeed(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature does not verify for this key, network and message kind")]
    BadSignature,
    #[error("the seed is not a valid Ed25519 secret key")]
    BadSeed,
    #[error("the system random number generator failed")]
    NoRandomness,
}

/// A signing key pair built from a seed.
pub struct Keypair {
    seed: SecretSeed,
    pair: signature::Ed25519KeyPair,
    public: PublicKey,
}

impl Keypair {
    pub fn from_seed(seed: SecretSeed) -> Result<Keypair, SignatureError> {
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(&seed.0).map_err(|_| SignatureError::BadSeed)?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(Keypair { seed, pair, public: PublicKey(public) })
    }
    pub fn generate() -> Result<Keypair, SignatureError> {
        Keypair::from_seed(SecretSeed::generate()?)
    }
    pub fn public(&self) -> PublicKey {
        self.public
    }
    pub fn seed(&self) -> &SecretSeed {
        &self.seed
    }
    /// Signs `network_id ‖ tag ‖ bytes` (SPEC §1).
    pub fn sign(&self, network: &NetworkId, domain: Domain, bytes: &[u8]) -> Signature {
        let msg = signed_message(network, domain, bytes);
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(&msg).as_ref());
        Signature(out)
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair::from_seed(self.seed.clone()).expect("a seed that made a key pair makes it again")
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair").field("public", &self.public).finish_non_exhaustive()
    }
}

fn signed_message(network: &NetworkId, domain: Domain, bytes: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let mut msg = Vec::with_capacity(32 + tag.len() + bytes.len());
    msg.extend_from_slice(&network.0 .0);
    msg.extend_from_slice(tag);
    msg.extend_from_slice(bytes);
    msg
}

/// Checks a signature over `network_id ‖ tag ‖ bytes`.
pub fn verify(
    key: &PublicKey,
    network: &NetworkId,
    domain: Domain,
    bytes: &[u8],
    sig: &Signature,
) -> Result<(), SignatureError> {
    let msg = signed_message(network, domain, bytes);
    signature::UnparsedPublicKey::new(&signature::ED25519, &key.0)
        .verify(&msg, &sig.0)
        .map_err(|_| SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_seed_is_wiped_when_dropped_and_never_printed() {
        let seed = SecretSeed::from_bytes([0xa5; 32]);
        assert_eq!(format!("{seed:?}"), "SecretSeed(<redacted>)");
        let mut slot = std::mem::ManuallyDrop::new(seed);
        // SAFETY: the seed is dropped in place once and never used as a
        // SecretSeed again; its bytes stay allocated inside `slot` and are
        // read back as plain bytes, which any bit pattern is.
        #[allow(unsafe_code)] // the one unsafe block: reads a dropped seed back
        let left = unsafe {
            std::ptr::drop_in_place(&mut *slot as *mut SecretSeed);
            std::ptr::read(std::ptr::addr_of!(slot.0))
        };
        assert_eq!(left, [0u8; 32], "drop must overwrite the seed");
    }

    fn pair(n: u8) -> Keypair {
        Keypair::from_seed(SecretSeed::from_bytes([n; 32])).unwrap()
    }

    #[test]
    fn signature_verifies_only_on_same_network_domain_and_bytes() {
        let k = pair(1);
        let devnet = NetworkId::from_passphrase("WATT devnet");
        let testnet = NetworkId::from_passphrase("WATT testnet");
        let sig = k.sign(&devnet, Domain::Transaction, b"pay 5");
        assert_eq!(verify(&k.public(), &devnet, Domain::Transaction, b"pay 5", &sig), Ok(()));
        assert_eq!(
            verify(&k.public(), &testnet, Domain::Transaction, b"pay 5", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&k.public(), &devnet, Domain::ScpStatement, b"pay 5", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&k.public(), &devnet, Domain::Transaction, b"pay 6", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&pair(2).public(), &devnet, Domain::Transaction, b"pay 5", &sig),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1 TEST 1: empty message, seed 9d61b1...; our prefix is empty
        // only if network and tag are, so check the raw key derivation instead.
        let seed = crate::hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let k = Keypair::from_seed(SecretSeed::from_bytes(seed.try_into().unwrap())).unwrap();
        assert_eq!(
            crate::hex::encode(&k.public().0),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn secret_seed_debug_is_redacted() {
        let s = SecretSeed::from_bytes([7; 32]);
        assert_eq!(format!("{s:?}"), "SecretSeed(<redacted>)");
    }
}
