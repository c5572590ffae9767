//! What validators say to each other (SPEC §4, draft-mazieres-dinrg-scp §3):
//! ballots, the four statement kinds and signed envelopes.

use crate::address::NodeId;
use crate::codec::{encode, BoundedBytes, BoundedVec, Wire};
use crate::crypto::{Domain, Hash256, Keypair, NetworkId, Signature, SignatureError};
use serde::{Deserialize, Serialize};

/// Largest consensus value in bytes (an encoded `ScpValue` is a few hundred).
pub const MAX_VALUE_LEN: usize = 2048;
/// Most values one NOMINATE may carry in `votes` or in `accepted`.
pub const MAX_NOMINATED: usize = 64;

/// An opaque consensus value: SCP compares and hashes values as bytes; the
/// driver knows they are encoded [`crate::ledger::ScpValue`]s.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Value(pub BoundedBytes<MAX_VALUE_LEN>);

impl Value {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = blake3::hash(&self.0);
        write!(f, "Value({}…)", &crate::hex::encode(&h.as_bytes()[..4]))
    }
}

/// A ballot `<counter, value>`; ordered by counter, then value (draft §3.5).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub counter: u32,
    pub value: Value,
}

/// The four statement kinds, with the fields stellar-core's XDR gives them.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pledges {
    Nominate {
        quorum_set_hash: Hash256,
        votes: BoundedVec<Value, MAX_NOMINATED>,
        accepted: BoundedVec<Value, MAX_NOMINATED>,
    },
    Prepare {
        quorum_set_hash: Hash256,
        ballot: Ballot,
        prepared: Option<Ballot>,
        prepared_prime: Option<Ballot>,
        n_c: u32,
        n_h: u32,
    },
    Confirm {
        ballot: Ballot,
        n_prepared: u32,
        n_commit: u32,
        n_h: u32,
        quorum_set_hash: Hash256,
    },
    Externalize {
        commit: Ballot,
        n_h: u32,
        commit_quorum_set_hash: Hash256,
    },
}

/// A statement by `node_id` about slot `slot_index`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Statement {
    pub node_id: NodeId,
    pub slot_index: u64,
    pub pledges: Pledges,
}

/// A signed statement: the signature covers `network_id ‖ "watt/v1/scp-statement" ‖ statement`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Envelope {
    pub statement: Statement,
    pub signature: Signature,
}

impl Wire for Envelope {
    // A NOMINATE with 2 × 64 maximal values, plus headers.
    const MAX_ENCODED_LEN: usize = 2 * MAX_NOMINATED * (MAX_VALUE_LEN + 4) + 256;
}

impl Statement {
    pub fn sign(self, key: &Keypair, network: &NetworkId) -> Envelope {
        let signature = key.sign(network, Domain::ScpStatement, &encode_statement(&self));
        Envelope { statement: self, signature }
    }

    /// The quorum set this statement's node claims (by hash).
    pub fn quorum_set_hash(&self) -> Hash256 {
        match &self.pledges {
            Pledges::Nominate { quorum_set_hash, .. }
            | Pledges::Prepare { quorum_set_hash, .. }
            | Pledges::Confirm { quorum_set_hash, .. } => *quorum_set_hash,
            Pledges::Externalize { commit_quorum_set_hash, .. } => *commit_quorum_set_hash,
        }
    }
}

impl Envelope {
    pub fn verify(&self, network: &NetworkId) -> Result<(), SignatureError> {
        crate::crypto::verify(
            self.statement.node_id.public_key(),
            network,
            Domain::ScpStatement,
            &encode_statement(&self.statement),
            &self.signature,
        )
    }
}

fn encode_statement(s: &Statement) -> Vec<u8> {
    crate::codec::to_bytes(s).expect("statements only use codec-supported shapes")
}

/// Hash of an envelope's canonical bytes (flooding de-duplication, proof sets).
pub fn envelope_hash(e: &Envelope) -> Hash256 {
    crate::crypto::hash_tagged(Domain::ScpStatement, &encode(e))
}
