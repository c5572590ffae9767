//! The pending pool and tx-set building (SPEC §3): validation on arrival,
//! an ordinary lane ordered by fee per operation, a fee-free attestation
//! lane and a proof lane for large transactions, eviction of the lowest fees
//! when full, expiry, and the check every validator runs on a proposed tx
//! set before voting for it.
//!
//! Byte budgets (SPEC §3): a tx set holds at most `max_tx_set_bytes` of
//! encoded transactions, of which proof-lane transactions (over
//! `proof_lane_min_bytes`) take at most `max_proof_bytes_per_ledger`, and no
//! transaction is over `max_tx_bytes`. Building, checking, serving and
//! catch-up all keep to them, so no pending transactions can make a value
//! whose tx set peers cannot fetch. The proof lane is filled first (PoSt
//! reveals by window end, then by fee per byte), then attestations in
//! arrival order, then the ordinary lane by fee per operation. Attestations
//! are fee-free, so they take at most [`attestation_bytes`]: an eighth of the
//! set is always left to the fee market, whatever taps are pending. A
//! transaction's fee must be payable from what its account has left after
//! the fees already chosen, exactly as [`check_tx_set`] checks it.

use super::apply::canonical_order;
use super::params::Params;
use super::state::LedgerState;
use super::types::{Operation, Transaction, TxSet};
use crate::address::AccountId;
use crate::codec::BoundedVec;
use crate::crypto::Hash256;
use crate::wire::TxRejection;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

/// Ledgers a transaction may wait in the pool before it is dropped.
pub const POOL_EXPIRY_LEDGERS: u64 = 120;

/// Dropped transactions remembered for `GetTx` (about a minute of a full
/// pool at mainnet sizes; the oldest are forgotten first).
pub const DROPPED_REMEMBERED: usize = 65_536;

#[derive(Debug, Clone)]
struct Pending {
    tx: Transaction,
    fee_per_op: u64,
    /// Encoded size (the byte budgets' unit).
    bytes: u64,
    arrived_seq: u64,
    order: u64,
}

/// A transaction's encoded size, what the byte budgets count.
pub fn tx_bytes(tx: &Transaction) -> u64 {
    crate::codec::encode(tx).len() as u64
}

/// Whether a transaction of `bytes` travels in the proof lane.
pub fn in_proof_lane(params: &Params, bytes: u64) -> bool {
    bytes > u64::from(params.proof_lane_min_bytes)
}

/// Most bytes of attestations in one tx set: what the proof lane leaves,
/// less an eighth of the set kept for fee-paying transactions.
pub fn attestation_bytes(params: &Params) -> u64 {
    let set = u64::from(params.max_tx_set_bytes);
    set.saturating_sub(u64::from(params.max_proof_bytes_per_ledger)).saturating_sub(set / 8)
}

/// The bytes a tx set spends: all of it, its proof lane and its attestations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneBytes {
    pub total: u64,
    pub proofs: u64,
    pub attestations: u64,
}

impl LaneBytes {
    fn fits(&self, params: &Params, bytes: u64) -> bool {
        let proofs = if in_proof_lane(params, bytes) { self.proofs + bytes } else { self.proofs };
        bytes <= u64::from(params.max_tx_bytes)
            && self.total + bytes <= u64::from(params.max_tx_set_bytes)
            && proofs <= u64::from(params.max_proof_bytes_per_ledger)
    }
    fn add(&mut self, params: &Params, bytes: u64) {
        self.total += bytes;
        if in_proof_lane(params, bytes) {
            self.proofs += bytes;
        }
    }
    /// Whether the proof lane counts as full for window extensions (SPEC
    /// §3): more than half of it is used, so a reveal of up to half the lane
    /// (at defaults every reveal: ≤ 512 KiB of 1 MiB) may not have fit.
    /// Decided from the tx set alone, so every validator agrees.
    pub fn proof_lane_full(&self, params: &Params) -> bool {
        self.proofs > u64::from(params.max_proof_bytes_per_ledger) / 2
    }
}

