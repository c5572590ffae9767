//! Network parameters (SPEC §9). Fixed in genesis (changed only by upgrades),
//! committed in every header as `params_hash`. Fractions are parts per million.

use crate::amount::Amount;
use crate::codec::{encode, Wire};
use crate::crypto::{hash_tagged, Domain, Hash256};
use serde::{Deserialize, Serialize};

/// The smallest `proof_lane_min_bytes`: above the largest attestation, so
/// the fee-free lane and the proof lane never overlap.
pub const MIN_PROOF_LANE_BYTES: u64 = 8 * 1024;

/// 1.0 in the fixed-point weights and fractions of SPEC §5.
pub const PPM: u64 = 1_000_000;

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Ledger close target.
    pub ledger_close_ms: u64,
    pub day_seconds: u64,
    pub max_txs_per_ledger: u32,
    pub max_attestations_per_ledger: u32,
    pub attest_anchor_window: u64,
    pub attest_grace_ledgers: u64,
    pub invites_per_day: u32,
    pub min_new_accounts_per_day: u64,
    pub new_accounts_ppm_of_attesters: u64,
    pub probation_days: u64,
    pub probation_factor_ppm: u64,
    pub circle_change_days: u64,
    pub referrer_window_days: u64,
    pub min_opening_balance: Amount,
    pub supply_cap: Amount,
    pub reserve: Amount,
    pub phase1_pool: Amount,
    pub phase1_days: u64,
    pub split_attesters_ppm: u64,
    pub split_validators_ppm: u64,
    pub split_storage_ppm: u64,
    pub payout_batch: u32,
    pub pledge_per_gib: Amount,
    pub pledge_per_tib: Amount,
    pub pledge_unlock_days: u64,
    pub phase2_days: u64,
    pub storage_pay_cap_per_gib_day: Amount,
    pub sector_layers: u32,
    pub seal_challenges: u32,
    pub seed_delay: u64,
    pub prove_commit_window: u64,
    pub ticket_window: u64,
    pub post_deadlines: u32,
    pub post_window_seconds: u64,
    pub post_chain_steps: u32,
    pub post_samples: u32,
    pub post_reveal_delay: u64,
    pub post_reveal_window: u64,
    pub sector_lifetime_periods: u64,
    pub fault_penalty_ppm: u64,
    pub faulty_periods_to_terminate: u32,
    /// Most encoded bytes of transactions in one tx set (SPEC §3), so every
    /// value's tx set fits one frame whatever is pending.
    pub max_tx_set_bytes: u32,
    /// Most bytes of proof-lane transactions in one tx set.
    pub max_proof_bytes_per_ledger: u32,
    /// A transaction larger than this travels in the proof lane.
    pub proof_lane_min_bytes: u32,
    /// Largest encoded transaction a pool admits or a tx set may hold.
    pub max_tx_bytes: u32,
    /// What each `AnnounceNode` costs, into the fee pool: the directory is
    /// served to every phone, so filling it with sybil nodes is not free.
    pub node_announce_fee: Amount,
}

impl Wire for Params {
    const MAX_ENCODED_LEN: usize = 1024;
}

/// Most PoSt deadlines in a day (a day record lists each one's opening).
pub const MAX_POST_DEADLINES: usize = 1024;

