//! The pending pool and tx-set building (SPEC §3): validation on arrival,
//! an ordinary lane ordered by fee per operation and a fee-free attestation
//! lane, eviction of the lowest fees when full, expiry, and the check every
//! validator runs on a proposed tx set before voting for it.

use super::apply::canonical_order;
use super::state::LedgerState;
use super::types::{Operation, Transaction, TxSet, MAX_TXSET_TXS};
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
    arrived_seq: u64,
    order: u64,
}

/// Ordering key for eviction and selection: fee per op, then hash (lower hash wins ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Priority(u64, std::cmp::Reverse<Hash256>);

#[derive(Debug)]
pub struct TxPool {
    ordinary_capacity: usize,
    attest_capacity: usize,
    by_hash: HashMap<Hash256, Pending>,
    by_account: BTreeMap<AccountId, BTreeMap<u64, Hash256>>,
    ordinary: BTreeSet<(Priority, Hash256)>,
    /// Attestations in arrival order.
    attestations: BTreeMap<u64, Hash256>,
    /// (account, day) of pending attestations: one per account per day.
    attest_days: BTreeSet<(AccountId, u64)>,
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
            by_hash: HashMap::new(),
            by_account: BTreeMap::new(),
            ordinary: BTreeSet::new(),
            attestations: BTreeMap::new(),
            attest_days: BTreeSet::new(),
            next_order: 0,
            surge_fee_per_op: None,
            dropped: HashMap::new(),
            dropped_order: VecDeque::new(),
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
    pub fn waiting(&self, next_seq: u64, min_ledgers: u64, max: usize) -> Vec<Transaction> {
        let old = |h: &Hash256| self.by_hash.get(h).filter(|p| next_seq.saturating_sub(p.arrived_seq) >= min_ledgers);
        self.ordinary
            .iter()
            .rev()
            .map(|(_, h)| h)
            .chain(self.attestations.values())
            .filter_map(old)
            .take(max)
            .map(|p| p.tx.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
    pub fn contains(&self, hash: &Hash256) -> bool {
        self.by_hash.contains_key(hash)
    }
    pub fn get(&self, hash: &Hash256) -> Option<&Transaction> {
        self.by_hash.get(hash).map(|p| &p.tx)
    }

    /// Validates a transaction against the last closed ledger and takes it in.
    pub fn add(&mut self, tx: Transaction, state: &LedgerState) -> Result<Hash256, TxRejection> {
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(TxRejection::Duplicate);
        }
        let n_ops = tx.body.ops.len();
        if n_ops == 0
            || n_ops > super::types::MAX_OPS
            || (n_ops > 1 && tx.body.ops.iter().any(Operation::is_attestation))
        {
            return Err(TxRejection::Malformed);
        }
        if tx.check_form(&state.network_id).is_err() {
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
            if self.attestations.len() >= self.attest_capacity {
                return Err(TxRejection::PoolFull);
            }
            self.attest_days.insert((source, a.day));
            let order = self.push(hash, tx, next_seq);
            self.attestations.insert(order, hash);
            return Ok(hash);
        }
        let Some(acc) = account else { return Err(TxRejection::BadSequence { expected: 1 }) };
        if tx.body.seq_num != expected {
            return Err(TxRejection::BadSequence { expected });
        }
        let queued_fees: u64 =
            queued.into_iter().flatten().filter_map(|(_, h)| self.by_hash.get(h)).map(|p| p.tx.body.fee.units()).sum();
        if acc.balance.units() < queued_fees.saturating_add(tx.body.fee.units()) {
            return Err(TxRejection::InsufficientBalance);
        }
        let prio = Priority(tx.fee_per_op(), std::cmp::Reverse(hash));
        if self.ordinary.len() >= self.ordinary_capacity {
            // Full: only a better fee gets in, and the lowest leaves.
            let Some(&(lowest, lowest_hash)) = self.ordinary.first() else { return Err(TxRejection::PoolFull) };
            if prio <= lowest {
                return Err(TxRejection::InsufficientFee);
            }
            self.evict(&lowest_hash, TxRejection::Evicted);
        }
        self.ordinary.insert((prio, hash));
        self.push(hash, tx, next_seq);
        Ok(hash)
    }

    fn push(&mut self, hash: Hash256, tx: Transaction, seq: u64) -> u64 {
        let order = self.next_order;
        self.next_order += 1;
        self.by_account.entry(tx.body.source).or_default().insert(tx.body.seq_num, hash);
        self.by_hash.insert(hash, Pending { fee_per_op: tx.fee_per_op(), tx, arrived_seq: seq, order });
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
        } else {
            self.ordinary.remove(&(Priority(p.fee_per_op, std::cmp::Reverse(*hash)), *hash));
        }
    }