/// The bytes of a tx set's transactions, by lane.
pub fn lane_bytes(params: &Params, txs: &[Transaction]) -> LaneBytes {
    let mut b = LaneBytes::default();
    for tx in txs {
        let bytes = tx_bytes(tx);
        b.add(params, bytes);
        if tx.is_attestation() {
            b.attestations += bytes;
        }
    }
    b
}

/// Whether a tx set's proof lane counts as full ([`LaneBytes::proof_lane_full`]),
/// measuring only what can be in the lane: an attestation never is (it is
/// below `MIN_PROOF_LANE_BYTES`), so `apply` does not encode the thousands of
/// taps of a ledger again.
pub fn proof_lane_full(params: &Params, txs: &[Transaction]) -> bool {
    let mut b = LaneBytes::default();
    for tx in txs.iter().filter(|t| !t.is_attestation()) {
        b.add(params, tx_bytes(tx));
    }
    b.proof_lane_full(params)
}

/// What each account has left for fees while a tx set is built or checked.
struct FeeBudget<'a> {
    state: &'a LedgerState,
    left: HashMap<AccountId, u64>,
}

impl FeeBudget<'_> {
    /// Takes `tx`'s fee from its account's balance left, if it can pay it.
    fn pay(&mut self, tx: &Transaction) -> bool {
        let source = tx.body.source;
        let state = self.state;
        let left = self.left.entry(source).or_insert_with(|| state.account(&source).map_or(0, |a| a.balance.units()));
        match left.checked_sub(tx.body.fee.units()) {
            Some(rest) => {
                *left = rest;
                true
            }
            None => false,
        }
    }
}

/// Ordering key for eviction and selection: fee per op, then hash (lower hash wins ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Priority(u64, std::cmp::Reverse<Hash256>);

#[derive(Debug)]
pub struct TxPool {
    ordinary_capacity: usize,
    attest_capacity: usize,
    /// Ledgers' worth of each lane the pool holds (also in bytes).
    ledgers_worth: usize,
    /// Encoded bytes pending in each lane (attestations, the rest), each held
    /// to its share of `ledgers_worth` tx sets, so neither lane's bytes can
    /// lock the other out.
    attest_bytes: u64,
    other_bytes: u64,
    /// Recently applied transactions: one that failed without using a
    /// sequence number (a first tap) cannot be admitted again.
    applied: std::collections::HashSet<Hash256>,
    applied_order: VecDeque<Hash256>,
    by_hash: HashMap<Hash256, Pending>,
    by_account: BTreeMap<AccountId, BTreeMap<u64, Hash256>>,
    ordinary: BTreeSet<(Priority, Hash256)>,
    /// Attestations in arrival order.
    attestations: BTreeMap<u64, Hash256>,
    /// (account, day) of pending attestations: one per account per day.
    attest_days: BTreeSet<(AccountId, u64)>,
    /// Pending first taps, invitee → inviter: one per invitee (SPEC §5).
    first_taps: HashMap<AccountId, AccountId>,
    /// Pending first taps per inviter, counted against its daily invitations.
    invites_pending: HashMap<AccountId, u32>,
    next_order: u64,
    /// The lowest fee per operation that made it into the last full ledger.
    pub surge_fee_per_op: Option<u64>,
    /// Accepted transactions that left without being applied, and why.
    dropped: HashMap<Hash256, TxRejection>,
    dropped_order: VecDeque<Hash256>,
}

impl TxPool {
    /// Holds up to `ledgers_worth` ledgers of each lane.
    pub fn new(max_txs: u32, max_attestations: u32, ledgers_worth: usize) -> TxPool {
        TxPool {
            ordinary_capacity: max_txs as usize * ledgers_worth,
            attest_capacity: max_attestations as usize * ledgers_worth,
            ledgers_worth,
            attest_bytes: 0,
            other_bytes: 0,
            applied: std::collections::HashSet::new(),
            applied_order: VecDeque::new(),
            by_hash: HashMap::new(),
            by_account: BTreeMap::new(),
            ordinary: BTreeSet::new(),
            attestations: BTreeMap::new(),
            attest_days: BTreeSet::new(),
            first_taps: HashMap::new(),
            invites_pending: HashMap::new(),
            next_order: 0,
            surge_fee_per_op: None,
            dropped: HashMap::new(),
            dropped_order: VecDeque::new(),
        }
    }

