//! The validator's durable state in redb: each closed ledger is one write
//! transaction, so after a `kill -9` the database holds exactly the ledgers
//! whose commit returned.

use super::{encoded, ClosedLedger, LedgerRead, LedgerStore, SavedScp, SlotData, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use watt_core::codec::{decode, encode};
use watt_core::crypto::Hash256;
use watt_core::ledger::state::Payout;
use watt_core::ledger::{LedgerHeader, StateEntry, StateKey, TxResult, TxSet};
use watt_core::scp::Envelope;
use watt_core::wire::ExternalizeProof;

const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
const TX_SETS: TableDefinition<u64, &[u8]> = TableDefinition::new("tx_sets");
/// Externalize proof of slot `seq` (proves header `seq - 1`, carries value `seq`).
const PROOFS: TableDefinition<u64, &[u8]> = TableDefinition::new("proofs");
/// Proof sets by hash (what values' `prev_proof_hash` name).
const PROOF_SETS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("proof_sets");
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const PAYOUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("payouts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Each ledger's transaction results, in tx-set order.
const RESULTS: TableDefinition<u64, &[u8]> = TableDefinition::new("results");
/// The node's own latest SCP envelopes for a slot still open, written before
/// they are sent, so a restart never contradicts them.
const SCP_STATE: TableDefinition<u64, &[u8]> = TableDefinition::new("scp_state");
/// (slot, hash) → the tx set or proof set a saved statement's value names.
const SCP_DATA: TableDefinition<(u64, &[u8]), &[u8]> = TableDefinition::new("scp_data");
/// Transaction hash → the ledger that applied it.
const TX_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("tx_index");

pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
    /// Every read goes through the same code as other threads' readers.
    reader: StoreReader,
    /// Tests make the next commits fail, as a full disk would.
    #[cfg(test)]
    pub(crate) fail_commits: bool,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("ledger.redb");
        let db_err = |e: redb::Error| StoreError::Db { path: path.clone(), source: e };
        std::fs::create_dir_all(dir).map_err(|e| db_err(redb::Error::Io(e)))?;
        let db = Database::create(&path).map_err(|e| db_err(e.into()))?;
        // Create every table once, so readers never meet a missing one.
        let w = db.begin_write().map_err(|e| db_err(e.into()))?;
        {
            w.open_table(HEADERS).map_err(|e| db_err(e.into()))?;
            w.open_table(TX_SETS).map_err(|e| db_err(e.into()))?;
            w.open_table(PROOFS).map_err(|e| db_err(e.into()))?;
            w.open_table(PROOF_SETS).map_err(|e| db_err(e.into()))?;
            w.open_table(ENTRIES).map_err(|e| db_err(e.into()))?;
            w.open_table(PAYOUTS).map_err(|e| db_err(e.into()))?;
            w.open_table(META).map_err(|e| db_err(e.into()))?;
            w.open_table(RESULTS).map_err(|e| db_err(e.into()))?;
            w.open_table(TX_INDEX).map_err(|e| db_err(e.into()))?;
            w.open_table(SCP_STATE).map_err(|e| db_err(e.into()))?;
            w.open_table(SCP_DATA).map_err(|e| db_err(e.into()))?;
        }
        w.commit().map_err(|e| db_err(e.into()))?;
        let db = Arc::new(db);
        Ok(Store {
            reader: StoreReader { db: db.clone(), path: path.clone() },
            db,
            path,
            #[cfg(test)]
            fail_commits: false,
        })
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db { path: self.path.clone(), source: e.into() }
    }

    /// A handle for reading committed ledgers from other threads (phones'
    /// requests are served from it, off the consensus task).
    pub fn reader(&self) -> StoreReader {
        self.reader.clone()
    }
}

impl LedgerRead for Store {
    fn last_seq(&self) -> Result<Option<u64>, StoreError> {
        self.reader.last_seq()
    }
    fn header(&self, seq: u64) -> Result<Option<LedgerHeader>, StoreError> {
        self.reader.header(seq)
    }
    fn tx_set(&self, seq: u64) -> Result<Option<TxSet>, StoreError> {
        self.reader.tx_set(seq)
    }
    fn proof(&self, slot: u64) -> Result<Option<ExternalizeProof>, StoreError> {
        self.reader.proof(slot)
    }
    fn scp_state(&self, slot: u64) -> Result<Option<SavedScp>, StoreError> {
        self.reader.scp_state(slot)
    }
    fn results(&self, seq: u64) -> Result<Option<Vec<TxResult>>, StoreError> {
        self.reader.results(seq)
    }
    fn tx_ledger(&self, hash: &Hash256) -> Result<Option<u64>, StoreError> {
        self.reader.tx_ledger(hash)
    }
    fn proof_set(&self, hash: &Hash256) -> Result<Option<Vec<Envelope>>, StoreError> {
        self.reader.proof_set(hash)
    }
    fn entries(&self) -> Result<Vec<(StateKey, StateEntry)>, StoreError> {
        self.reader.entries()
    }
    fn payouts(&self) -> Result<Vec<Payout>, StoreError> {
        self.reader.payouts()
    }
    fn headers(&self, from: u64, count: u32) -> Result<Vec<LedgerHeader>, StoreError> {
        self.reader.headers(from, count)
    }
}

