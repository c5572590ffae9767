//! What every validator checks of a proposed SCP value against its last
//! closed ledger before the tx set and the previous slot's proof (SPEC §4):
//! it follows that ledger, its close time is in range, it carries no
//! upgrade nobody armed, and its `rand` is the VRF output of a proposer in
//! the validator set.

use super::state::LedgerState;
use super::types::ScpValue;
use crate::crypto::vrf::vrf_verify;

/// How far ahead of a validator's clock a close time may be (SPEC §4).
pub const MAX_CLOSE_TIME_AHEAD_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("the value does not follow the last closed ledger")]
    WrongPrevious,
    #[error("close time {0} is not after the last ledger's or is more than 5 s ahead")]
    CloseTime(u64),
    #[error("the value carries upgrades, and none is armed")]
    Upgrades,
    #[error("the proposer is not a member of the validator set")]
    ProposerNotAValidator,
    #[error("the proposer has no VRF key in the directory")]
    UnknownProposer,
    #[error("rand is not the proposer's VRF output for this slot")]
    BadRand,
}

/// Checks `v`, proposed for the slot after `state`'s last closed ledger, at
/// `now_ms` on the checking validator's clock.
pub fn check_value_header(state: &LedgerState, v: &ScpValue, now_ms: u64) -> Result<(), ValueError> {
    let lcl = &state.header;
    if v.prev_header_hash != lcl.hash() {
        return Err(ValueError::WrongPrevious);
    }
    if v.close_time <= lcl.close_time || v.close_time > now_ms.saturating_add(MAX_CLOSE_TIME_AHEAD_MS) {
        return Err(ValueError::CloseTime(v.close_time));
    }
    if !v.upgrades.is_empty() {
        return Err(ValueError::Upgrades);
    }
    // The proposer is a member of the validator set (never a node that only
    // announced itself), so nobody grinds `rand` with sybil node keys.
    if !state.reward_set.contains(&v.proposer) {
        return Err(ValueError::ProposerNotAValidator);
    }
    let entry = state.node_entry(&v.proposer).ok_or(ValueError::UnknownProposer)?;
    let slot = lcl.seq.saturating_add(1);
    vrf_verify(&entry.vrf_key, &lcl.rand, slot, &v.rand, v.rand_proof.as_slice()).map_err(|_| ValueError::BadRand)
}