    /// Most encoded bytes pending in a lane: `ledgers_worth` tx sets' worth
    /// of its share (attestations: `attestation_bytes`; the rest: the others).
    fn byte_capacity(&self, state: &LedgerState, attestations: bool) -> u64 {
        let params = &state.params;
        let share = if attestations {
            attestation_bytes(params)
        } else {
            u64::from(params.max_tx_set_bytes).saturating_sub(attestation_bytes(params))
        };
        share.saturating_mul(self.ledgers_worth as u64)
    }

    /// Encoded bytes of everything pending.
    pub fn bytes(&self) -> u64 {
        self.attest_bytes + self.other_bytes
    }

    fn note_applied(&mut self, hash: Hash256) {
        if self.applied.insert(hash) {
            self.applied_order.push_back(hash);
            if self.applied_order.len() > DROPPED_REMEMBERED {
                if let Some(old) = self.applied_order.pop_front() {
                    self.applied.remove(&old);
                }
            }
        }
    }

    /// Why an accepted transaction left the pool unapplied, if it did recently.
    pub fn dropped(&self, hash: &Hash256) -> Option<&TxRejection> {
        self.dropped.get(hash)
    }

    fn note_dropped(&mut self, hash: Hash256, why: TxRejection) {
        if self.dropped.insert(hash, why).is_none() {
            self.dropped_order.push_back(hash);
            if self.dropped_order.len() > DROPPED_REMEMBERED {
                if let Some(old) = self.dropped_order.pop_front() {
                    self.dropped.remove(&old);
                }
            }
        }
    }