    /// After a ledger closed: drop what was applied, what can no longer
    /// apply (sequence used), and what waited too long.
    pub fn ledger_closed(&mut self, state: &LedgerState, applied: &[Hash256]) {
        for h in applied {
            self.remove(h);
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
    }

    /// The tx set to nominate: the highest fee per operation first (each
    /// account's transactions in sequence), up to `max_txs`, plus up to
    /// `max_attestations` attestations in arrival order; canonically sorted.
    pub fn build_tx_set(&mut self, state: &LedgerState) -> TxSet {
        let max_txs = state.params.max_txs_per_ledger as usize;
        let max_att = state.params.max_attestations_per_ledger as usize;
        let mut chosen: Vec<Transaction> = Vec::new();
        // A heap of each account's next transaction.
        let mut heap: BinaryHeap<(Priority, Hash256)> = BinaryHeap::new();
        let mut cursor: HashMap<AccountId, u64> = HashMap::new();
        let head_of = |pool: &TxPool, acct: &AccountId, seq: u64| -> Option<(Priority, Hash256)> {
            let h = pool.by_account.get(acct)?.get(&seq)?;
            let p = pool.by_hash.get(h)?;
            (!p.tx.is_attestation()).then_some((Priority(p.fee_per_op, std::cmp::Reverse(*h)), *h))
        };
        for (acct, txs) in &self.by_account {
            let base = state.account(acct).map_or(0, |a| a.seq_num);
            if let Some((&first, _)) = txs.iter().next() {
                if first == base + 1 {
                    if let Some(e) = head_of(self, acct, first) {
                        heap.push(e);
                        cursor.insert(*acct, first);
                    }
                }
            }
        }
        let mut full = false;
        let mut lowest = None;
        while let Some((prio, h)) = heap.pop() {
            if chosen.len() >= max_txs {
                full = true;
                break;
            }
            let Some(p) = self.by_hash.get(&h) else { continue };
            lowest = Some(prio.0);
            let acct = p.tx.body.source;
            chosen.push(p.tx.clone());
            let next = cursor.get(&acct).copied().unwrap_or(0) + 1;
            if let Some(e) = head_of(self, &acct, next) {
                cursor.insert(acct, next);
                heap.push(e);
            }
        }
        self.surge_fee_per_op = if full { lowest } else { None };
        for h in self.attestations.values().take(max_att) {
            if let Some(p) = self.by_hash.get(h) {
                // A first attestation or the account's next sequence number.
                let base = state.account(&p.tx.body.source).map_or(0, |a| a.seq_num);
                if p.tx.body.seq_num == base + 1 && !chosen.iter().any(|t| t.body.source == p.tx.body.source) {
                    chosen.push(p.tx.clone());
                }
            }
        }
        chosen.sort_by(canonical_order);
        chosen.truncate(MAX_TXSET_TXS);
        TxSet { prev_header_hash: state.header.hash(), txs: BoundedVec::try_from_vec(chosen).unwrap_or_default() }
    }
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
    let mut next: HashMap<AccountId, (u64, u64)> = HashMap::new();
    for tx in set.txs.iter() {
        let h = tx.hash();
        if tx.check_form(&state.network_id).is_err() || (tx.is_attestation() && !tx.body.fee.is_zero()) {
            return Err(TxSetError::BadTx(h));
        }
        let acc = state.account(&tx.body.source);
        let (seq, balance) = next
            .entry(tx.body.source)
            .or_insert_with(|| (acc.map_or(0, |a| a.seq_num), acc.map_or(0, |a| a.balance.units())));
        if tx.body.seq_num != *seq + 1 || *balance < tx.body.fee.units() || (acc.is_none() && !tx.is_attestation()) {
            return Err(TxSetError::CannotApply(h));
        }
        *seq += 1;
        *balance -= tx.body.fee.units();
    }
    Ok(())
}