impl Params {
    /// SPEC §9, mainnet column.
    pub fn mainnet() -> Params {
        Params {
            ledger_close_ms: 5_000,
            day_seconds: 86_400,
            max_txs_per_ledger: 1_000,
            max_attestations_per_ledger: 5_000,
            attest_anchor_window: 720,
            attest_grace_ledgers: 12,
            invites_per_day: 3,
            min_new_accounts_per_day: 100,
            new_accounts_ppm_of_attesters: 10_000,
            probation_days: 14,
            probation_factor_ppm: 500_000,
            circle_change_days: 7,
            referrer_window_days: 7,
            min_opening_balance: Amount::ZERO,
            supply_cap: Amount(20_000_000_000 * crate::amount::UNITS_PER_WATT),
            reserve: Amount(1_000_000_000 * crate::amount::UNITS_PER_WATT),
            phase1_pool: Amount(6_000_000_000 * crate::amount::UNITS_PER_WATT),
            phase1_days: 3_650,
            split_attesters_ppm: 700_000,
            split_validators_ppm: 100_000,
            split_storage_ppm: 200_000,
            payout_batch: 10_000,
            pledge_per_gib: Amount::ZERO,
            pledge_per_tib: Amount(1_000 * crate::amount::UNITS_PER_WATT),
            pledge_unlock_days: 7,
            phase2_days: 20 * 365,
            storage_pay_cap_per_gib_day: Amount(crate::amount::UNITS_PER_WATT / 10),
            sector_layers: 12,
            seal_challenges: 40,
            seed_delay: 10,
            prove_commit_window: 720,
            ticket_window: 720,
            post_deadlines: 48,
            post_window_seconds: 30 * 60,
            post_chain_steps: 4_096,
            post_samples: 160,
            post_reveal_delay: 3,
            post_reveal_window: 30,
            sector_lifetime_periods: 180,
            fault_penalty_ppm: 10_000,
            faulty_periods_to_terminate: 3,
            max_tx_set_bytes: 2 * 1024 * 1024,
            max_proof_bytes_per_ledger: 1024 * 1024,
            proof_lane_min_bytes: 64 * 1024,
            max_tx_bytes: 1024 * 1024,
            node_announce_fee: Amount(100 * crate::amount::UNITS_PER_WATT),
        }
    }

    /// These parameters for days of `day_seconds`: PoSt deadlines stay 30
    /// minutes apart (48 a mainnet day), at least one a day, each window
    /// reaching the next, so every window closes within its day.
    pub fn with_day_seconds(self, day_seconds: u64) -> Params {
        let post_deadlines = (day_seconds / (30 * 60)).clamp(1, 48) as u32;
        Params { day_seconds, post_deadlines, post_window_seconds: day_seconds / u64::from(post_deadlines), ..self }
    }

    /// SPEC §9, devnet column: fast ledgers and days, small sectors.
    pub fn devnet(ledger_close_ms: u64, day_seconds: u64) -> Params {
        Params {
            ledger_close_ms,
            day_seconds,
            sector_layers: 2,
            seal_challenges: 8,
            seed_delay: 2,
            post_deadlines: 1,
            post_window_seconds: day_seconds,
            post_chain_steps: 256,
            post_samples: 16,
            ..Params::mainnet()
        }
    }

    /// How many recent ledgers' hashes and `rand`s the ledger keeps: enough
    /// for attestation anchors, tickets, seal seeds and PoSt samples.
    pub fn recent_window(&self) -> u64 {
        let seed = self.seed_delay.saturating_add(self.prove_commit_window);
        // A reveal window can be extended up to its own length (full proof lanes).
        let samples = self.post_reveal_delay.saturating_add(self.post_reveal_window.saturating_mul(2));
        self.attest_anchor_window.max(self.ticket_window).max(seed).max(samples).saturating_add(2)
    }

    pub fn hash(&self) -> Hash256 {
        hash_tagged(Domain::Genesis, &encode(self))
    }