    /// Up to `max` transactions that have waited at least `min_ledgers`
    /// since they arrived (before ledger `next_seq`), best fee first, then
    /// attestations: what a validator floods again, in case the first flood
    /// was lost and they wait in its pool alone for it to lead a round.
    /// At most `max_bytes` of them, so a pool of fat transactions cannot
    /// make every ledger re-flood gigabytes to every peer.
    pub fn waiting(&self, next_seq: u64, min_ledgers: u64, max: usize, max_bytes: u64) -> Vec<Transaction> {
        let old = |h: &Hash256| self.by_hash.get(h).filter(|p| next_seq.saturating_sub(p.arrived_seq) >= min_ledgers);
        let mut bytes = 0u64;
        self.ordinary
            .iter()
            .rev()
            .map(|(_, h)| h)
            .chain(self.attestations.values())
            .filter_map(old)
            .take(max)
            .take_while(|p| {
                bytes += p.bytes;
                bytes <= max_bytes
            })
            .map(|p| p.tx.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
    /// Whether the pool holds this very transaction, signature included (so
    /// its signature was checked when it came in).
    pub fn holds_signed(&self, hash: &Hash256, signature: &crate::crypto::Signature) -> bool {
        self.by_hash.get(hash).is_some_and(|p| p.tx.signature == *signature)
    }

    /// Most transactions the pool holds at once, both lanes.
    pub fn capacity(&self) -> usize {
        self.ordinary_capacity + self.attest_capacity
    }

    pub fn contains(&self, hash: &Hash256) -> bool {
        self.by_hash.contains_key(hash)
    }
    pub fn get(&self, hash: &Hash256) -> Option<&Transaction> {
        self.by_hash.get(hash).map(|p| &p.tx)
    }

    /// Validates a transaction against the last closed ledger and takes it in.
    pub fn add(&mut self, tx: Transaction, state: &LedgerState) -> Result<Hash256, TxRejection> {
        self.add_with(tx, state, &|_| false)
    }

    /// [`TxPool::add`], skipping the signature check when `verified` vouches
    /// for this very signature.
    pub fn add_with(
        &mut self,
        tx: Transaction,
        state: &LedgerState,
        verified: &dyn Fn(&Transaction) -> bool,
    ) -> Result<Hash256, TxRejection> {
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) || self.applied.contains(&hash) {
            return Err(TxRejection::Duplicate);
        }
        let n_ops = tx.body.ops.len();
        if n_ops == 0
            || n_ops > super::types::MAX_OPS
            || (n_ops > 1 && tx.body.ops.iter().any(Operation::is_attestation))
        {
            return Err(TxRejection::Malformed);
        }
        // Size before the signature: a fat transaction costs no verification.
        let bytes = tx_bytes(&tx);
        if bytes > u64::from(state.params.max_tx_bytes) {
            return Err(TxRejection::TooLarge);
        }
        if tx.check_form_with(&state.network_id, verified).is_err() {
            return Err(TxRejection::BadSignature);
        }
        let next_seq = state.header.seq + 1;
        if tx.body.max_ledger.is_some_and(|m| m < next_seq) {
            return Err(TxRejection::Expired);
        }
        let source = tx.body.source;
        let account = state.account(&source);
        let queued = self.by_account.get(&source);
        let base = account.map_or(0, |a| a.seq_num);
        let expected = base + 1 + queued.map_or(0, |q| q.len() as u64);
        if tx.is_attestation() {
            let Operation::Attest(a) = &tx.body.ops[0] else { return Err(TxRejection::Malformed) };
            if !tx.body.fee.is_zero() {
                return Err(TxRejection::InsufficientFee);
            }
            if account.is_some_and(|acc| acc.last_attest_day == Some(a.day) || acc.prev_attest_day == Some(a.day))
                || self.attest_days.contains(&(source, a.day))
            {
                return Err(TxRejection::AlreadyAttested);
            }
            if tx.body.seq_num != expected {
                return Err(TxRejection::BadSequence { expected });
            }
            check_tap(state, a)?;
            // A first tap (a new key or a wallet) is admitted only with a valid
            // invite from an eligible inviter with invitations left (counting
            // the first taps waiting here), one per invitee, while the day has
            // places; more than the places left go to the day's lottery (SPEC §5).
            let first = !account.is_some_and(|acc| acc.is_miner());
            let mut inviter = None;
            if first {
                if self.first_taps.contains_key(&source) {
                    return Err(TxRejection::AlreadyAttested);
                }
                let named = a.invite.as_ref().map(|i| i.inviter);
                let pending = named.and_then(|i| self.invites_pending.get(&i)).copied().unwrap_or(0);
                let tap = state.first_tap(&source, a, state.header.day, pending).map_err(TxRejection::WouldFail)?;
                inviter = Some(tap.inviter);
            }
            // First taps take at most half the lane's places, so a farm's
            // invitees (valid, but past the day's places) never keep miners'
            // daily taps out.
            if self.attestations.len() >= self.attest_capacity
                || self.attest_bytes + bytes > self.byte_capacity(state, true)
                || (inviter.is_some() && self.first_taps.len() >= self.attest_capacity / 2)
            {
                return Err(TxRejection::PoolFull);
            }
            if let Some(inviter) = inviter {
                self.first_taps.insert(source, inviter);
                *self.invites_pending.entry(inviter).or_insert(0) += 1;
            }
            self.attest_days.insert((source, a.day));
            let order = self.push(hash, tx, bytes, next_seq);
            self.attestations.insert(order, hash);
            return Ok(hash);
        }
        let Some(acc) = account else { return Err(TxRejection::BadSequence { expected: 1 }) };
        if tx.body.seq_num != expected {
            return Err(TxRejection::BadSequence { expected });
        }
        // A PoSt reveal goes first in the proof lane, so it must be one that
        // would pass: checked against the last closed ledger on arrival.
        for op in tx.body.ops.iter() {
            if let Operation::PostReveal { period, proof } = op {
                state.check_post_reveal(&source, *period, proof, next_seq).map_err(TxRejection::WouldFail)?;
            }
        }
        let queued_fees: u64 =
            queued.into_iter().flatten().filter_map(|(_, h)| self.by_hash.get(h)).map(|p| p.tx.body.fee.units()).sum();
        if acc.balance.units() < queued_fees.saturating_add(tx.body.fee.units()) {
            return Err(TxRejection::InsufficientBalance);
        }
        let prio = Priority(tx.fee_per_op(), std::cmp::Reverse(hash));
        // Full (by count, or by bytes: fat transactions are held to a few tx
        // sets' worth): only a better fee gets in, and the lowest leave.
        while self.ordinary.len() >= self.ordinary_capacity
            || self.other_bytes + bytes > self.byte_capacity(state, false)
        {
            let Some(&(lowest, lowest_hash)) = self.ordinary.first() else { return Err(TxRejection::PoolFull) };
            // Never the account's own earlier transaction: that would leave a
            // gap in its sequence numbers that nothing fills.
            let own = self.by_hash.get(&lowest_hash).is_some_and(|p| p.tx.body.source == source);
            if prio <= lowest || lowest_hash == hash || own {
                return Err(TxRejection::InsufficientFee);
            }
            self.evict(&lowest_hash, TxRejection::Evicted);
        }
        self.ordinary.insert((prio, hash));
        self.push(hash, tx, bytes, next_seq);
        Ok(hash)
    }

    fn push(&mut self, hash: Hash256, tx: Transaction, bytes: u64, seq: u64) -> u64 {
        let order = self.next_order;
        self.next_order += 1;
        self.by_account.entry(tx.body.source).or_default().insert(tx.body.seq_num, hash);
        if tx.is_attestation() {
            self.attest_bytes += bytes;
        } else {
            self.other_bytes += bytes;
        }
        self.by_hash.insert(hash, Pending { fee_per_op: tx.fee_per_op(), tx, bytes, arrived_seq: seq, order });
        order
    }

    /// Drops a transaction and those of the same account that depended on it.
    fn evict(&mut self, hash: &Hash256, why: TxRejection) {
        let Some(p) = self.by_hash.get(hash) else { return };
        let source = p.tx.body.source;
        let seq = p.tx.body.seq_num;
        let later: Vec<Hash256> =
            self.by_account.get(&source).map(|m| m.range(seq..).map(|(_, h)| *h).collect()).unwrap_or_default();
        for h in later {
            self.remove(&h);
            self.note_dropped(h, why.clone());
        }
    }

    fn remove(&mut self, hash: &Hash256) {
        let Some(p) = self.by_hash.remove(hash) else { return };
        if p.tx.is_attestation() {
            self.attest_bytes = self.attest_bytes.saturating_sub(p.bytes);
        } else {
            self.other_bytes = self.other_bytes.saturating_sub(p.bytes);
        }
        let source = p.tx.body.source;
        if let Some(m) = self.by_account.get_mut(&source) {
            m.remove(&p.tx.body.seq_num);
            if m.is_empty() {
                self.by_account.remove(&source);
            }
        }
        if p.tx.is_attestation() {
            self.attestations.remove(&p.order);
            if let Operation::Attest(a) = &p.tx.body.ops[0] {
                self.attest_days.remove(&(source, a.day));
            }
            if let Some(inviter) = self.first_taps.remove(&source) {
                if let Some(n) = self.invites_pending.get_mut(&inviter) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.invites_pending.remove(&inviter);
                    }
                }
            }
        } else {
            self.ordinary.remove(&(Priority(p.fee_per_op, std::cmp::Reverse(*hash)), *hash));
        }
    }

    /// After a ledger closed: drop what was applied, what can no longer
    /// apply (sequence used), and what waited too long.
    pub fn ledger_closed(&mut self, state: &LedgerState, applied: &[Hash256]) {
        for h in applied {
            self.remove(h);
            self.note_applied(*h);
        }
        let seq = state.header.seq;
        let stale: Vec<(Hash256, TxRejection)> = self
            .by_hash
            .iter()
            .filter_map(|(h, p)| {
                let account_seq = state.account(&p.tx.body.source).map_or(0, |a| a.seq_num);
                if p.tx.body.seq_num <= account_seq {
                    // Another transaction used the sequence number.
                    return Some((*h, TxRejection::BadSequence { expected: account_seq + 1 }));
                }
                let old = seq.saturating_sub(p.arrived_seq) > POOL_EXPIRY_LEDGERS;
                let expired = p.tx.body.max_ledger.is_some_and(|m| m <= seq);
                (old || expired).then_some((*h, TxRejection::Expired))
            })
            .collect();
        for (h, why) in stale {
            self.evict(&h, why);
        }
        // Fees that the balance can no longer pay (it was spent meanwhile):
        // such a transaction would make every set holding it invalid.
        let mut unpayable = Vec::new();
        let mut fees = FeeBudget { state, left: HashMap::new() };
        for txs in self.by_account.values() {
            // In sequence order: the first fee the account cannot pay, and its successors.
            if let Some(h) = txs.values().find(|h| self.by_hash.get(*h).is_some_and(|p| !fees.pay(&p.tx))) {
                unpayable.push(*h);
            }
        }
        for h in unpayable {
            self.evict(&h, TxRejection::InsufficientBalance);
        }
    }

    /// The tx set to nominate (SPEC §3), canonically sorted and within the
    /// byte budgets: first the proof lane (accounts whose next transaction is
    /// a proof: PoSt reveals by window end, then the rest by fee per byte),
    /// then up to `max_attestations` attestations in arrival order, then the
    /// ordinary lane by fee per operation (each account's transactions in
    /// sequence); proofs and ordinary transactions together at most `max_txs`.
    pub fn build_tx_set(&mut self, state: &LedgerState) -> TxSet {
        let params = &state.params;
        let max_txs = params.max_txs_per_ledger as usize;
        let max_att = params.max_attestations_per_ledger as usize;
        let mut chosen: Vec<Transaction> = Vec::new();
        let mut used = LaneBytes::default();
        let mut fees = FeeBudget { state, left: HashMap::new() };
        let mut ordinary = 0usize;
        // The sequence number each account's next chosen transaction must have.
        let mut next: HashMap<AccountId, u64> = HashMap::new();
        let base = |acct: &AccountId| state.account(acct).map_or(0, |a| a.seq_num).saturating_add(1);

        // The proof lane: accounts whose next transaction is a proof.
        let mut proofs: Vec<(ProofPriority, Hash256)> = Vec::new();
        for (acct, txs) in &self.by_account {
            let Some(p) = txs.get(&base(acct)).and_then(|h| self.by_hash.get(h)) else { continue };
            if !p.tx.is_attestation() && in_proof_lane(params, p.bytes) {
                proofs.push((proof_priority(state, p), p.tx.hash()));
            }
        }
        proofs.sort();
        for (_, h) in proofs {
            let Some(p) = self.by_hash.get(&h) else { continue };
            if ordinary < max_txs && used.fits(params, p.bytes) && fees.pay(&p.tx) {
                used.add(params, p.bytes);
                ordinary += 1;
                next.insert(p.tx.body.source, p.tx.body.seq_num.saturating_add(1));
                chosen.push(p.tx.clone());
            }
        }

        // Attestations in arrival order (a first attestation, or the account's
        // next sequence number), within their share of the bytes.
        let attestation_cap = attestation_bytes(params);
        let mut attestations = 0usize;
        let mut first_taps = 0usize;
        for h in self.attestations.values() {
            if attestations >= max_att {
                break;
            }
            let Some(p) = self.by_hash.get(h) else { continue };
            let source = p.tx.body.source;
            // Half a set's lane at most for first taps, as in the pool.
            let first = self.first_taps.contains_key(&source);
            if first && first_taps >= max_att / 2 {
                continue;
            }
            let expected = next.get(&source).copied().unwrap_or_else(|| base(&source));
            let room = used.attestations + p.bytes <= attestation_cap;
            if p.tx.body.seq_num == expected && room && used.fits(params, p.bytes) {
                used.add(params, p.bytes);
                used.attestations += p.bytes;
                attestations += 1;
                first_taps += usize::from(first);
                next.insert(source, expected.saturating_add(1));
                chosen.push(p.tx.clone());
            }
        }

        // The ordinary lane: a heap of each account's next transaction.
        let head_of = |pool: &TxPool, acct: &AccountId, seq: u64| -> Option<(Priority, Hash256)> {
            let h = pool.by_account.get(acct)?.get(&seq)?;
            let p = pool.by_hash.get(h)?;
            (!p.tx.is_attestation()).then_some((Priority(p.fee_per_op, std::cmp::Reverse(*h)), *h))
        };
        let mut heap: BinaryHeap<(Priority, Hash256)> = BinaryHeap::new();
        for acct in self.by_account.keys() {
            let seq = next.get(acct).copied().unwrap_or_else(|| base(acct));
            if let Some(e) = head_of(self, acct, seq) {
                heap.push(e);
            }
        }
        let mut full = false;
        let mut lowest = None;
        while let Some((prio, h)) = heap.pop() {
            if ordinary >= max_txs {
                full = true;
                break;
            }
            let Some(p) = self.by_hash.get(&h) else { continue };
            if !used.fits(params, p.bytes) {
                // Out of bytes for this one (and so for its account's later ones).
                full = true;
                continue;
            }
            if !fees.pay(&p.tx) {
                // Its account cannot pay this fee after the ones chosen: the
                // account's later transactions wait too.
                continue;
            }
            used.add(params, p.bytes);
            ordinary += 1;
            lowest = Some(prio.0);
            let acct = p.tx.body.source;
            let after = p.tx.body.seq_num.saturating_add(1);
            chosen.push(p.tx.clone());
            next.insert(acct, after);
            if let Some(e) = head_of(self, &acct, after) {
                heap.push(e);
            }
        }
        self.surge_fee_per_op = if full { lowest } else { None };
        chosen.sort_by(canonical_order);
        // At most max_txs + max_attestations, which `Params::validate` keeps within MAX_TXSET_TXS.
        TxSet { prev_header_hash: state.header.hash(), txs: BoundedVec::from_iter_capped(chosen) }
    }
}

