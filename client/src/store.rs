//! The phone's durable state in redb (SPEC §7): wallet (sealed), the trusted
//! tip, the proven account, pending signed transactions, attestation days,
//! history and nodes. Every change that matters is one write transaction, so
//! a `kill -9` leaves either the state before it or the state after it.

use crate::types::{
    ClientEvent, HistoryEntry, NodeRecord, PendingTx, ProvenAccount, StoredEvent, StoredFork, TrustedTip, WalletRecord,
};
use crate::wallet::{Effects, Write};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::{Path, PathBuf};
use watt_core::address::NodeId;
use watt_core::codec::{decode, encode, Wire};
use watt_core::crypto::Hash256;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
/// Day → hash of the attestation for it (pending or confirmed).
const ATTESTED: TableDefinition<u64, &[u8]> = TableDefinition::new("attested");
/// Days whose confirmed attestation is settled (a reward for them is expected).
const ATTEST_CONFIRMED: TableDefinition<u64, u64> = TableDefinition::new("attest_confirmed");
/// Events the app has not yet marked handled, by id (ids only grow).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

const K_WALLET: &str = "wallet";
const K_TIP: &str = "tip";
const K_ACCOUNT: &str = "account";
const K_FORK: &str = "fork";
const K_REWARDED: &str = "rewarded_through";
const K_STORAGE: &str = "storage";
/// The id the next queued event gets.
const K_NEXT_EVENT: &str = "next_event_id";
/// The id of the newest queued `NewVerifiedLedger` (a newer one replaces it).
const K_LEDGER_EVENT: &str = "ledger_event_id";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the wallet database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("wallet database {path}: {reason}")]
    Db { path: PathBuf, reason: String },
    #[error("wallet database {path} holds a damaged record ({what}): {reason}")]
    Corrupt { path: PathBuf, what: String, reason: String },
}

pub struct ClientStore {
    db: Database,
    path: PathBuf,
}

/// What a settled transaction changes, written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub hash: Hash256,
    pub history: HistoryEntry,
    /// For a confirmed attestation: its day.
    pub attested_day: Option<u64>,
    /// For an attestation that did not take effect: free its day again.
    pub release_day: Option<u64>,
}

