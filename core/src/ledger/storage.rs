//! Sectors and storage proofs on the ledger (SPEC §6): pre-commit with a
//! ticket, prove-commit against a later seed, one PoSt commitment per
//! prover and period with its sampled reveal, declared faults, termination,
//! and the settlement of each period (faults, penalties, expiry) in batches.
//!
//! Choices where SPEC §6 is silent, written here so every validator makes them:
//! - The sectors a period's PoSt covers are the prover's active or faulty
//!   sectors activated before the deadline's opening ledger and not declared
//!   faulty for that period; `PostCommit` snapshots them, so a termination
//!   between commit and reveal does not change what the reveal is checked
//!   against.
//! - A period is settled once day `period + 2` has begun (every window of
//!   the period has closed by then), `payout_batch` provers per ledger, like
//!   payouts, so a day with many provers never makes one ledger slow.
//! - Proven bytes count for the day in which the reveal lands.
//! - A reveal records the period it proves and the sectors its commitment
//!   covered ([`ProvenPeriod`]); settlement of that period reads the record
//!   and drops it, so the next period's commitment never hides a proof.
//! - A sector terminated (by its owner, after `faulty_periods_to_terminate`
//!   faulty periods, or at the end of its lifetime) returns what is left of
//!   its pledge to the owner; a pre-commit that misses its window forfeits
//!   its pledge to the fee pool.

use super::apply::Undo;
use super::params::PPM;
use super::state::{LedgerState, StateKey};
use super::types::{OpFailure, SectorSize};
use crate::address::AccountId;
use crate::amount::Amount;
use crate::codec::{decode, BoundedVec};
use crate::crypto::Hash256;
use crate::storage::graph::{hash_u64, replica_id, SectorShape};
use crate::storage::proof::{self, ProvenSector, SealedSector};
use crate::storage::seal::{comm_r, zero_root};
use serde::{Deserialize, Serialize};

/// Most sectors (in any state) one prover may hold: its PoSt snapshot must
/// fit one state entry.
pub const MAX_PROVER_SECTORS: usize = 1024;
const GIB: u128 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectorState {
    /// Waiting for `SectorProveCommit`.
    PreCommitted,
    /// Sealed and proven; counted in the prover's PoSt.
    Active,
    /// Missed its last period's proof; recovers by being proven again.
    Faulty,
}

/// A sector's state entry (`StateKey::Sector(owner, number)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorEntry {
    pub size: SectorSize,
    pub ticket_seq: u64,
    pub precommit_seq: u64,
    pub replica_id: Hash256,
    pub comm_d: Hash256,
    pub comm_c: Hash256,
    pub comm_r_last: Hash256,
    pub comm_r: Hash256,
    pub pledge: Amount,
    pub state: SectorState,
    pub activated_seq: u64,
    pub activated_day: u64,
    pub faulty_periods: u32,
    pub declared_fault_period: Option<u64>,
}

/// A sector as a PoSt commitment covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedSector {
    pub number: u64,
    pub bytes: u64,
    pub comm_r_last: Hash256,
}

/// The prover's `PostCommit` for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostCommitment {
    pub period: u64,
    pub chain_root: Hash256,
    pub commit_seq: u64,
    /// The ledger that opened the prover's deadline (its `rand` is the beacon's).
    pub opening_seq: u64,
    pub opening_rand: Hash256,
    pub sectors: BoundedVec<CommittedSector, MAX_PROVER_SECTORS>,
    pub revealed: bool,
    /// `FullProofLanes` when the commitment landed: every full proof lane
    /// since extends the reveal window by one ledger (SPEC §3).
    pub full_lanes_at_commit: u64,
}

/// Most proven-but-unsettled periods a prover entry keeps. A period settles
/// once day `period + 2` begins, so at most three (`p`, `p+1`, `p+2`) wait at
/// a time; one more is slack for a settlement spread over many ledgers.
pub const MAX_UNSETTLED_PROOFS: usize = 4;

/// What a prover's reveal proved in one period (SPEC §6: a per-period record,
/// never the prover's latest commitment), read when the period is settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenPeriod {
    pub period: u64,
    /// The sectors the period's commitment covered, by number.
    pub sectors: BoundedVec<u64, MAX_PROVER_SECTORS>,
}

