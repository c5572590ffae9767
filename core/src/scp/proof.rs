//! Externalize proofs (SPEC §4, §7): signed CONFIRM/EXTERNALIZE envelopes
//! of one slot, all for one value, whose signers form a quorum under the
//! quorum sets the verifier trusts and satisfy its own. What phones check
//! before accepting a header, and validators before accepting catch-up.

use super::quorum::is_quorum;
use super::statement::{Envelope, Pledges, Value};
use super::QuorumSet;
use crate::address::NodeId;
use crate::crypto::NetworkId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof has no envelopes")]
    Empty,
    #[error("envelope from {0} is for another slot")]
    WrongSlot(NodeId),
    #[error("envelope from {0} is not a CONFIRM or EXTERNALIZE")]
    NotCommit(NodeId),
    #[error("envelopes name different values")]
    MixedValues,
    #[error("the signature of {0} does not verify")]
    BadSignature(NodeId),
    #[error("{0} appears twice")]
    Duplicate(NodeId),
    #[error("the signers do not form a quorum for the trusted quorum sets")]
    NoQuorum,
    #[error("more than 1000 envelopes")]
    TooMany,
}

fn committed_value(e: &Envelope) -> Option<&Value> {
    match &e.statement.pledges {
        Pledges::Confirm { ballot, .. } => Some(&ballot.value),
        Pledges::Externalize { commit, .. } => Some(&commit.value),
        _ => None,
    }
}

/// Checks a proof for `slot` and returns the value it proves.
/// `trusted` gives the quorum set the verifier trusts for a node (not the one
/// the node claims); `local` is the verifier's own pinned set.
pub fn verify_externalize_proof(
    network: &NetworkId,
    slot: u64,
    envelopes: &[Envelope],
    local: &QuorumSet,
    trusted: impl Fn(&NodeId) -> Option<QuorumSet>,
) -> Result<Value, ProofError> {
    verify_externalize_proof_with(slot, envelopes, local, trusted, |e| e.verify(network).is_ok())
}

/// [`verify_externalize_proof`] with the signature check supplied: a
/// validator has usually verified these very envelopes when they arrived
/// and answers from its cache instead of checking each signature again.
pub fn verify_externalize_proof_with(
    slot: u64,
    envelopes: &[Envelope],
    local: &QuorumSet,
    trusted: impl Fn(&NodeId) -> Option<QuorumSet>,
    mut signature_ok: impl FnMut(&Envelope) -> bool,
) -> Result<Value, ProofError> {
    let first = envelopes.first().ok_or(ProofError::Empty)?;
    let value = committed_value(first).ok_or(ProofError::NotCommit(first.statement.node_id))?.clone();
    let mut signers: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    for e in envelopes {
        let node = e.statement.node_id;
        if e.statement.slot_index != slot {
            return Err(ProofError::WrongSlot(node));
        }
        let v = committed_value(e).ok_or(ProofError::NotCommit(node))?;
        if *v != value {
            return Err(ProofError::MixedValues);
        }
        if signers.insert(node, node).is_some() {
            return Err(ProofError::Duplicate(node));
        }
    }
    // Only signers the verifier trusts count; the others' envelopes are
    // ignored unchecked, so padding a proof with self-made signers costs the
    // verifier nothing. The quorum is decided on ids first, and signatures,
    // the expensive part, are checked last and only for trusted signers.
    signers.retain(|n, _| trusted(n).is_some());
    if !is_quorum(local, signers.iter(), |n: &NodeId| trusted(n), |_| true) {
        return Err(ProofError::NoQuorum);
    }
    for e in envelopes.iter().filter(|e| signers.contains_key(&e.statement.node_id)) {
        if !signature_ok(e) {
            return Err(ProofError::BadSignature(e.statement.node_id));
        }
    }
    Ok(value)
}