impl ClientStore {
    pub fn open(dir: &Path) -> Result<ClientStore, StoreError> {
        let path = dir.join("wallet.redb");
        let open_err = |reason: String| StoreError::Open { path: path.clone(), reason };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| open_err(e.to_string()))?;
        let store = ClientStore { db, path };
        let w = store.db.begin_write().map_err(|e| store.err(e))?;
        {
            w.open_table(META).map_err(|e| store.err(e))?;
            w.open_table(PENDING).map_err(|e| store.err(e))?;
            w.open_table(HISTORY).map_err(|e| store.err(e))?;
            w.open_table(NODES).map_err(|e| store.err(e))?;
            w.open_table(ATTESTED).map_err(|e| store.err(e))?;
            w.open_table(ATTEST_CONFIRMED).map_err(|e| store.err(e))?;
            w.open_table(EVENTS).map_err(|e| store.err(e))?;
        }
        w.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db { path: self.path.clone(), reason: e.into().to_string() }
    }

    fn decode<T: Wire>(&self, what: &str, bytes: &[u8]) -> Result<T, StoreError> {
        decode(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    fn meta<T: Wire>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(META).map_err(|e| self.err(e))?;
        let v = t.get(key).map_err(|e| self.err(e))?;
        match v {
            Some(v) => Ok(Some(self.decode(key, v.value())?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Wire>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        self.meta_in(&w, key, value)?;
        w.commit().map_err(|e| self.err(e))
    }

    fn meta_in<T: Wire>(&self, w: &WriteTransaction, key: &str, value: &T) -> Result<(), StoreError> {
        w.open_table(META).map_err(|e| self.err(e))?.insert(key, encode(value).as_slice()).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn wallet(&self) -> Result<Option<WalletRecord>, StoreError> {
        self.meta(K_WALLET)
    }

    /// Stores a new wallet; refuses to overwrite an existing one (its key
    /// might hold funds) unless `replace`.
    pub fn set_wallet(&self, w: &WalletRecord, replace: bool) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(META).map_err(|e| self.err(e))?;
            if !replace && t.get(K_WALLET).map_err(|e| self.err(e))?.is_some() {
                return Ok(false);
            }
            t.insert(K_WALLET, encode(w).as_slice()).map_err(|e| self.err(e))?;
            // A different key means different history, account and pending txs.
            t.remove(K_ACCOUNT).map_err(|e| self.err(e))?;
            t.remove(K_REWARDED).map_err(|e| self.err(e))?;
        }
        if replace {
            tx.delete_table(PENDING).map_err(|e| self.err(e))?;
            tx.delete_table(HISTORY).map_err(|e| self.err(e))?;
            tx.delete_table(ATTESTED).map_err(|e| self.err(e))?;
            tx.delete_table(ATTEST_CONFIRMED).map_err(|e| self.err(e))?;
            tx.open_table(PENDING).map_err(|e| self.err(e))?;
            tx.open_table(HISTORY).map_err(|e| self.err(e))?;
            tx.open_table(ATTESTED).map_err(|e| self.err(e))?;
            tx.open_table(ATTEST_CONFIRMED).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    pub fn tip(&self) -> Result<Option<TrustedTip>, StoreError> {
        self.meta(K_TIP)
    }

    pub fn set_tip(&self, tip: &TrustedTip) -> Result<(), StoreError> {
        self.put_meta(K_TIP, tip)
    }

    pub fn storage_plan(&self) -> Result<Option<crate::storage::StoragePlan>, StoreError> {
        self.meta(K_STORAGE)
    }

    pub fn set_storage_plan(&self, p: &crate::storage::StoragePlan) -> Result<(), StoreError> {
        self.put_meta(K_STORAGE, p)
    }

    pub fn account(&self) -> Result<Option<ProvenAccount>, StoreError> {
        self.meta(K_ACCOUNT)
    }

    pub fn set_account(&self, a: &ProvenAccount) -> Result<(), StoreError> {
        self.put_meta(K_ACCOUNT, a)
    }

    pub fn fork(&self) -> Result<Option<StoredFork>, StoreError> {
        self.meta(K_FORK)
    }

    pub fn set_fork(&self, f: &StoredFork) -> Result<(), StoreError> {
        self.put_meta(K_FORK, f)
    }

    /// The last day whose reward has been attributed (history), if any.
    pub fn rewarded_through(&self) -> Result<Option<u64>, StoreError> {
        self.meta(K_REWARDED)
    }

    pub fn set_rewarded_through(&self, day: u64) -> Result<(), StoreError> {
        self.put_meta(K_REWARDED, &day)
    }

    /// Stores a signed transaction before it is sent anywhere; for an
    /// attestation also claims its day, in the same write. Returns false if
    /// the day was already claimed (nothing written).
    pub fn add_pending(&self, p: &PendingTx, attest_day: Option<u64>) -> Result<bool, StoreError> {
        let hash = p.tx.hash();
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            if let Some(day) = attest_day {
                let mut t = w.open_table(ATTESTED).map_err(|e| self.err(e))?;
                if t.get(day).map_err(|e| self.err(e))?.is_some() {
                    return Ok(false);
                }
                t.insert(day, hash.0.as_slice()).map_err(|e| self.err(e))?;
            }
            w.open_table(PENDING)
                .map_err(|e| self.err(e))?
                .insert(hash.0.as_slice(), encode(p).as_slice())
                .map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn update_pending_in(&self, w: &WriteTransaction, p: &PendingTx) -> Result<(), StoreError> {
        let hash = p.tx.hash();
        let mut t = w.open_table(PENDING).map_err(|e| self.err(e))?;
        if t.get(hash.0.as_slice()).map_err(|e| self.err(e))?.is_some() {
            t.insert(hash.0.as_slice(), encode(p).as_slice()).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn pending(&self) -> Result<Vec<PendingTx>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(PENDING).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            out.push(self.decode::<PendingTx>("pending transaction", v.value())?);
        }
        out.sort_by_key(|p| p.tx.body.seq_num);
        Ok(out)
    }

    /// Moves a pending transaction into history (once: a second settlement of
    /// the same hash finds nothing pending and writes nothing).
    pub fn settle(&self, s: Settlement) -> Result<bool, StoreError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        let done = self.settle_in(&w, &s)?;
        w.commit().map_err(|e| self.err(e))?;
        Ok(done)
    }

    fn settle_in(&self, w: &WriteTransaction, s: &Settlement) -> Result<bool, StoreError> {
        let mut pending = w.open_table(PENDING).map_err(|e| self.err(e))?;
        if pending.remove(s.hash.0.as_slice()).map_err(|e| self.err(e))?.is_none() {
            return Ok(false);
        }
        let id = self.history_in(w, s.history.clone())?;
        if let Some(day) = s.attested_day {
            w.open_table(ATTEST_CONFIRMED).map_err(|e| self.err(e))?.insert(day, id).map_err(|e| self.err(e))?;
        }
        if let Some(day) = s.release_day {
            w.open_table(ATTESTED).map_err(|e| self.err(e))?.remove(day).map_err(|e| self.err(e))?;
        }
        Ok(true)
    }

    /// Appends a history line that no transaction of ours produced.
    pub fn add_history(&self, entry: HistoryEntry) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        self.history_in(&w, entry)?;
        w.commit().map_err(|e| self.err(e))
    }

    fn history_in(&self, w: &WriteTransaction, mut entry: HistoryEntry) -> Result<u64, StoreError> {
        let mut history = w.open_table(HISTORY).map_err(|e| self.err(e))?;
        entry.id = history.last().map_err(|e| self.err(e))?.map_or(0, |(k, _)| k.value() + 1);
        history.insert(entry.id, encode(&entry).as_slice()).map_err(|e| self.err(e))?;
        Ok(entry.id)
    }

    /// Writes what a wallet step decided and queues its events, in one
    /// transaction: a kill leaves all of it or none. Returns the events queued.
    pub fn commit(&self, fx: Effects) -> Result<Vec<StoredEvent>, StoreError> {
        if fx.is_empty() {
            return Ok(Vec::new());
        }
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut events = fx.events;
        for write in fx.writes {
            match write {
                Write::Tip(t) => self.meta_in(&w, K_TIP, &t)?,
                Write::Account(a) => self.meta_in(&w, K_ACCOUNT, &a)?,
                Write::Fork(f) => self.meta_in(&w, K_FORK, &f)?,
                Write::RewardedThrough(d) => self.meta_in(&w, K_REWARDED, &d)?,
                Write::Nodes(nodes) => self.nodes_in(&w, &nodes)?,
                Write::Pending(p) => self.update_pending_in(&w, &p)?,
                Write::History(h) => {
                    self.history_in(&w, h)?;
                }
                Write::Settle { settlement, events: raised } => {
                    if self.settle_in(&w, &settlement)? {
                        events.extend(raised);
                    }
                }
            }
        }
        let queued = self.queue_events_in(&w, events)?;
        w.commit().map_err(|e| self.err(e))?;
        Ok(queued)
    }

    /// Appends events after the newest id. A new verified ledger supersedes
    /// an unhandled older one (it is a state, not an occurrence): that keeps
    /// the queue bounded by what happened to the wallet, however long the
    /// app leaves it unread.
    fn queue_events_in(&self, w: &WriteTransaction, events: Vec<ClientEvent>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut meta = w.open_table(META).map_err(|e| self.err(e))?;
        let read = |t: &redb::Table<&str, &[u8]>, key: &str| -> Result<Option<u64>, StoreError> {
            match t.get(key).map_err(|e| self.err(e))? {
                Some(v) => Ok(Some(self.decode::<u64>(key, v.value())?)),
                None => Ok(None),
            }
        };
        // Ids only grow, across handled and removed events too: an app that
        // remembers ids never mistakes a new event for one it handled.
        let mut ledger_event = read(&meta, K_LEDGER_EVENT)?;
        let mut t = w.open_table(EVENTS).map_err(|e| self.err(e))?;
        let after_last = t.last().map_err(|e| self.err(e))?.map_or(0, |(k, _)| k.value() + 1);
        let mut next = read(&meta, K_NEXT_EVENT)?.unwrap_or(0).max(after_last);
        let mut out = Vec::new();
        for event in events {
            if matches!(event, ClientEvent::NewVerifiedLedger { .. }) {
                if let Some(old) = ledger_event.take() {
                    t.remove(old).map_err(|e| self.err(e))?;
                }
                ledger_event = Some(next);
            }
            let event = event.bounded();
            t.insert(next, encode(&event).as_slice()).map_err(|e| self.err(e))?;
            out.push(StoredEvent { id: next, event });
            next += 1;
        }
        meta.insert(K_NEXT_EVENT, encode(&next).as_slice()).map_err(|e| self.err(e))?;
        if let Some(id) = ledger_event {
            meta.insert(K_LEDGER_EVENT, encode(&id).as_slice()).map_err(|e| self.err(e))?;
        }
        Ok(out)
    }

    /// The oldest event the app has not marked handled.
    pub fn next_event(&self) -> Result<Option<StoredEvent>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(EVENTS).map_err(|e| self.err(e))?;
        let first = t.first().map_err(|e| self.err(e))?;
        match first {
            Some((k, v)) => Ok(Some(StoredEvent { id: k.value(), event: self.decode("event", v.value())? })),
            None => Ok(None),
        }
    }

    /// Marks event `id` handled (it is removed); false if it was not queued.
    pub fn event_handled(&self, id: u64) -> Result<bool, StoreError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        let removed = w.open_table(EVENTS).map_err(|e| self.err(e))?.remove(id).map_err(|e| self.err(e))?.is_some();
        w.commit().map_err(|e| self.err(e))?;
        Ok(removed)
    }

    /// History, newest first, at most `limit` lines.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(HISTORY).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| self.err(e))?.rev().take(limit) {
            let (_, v) = item.map_err(|e| self.err(e))?;
            out.push(self.decode::<HistoryEntry>("history entry", v.value())?);
        }
        Ok(out)
    }

    /// The attestation hash claimed for `day`, if any.
    pub fn attested(&self, day: u64) -> Result<Option<Hash256>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(ATTESTED).map_err(|e| self.err(e))?;
        let v = t.get(day).map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| <[u8; 32]>::try_from(v.value()).ok()).map(Hash256))
    }

    /// Days with a confirmed attestation, ascending.
    pub fn confirmed_attest_days(&self) -> Result<Vec<u64>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(ATTEST_CONFIRMED).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| self.err(e))? {
            out.push(item.map_err(|e| self.err(e))?.0.value());
        }
        Ok(out)
    }

    pub fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(NODES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            out.push(self.decode::<NodeRecord>("node record", v.value())?);
        }
        Ok(out)
    }

    /// Writes node records in one transaction.
    pub fn put_nodes(&self, nodes: &[NodeRecord]) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        self.nodes_in(&w, nodes)?;
        w.commit().map_err(|e| self.err(e))
    }

    fn nodes_in(&self, w: &WriteTransaction, nodes: &[NodeRecord]) -> Result<(), StoreError> {
        let mut t = w.open_table(NODES).map_err(|e| self.err(e))?;
        for n in nodes {
            t.insert(n.node_id.0 .0.as_slice(), encode(n).as_slice()).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn remove_node(&self, id: &NodeId) -> Result<bool, StoreError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        let removed = w
            .open_table(NODES)
            .map_err(|e| self.err(e))?
            .remove(id.0 .0.as_slice())
            .map_err(|e| self.err(e))?
            .is_some();
        w.commit().map_err(|e| self.err(e))?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{HistoryKind, TxKind, TxStatus};
    use watt_core::amount::Amount;

    /// A store in a fresh directory, removed when the guard drops.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(label: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("watt-store-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Scratch(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ledger(seq: u64) -> ClientEvent {
        ClientEvent::NewVerifiedLedger { seq, close_time_ms: seq * 1000 }
    }

    fn with_events(events: Vec<ClientEvent>) -> Effects {
        Effects { writes: Vec::new(), events }
    }

    #[test]
    fn an_event_stays_until_handled_and_survives_reopening() {
        let dir = Scratch::new("events-reopen");
        let fork = ClientEvent::ForkDetected { slot: 9 };
        {
            let s = ClientStore::open(&dir.0).unwrap();
            let queued =
                s.commit(with_events(vec![fork.clone(), ClientEvent::AttestationConfirmed { day: 2 }])).unwrap();
            assert_eq!(queued.len(), 2);
            // Asking twice without handling gives the same event.
            assert_eq!(s.next_event().unwrap().map(|e| e.event), Some(fork.clone()));
            assert_eq!(s.next_event().unwrap().map(|e| e.event), Some(fork.clone()));
        }
        // As after a kill: nothing was handled, so everything is still there, in order.
        let s = ClientStore::open(&dir.0).unwrap();
        let first = s.next_event().unwrap().unwrap();
        assert_eq!(first.event, fork);
        assert!(s.event_handled(first.id).unwrap());
        assert!(!s.event_handled(first.id).unwrap(), "handled twice");
        assert_eq!(s.next_event().unwrap().map(|e| e.event), Some(ClientEvent::AttestationConfirmed { day: 2 }));
    }

    #[test]
    fn a_newer_ledger_replaces_an_unhandled_older_one_and_nothing_else() {
        let dir = Scratch::new("events-ledger");
        let s = ClientStore::open(&dir.0).unwrap();
        s.commit(with_events(vec![ledger(5), ClientEvent::RewardPaid { day: 1, amount: Amount(3) }])).unwrap();
        for seq in 6..100 {
            s.commit(with_events(vec![ledger(seq)])).unwrap();
        }
        let mut seen = Vec::new();
        while let Some(e) = s.next_event().unwrap() {
            s.event_handled(e.id).unwrap();
            seen.push(e.event);
        }
        assert_eq!(seen, vec![ClientEvent::RewardPaid { day: 1, amount: Amount(3) }, ledger(99)]);
    }

    /// Helper review of issue 18: once every event was handled, the next
    /// one got id 0 again; an app that remembers handled ids would drop it.
    #[test]
    fn event_ids_only_grow_even_after_the_queue_was_emptied() {
        let dir = Scratch::new("events-ids");
        let s = ClientStore::open(&dir.0).unwrap();
        let first = s.commit(with_events(vec![ClientEvent::AttestationConfirmed { day: 1 }])).unwrap()[0].id;
        assert!(s.event_handled(first).unwrap());
        let second = s.commit(with_events(vec![ClientEvent::AttestationConfirmed { day: 2 }])).unwrap()[0].id;
        assert!(second > first, "{first} then {second}");
        drop(s);
        let s = ClientStore::open(&dir.0).unwrap();
        let third = s.commit(with_events(vec![ledger(3)])).unwrap()[0].id;
        assert!(third > second);
    }

    #[test]
    fn a_settlement_raises_its_events_once_and_writes_history_once() {
        let dir = Scratch::new("events-settle");
        let s = ClientStore::open(&dir.0).unwrap();
        let n =
            watt_core::light::testkit::ScriptedNetwork::new(&[(10, 5)], watt_core::ledger::Params::devnet(1000, 100));
        let body = watt_core::ledger::TransactionBody {
            source: watt_core::address::AccountId(watt_core::light::testkit::key(10).public()),
            seq_num: 1,
            fee: Amount::ZERO,
            max_ledger: None,
            ops: watt_core::codec::BoundedVec::new(),
        };
        let p = PendingTx { tx: n.sign(body, 10), kind: TxKind::Storage, signed_ms: 0, unknown_after_use: 0 };
        assert!(s.add_pending(&p, None).unwrap());
        let hash = p.tx.hash();
        let settle = || Write::Settle {
            settlement: Settlement {
                hash,
                history: HistoryEntry {
                    id: 0,
                    time_ms: 0,
                    kind: HistoryKind::Storage,
                    tx_hash: Some(hash),
                    status: TxStatus::Confirmed { seq: 3 },
                    charged: Amount::ZERO,
                },
                attested_day: None,
                release_day: None,
            },
            events: vec![ClientEvent::TransactionSettled { hash, status: TxStatus::Confirmed { seq: 3 } }],
        };
        assert_eq!(s.commit(Effects { writes: vec![settle()], events: vec![] }).unwrap().len(), 1);
        assert_eq!(s.commit(Effects { writes: vec![settle()], events: vec![] }).unwrap().len(), 0);
        assert_eq!(s.history(10).unwrap().len(), 1);
        assert!(s.pending().unwrap().is_empty());
    }

    #[test]
    fn a_reason_longer_than_a_stored_event_holds_is_cut_so_the_event_always_decodes() {
        let dir = Scratch::new("events-long");
        let s = ClientStore::open(&dir.0).unwrap();
        let node = watt_core::light::testkit::node(1);
        let long = "é".repeat(10_000);
        s.commit(with_events(vec![ClientEvent::NodeDemoted { node, reason: long }])).unwrap();
        let Some(StoredEvent { event: ClientEvent::NodeDemoted { reason, .. }, .. }) = s.next_event().unwrap() else {
            panic!("the event did not come back")
        };
        assert_eq!(reason.chars().count(), 1024);
    }
}