    /// Checks that the parameters are usable together; a genesis file with
    /// inconsistent numbers is refused when loaded, not when a day ends.
    pub fn validate(&self) -> Result<(), String> {
        let split = self.split_attesters_ppm + self.split_validators_ppm + self.split_storage_ppm;
        if split != PPM {
            return Err(format!("reward split must add up to 1,000,000 ppm, got {split}"));
        }
        if self.day_seconds == 0 || self.phase1_days == 0 || self.ledger_close_ms == 0 {
            return Err("day_seconds, phase1_days and ledger_close_ms must be positive".into());
        }
        if self.probation_factor_ppm > PPM {
            return Err("probation_factor_ppm must be at most 1,000,000".into());
        }
        let minted = self.reserve.checked_add(self.phase1_pool).map_err(|e| e.to_string())?;
        if minted > self.supply_cap {
            return Err("reserve + phase-1 pool exceed the supply cap".into());
        }
        if self.post_deadlines == 0 || self.post_samples == 0 || self.post_chain_steps == 0 || self.sector_layers == 0 {
            return Err("storage parameters must be positive".into());
        }
        // A PoSt commit counts only in its own day, and deadline k opens
        // k/post_deadlines into the day: a longer window would be cut short
        // by the day's end for late deadlines (an honest prover faulted).
        if self.post_window_seconds.saturating_mul(u64::from(self.post_deadlines)) > self.day_seconds {
            return Err(format!(
                "post_window_seconds x post_deadlines ({} x {}) exceed day_seconds ({}): late deadlines' windows would \
                 end with the day",
                self.post_window_seconds, self.post_deadlines, self.day_seconds
            ));
        }
        // Proofs and day records carry these as bounded lists.
        use crate::storage::proof::{MAX_LAYERS, MAX_POST_SAMPLES, MAX_SEAL_CHALLENGES};
        if self.post_samples as usize > MAX_POST_SAMPLES
            || self.seal_challenges as usize > MAX_SEAL_CHALLENGES
            || self.sector_layers as usize > MAX_LAYERS
            || self.post_deadlines as usize > MAX_POST_DEADLINES
        {
            return Err(format!(
                "storage parameters exceed what proofs carry (post_samples <= {MAX_POST_SAMPLES}, \
                 seal_challenges <= {MAX_SEAL_CHALLENGES}, sector_layers <= {MAX_LAYERS}, \
                 post_deadlines <= {MAX_POST_DEADLINES})"
            ));
        }
        if self.payout_batch == 0 || self.max_txs_per_ledger == 0 || self.max_attestations_per_ledger == 0 {
            return Err("per-ledger limits must be positive".into());
        }
        let per_ledger = u64::from(self.max_txs_per_ledger) + u64::from(self.max_attestations_per_ledger);
        if per_ledger > crate::ledger::types::MAX_TXSET_TXS as u64 {
            return Err(format!(
                "max_txs_per_ledger + max_attestations_per_ledger ({per_ledger}) exceed a tx set's {} transactions",
                crate::ledger::types::MAX_TXSET_TXS
            ));
        }
        // The byte budgets nest, and a full tx set stays inside the frame
        // that carries it (with room for the message around it).
        let frame_room = (crate::ledger::types::MAX_TXSET_BYTES - 64 * 1024) as u64;
        let (set, proofs, lane, tx) = (
            u64::from(self.max_tx_set_bytes),
            u64::from(self.max_proof_bytes_per_ledger),
            u64::from(self.proof_lane_min_bytes),
            u64::from(self.max_tx_bytes),
        );
        // An attestation (a 4 KiB device token at most) never travels in the proof lane.
        let min_lane = MIN_PROOF_LANE_BYTES;
        if !(lane >= min_lane && lane <= tx && tx <= proofs && proofs <= set && set <= frame_room) {
            return Err(format!(
                "byte budgets must nest: {min_lane} <= proof_lane_min_bytes ({lane}) <= max_tx_bytes ({tx}) <= \
                 max_proof_bytes_per_ledger ({proofs}) <= max_tx_set_bytes ({set}) <= {frame_room}"
            ));
        }
        Ok(())
    }
}

/// The day of a close time (Unix ms): `(close_time - genesis_time) / day_seconds`.
/// The one place days are counted; the ledger and the light client call it.
pub fn day_of(genesis_time: u64, day_seconds: u64, close_time_ms: u64) -> u64 {
    (close_time_ms / 1000).saturating_sub(genesis_time) / day_seconds.max(1)
}

/// When `day` starts (Unix ms), by the genesis clock.
pub fn day_start_ms(genesis_time: u64, day_seconds: u64, day: u64) -> u64 {
    genesis_time.saturating_add(day.saturating_mul(day_seconds)).saturating_mul(1000)
}