impl LedgerStore for Store {
    /// Commits one closed ledger atomically.
    fn commit(&mut self, c: &ClosedLedger<'_>) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.fail_commits {
            return Err(StoreError::Injected);
        }
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let seq = c.header.seq;
            w.open_table(HEADERS)
                .map_err(|e| self.err(e))?
                .insert(seq, encode(c.header).as_slice())
                .map_err(|e| self.err(e))?;
            w.open_table(TX_SETS)
                .map_err(|e| self.err(e))?
                .insert(seq, encode(c.tx_set).as_slice())
                .map_err(|e| self.err(e))?;
            w.open_table(PROOFS)
                .map_err(|e| self.err(e))?
                .insert(seq, encode(c.proof).as_slice())
                .map_err(|e| self.err(e))?;
            let results = encoded("results", c.results)?;
            w.open_table(RESULTS).map_err(|e| self.err(e))?.insert(seq, results.as_slice()).map_err(|e| self.err(e))?;
            let mut index = w.open_table(TX_INDEX).map_err(|e| self.err(e))?;
            for r in c.results {
                index.insert(r.tx_hash.0.as_slice(), seq).map_err(|e| self.err(e))?;
            }
            drop(index);
            if let Some((hash, envs)) = c.prev_proof {
                let bytes = encoded("proof set", envs)?;
                w.open_table(PROOF_SETS)
                    .map_err(|e| self.err(e))?
                    .insert(hash.0.as_slice(), bytes.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut entries = w.open_table(ENTRIES).map_err(|e| self.err(e))?;
            for (key, entry) in c.changes {
                let k = key.hash();
                match entry {
                    Some(e) => {
                        let bytes = encoded("state entry", &(key, e))?;
                        entries.insert(k.0.as_slice(), bytes.as_slice()).map_err(|e| self.err(e))?;
                    }
                    None => {
                        entries.remove(k.0.as_slice()).map_err(|e| self.err(e))?;
                    }
                }
            }
            let mut meta = w.open_table(META).map_err(|e| self.err(e))?;
            let mut head = meta.get("payout_head").map_err(|e| self.err(e))?.map_or(0, |v| v.value());
            let mut tail = meta.get("payout_tail").map_err(|e| self.err(e))?.map_or(0, |v| v.value());
            let mut payouts = w.open_table(PAYOUTS).map_err(|e| self.err(e))?;
            // New payouts join the tail first; credits then leave from the head
            // (a distribution ledger credits its own first batch).
            for p in c.new_payouts {
                payouts.insert(tail, encode(p).as_slice()).map_err(|e| self.err(e))?;
                tail += 1;
            }
            for _ in 0..c.payouts_credited {
                if head < tail {
                    payouts.remove(head).map_err(|e| self.err(e))?;
                    head += 1;
                }
            }
            meta.insert("payout_head", head).map_err(|e| self.err(e))?;
            meta.insert("payout_tail", tail).map_err(|e| self.err(e))?;
            meta.insert("lcl", seq).map_err(|e| self.err(e))?;
            let mut scp = w.open_table(SCP_STATE).map_err(|e| self.err(e))?;
            scp.retain(|slot, _| slot > seq).map_err(|e| self.err(e))?;
            let mut data = w.open_table(SCP_DATA).map_err(|e| self.err(e))?;
            data.retain(|(slot, _), _| slot > seq).map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))
    }

    /// Persists the node's own latest envelopes for `slot` (before sending them).
    fn save_scp_state(&mut self, slot: u64, envs: &[Envelope], data: &[SlotData]) -> Result<(), StoreError> {
        let bytes = encoded("scp state", envs)?;
        let data: Vec<(Hash256, Vec<u8>)> =
            data.iter().map(|d| Ok((d.hash(), encoded("scp slot data", d)?))).collect::<Result<_, StoreError>>()?;
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        w.open_table(SCP_STATE).map_err(|e| self.err(e))?.insert(slot, bytes.as_slice()).map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(SCP_DATA).map_err(|e| self.err(e))?;
            for (hash, bytes) in &data {
                t.insert((slot, hash.0.as_slice()), bytes.as_slice()).map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))
    }
}

