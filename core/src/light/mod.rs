//! The phone's light client (SPEC §7), sans-IO: what it trusts (the pinned
//! genesis and its validators' quorum sets) and how every answer from a node
//! is checked before anything is believed. Majority is not security: one
//! valid proof is enough to accept, two valid proofs for different values of
//! one slot are fork evidence, and an invalid answer demotes its node.

use crate::address::{AccountId, NodeId};
use crate::codec::{decode, encode};
use crate::crypto::{Hash256, NetworkId};
use crate::ledger::smt::{self, Proven};
use crate::ledger::{
    AccountEntry, Genesis, LedgerHeader, MerklePath, ScpValue, StateEntry, StateKey, StateProof, TxResult,
};
use crate::scp::proof::{verify_externalize_proof, ProofError};
use crate::scp::{QuorumSet, Value};
use crate::wire::ExternalizeProof;
use std::collections::BTreeMap;

/// What the phone pins: the genesis hash, the network and the validators'
/// quorum sets. It changes only through upgrades proven by the set it trusts.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    pub genesis_hash: Hash256,
    pub network_id: NetworkId,
    pub genesis_time: u64,
    pub day_seconds: u64,
    pub quorum_sets: BTreeMap<NodeId, QuorumSet>,
    /// The phone's own quorum set: every proof must satisfy it.
    pub local_qset: QuorumSet,
}

impl TrustAnchor {
    /// Pins a genesis: the phone trusts what its validators' quorum sets
    /// trust, and requires a quorum of the first validator's set.
    pub fn from_genesis(g: &Genesis) -> TrustAnchor {
        let quorum_sets: BTreeMap<NodeId, QuorumSet> =
            g.validators.iter().map(|v| (v.node_id, v.quorum_set.clone())).collect();
        let local_qset =
            g.validators.first().map(|v| v.quorum_set.clone()).unwrap_or_else(|| QuorumSet::flat(1, vec![]));
        TrustAnchor {
            genesis_hash: g.hash(),
            network_id: g.network_id(),
            genesis_time: g.genesis_time,
            day_seconds: g.params.day_seconds,
            quorum_sets,
            local_qset,
        }
    }
}

/// Why an answer was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    #[error("externalize proof: {0}")]
    Proof(#[from] ProofError),
    #[error("the proven value does not decode as a ledger value")]
    BadValue,
    #[error("header {seq} is not the one the proof of slot {slot} names")]
    HeaderMismatch { seq: u64, slot: u64 },
    #[error("header {0} does not link to the verified chain")]
    BrokenChain(u64),
    #[error("state proof does not match the verified state root")]
    BadStateProof,
    #[error("the entry returned is not the one the proof commits to")]
    EntryMismatch,
    #[error("transaction result does not match the verified results root")]
    BadInclusion,
    #[error("header {got} is older than the verified {have}")]
    Stale { got: u64, have: u64 },
    #[error("not fork evidence: two valid proofs of one slot for different values are needed")]
    NotAFork,
}

/// A header accepted through an externalize proof of the next slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHeader {
    pub header: LedgerHeader,
    /// The value externalized for slot `header.seq + 1`, and its hash.
    pub next_value: Value,
    pub signers: Vec<NodeId>,
}

/// Accepts header `s-1` only through the externalize proof of slot `s` (SPEC §7).
pub fn verify_latest(
    anchor: &TrustAnchor,
    header: &LedgerHeader,
    proof: &ExternalizeProof,
) -> Result<VerifiedHeader, LightError> {
    let value =
        verify_externalize_proof(&anchor.network_id, proof.slot, &proof.envelopes(), &anchor.local_qset, |n| {
            anchor.quorum_sets.get(n).cloned()
        })?;
    let v: ScpValue = decode(value.as_bytes()).map_err(|_| LightError::BadValue)?;
    // A hostile header may carry any seq: u64::MAX + 1 must not panic.
    if header.seq.checked_add(1) != Some(proof.slot) || v.prev_header_hash != header.hash() {
        return Err(LightError::HeaderMismatch { seq: header.seq, slot: proof.slot });
    }
    Ok(VerifiedHeader { header: header.clone(), next_value: value, signers: proof.signers().collect() })
}

/// Older headers, accepted by `prev_hash` links down from a verified one.
/// `older` is ascending and must end right below `trusted`.
pub fn verify_chain(trusted: &LedgerHeader, older: &[LedgerHeader]) -> Result<(), LightError> {
    let mut next = trusted;
    for h in older.iter().rev() {
        if h.seq + 1 != next.seq || h.hash() != next.prev_hash {
            return Err(LightError::BrokenChain(h.seq));
        }
        next = h;
    }
    Ok(())
}

