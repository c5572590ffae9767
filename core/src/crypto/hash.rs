use serde::{Deserialize, Serialize};
use std::fmt;

/// A BLAKE3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Hash256(#[serde(with = "crate::codec::fixed_bytes")] pub [u8; 32]);

impl Hash256 {
    pub const ZERO: Hash256 = Hash256([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Maps the hash to `[0, m)`: first 8 bytes as `u64` LE, mod `m` (SPEC §1).
    pub fn to_range(&self, m: u64) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first) % m
    }
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
    pub fn from_hex(s: &str) -> Result<Hash256, crate::hex::HexError> {
        let bytes = crate::hex::decode(s)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| crate::hex::HexError::OddLength(b.len() * 2))?;
        Ok(Hash256(arr))
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Every kind of hashed or signed object has its own tag `watt/v1/<kind>`
/// (SPEC §1), so bytes of one kind can never be taken for another. The tags are
/// prefix-free (checked by a test), so `tag ‖ bytes` is unambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    LedgerHeader,
    Transaction,
    TxSet,
    TxResults,
    ScpValue,
    ScpStatement,
    ProofSet,
    Genesis,
    QuorumSet,
    StateKey,
    StateLeaf,
    StateNode,
    StateValue,
    NodeKeyProof,
    Vrf,
    Attestation,
    Invite,
    /// The day-end draw of pending first taps (SPEC §5).
    AdmissionLottery,
    Test,
}

impl Domain {
    pub const ALL: &'static [Domain] = &[
        Domain::LedgerHeader,
        Domain::Transaction,
        Domain::TxSet,
        Domain::TxResults,
        Domain::ScpValue,
        Domain::ScpStatement,
        Domain::ProofSet,
        Domain::Genesis,
        Domain::QuorumSet,
        Domain::StateKey,
        Domain::StateLeaf,
        Domain::StateNode,
        Domain::StateValue,
        Domain::NodeKeyProof,
        Domain::Vrf,
        Domain::Attestation,
        Domain::Invite,
        Domain::AdmissionLottery,
        Domain::Test,
    ];

    pub const fn tag(self) -> &'static [u8] {
        match self {
            Domain::LedgerHeader => b"watt/v1/ledger-header",
            Domain::Transaction => b"watt/v1/transaction",
            Domain::TxSet => b"watt/v1/txset",
            Domain::TxResults => b"watt/v1/results",
            Domain::ScpValue => b"watt/v1/scp-value",
            Domain::ScpStatement => b"watt/v1/scp-statement",
            Domain::ProofSet => b"watt/v1/proof-set",
            Domain::Genesis => b"watt/v1/genesis",
            Domain::QuorumSet => b"watt/v1/quorum-set",
            Domain::StateKey => b"watt/v1/state-key",
            Domain::StateLeaf => b"watt/v1/state-leaf",
            Domain::StateNode => b"watt/v1/state-node",
            Domain::StateValue => b"watt/v1/state-value",
            Domain::NodeKeyProof => b"watt/v1/node-key-proof",
            Domain::Vrf => b"watt/v1/vrf",
            Domain::Attestation => b"watt/v1/attestation",
            Domain::Invite => b"watt/v1/invite",
            Domain::AdmissionLottery => b"watt/v1/admission-lottery",
            Domain::Test => b"watt/v1/test",
        }
    }
}

/// `H(tag ‖ bytes)`.
pub fn hash_tagged(domain: Domain, bytes: &[u8]) -> Hash256 {
    let mut h = TaggedHasher::new(domain);
    h.update(bytes);
    h.finalize()
}

/// Incremental `H(tag ‖ part ‖ part ‖ ...)`.
pub struct TaggedHasher(blake3::Hasher);

impl TaggedHasher {
    pub fn new(domain: Domain) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(domain.tag());
        TaggedHasher(h)
    }
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }
    pub fn finalize(&self) -> Hash256 {
        Hash256(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_tags_are_prefix_free() {
        for a in Domain::ALL {
            for b in Domain::ALL {
                if a != b {
                    assert!(!b.tag().starts_with(a.tag()), "{a:?} is a prefix of {b:?}");
                }
            }
        }
    }

    #[test]
    fn tagged_hash_is_blake3_of_tag_then_bytes() {
        let expect = blake3::hash(b"watt/v1/testabc");
        assert_eq!(hash_tagged(Domain::Test, b"abc").0, *expect.as_bytes());
        assert_ne!(hash_tagged(Domain::Test, b"abc"), hash_tagged(Domain::Genesis, b"abc"));
    }

    #[test]
    fn to_range_reads_first_eight_bytes_le() {
        let mut h = Hash256::ZERO;
        h.0[0] = 10;
        h.0[1] = 1; // 266
        assert_eq!(h.to_range(1000), 266);
        assert_eq!(h.to_range(7), 266 % 7);
    }
}
