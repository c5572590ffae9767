//! A [`LedgerStore`] in memory, for the simulator and unit tests. It keeps
//! the same canonical encodings redb does, so a restart from it decodes
//! exactly what a restart from disk would, and it survives its herder: a
//! crashed validator restarts from the store it left behind.

use super::{encoded, ClosedLedger, LedgerRead, LedgerStore, SavedScp, SlotData, StoreError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use watt_core::codec::{decode, encode, from_bytes_unbounded};
use watt_core::crypto::Hash256;
use watt_core::ledger::state::Payout;
use watt_core::ledger::{LedgerHeader, StateEntry, StateKey, TxResult, TxSet};
use watt_core::scp::Envelope;
use watt_core::wire::ExternalizeProof;

#[derive(Debug, Clone, Default)]
pub struct MemStore {
    lcl: Option<u64>,
    headers: BTreeMap<u64, Vec<u8>>,
    tx_sets: BTreeMap<u64, Vec<u8>>,
    proofs: BTreeMap<u64, Vec<u8>>,
    proof_sets: HashMap<Hash256, Vec<u8>>,
    results: BTreeMap<u64, Vec<u8>>,
    tx_index: HashMap<Hash256, u64>,
    entries: BTreeMap<Hash256, Vec<u8>>,
    payouts: VecDeque<Vec<u8>>,
    scp_state: BTreeMap<u64, Vec<u8>>,
    scp_data: BTreeMap<(u64, Hash256), Vec<u8>>,
    /// Makes every commit fail, as a full or broken disk would.
    pub fail_commits: bool,
    /// Saves of SCP state fail too (a full disk), for the herder's tests.
    pub fail_scp_saves: bool,
}

fn corrupt(what: String) -> impl FnOnce(watt_core::codec::CodecError) -> StoreError {
    move |source| StoreError::Corrupt { what, source }
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Replaces the stored tx set of a ledger with other bytes (the
    /// comparison's damaged-store test).
    pub fn overwrite_tx_set(&mut self, seq: u64, set: &TxSet) {
        self.tx_sets.insert(seq, encode(set));
    }
}

impl LedgerRead for MemStore {
    fn last_seq(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.lcl)
    }

    fn header(&self, seq: u64) -> Result<Option<LedgerHeader>, StoreError> {
        self.headers.get(&seq).map(|b| decode(b).map_err(corrupt(format!("header {seq}")))).transpose()
    }

    fn headers(&self, from: u64, count: u32) -> Result<Vec<LedgerHeader>, StoreError> {
        self.headers
            .range(from..from.saturating_add(u64::from(count)))
            .map(|(seq, b)| decode(b).map_err(corrupt(format!("header {seq}"))))
            .collect()
    }

    fn tx_set(&self, seq: u64) -> Result<Option<TxSet>, StoreError> {
        self.tx_sets.get(&seq).map(|b| decode(b).map_err(corrupt(format!("tx set {seq}")))).transpose()
    }

    fn proof(&self, slot: u64) -> Result<Option<ExternalizeProof>, StoreError> {
        self.proofs.get(&slot).map(|b| decode(b).map_err(corrupt(format!("externalize proof {slot}")))).transpose()
    }

    fn proof_set(&self, hash: &Hash256) -> Result<Option<Vec<Envelope>>, StoreError> {
        self.proof_sets
            .get(hash)
            .map(|b| from_bytes_unbounded(b).map_err(corrupt(format!("proof set {hash}"))))
            .transpose()
    }

    fn results(&self, seq: u64) -> Result<Option<Vec<TxResult>>, StoreError> {
        self.results.get(&seq).map(|b| from_bytes_unbounded(b).map_err(corrupt(format!("results {seq}")))).transpose()
    }

    fn tx_ledger(&self, hash: &Hash256) -> Result<Option<u64>, StoreError> {
        Ok(self.tx_index.get(hash).copied())
    }

    fn scp_state(&self, slot: u64) -> Result<Option<SavedScp>, StoreError> {
        let Some(b) = self.scp_state.get(&slot) else { return Ok(None) };
        let envs = from_bytes_unbounded(b).map_err(corrupt(format!("scp state {slot}")))?;
        let data = self
            .scp_data
            .range((slot, Hash256::ZERO)..=(slot, Hash256([0xff; 32])))
            .map(|(_, b)| from_bytes_unbounded(b).map_err(corrupt(format!("scp slot data {slot}"))))
            .collect::<Result<_, _>>()?;
        Ok(Some((envs, data)))
    }

    fn entries(&self) -> Result<Vec<(StateKey, StateEntry)>, StoreError> {
        self.entries.values().map(|b| from_bytes_unbounded(b).map_err(corrupt("state entry".into()))).collect()
    }

    fn payouts(&self) -> Result<Vec<Payout>, StoreError> {
        self.payouts.iter().map(|b| decode(b).map_err(corrupt("payout".into()))).collect()
    }
}

impl LedgerStore for MemStore {
    fn commit(&mut self, c: &ClosedLedger<'_>) -> Result<(), StoreError> {
        if self.fail_commits {
            return Err(StoreError::Injected);
        }
        // Encode everything first: a commit that fails changes nothing.
        let seq = c.header.seq;
        let results = encoded("results", c.results)?;
        let prev_proof = c.prev_proof.map(|(h, envs)| encoded("proof set", envs).map(|b| (h, b))).transpose()?;
        let mut changes = Vec::with_capacity(c.changes.len());
        for (key, entry) in c.changes {
            let bytes = entry.as_ref().map(|e| encoded("state entry", &(key, e))).transpose()?;
            changes.push((key.hash(), bytes));
        }
        self.headers.insert(seq, encode(c.header));
        self.tx_sets.insert(seq, encode(c.tx_set));
        self.proofs.insert(seq, encode(c.proof));
        self.results.insert(seq, results);
        for r in c.results {
            self.tx_index.insert(r.tx_hash, seq);
        }
        if let Some((h, bytes)) = prev_proof {
            self.proof_sets.insert(h, bytes);
        }
        for (k, bytes) in changes {
            match bytes {
                Some(b) => self.entries.insert(k, b),
                None => self.entries.remove(&k),
            };
        }
        // New payouts join the tail first; credits then leave from the head
        // (a distribution ledger credits its own first batch).
        self.payouts.extend(c.new_payouts.iter().map(encode));
        let credited = c.payouts_credited.min(self.payouts.len());
        self.payouts.drain(..credited);
        self.lcl = Some(seq);
        self.scp_state.retain(|slot, _| *slot > seq);
        self.scp_data.retain(|(slot, _), _| *slot > seq);
        Ok(())
    }

    fn save_scp_state(&mut self, slot: u64, envs: &[Envelope], data: &[SlotData]) -> Result<(), StoreError> {
        if self.fail_scp_saves {
            return Err(StoreError::Injected);
        }
        let envs = encoded("scp state", envs)?;
        let data: Vec<(Hash256, Vec<u8>)> =
            data.iter().map(|d| Ok((d.hash(), encoded("scp slot data", d)?))).collect::<Result<_, StoreError>>()?;
        self.scp_state.insert(slot, envs);
        for (hash, bytes) in data {
            self.scp_data.insert((slot, hash), bytes);
        }
        Ok(())
    }
}