/// A storage prover's state entry (`StateKey::Prover(account)`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProverEntry {
    /// Sector entries it holds, in any state.
    pub sectors: u32,
    /// Bytes of its active and faulty sectors.
    pub sector_bytes: u64,
    pub post: Option<PostCommitment>,
    pub last_proven_period: Option<u64>,
    /// Proven periods not yet settled, oldest first.
    pub proven: BoundedVec<ProvenPeriod, MAX_UNSETTLED_PROOFS>,
    /// Proven bytes credited per day (the last two days), from which a
    /// restart rebuilds the storage weights of days not yet distributed.
    pub credits: BoundedVec<(u64, u64), 2>,
}

/// Storage proofs found valid, by a hash of everything their check reads:
/// a reveal checked on arrival (the pool) is not checked again when its
/// ledger applies, and validators sharing one (the simulator's) check each
/// proof once. Only valid verdicts are kept, and a check is a pure function
/// of the inputs hashed, so a hit answers exactly what the check would.
#[derive(Default)]
pub struct ProofVerdicts {
    valid: std::sync::Mutex<std::collections::HashSet<Hash256>>,
}

impl ProofVerdicts {
    /// Verdicts kept at most; past it the set starts again (a cost, not a risk).
    const MAX: usize = 100_000;

    fn check(&self, key: Hash256, verify: impl FnOnce() -> bool) -> bool {
        let known = self.valid.lock().unwrap_or_else(|e| e.into_inner()).contains(&key);
        if known {
            return true;
        }
        let ok = verify();
        if ok {
            let mut v = self.valid.lock().unwrap_or_else(|e| e.into_inner());
            if v.len() >= Self::MAX {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }
}

/// The key of a proof check: a domain, every input as bytes, the proof.
fn verdict_key(domain: &str, inputs: &[&[u8]], proof: &[u8]) -> Hash256 {
    let mut h = blake3::Hasher::new_derive_key(domain);
    for i in inputs {
        h.update(&(i.len() as u64).to_le_bytes()).update(i);
    }
    h.update(proof);
    Hash256(*h.finalize().as_bytes())
}

/// PoSt deadline `k` of `period` (SPEC §6): when its window opens and
/// closes, in Unix ms. The ledger and the phone both use it.
pub fn post_window_ms(p: &super::params::Params, genesis_time: u64, period: u64, k: u32) -> (u64, u64) {
    let start = genesis_time.saturating_add(period.saturating_mul(p.day_seconds)).saturating_mul(1000);
    let open = start.saturating_add(
        u64::from(k).saturating_mul(p.day_seconds.saturating_mul(1000) / u64::from(p.post_deadlines.max(1))),
    );
    (open, open.saturating_add(p.post_window_seconds.saturating_mul(1000)))
}

/// Deadline index of `prover` in `period`: `H(prover ‖ period) mod deadlines`.
pub fn deadline_index(prover: &AccountId, period: u64, deadlines: u32) -> u32 {
    let mut h = blake3::Hasher::new();
    h.update(&prover.0 .0);
    h.update(&period.to_le_bytes());
    (hash_u64(h.finalize().as_bytes()) % u64::from(deadlines.max(1))) as u32
}

/// The pledge a sector of `size` locks.
pub fn sector_pledge(pledge_per_gib: Amount, size: SectorSize) -> Amount {
    Amount((u128::from(pledge_per_gib.units()) * u128::from(size.bytes()) / GIB) as u64)
}

impl LedgerState {
    pub fn sector(&self, owner: &AccountId, number: u64) -> Option<&SectorEntry> {
        self.sectors.get(&(*owner, number))
    }
    pub fn prover(&self, owner: &AccountId) -> Option<&ProverEntry> {
        self.provers.get(owner)
    }
    pub fn sectors_of(&self, owner: &AccountId) -> impl Iterator<Item = (u64, &SectorEntry)> {
        self.sectors.range((*owner, 0)..=(*owner, u64::MAX)).map(|((_, n), e)| (*n, e))
    }
    /// Proven bytes per prover credited to `day` so far.
    pub fn storage_weights_of(&self, day: u64) -> Vec<(AccountId, u64)> {
        self.storage_weights.get(&day).map(|m| m.iter().map(|(a, b)| (*a, *b)).collect()).unwrap_or_default()
    }

    /// Ledgers so far whose proof lane was full.
    pub fn full_proof_lanes(&self) -> u64 {
        self.full_proof_lanes
    }

    /// The last ledger in which the reveal of commitment `c` may land:
    /// `post_reveal_window` ledgers after its samples ledger, plus one for
    /// every ledger since the commitment whose proof lane was full, so
    /// outbidding a reveal cannot make it miss its window (SPEC §3). The
    /// extension is at most `post_reveal_window` (the window at most doubles),
    /// so a late prover cannot keep it open by stuffing lanes, and the
    /// samples ledger stays inside the recent headers every node keeps.
    pub fn reveal_window_end(&self, c: &PostCommitment) -> u64 {
        let extension =
            self.full_proof_lanes.saturating_sub(c.full_lanes_at_commit).min(self.params.post_reveal_window);
        c.commit_seq
            .saturating_add(self.params.post_reveal_delay)
            .saturating_add(self.params.post_reveal_window)
            .saturating_add(extension)
    }

    /// Unix ms at which deadline `k` of `period` opens.
    pub fn deadline_open_ms(&self, period: u64, k: u32) -> u64 {
        post_window_ms(&self.params, self.genesis_time, period, k).0
    }

    /// Records the deadlines of `day` that open with this ledger.
    pub(crate) fn record_post_openings(&mut self, seq: u64, day: u64, close_time: u64, rand: Hash256) {
        let deadlines = self.params.post_deadlines as usize;
        let opened = self.days.get(&day).map_or(0, |r| r.post_openings.len());
        let due = (opened..deadlines).take_while(|k| close_time >= self.deadline_open_ms(day, *k as u32)).count();
        if due == 0 {
            return;
        }
        self.mark(StateKey::Day(day));
        if let Some(r) = self.days.get_mut(&day) {
            let mut v = std::mem::take(&mut r.post_openings).into_vec();
            v.extend(std::iter::repeat_n((seq, rand), due));
            // At most `post_deadlines` (Params::validate keeps it within the record's bound).
            r.post_openings = BoundedVec::from_iter_capped(v);
        }
    }

    fn touch_sector(&mut self, key: (AccountId, u64), undo: &mut Undo) {
        if !undo.sectors.iter().any(|(k, _)| *k == key) {
            undo.sectors.push((key, self.sectors.get(&key).cloned()));
        }
        self.mark(StateKey::Sector(key.0, key.1));
    }

    fn touch_prover(&mut self, id: AccountId, undo: &mut Undo) {
        if !undo.provers.iter().any(|(k, _)| *k == id) {
            undo.provers.push((id, self.provers.get(&id).cloned()));
        }
        self.mark(StateKey::Prover(id));
    }

    pub(crate) fn touch_fee_pool(&mut self, undo: &mut Undo) {
        if undo.fee_pool.is_none() {
            undo.fee_pool = Some(self.fee_pool);
        }
        self.mark(StateKey::FeePool);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn op_sector_precommit(
        &mut self,
        source: &AccountId,
        number: u64,
        size: SectorSize,
        ticket_seq: u64,
        comms: [Hash256; 4],
        seq: u64,
        undo: &mut Undo,
    ) -> Result<(), OpFailure> {
        let [comm_d, comm_r_, comm_c, comm_r_last] = comms;
        let balance = self.accounts.get(source).ok_or(OpFailure::NoSuchAccount)?.balance;
        // A lapsed pre-commit under the same number may be replaced; its pledge is forfeit.
        let mut forfeit = Amount::ZERO;
        if let Some(old) = self.sectors.get(&(*source, number)) {
            let lapsed = old.state == SectorState::PreCommitted
                && seq > old.precommit_seq.saturating_add(self.params.prove_commit_window);
            if !lapsed {
                return Err(OpFailure::SectorExists);
            }
            forfeit = old.pledge;
        }
        if ticket_seq >= seq || seq - ticket_seq > self.params.ticket_window {
            return Err(OpFailure::BadTicket);
        }
        let rand = self.recent_rand(ticket_seq).ok_or(OpFailure::BadTicket)?;
        if comm_r(&comm_c, &comm_r_last) != comm_r_ || comm_d != zero_root(size.bytes() / 32) {
            return Err(OpFailure::BadProof);
        }
        let prover = self.provers.get(source).cloned().unwrap_or_default();
        if forfeit.is_zero()
            && !self.sectors.contains_key(&(*source, number))
            && prover.sectors as usize >= MAX_PROVER_SECTORS
        {
            return Err(OpFailure::TooManySectors);
        }
        let pledge = sector_pledge(self.params.pledge_per_gib, size);
        if balance < pledge {
            return Err(OpFailure::Underfunded);
        }
        let pledges = self
            .supply
            .sector_pledges
            .checked_sub(forfeit)
            .and_then(|p| p.checked_add(pledge))
            .map_err(|_| OpFailure::Overflow)?;
        let fee_pool = self.fee_pool.checked_add(forfeit).map_err(|_| OpFailure::Overflow)?;
        let replaced = self.sectors.contains_key(&(*source, number));
        self.touch_account(*source, undo);
        self.touch_supply(undo);
        self.touch_fee_pool(undo);
        self.touch_sector((*source, number), undo);
        self.touch_prover(*source, undo);
        if let Some(a) = self.accounts.get_mut(source) {
            a.balance = Amount(a.balance.units() - pledge.units());
        }
        self.supply.sector_pledges = pledges;
        self.fee_pool = fee_pool;
        let p = self.provers.entry(*source).or_default();
        if !replaced {
            p.sectors += 1;
        }
        self.sectors.insert(
            (*source, number),
            SectorEntry {
                size,
                ticket_seq,
                precommit_seq: seq,
                replica_id: replica_id(&source.0 .0, number, &proof::ticket(&rand)),
                comm_d,
                comm_c,
                comm_r_last,
                comm_r: comm_r_,
                pledge,
                state: SectorState::PreCommitted,
                activated_seq: 0,
                activated_day: 0,
                faulty_periods: 0,
                declared_fault_period: None,
            },
        );
        Ok(())
    }

    pub(crate) fn op_sector_prove_commit(
        &mut self,
        source: &AccountId,
        number: u64,
        proof_bytes: &[u8],
        seq: u64,
        day: u64,
        undo: &mut Undo,
    ) -> Result<(), OpFailure> {
        let s = self.sectors.get(&(*source, number)).ok_or(OpFailure::NoSuchSector)?;
        if s.state != SectorState::PreCommitted {
            return Err(OpFailure::BadSectorState);
        }
        let seed_seq = s.precommit_seq + self.params.seed_delay;
        if seq <= seed_seq {
            return Err(OpFailure::TooEarly);
        }
        if seq > s.precommit_seq.saturating_add(self.params.prove_commit_window) {
            return Err(OpFailure::WindowClosed);
        }
        let rand = self.recent_rand(seed_seq).ok_or(OpFailure::WindowClosed)?;
        let sealed = SealedSector {
            shape: SectorShape { sector_bytes: s.size.bytes(), layers: self.params.sector_layers },
            replica_id: s.replica_id,
            comm_d: s.comm_d,
            comm_c: s.comm_c,
            comm_r_last: s.comm_r_last,
            comm_r: s.comm_r,
        };
        let seed = proof::seal_seed(&rand);
        let challenges = self.params.seal_challenges as usize;
        let verify = || {
            decode::<proof::SealProof>(proof_bytes)
                .is_ok_and(|p| proof::verify_seal(&sealed, &seed, challenges, &p).is_ok())
        };
        let shape = [sealed.shape.sector_bytes.to_le_bytes(), u64::from(sealed.shape.layers).to_le_bytes()];
        let inputs: [&[u8]; 9] = [
            &shape[0],
            &shape[1],
            &sealed.replica_id.0,
            &sealed.comm_d.0,
            &sealed.comm_c.0,
            &sealed.comm_r_last.0,
            &sealed.comm_r.0,
            &seed.0,
            &(challenges as u64).to_le_bytes(),
        ];
        let valid = self.proof_valid("watt/v1 verdict seal", &inputs, proof_bytes, verify);
        if !valid {
            return Err(OpFailure::BadProof);
        }
        let bytes = s.size.bytes();
        self.touch_sector((*source, number), undo);
        self.touch_prover(*source, undo);
        if let Some(s) = self.sectors.get_mut(&(*source, number)) {
            s.state = SectorState::Active;
            s.activated_seq = seq;
            s.activated_day = day;
        }
        let p = self.provers.entry(*source).or_default();
        p.sector_bytes = p.sector_bytes.saturating_add(bytes);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn op_post_commit(
        &mut self,
        source: &AccountId,
        period: u64,
        chain_root: Hash256,
        seq: u64,
        day: u64,
        close_time: u64,
        undo: &mut Undo,
    ) -> Result<(), OpFailure> {
        if period != day {
            return Err(OpFailure::BadDay);
        }
        let prover = self.provers.get(source).ok_or(OpFailure::NoSectors)?;
        if prover.post.as_ref().is_some_and(|c| c.period >= period) {
            return Err(OpFailure::AlreadyCommitted);
        }
        let k = deadline_index(source, period, self.params.post_deadlines);
        let (opening_seq, opening_rand) =
            *self.days.get(&period).and_then(|r| r.post_openings.get(k as usize)).ok_or(OpFailure::TooEarly)?;
        if close_time >= post_window_ms(&self.params, self.genesis_time, period, k).1 {
            return Err(OpFailure::WindowClosed);
        }
        let sectors = self.post_sectors(source, opening_seq, period);
        if sectors.is_empty() {
            return Err(OpFailure::NoSectors);
        }
        let sectors = BoundedVec::try_from_vec(sectors).map_err(|_| OpFailure::TooManySectors)?;
        self.touch_prover(*source, undo);
        if let Some(p) = self.provers.get_mut(source) {
            p.post = Some(PostCommitment {
                period,
                chain_root,
                commit_seq: seq,
                opening_seq,
                opening_rand,
                sectors,
                revealed: false,
                full_lanes_at_commit: self.full_proof_lanes,
            });
        }
        Ok(())
    }

    /// The sectors a PoSt opened at `opening_seq` covers (sector-number order).
    pub fn post_sectors(&self, owner: &AccountId, opening_seq: u64, period: u64) -> Vec<CommittedSector> {
        self.sectors_of(owner)
            .filter(|(_, s)| {
                s.state != SectorState::PreCommitted
                    && s.activated_seq < opening_seq
                    && s.declared_fault_period != Some(period)
            })
            .map(|(number, s)| CommittedSector { number, bytes: s.size.bytes(), comm_r_last: s.comm_r_last })
            .collect()
    }

    /// `verify()`, unless a proof with exactly these inputs was found
    /// valid before (see [`ProofVerdicts`]).
    fn proof_valid(&self, domain: &str, inputs: &[&[u8]], proof: &[u8], verify: impl FnOnce() -> bool) -> bool {
        match &self.proof_verdicts {
            Some(v) => v.check(verdict_key(domain, inputs, proof), verify),
            None => verify(),
        }
    }

    /// Checks `source`'s PoSt reveal for `period` as ledger `seq` would
    /// apply it; returns the sectors it proves. The pool runs it on arrival,
    /// so a junk reveal never takes the proof lane's first places.
    pub fn check_post_reveal(
        &self,
        source: &AccountId,
        period: u64,
        proof_bytes: &[u8],
        seq: u64,
    ) -> Result<Vec<ProvenSector>, OpFailure> {
        let prover = self.provers.get(source).ok_or(OpFailure::NoPostCommit)?;
        let c = prover.post.as_ref().filter(|c| c.period == period).ok_or(OpFailure::NoPostCommit)?;
        if c.revealed {
            return Err(OpFailure::AlreadyCommitted);
        }
        let samples_seq = c.commit_seq + self.params.post_reveal_delay;
        if seq <= samples_seq {
            return Err(OpFailure::TooEarly);
        }
        if seq > self.reveal_window_end(c) {
            return Err(OpFailure::WindowClosed);
        }
        let rand = self.recent_rand(samples_seq).ok_or(OpFailure::WindowClosed)?;
        let sectors: Vec<ProvenSector> = c
            .sectors
            .iter()
            .map(|s| ProvenSector { sector_number: s.number, sector_bytes: s.bytes, comm_r_last: s.comm_r_last })
            .collect();
        let (beacon, samples_seed) = (proof::post_beacon(&c.opening_rand), proof::samples_seed(&rand));
        let (steps, samples) = (u64::from(self.params.post_chain_steps), self.params.post_samples as usize);
        let verify = || {
            decode::<proof::PostReveal>(proof_bytes).is_ok_and(|reveal| {
                proof::verify_post(
                    &beacon,
                    &source.0 .0,
                    &sectors,
                    steps,
                    &c.chain_root,
                    &samples_seed,
                    samples,
                    &reveal,
                )
                .is_ok()
            })
        };
        let listed: Vec<u8> = sectors
            .iter()
            .flat_map(|s| {
                [&s.sector_number.to_le_bytes()[..], &s.sector_bytes.to_le_bytes()[..], &s.comm_r_last.0[..]].concat()
            })
            .collect();
        let inputs: [&[u8]; 7] = [
            &beacon.0,
            &source.0 .0,
            &listed,
            &steps.to_le_bytes(),
            &c.chain_root.0,
            &samples_seed.0,
            &(samples as u64).to_le_bytes(),
        ];
        let valid = self.proof_valid("watt/v1 verdict post", &inputs, proof_bytes, verify);
        if !valid {
            return Err(OpFailure::BadProof);
        }
        Ok(sectors)
    }

    pub(crate) fn op_post_reveal(
        &mut self,
        source: &AccountId,
        period: u64,
        proof_bytes: &[u8],
        seq: u64,
        day: u64,
        undo: &mut Undo,
    ) -> Result<(), OpFailure> {
        let sectors = self.check_post_reveal(source, period, proof_bytes, seq)?;
        let bytes: u64 = sectors.iter().map(|s| s.sector_bytes).sum();
        self.touch_prover(*source, undo);
        self.touch_day(day, undo);
        let before = self.storage_weights.get(&day).and_then(|m| m.get(source)).copied();
        undo.storage_weights.push((day, *source, before));
        *self.storage_weights.entry(day).or_default().entry(*source).or_insert(0) += bytes;
        if let Some(r) = self.days.get_mut(&day) {
            if before.is_none() {
                r.storage_provers += 1;
            }
            r.proven_bytes = r.proven_bytes.saturating_add(bytes);
        }
        let numbers: Vec<u64> = sectors.iter().map(|s| s.sector_number).collect();
        let numbers = BoundedVec::try_from_vec(numbers).map_err(|_| OpFailure::TooManySectors)?;
        if let Some(p) = self.provers.get_mut(source) {
            if let Some(c) = &mut p.post {
                c.revealed = true;
                // The record below keeps what settlement needs; the entry stays small.
                c.sectors = BoundedVec::new();
            }
            p.last_proven_period = Some(period);
            // Oldest first; past the bound the oldest record goes (documented above).
            p.proven.push_evicting_front(ProvenPeriod { period, sectors: numbers });
            // Reveals land in increasing days, so the oldest credit is at the front.
            match p.credits.as_mut_slice().iter_mut().find(|(d, _)| *d == day) {
                Some((_, b)) => *b = b.saturating_add(bytes),
                None => p.credits.push_evicting_front((day, bytes)),
            }
        }
        Ok(())
    }

    pub(crate) fn op_declare_fault(
        &mut self,
        source: &AccountId,
        numbers: &[u64],
        day: u64,
        undo: &mut Undo,
    ) -> Result<(), OpFailure> {
        // Before this period's commitment the declaration covers this period, after it the next.
        let committed = self.provers.get(source).and_then(|p| p.post.as_ref()).is_some_and(|c| c.period == day);
        let period = if committed { day + 1 } else { day };
        for n in numbers {
            let s = self.sectors.get(&(*source, *n)).ok_or(OpFailure::NoSuchSector)?;
            if s.state == SectorState::PreCommitted {
                return Err(OpFailure::BadSectorState);
            }
        }
        for n in numbers {
            self.touch_sector((*source, *n), undo);
            if let Some(s) = self.sectors.get_mut(&(*source, *n)) {
                s.declared_fault_period = Some(period);
            }
        }
        Ok(())
    }

    pub(crate) fn op_terminate(
        &mut self,
        source: &AccountId,
        numbers: &[u64],
        undo: &mut Undo,
    ) -> Result<(), OpFailure> {
        let mut seen = std::collections::BTreeSet::new();
        for n in numbers {
            if !seen.insert(*n) || !self.sectors.contains_key(&(*source, *n)) {
                return Err(OpFailure::NoSuchSector);
            }
        }
        self.touch_account(*source, undo);
        self.touch_supply(undo);
        self.touch_prover(*source, undo);
        for n in numbers {
            self.touch_sector((*source, *n), undo);
            self.remove_sector(source, *n, Amount::ZERO);
        }
        Ok(())
    }

    /// Removes a sector: `forfeit` of its pledge goes to the fee pool (the
    /// caller marks the fee pool), the rest back to the owner.
    fn remove_sector(&mut self, owner: &AccountId, number: u64, forfeit: Amount) {
        let Some(s) = self.sectors.remove(&(*owner, number)) else { return };
        let forfeit = forfeit.min(s.pledge);
        let back = s.pledge.units() - forfeit.units();
        self.supply.sector_pledges = Amount(self.supply.sector_pledges.units().saturating_sub(s.pledge.units()));
        self.fee_pool = Amount(self.fee_pool.units().saturating_add(forfeit.units()));
        if let Some(a) = self.accounts.get_mut(owner) {
            a.balance = Amount(a.balance.units().saturating_add(back));
        }
        if let Some(p) = self.provers.get_mut(owner) {
            p.sectors = p.sectors.saturating_sub(1);
            if s.state != SectorState::PreCommitted {
                p.sector_bytes = p.sector_bytes.saturating_sub(s.size.bytes());
            }
        }
    }

    /// Settles ended periods, at most `payout_batch` provers per ledger.
    pub(crate) fn settle_periods(&mut self, seq: u64, day: u64) {
        let mut budget = self.params.payout_batch as usize;
        while budget > 0 {
            let Some(period) = self.days.values().find(|r| !r.settled && r.day + 2 <= day).map(|r| r.day) else {
                return;
            };
            let cursor = self.days.get(&period).and_then(|r| r.settle_cursor);
            let range = match cursor {
                Some(c) => self.provers.range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded)),
                None => self.provers.range(..),
            };
            let want = budget;
            let batch: Vec<AccountId> = range.take(want).map(|(a, _)| *a).collect();
            budget -= batch.len();
            let done = batch.len() < want;
            for prover in &batch {
                self.settle_prover(prover, period, seq);
            }
            self.mark(StateKey::Day(period));
            if let Some(r) = self.days.get_mut(&period) {
                if let Some(last) = batch.last() {
                    r.settle_cursor = Some(*last);
                }
                if done {
                    r.settled = true;
                    r.settle_cursor = None;
                }
            }
        }
    }

    fn settle_prover(&mut self, prover: &AccountId, period: u64, seq: u64) {
        let p = &self.params;
        let (window, lifetime, penalty_ppm, to_terminate) =
            (p.prove_commit_window, p.sector_lifetime_periods, p.fault_penalty_ppm, p.faulty_periods_to_terminate);
        let k = deadline_index(prover, period, p.post_deadlines);
        let opening = self.days.get(&period).and_then(|r| r.post_openings.get(k as usize)).map(|(s, _)| *s);
        // What the reveal for this period recorded (SPEC §6), not the latest commitment.
        let proven: Vec<u64> = self
            .provers
            .get(prover)
            .and_then(|e| e.proven.iter().find(|r| r.period == period))
            .map_or_else(Vec::new, |r| r.sectors.to_vec());
        let sectors: Vec<(u64, SectorEntry)> = self.sectors_of(prover).map(|(n, s)| (n, s.clone())).collect();
        let mut changed = false;
        for (n, s) in sectors {
            if s.state == SectorState::PreCommitted {
                if seq > s.precommit_seq.saturating_add(window) {
                    self.mark_storage(prover, n);
                    self.remove_sector(prover, n, s.pledge);
                    changed = true;
                }
                continue;
            }
            let Some(opening_seq) = opening else { continue };
            if s.activated_seq >= opening_seq {
                continue; // not due in this period
            }
            self.mark_storage(prover, n);
            changed = true;
            if period >= s.activated_day.saturating_add(lifetime) {
                self.remove_sector(prover, n, Amount::ZERO);
                continue;
            }
            if proven.contains(&n) {
                if let Some(e) = self.sectors.get_mut(&(*prover, n)) {
                    e.faulty_periods = 0;
                    e.state = SectorState::Active;
                }
                continue;
            }
            let declared = s.declared_fault_period == Some(period);
            let mut penalty = (u128::from(s.pledge.units()) * u128::from(penalty_ppm) / u128::from(PPM)) as u64;
            if declared {
                penalty /= 2;
            }
            let penalty = penalty.min(s.pledge.units());
            self.supply.sector_pledges = Amount(self.supply.sector_pledges.units().saturating_sub(penalty));
            self.fee_pool = Amount(self.fee_pool.units().saturating_add(penalty));
            let terminate = match self.sectors.get_mut(&(*prover, n)) {
                Some(e) => {
                    e.pledge = Amount(e.pledge.units() - penalty);
                    e.faulty_periods += 1;
                    e.state = SectorState::Faulty;
                    if e.declared_fault_period == Some(period) {
                        e.declared_fault_period = None;
                    }
                    e.faulty_periods >= to_terminate
                }
                None => false,
            };
            if terminate {
                self.remove_sector(prover, n, Amount::ZERO);
            }
        }
        // The period's record has been read: drop it (and any older one).
        if let Some(e) = self.provers.get_mut(prover) {
            if e.proven.iter().any(|r| r.period <= period) {
                e.proven.retain(|r| r.period > period);
                changed = true;
            }
        }
        // A prover with nothing left and no credit still to be paid goes away.
        let gone =
            self.provers.get(prover).is_some_and(|e| e.sectors == 0 && e.credits.iter().all(|(d, _)| *d <= period));
        if gone || changed {
            self.mark(StateKey::Prover(*prover));
        }
        if gone {
            self.provers.remove(prover);
        }
    }

    fn mark_storage(&mut self, prover: &AccountId, n: u64) {
        self.mark(StateKey::Sector(*prover, n));
        self.mark(StateKey::Prover(*prover));
        self.mark(StateKey::Account(*prover));
        self.mark(StateKey::Supply);
        self.mark(StateKey::FeePool);
    }
}

#[cfg(test)]
mod verdict_tests {
    use super::*;

    /// A verdict answers only for the very inputs it was found on, and
    /// only a valid one is kept: an invalid proof is checked every time.
    #[test]
    fn only_valid_verdicts_are_kept_and_only_for_the_same_inputs() {
        let v = ProofVerdicts::default();
        let key = verdict_key("watt/v1 verdict post", &[b"beacon", b"prover"], b"proof");
        assert!(!v.check(key, || false));
        let mut checked = false;
        assert!(v.check(key, || {
            checked = true;
            true
        }));
        assert!(checked, "an invalid verdict was not kept");
        assert!(v.check(key, || panic!("a kept verdict answers without checking")));
        // Another input, another proof, another domain, or inputs split
        // differently: another key, checked afresh.
        for other in [
            verdict_key("watt/v1 verdict post", &[b"beacon", b"prover2"], b"proof"),
            verdict_key("watt/v1 verdict post", &[b"beacon", b"prover"], b"proof2"),
            verdict_key("watt/v1 verdict seal", &[b"beacon", b"prover"], b"proof"),
            verdict_key("watt/v1 verdict post", &[b"beaconp", b"rover"], b"proof"),
        ] {
            assert_ne!(other, key);
            assert!(!v.check(other, || false));
        }
    }
}
