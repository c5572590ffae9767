//! The daily distribution (SPEC §5), computed once per day inside `apply`:
//! role weights in fixed point (1.0 = 10^6), the day's emission split into
//! classes, each member's `floor(pool × weight / total)`, the fee pool paid
//! out the same way, and the payouts queued in key order.
//!
//! Deviation from SPEC §5, on purpose: a day is distributed at the first
//! ledger after the next day's attestation grace window (ledger
//! `attest_grace_ledgers + 1` of the new day), not at the new day's first
//! ledger, so taps made in the grace window for the day before are paid.
//! Weights use circles and referrals as they stand at that ledger.

use super::apply::ApplyError;
use super::params::PPM;
use super::state::{LedgerState, Payout, StateKey};
use super::types::AccountEntry;
use crate::address::AccountId;
use crate::amount::Amount;
use crate::crypto::Hash256;
use std::collections::HashMap;

/// Weight caps and bonuses of SPEC §5, in parts per million.
pub const PIONEER_WEIGHT: u64 = PPM;
pub const CIRCLE_BONUS: u64 = 200_000;
pub const REFERRAL_BONUS: u64 = 250_000;
pub const MAX_ATTESTER_WEIGHT: u64 = 3 * PPM;
/// Mutual circle members past probation that lift probation.
pub const VOUCHES_TO_SKIP_PROBATION: usize = 3;

/// Index of the storage providers' class (weights are proven bytes).
pub const STORAGE: usize = 2;

/// One class's members and weights (attesters, validators, storage).
pub type ClassWeights = Vec<(AccountId, u64)>;

/// What the distribution of one day decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayDistribution {
    /// Sum of weights per class (attesters, validators, storage).
    pub total_weights: [u64; 3],
    pub pools: [Amount; 3],
    pub fees: [Amount; 3],
    pub payouts: Vec<(AccountId, Amount)>,
    pub emitted: Amount,
    pub fees_paid: Amount,
}

/// SPEC §5: a miner (never a wallet that was only paid into) whose
/// probation has run out, or a founding account. Inviting, vouching and the
/// probation factor all use this one rule.
pub(crate) fn is_past_probation(acc: &AccountEntry, day: u64, probation_days: u64) -> bool {
    acc.is_miner()
        && (acc.flags & AccountEntry::FLAG_FOUNDING != 0 || day >= acc.created_day.saturating_add(probation_days))
}

impl LedgerState {
    /// Distributes every ended day whose grace window is over.
    pub(crate) fn distribute_ended_days(&mut self, seq: u64, day: u64) -> Result<(), ApplyError> {
        let grace_over = |d: u64, s: &LedgerState| -> bool {
            if d + 1 < day {
                return true;
            }
            if d + 1 == day {
                let first = s.days.get(&day).map_or(seq, |r| r.first_seq);
                return seq >= first.saturating_add(s.params.attest_grace_ledgers);
            }
            false
        };
        let due: Vec<u64> =
            self.days.values().filter(|r| !r.distributed && grace_over(r.day, self)).map(|r| r.day).collect();
        for d in due {
            let t = std::time::Instant::now();
            let dist = self.compute_distribution(d).ok_or(ApplyError::DistributionOverflow(d))?;
            let computed = t.elapsed();
            self.record_distribution(d, dist).ok_or(ApplyError::DistributionOverflow(d))?;
            tracing::debug!(
                day = d,
                compute_ms = computed.as_millis() as u64,
                total_ms = t.elapsed().as_millis() as u64,
                "day distributed"
            );
        }
        Ok(())
    }

    /// Attester weights of SPEC §5 for `day`, from the day's attester set,
    /// in state-key order.
    pub fn attester_weights(&self, day: u64) -> ClassWeights {
        self.attester_weights_keyed(day).into_iter().map(|(_, id, w)| (id, w)).collect()
    }