/// What `apply` will check of a tap's day and anchor, against the last closed
/// ledger, so a tap that must fail costs no place in the fee-free lane;
/// `apply` has the last word.
fn check_tap(state: &LedgerState, a: &super::types::Attest) -> Result<(), TxRejection> {
    use super::types::OpFailure;
    // Today, or yesterday while the next ledger is still in today's grace
    // window: the rule `apply` has, against the last closed ledger (a tap
    // for a day that has not begun is refused; the phone sends it again).
    let today = state.header.day;
    let next = state.header.seq.saturating_add(1);
    let first = state.day_record(today).map_or(next, |r| r.first_seq);
    let in_grace = next < first.saturating_add(state.params.attest_grace_ledgers);
    if !(a.day == today || (a.day.checked_add(1) == Some(today) && in_grace)) {
        return Err(TxRejection::WouldFail(OpFailure::BadDay));
    }
    let in_window = a.anchor_seq < next && next - a.anchor_seq <= state.params.attest_anchor_window;
    if !in_window || state.recent_hash(a.anchor_seq) != Some(a.anchor_hash) {
        return Err(TxRejection::WouldFail(OpFailure::BadAnchor));
    }
    Ok(())
}

/// Proof-lane order (SPEC §3): PoSt reveals first, the earliest window end
/// first; then everything else by fee per byte, the highest first.
type ProofPriority = (u8, u64, std::cmp::Reverse<u128>);