/// An account's entry (or its absence) proven against a verified header.
pub fn verify_account(
    header: &VerifiedHeader,
    account: &AccountId,
    entry: Option<&AccountEntry>,
    proof: &StateProof,
) -> Result<Option<AccountEntry>, LightError> {
    let key = StateKey::Account(*account);
    let proven = smt::verify(&header.header.state_root, &key.hash(), proof).map_err(|_| LightError::BadStateProof)?;
    match (proven, entry) {
        (Proven::Absent, None) => Ok(None),
        (Proven::Present(vh), Some(e)) => {
            let bytes = encode(&StateEntry::Account(e.clone()));
            if smt::value_hash(&bytes) != vh {
                return Err(LightError::EntryMismatch);
            }
            Ok(Some(e.clone()))
        }
        _ => Err(LightError::EntryMismatch),
    }
}

/// Any state entry (raw encoding as served) proven against a verified
/// header's `state_root` (the tip, or a header chained to it); the entry
/// must be of the key's kind.
pub fn verify_entry(
    header: &LedgerHeader,
    key: &StateKey,
    entry: Option<&[u8]>,
    proof: &StateProof,
) -> Result<Option<StateEntry>, LightError> {
    let proven = smt::verify(&header.state_root, &key.hash(), proof).map_err(|_| LightError::BadStateProof)?;
    match (proven, entry) {
        (Proven::Absent, None) => Ok(None),
        (Proven::Present(vh), Some(bytes)) => {
            if smt::value_hash(bytes) != vh {
                return Err(LightError::EntryMismatch);
            }
            let e: StateEntry = crate::codec::decode(bytes).map_err(|_| LightError::EntryMismatch)?;
            let kind_ok = matches!(
                (key, &e),
                (StateKey::Account(_), StateEntry::Account(_))
                    | (StateKey::FeePool, StateEntry::FeePool(_))
                    | (StateKey::Supply, StateEntry::Supply(_))
                    | (StateKey::Day(_), StateEntry::Day(_))
                    | (StateKey::Node(_), StateEntry::Node(_))
                    | (StateKey::Sector(..), StateEntry::Sector(_))
                    | (StateKey::Prover(_), StateEntry::Prover(_))
            );
            if !kind_ok {
                return Err(LightError::EntryMismatch);
            }
            Ok(Some(e))
        }
        _ => Err(LightError::EntryMismatch),
    }
}

/// A transaction's result proven under a verified header's `results_hash`
/// (the tip, or a header chained down to it by [`verify_chain`]).
pub fn verify_tx(header: &LedgerHeader, result: &TxResult, path: &MerklePath) -> Result<(), LightError> {
    if crate::merkle::root_from_path(&result.leaf(), path) != header.results_hash {
        return Err(LightError::BadInclusion);
    }
    Ok(())
}

/// Checks fork evidence someone reports: both proofs are of `slot`, both
/// verify under the anchor, and they name different values. The same rules
/// the phone applied when it found them.
pub fn check_fork_evidence(
    anchor: &TrustAnchor,
    slot: u64,
    a: &ExternalizeProof,
    b: &ExternalizeProof,
) -> Result<(), LightError> {
    // The free checks first: same slot, different values; then signatures.
    if a.slot != slot || b.slot != slot || a.value == b.value {
        return Err(LightError::NotAFork);
    }
    let va = verify_latest_value(anchor, a).ok_or(LightError::NotAFork)?;
    let vb = verify_latest_value(anchor, b).ok_or(LightError::NotAFork)?;
    if va == vb {
        return Err(LightError::NotAFork);
    }
    Ok(())
}

/// Two valid externalize proofs for different values of one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    pub slot: u64,
    pub a: ExternalizeProof,
    pub b: ExternalizeProof,
}

/// How a node has behaved towards this phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub good_answers: u64,
    pub bad_answers: u64,
    pub timeouts: u64,
    pub demoted: bool,
}

/// What happened when an answer came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LightEvent {
    NewVerifiedHeader(u64),
    NodeDemoted { node: NodeId, reason: String },
    ForkDetected(u64),
}

/// The light client's verified view, fed with nodes' answers (no IO).
#[derive(Debug, Clone)]
pub struct LightClient {
    pub anchor: TrustAnchor,
    latest: Option<VerifiedHeader>,
    proofs_by_slot: BTreeMap<u64, ExternalizeProof>,
    pub standing: BTreeMap<NodeId, Standing>,
    pub fork: Option<ForkEvidence>,
}

impl LightClient {
    pub fn new(anchor: TrustAnchor) -> LightClient {
        LightClient { anchor, latest: None, proofs_by_slot: BTreeMap::new(), standing: BTreeMap::new(), fork: None }
    }

    pub fn latest(&self) -> Option<&VerifiedHeader> {
        self.latest.as_ref()
    }

    /// Once a fork is seen the phone stops signing (SPEC §7).
    pub fn may_sign(&self) -> bool {
        self.fork.is_none()
    }

    /// The day of a close time (ms), as the ledger computes it.
    pub fn day_of(&self, close_time_ms: u64) -> u64 {
        crate::ledger::params::day_of(self.anchor.genesis_time, self.anchor.day_seconds, close_time_ms)
    }

    /// When `day` starts (Unix ms), by the genesis clock.
    pub fn day_start_ms(&self, day: u64) -> u64 {
        crate::ledger::params::day_start_ms(self.anchor.genesis_time, self.anchor.day_seconds, day)
    }