    /// The same with each attester's state key, computed on every core.
    /// Each attester's account is read once: a million random lookups in a
    /// large map are most of the cost.
    fn attester_weights_keyed(&self, day: u64) -> Vec<(Hash256, AccountId, u64)> {
        let Some(attesters) = self.attesters.get(&day) else { return Vec::new() };
        let probation = self.params.probation_days;
        let factor = self.params.probation_factor_ppm;
        let members: Vec<(Hash256, AccountId)> = attesters.iter().map(|(k, id)| (*k, *id)).collect();
        let attested = |id: &AccountId| attesters.contains_key(&StateKey::Account(*id).hash());
        let past = |id: &AccountId| self.accounts.get(id).is_some_and(|a| is_past_probation(a, day, probation));
        // Pass 1, in parallel: everything but referral bonuses, kept small
        // (weight, on probation, refers to an attester) because there are millions.
        let partial: Vec<Option<(u64, bool, bool)>> =
            crate::merkle::par_chunks(&members, crate::merkle::PAR_MIN_ITEMS, |chunk| {
                chunk
                    .iter()
                    .map(|(_, id)| {
                        let acc = self.accounts.get(id)?;
                        let own_past = is_past_probation(acc, day, probation);
                        let (mut contributing, mut vouches) = (0u64, 0usize);
                        for m in acc.security_circle.iter() {
                            if self.accounts.get(m).is_some_and(|ma| ma.security_circle.contains(id)) && past(m) {
                                vouches += 1;
                                if attested(m) {
                                    contributing += 1;
                                }
                            }
                        }
                        let refers = acc.referrer.is_some_and(|r| own_past && attested(&r));
                        Some((
                            PIONEER_WEIGHT + CIRCLE_BONUS * contributing.min(5),
                            !own_past && vouches < VOUCHES_TO_SKIP_PROBATION,
                            refers,
                        ))
                    })
                    .collect()
            });
        // Ambassador bonuses: each referred attester past probation lifts its referrer.
        let mut referrals: HashMap<AccountId, u64> = HashMap::new();
        for ((_, id), p) in members.iter().zip(&partial) {
            // Only the few that refer someone are looked up again.
            if let Some((_, _, true)) = p {
                if let Some(r) = self.accounts.get(id).and_then(|a| a.referrer) {
                    *referrals.entry(r).or_insert(0) += 1;
                }
            }
        }
        members
            .iter()
            .zip(partial)
            .filter_map(|((key, id), p)| {
                let (weight, on_probation, _) = p?;
                let referred = if referrals.is_empty() { 0 } else { referrals.get(id).copied().unwrap_or(0) };
                let mut w = (weight + REFERRAL_BONUS * referred).min(MAX_ATTESTER_WEIGHT);
                if on_probation {
                    w = w * factor / PPM;
                }
                (w > 0).then_some((*key, *id, w))
            })
            .collect()
    }

    /// Validators of the reward set, weighted by the slots they were counted in.
    pub fn validator_weights(&self, day: u64) -> ClassWeights {
        let Some(r) = self.days.get(&day) else { return Vec::new() };
        r.validator_slots
            .iter()
            .filter(|(n, c)| *c > 0 && self.reward_set.contains(n))
            .map(|(n, c)| (AccountId(n.0), *c))
            .collect()
    }

    /// The emission of `day`: phase 1's linear pool (clipped at its end), then phase 2.
    fn day_pools(&self) -> Option<(Amount, bool)> {
        let p = &self.params;
        let daily = p.phase1_pool.units() / p.phase1_days.max(1);
        let remaining = p.phase1_pool.units().checked_sub(self.supply.phase1_emitted.units())?;
        if remaining > 0 {
            return Some((Amount(daily.min(remaining).max(remaining.min(1))), true));
        }
        let phase2_total = p.supply_cap.units().checked_sub(p.reserve.units())?.checked_sub(p.phase1_pool.units())?;
        let daily2 = phase2_total / p.phase2_days.max(1);
        let left = phase2_total.checked_sub(self.supply.phase2_emitted.units())?;
        Some((Amount(daily2.min(left)), false))
    }

    /// Computes (without applying) the distribution of `day`.
    pub fn compute_distribution(&self, day: u64) -> Option<DayDistribution> {
        let p = &self.params;
        let (pool, phase1) = self.day_pools()?;
        let split = [p.split_attesters_ppm, p.split_validators_ppm, p.split_storage_ppm];
        // Every class as (state key, account, weight) in key order: attesters
        // come that way from their index; the other classes are small and are
        // keyed and sorted here.
        let keyed = |class: ClassWeights| -> Vec<(Hash256, AccountId, u64)> {
            let mut v: Vec<_> = class.into_iter().map(|(id, w)| (StateKey::Account(id).hash(), id, w)).collect();
            v.sort_unstable_by_key(|x| x.0);
            v
        };
        let first: Vec<(Hash256, AccountId, u64)> = if phase1 {
            self.attester_weights_keyed(day)
        } else {
            // Phase 2: pledge mining among the day's contributors (by pledge),
            // storage mining by proven bytes; free attestation mining has ended.
            self.attesters
                .get(&day)
                .into_iter()
                .flatten()
                .filter_map(|(k, id)| self.accounts.get(id).map(|a| (*k, *id, a.pledge_locked.units())))
                .filter(|(_, _, w)| *w > 0)
                .collect()
        };
        let classes = [first, keyed(self.validator_weights(day)), keyed(self.storage_weights_of(day))];
        let pools: [Amount; 3] = if phase1 {
            [0, 1, 2].map(|i| Amount((u128::from(pool.units()) * u128::from(split[i]) / u128::from(PPM)) as u64))
        } else {
            [Amount(pool.units() / 2), Amount::ZERO, Amount(pool.units() - pool.units() / 2)]
        };
        let fee_total = self.fee_pool.units();
        let fees: [Amount; 3] =
            [0, 1, 2].map(|i| Amount((u128::from(fee_total) * u128::from(split[i]) / u128::from(PPM)) as u64));

        let mut emitted: u64 = 0;
        let mut fees_paid: u64 = 0;
        // Each class's shares as (state key, account, amount), in key order.
        let mut per_class: Vec<Vec<(Hash256, AccountId, u64)>> = Vec::with_capacity(3);
        let mut totals = [0u64; 3];
        for (c, class) in classes.iter().enumerate() {
            let total: u128 = class.iter().map(|(_, _, w)| u128::from(*w)).sum();
            totals[c] = u64::try_from(total).ok()?;
            if total == 0 {
                per_class.push(Vec::new());
                continue; // no members: the class's share stays unissued (or in the fee pool)
            }
            let mut shares = Vec::with_capacity(class.len());
            let cap = (c == STORAGE).then_some(p.storage_pay_cap_per_gib_day);
            for (key, id, w) in class {
                let (e, f) = member_share(pools[c], fees[c], *w, total, cap)?;
                emitted = emitted.checked_add(e)?;
                fees_paid = fees_paid.checked_add(f)?;
                shares.push((*key, *id, e.checked_add(f)?));
            }
            per_class.push(shares);
        }
        // Key order (the state tree's), merging an account's shares across classes.
        let mut payouts: Vec<(AccountId, Amount)> = Vec::with_capacity(per_class.iter().map(Vec::len).sum());
        let mut cursors = [0usize; 3];
        let mut last: Option<Hash256> = None;
        loop {
            let next =
                (0..3).filter(|c| cursors[*c] < per_class[*c].len()).min_by_key(|c| per_class[*c][cursors[*c]].0);
            let Some(c) = next else { break };
            let (h, id, a) = per_class[c][cursors[c]];
            cursors[c] += 1;
            if last == Some(h) {
                if let Some(p) = payouts.last_mut() {
                    p.1 = p.1.checked_add(Amount(a)).ok()?;
                }
            } else {
                payouts.push((id, Amount(a)));
                last = Some(h);
            }
        }
        payouts.retain(|(_, a)| !a.is_zero());
        Some(DayDistribution {
            total_weights: totals,
            pools,
            fees,
            payouts,
            emitted: Amount(emitted),
            fees_paid: Amount(fees_paid),
        })
    }

