//! What SCP needs from the application (stellar-core's `SCPDriver`): value
//! validation and combination, signatures, quorum sets by hash, and the hash
//! functions and timeouts of nomination and ballots.

use super::statement::{Envelope, Statement, Value};
use super::QuorumSet;
use crate::address::NodeId;
use crate::crypto::Hash256;
use std::collections::BTreeSet;

/// How far a value checks out. `MaybeValid` is for values that depend on state
/// the node does not have yet (e.g. while catching up): SCP follows them but
/// does not emit statements that rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Validity {
    Invalid,
    MaybeValid,
    FullyValid,
}

/// The two timers of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    Nomination,
    Ballot,
}

/// Longest timeout, whatever the round (stellar-core caps at 30 minutes).
pub const MAX_TIMEOUT_MS: u64 = 30 * 60 * 1000;

pub trait Driver {
    /// Checks a value proposed for `slot` (`nomination` is true while nominating).
    fn validate_value(&mut self, slot: u64, value: &Value, nomination: bool) -> Validity;

    /// A valid variation of a value that is not fully valid, if there is one.
    fn extract_valid_value(&mut self, _slot: u64, _value: &Value) -> Option<Value> {
        None
    }

    /// Whether `value`, found in round leader `leader`'s NOMINATE, is that
    /// leader's own proposal. Only such values are taken up (SPEC §4: the
    /// proposer is the nominator), so a leader cannot offer a choice of
    /// proposers, and of their randomness.
    fn proposed_by(&mut self, _slot: u64, _value: &Value, _leader: &NodeId) -> bool {
        true
    }

    /// Makes one value out of the confirmed nominated candidates.
    fn combine_candidates(&mut self, slot: u64, candidates: &BTreeSet<Value>) -> Option<Value>;

    /// Signs a statement of the local node.
    fn sign(&mut self, statement: Statement) -> Envelope;

    /// Checks an envelope's signature.
    fn verify(&mut self, envelope: &Envelope) -> bool;

    /// A quorum set by hash, if the application knows it.
    fn quorum_set(&mut self, hash: &Hash256) -> Option<QuorumSet>;

    /// Nomination's per-node hash (priority when `priority`, else the weight lottery).
    fn hash_node(&mut self, slot: u64, prev: &Value, priority: bool, round: u32, node: &NodeId) -> u64 {
        let mut h = blake3::Hasher::new();
        h.update(b"watt/v1/scp-node");
        h.update(&slot.to_le_bytes());
        h.update(prev.as_bytes());
        h.update(&[if priority { 2 } else { 1 }]);
        h.update(&round.to_le_bytes());
        h.update(&node.0 .0);
        first_u64(h.finalize().as_bytes())
    }

    /// Nomination's per-value hash: which of a leader's values to pick up.
    fn hash_value(&mut self, slot: u64, prev: &Value, round: u32, value: &Value) -> u64 {
        let mut h = blake3::Hasher::new();
        h.update(b"watt/v1/scp-val");
        h.update(&slot.to_le_bytes());
        h.update(prev.as_bytes());
        h.update(&[3]);
        h.update(&round.to_le_bytes());
        h.update(value.as_bytes());
        first_u64(h.finalize().as_bytes())
    }

    /// Timeout of a round: 1 s + 1 s per round after the first (SPEC §4).
    fn timeout_ms(&self, _kind: TimerKind, round: u32) -> u64 {
        (u64::from(round.max(1)) * 1000).min(MAX_TIMEOUT_MS)
    }
}

fn first_u64(b: &[u8; 32]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_le_bytes(x)
}