fn proof_priority(state: &LedgerState, p: &Pending) -> ProofPriority {
    if let [Operation::PostReveal { period, .. }] = p.tx.body.ops.as_slice() {
        let end = state
            .prover(&p.tx.body.source)
            .and_then(|e| e.post.as_ref())
            .filter(|c| c.period == *period && !c.revealed)
            .map(|c| state.reveal_window_end(c));
        if let Some(end) = end {
            return (0, end, std::cmp::Reverse(0));
        }
    }
    let per_byte = (u128::from(p.tx.body.fee.units()) << 20) / u128::from(p.bytes.max(1));
    (1, 0, std::cmp::Reverse(per_byte))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxSetError {
    #[error("tx set does not follow the last closed ledger")]
    WrongPrevious,
    #[error("{0} ordinary transactions exceed the limit")]
    TooManyTxs(usize),
    #[error("{0} attestations exceed the limit")]
    TooManyAttestations(usize),
    #[error("not in canonical order, or a transaction repeats")]
    Order,
    #[error("transaction {0} is malformed or badly signed")]
    BadTx(Hash256),
    #[error("transaction {0} cannot apply: wrong sequence number or unpayable fee")]
    CannotApply(Hash256),
    #[error("transaction {tx} is {bytes} bytes, over max_tx_bytes")]
    TxTooLarge { tx: Hash256, bytes: u64 },
    #[error("{0} bytes of transactions exceed max_tx_set_bytes")]
    TooManyBytes(u64),
    #[error("{0} bytes of proofs exceed max_proof_bytes_per_ledger")]
    TooManyProofBytes(u64),
    #[error("{0} bytes of attestations exceed their share of the set")]
    TooManyAttestationBytes(u64),
}

/// How SCP's combine ranks a candidate's tx set (SPEC §4): total fees first,
/// then the number of operations (the value's hash breaks the last ties), so
/// a round leader cannot win a slot, and its `rand`, by padding its set with
/// zero-fee transactions.
pub fn candidate_rank(set: &TxSet) -> (u128, usize) {
    let fees: u128 = set.txs.iter().map(|t| u128::from(t.body.fee.units())).sum();
    let ops: usize = set.txs.iter().map(|t| t.body.ops.len()).sum();
    (fees, ops)
}

/// What a validator checks before voting for a tx set (SCP value validation).
pub fn check_tx_set(state: &LedgerState, set: &TxSet) -> Result<(), TxSetError> {
    check_tx_set_with(state, set, &|_| false)
}

/// [`check_tx_set`], skipping the signatures `verified` vouches for (those
/// the validator checked already: a set's transactions are mostly in its
/// own pool).
pub fn check_tx_set_with(
    state: &LedgerState,
    set: &TxSet,
    verified: &dyn Fn(&Transaction) -> bool,
) -> Result<(), TxSetError> {
    if set.prev_header_hash != state.header.hash() {
        return Err(TxSetError::WrongPrevious);
    }
    let attestations = set.txs.iter().filter(|t| t.is_attestation()).count();
    let ordinary = set.txs.len() - attestations;
    if ordinary > state.params.max_txs_per_ledger as usize {
        return Err(TxSetError::TooManyTxs(ordinary));
    }
    if attestations > state.params.max_attestations_per_ledger as usize {
        return Err(TxSetError::TooManyAttestations(attestations));
    }
    if set.txs.windows(2).any(|w| canonical_order(&w[0], &w[1]) != std::cmp::Ordering::Less) {
        return Err(TxSetError::Order);
    }
    // The byte budgets, before any signature is checked.
    let params = &state.params;
    let mut used = LaneBytes::default();
    for tx in set.txs.iter() {
        let bytes = tx_bytes(tx);
        if bytes > u64::from(params.max_tx_bytes) {
            return Err(TxSetError::TxTooLarge { tx: tx.hash(), bytes });
        }
        used.add(params, bytes);
        if tx.is_attestation() {
            used.attestations += bytes;
        }
    }
    if used.total > u64::from(params.max_tx_set_bytes) {
        return Err(TxSetError::TooManyBytes(used.total));
    }
    if used.proofs > u64::from(params.max_proof_bytes_per_ledger) {
        return Err(TxSetError::TooManyProofBytes(used.proofs));
    }
    if used.attestations > attestation_bytes(params) {
        return Err(TxSetError::TooManyAttestationBytes(used.attestations));
    }
    let mut next: HashMap<AccountId, u64> = HashMap::new();
    let mut fees = FeeBudget { state, left: HashMap::new() };
    for tx in set.txs.iter() {
        let h = tx.hash();
        if tx.check_form_with(&state.network_id, verified).is_err() || (tx.is_attestation() && !tx.body.fee.is_zero()) {
            return Err(TxSetError::BadTx(h));
        }
        if tx.body.max_ledger.is_some_and(|m| m <= state.header.seq) {
            return Err(TxSetError::CannotApply(h));
        }
        let acc = state.account(&tx.body.source);
        let seq = next.entry(tx.body.source).or_insert_with(|| acc.map_or(0, |a| a.seq_num));
        if Some(tx.body.seq_num) != seq.checked_add(1) || (acc.is_none() && !tx.is_attestation()) || !fees.pay(tx) {
            return Err(TxSetError::CannotApply(h));
        }
        *seq += 1;
    }
    Ok(())
}