    /// True when the newest verified close time is older than `max_age_ms`.
    pub fn is_stale(&self, now_ms: u64, max_age_ms: u64) -> bool {
        self.latest.as_ref().is_none_or(|h| now_ms.saturating_sub(h.header.close_time) > max_age_ms)
    }

    fn demote(&mut self, node: NodeId, reason: String, events: &mut Vec<LightEvent>) {
        let s = self.standing.entry(node).or_default();
        s.bad_answers += 1;
        if !s.demoted {
            s.demoted = true;
            events.push(LightEvent::NodeDemoted { node, reason });
        }
    }

    /// A node timed out; three in a row demote it.
    pub fn on_timeout(&mut self, node: NodeId) -> Vec<LightEvent> {
        let mut events = Vec::new();
        let s = self.standing.entry(node).or_default();
        s.timeouts += 1;
        // Unreachable is not lying: demoted without a bad answer, so the
        // node gets another chance once it answers again.
        if s.timeouts >= 3 && !s.demoted {
            s.demoted = true;
            events.push(LightEvent::NodeDemoted { node, reason: "timed out 3 times in a row".into() });
        }
        events
    }

    /// A `Latest` answer from `node`. Invalid answers demote the node and
    /// change nothing else; a second valid value for a known slot is a fork.
    pub fn on_latest(
        &mut self,
        node: NodeId,
        header: &LedgerHeader,
        proof: &ExternalizeProof,
    ) -> (Result<u64, LightError>, Vec<LightEvent>) {
        match verify_latest(&self.anchor, header, proof) {
            Ok(v) => {
                let (r, events) = self.on_verified(node, v, proof);
                (r.map(|v| v.header.seq), events)
            }
            Err(e) => (Err(e.clone()), self.on_invalid(node, &e)),
        }
    }

    /// A node's answer failed verification: demote it.
    pub fn on_invalid(&mut self, node: NodeId, error: &LightError) -> Vec<LightEvent> {
        let mut events = Vec::new();
        self.demote(node, error.to_string(), &mut events);
        events
    }

    /// A header `node` sent that [`verify_latest`] accepted (with its proof).
    /// Returns the verified header (also when it is older than the newest,
    /// which is `Stale` only if it is older than that by more than one ledger).
    pub fn on_verified(
        &mut self,
        node: NodeId,
        verified: VerifiedHeader,
        proof: &ExternalizeProof,
    ) -> (Result<VerifiedHeader, LightError>, Vec<LightEvent>) {
        let mut events = Vec::new();
        let s = self.standing.entry(node).or_default();
        s.good_answers += 1;
        s.timeouts = 0;
        if s.bad_answers == 0 {
            s.demoted = false; // it was only unreachable
        }
        match self.proofs_by_slot.get(&proof.slot) {
            Some(known) => {
                let known_value = verify_latest_value(&self.anchor, known);
                if known_value.as_ref() != Some(&verified.next_value) && self.fork.is_none() {
                    self.fork = Some(ForkEvidence { slot: proof.slot, a: known.clone(), b: proof.clone() });
                    events.push(LightEvent::ForkDetected(proof.slot));
                    // Evidence is the answer to a conflicting chain, whatever its age.
                    return (Ok(verified), events);
                }
            }
            None => {
                self.proofs_by_slot.insert(proof.slot, proof.clone());
                while self.proofs_by_slot.len() > 64 {
                    self.proofs_by_slot.pop_first();
                }
            }
        }
        // A proof seen before is still stale when it is old: a node replaying
        // it is not keeping up.
        let have = self.latest.as_ref().map_or(0, |l| l.header.seq);
        if self.latest.is_none() || have < verified.header.seq {
            events.push(LightEvent::NewVerifiedHeader(verified.header.seq));
            self.latest = Some(verified.clone());
            (Ok(verified), events)
        } else if verified.header.seq + 1 >= have {
            (Ok(verified), events) // one ledger behind: a node a moment late, not a stale one
        } else {
            (Err(LightError::Stale { got: verified.header.seq, have }), events)
        }
    }

    /// The externalize proof seen for `slot`, if kept.
    pub fn proof_of(&self, slot: u64) -> Option<&ExternalizeProof> {
        self.proofs_by_slot.get(&slot)
    }

    /// Restores the newest verified header from the phone's store (it was
    /// verified before it was stored).
    pub fn restore_latest(&mut self, verified: VerifiedHeader) {
        self.latest = Some(verified);
    }

    /// Restores fork evidence kept on the phone.
    pub fn restore_fork(&mut self, fork: ForkEvidence) {
        self.fork = Some(fork);
    }
}

fn verify_latest_value(anchor: &TrustAnchor, proof: &ExternalizeProof) -> Option<Value> {
    verify_externalize_proof(&anchor.network_id, proof.slot, &proof.envelopes(), &anchor.local_qset, |n| {
        anchor.quorum_sets.get(n).cloned()
    })
    .ok()
}

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