    fn record_distribution(&mut self, day: u64, dist: DayDistribution) -> Option<()> {
        self.mark(StateKey::Day(day));
        self.mark(StateKey::Supply);
        self.mark(StateKey::FeePool);
        let phase1 = self.day_pools()?.1;
        let pending_add = dist.emitted.checked_add(dist.fees_paid).ok()?;
        self.supply.minted = self.supply.minted.checked_add(dist.emitted).ok()?;
        if phase1 {
            self.supply.phase1_emitted = self.supply.phase1_emitted.checked_add(dist.emitted).ok()?;
        } else {
            self.supply.phase2_emitted = self.supply.phase2_emitted.checked_add(dist.emitted).ok()?;
        }
        self.supply.pending_payouts = self.supply.pending_payouts.checked_add(pending_add).ok()?;
        self.fee_pool = self.fee_pool.checked_sub(dist.fees_paid).ok()?;
        self.storage_weights.remove(&day);
        let set = self.attesters.remove(&day).unwrap_or_default();
        let attesters: Vec<Hash256> = set.keys().copied().collect();
        // Freeing a million-entry index is work the ledger need not wait for.
        std::thread::spawn(move || drop(set));
        let rec = self.days.entry(day).or_default();
        rec.distributed = true;
        rec.attesters_root = crate::merkle::root(&attesters);
        rec.total_weights = dist.total_weights;
        rec.pools = dist.pools;
        rec.fees = dist.fees;
        rec.emitted = dist.emitted;
        rec.fees_paid = dist.fees_paid;
        rec.payouts = dist.payouts.len() as u64;
        // Folded in as the payouts are credited (`credit_payouts`).
        rec.payouts_root = if dist.payouts.is_empty() { crate::merkle::root(&[]) } else { Hash256::ZERO };
        for (account, amount) in dist.payouts {
            let p = Payout { day, account, amount };
            self.new_payouts.push(p.clone());
            self.totals.queued_payouts += u128::from(p.amount.units());
            self.payouts.push_back(p);
        }
        Some(())
    }
}

/// One member's share of a class: its weight's part of the class's pool and
/// of the class's fees; for storage at most `cap_per_gib` per GiB-day of
/// weight (SPEC §5; the rest is not issued). The ledger pays with it and the
/// phone counts its storage earnings with it. None on overflow.
pub fn member_share(
    pool: Amount,
    fees: Amount,
    weight: u64,
    total: u128,
    cap_per_gib: Option<Amount>,
) -> Option<(u64, u64)> {
    if total == 0 {
        return Some((0, 0));
    }
    let mut emitted = u64::try_from(u128::from(pool.units()) * u128::from(weight) / total).ok()?;
    if let Some(cap) = cap_per_gib {
        let cap = u128::from(cap.units()) * u128::from(weight) / (1u128 << 30);
        emitted = emitted.min(u64::try_from(cap).unwrap_or(u64::MAX));
    }
    let fee = u64::try_from(u128::from(fees.units()) * u128::from(weight) / total).ok()?;
    Some((emitted, fee))
}