/// Reads what is committed; redb gives every reader a consistent snapshot
/// while the herder writes.
#[derive(Clone)]
pub struct StoreReader {
    db: Arc<Database>,
    path: PathBuf,
}

impl StoreReader {
    fn get_decoded<T: watt_core::Wire>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        k: u64,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(table).map_err(|e| self.err(e))?;
        match t.get(k).map_err(|e| self.err(e))? {
            Some(v) => {
                decode(v.value()).map(Some).map_err(|e| StoreError::Corrupt { what: format!("{what} {k}"), source: e })
            }
            None => Ok(None),
        }
    }

    /// A stored list (length-bounded only by the bytes present).
    fn get_list<'k, K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<K, &[u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        what: &str,
    ) -> Result<Option<Vec<T>>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(table).map_err(|e| self.err(e))?;
        match t.get(key).map_err(|e| self.err(e))? {
            Some(v) => watt_core::codec::from_bytes_unbounded(v.value())
                .map(Some)
                .map_err(|e| StoreError::Corrupt { what: what.to_string(), source: e }),
            None => Ok(None),
        }
    }
}

impl LedgerRead for StoreReader {
    fn last_seq(&self) -> Result<Option<u64>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(META).map_err(|e| self.err(e))?;
        Ok(t.get("lcl").map_err(|e| self.err(e))?.map(|v| v.value()))
    }

    fn header(&self, seq: u64) -> Result<Option<LedgerHeader>, StoreError> {
        self.get_decoded(HEADERS, seq, "header")
    }

    fn tx_set(&self, seq: u64) -> Result<Option<TxSet>, StoreError> {
        self.get_decoded(TX_SETS, seq, "tx set")
    }

    fn proof(&self, slot: u64) -> Result<Option<ExternalizeProof>, StoreError> {
        self.get_decoded(PROOFS, slot, "externalize proof")
    }

    fn scp_state(&self, slot: u64) -> Result<Option<SavedScp>, StoreError> {
        let Some(envs) = self.get_list(SCP_STATE, slot, &format!("scp state {slot}"))? else { return Ok(None) };
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(SCP_DATA).map_err(|e| self.err(e))?;
        let (lo, hi) = ([0u8; 32], [0xffu8; 32]);
        let mut data = Vec::new();
        for item in t.range((slot, lo.as_slice())..=(slot, hi.as_slice())).map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let d = watt_core::codec::from_bytes_unbounded(v.value())
                .map_err(|e| StoreError::Corrupt { what: format!("scp slot data {slot}"), source: e })?;
            data.push(d);
        }
        Ok(Some((envs, data)))
    }

    fn results(&self, seq: u64) -> Result<Option<Vec<TxResult>>, StoreError> {
        self.get_list(RESULTS, seq, &format!("results {seq}"))
    }

    /// The ledger that applied a transaction, if any.
    fn tx_ledger(&self, hash: &Hash256) -> Result<Option<u64>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(TX_INDEX).map_err(|e| self.err(e))?;
        Ok(t.get(hash.0.as_slice()).map_err(|e| self.err(e))?.map(|v| v.value()))
    }

    fn proof_set(&self, hash: &Hash256) -> Result<Option<Vec<Envelope>>, StoreError> {
        self.get_list(PROOF_SETS, hash.0.as_slice(), &format!("proof set {hash}"))
    }

    fn entries(&self) -> Result<Vec<(StateKey, StateEntry)>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let mut entries = Vec::new();
        for item in r.open_table(ENTRIES).map_err(|e| self.err(e))?.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let kv: (StateKey, StateEntry) = watt_core::codec::from_bytes_unbounded(v.value())
                .map_err(|e| StoreError::Corrupt { what: "state entry".into(), source: e })?;
            entries.push(kv);
        }
        Ok(entries)
    }

    fn payouts(&self) -> Result<Vec<Payout>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let mut payouts = Vec::new();
        for item in r.open_table(PAYOUTS).map_err(|e| self.err(e))?.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            payouts.push(
                decode::<Payout>(v.value()).map_err(|e| StoreError::Corrupt { what: "payout".into(), source: e })?,
            );
        }
        Ok(payouts)
    }

    /// Up to `count` consecutive headers from `from` (fewer past the last
    /// committed ledger).
    fn headers(&self, from: u64, count: u32) -> Result<Vec<LedgerHeader>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(HEADERS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.range(from..from.saturating_add(u64::from(count))).map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            out.push(
                decode(v.value())
                    .map_err(|e| StoreError::Corrupt { what: format!("header {}", k.value()), source: e })?,
            );
        }
        Ok(out)
    }
}

impl StoreReader {
    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db { path: self.path.clone(), source: e.into() }
    }
}
