//! Where a validator's closed ledgers live. The herder reads and writes
//! only through [`LedgerStore`], so the same herder runs on redb in a node
//! ([`Store`]) and in memory in the simulator and unit tests ([`MemStore`]).
//! Each closed ledger is one atomic commit: header, tx set, externalize
//! proof, the proof set its value named, every changed state entry and the
//! payout-queue changes.

mod memory;
mod redb;

pub use memory::MemStore;
pub use redb::{Store, StoreReader};

use watt_core::codec::CodecError;
use watt_core::crypto::Hash256;
use watt_core::ledger::state::Payout;
use watt_core::ledger::{Genesis, LedgerHeader, LedgerState, StateEntry, StateKey, TxResult, TxSet};
use watt_core::scp::Envelope;
use watt_core::wire::ExternalizeProof;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Db { path: std::path::PathBuf, source: ::redb::Error },
    #[error("stored data is corrupt ({what}): {source}")]
    Corrupt { what: String, source: CodecError },
    #[error("stored state does not match its ledger: {0}")]
    Inconsistent(String),
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: CodecError },
    /// A commit that fails as a full or broken disk would (tests and the
    /// simulator's disk faults).
    #[error("injected commit failure")]
    Injected,
}

/// What an open slot's own statements name, saved with them: the tx sets
/// and proof sets of the values this node votes for. After a restart it
/// still serves them, or peers would park its restored statements forever.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SlotData {
    TxSet(TxSet),
    ProofSet(Vec<Envelope>),
}

impl SlotData {
    /// The name values use for it.
    pub fn hash(&self) -> Hash256 {
        match self {
            SlotData::TxSet(s) => s.hash(),
            SlotData::ProofSet(envs) => proof_set_hash(envs),
        }
    }
}

/// A slot's saved own statements and the data their values name.
pub type SavedScp = (Vec<Envelope>, Vec<SlotData>);

/// A closed ledger as it is written.
pub struct ClosedLedger<'a> {
    pub header: &'a LedgerHeader,
    pub tx_set: &'a TxSet,
    pub proof: &'a ExternalizeProof,
    pub prev_proof: Option<(Hash256, &'a [Envelope])>,
    pub changes: &'a [(StateKey, Option<StateEntry>)],
    pub payouts_credited: usize,
    pub new_payouts: &'a [Payout],
    pub results: &'a [TxResult],
}

/// Hash of a proof set's canonical encoding (what `prev_proof_hash` commits to).
pub fn proof_set_hash(envelopes: &[Envelope]) -> Hash256 {
    watt_core::crypto::hash_tagged(watt_core::crypto::Domain::ProofSet, &watt_core::codec::encode_list(envelopes))
}

fn encoded<T: serde::Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    watt_core::codec::to_bytes(v).map_err(|source| StoreError::Encode { what, source })
}

/// Reading a validator's durable state: its own store, or a reader beside
/// a running node (redb gives each read a consistent snapshot).
pub trait LedgerRead {
    /// The last committed ledger, `None` for a store never written.
    fn last_seq(&self) -> Result<Option<u64>, StoreError>;
    fn header(&self, seq: u64) -> Result<Option<LedgerHeader>, StoreError>;
    /// Up to `count` consecutive headers from `from` (fewer past the last).
    fn headers(&self, from: u64, count: u32) -> Result<Vec<LedgerHeader>, StoreError>;
    fn tx_set(&self, seq: u64) -> Result<Option<TxSet>, StoreError>;
    /// Externalize proof of slot `seq` (proves header `seq - 1`, carries value `seq`).
    fn proof(&self, slot: u64) -> Result<Option<ExternalizeProof>, StoreError>;
    /// Proof sets by hash (what values' `prev_proof_hash` name).
    fn proof_set(&self, hash: &Hash256) -> Result<Option<Vec<Envelope>>, StoreError>;
    /// A ledger's transaction results, in tx-set order.
    fn results(&self, seq: u64) -> Result<Option<Vec<TxResult>>, StoreError>;
    /// The ledger that applied a transaction, if any.
    fn tx_ledger(&self, hash: &Hash256) -> Result<Option<u64>, StoreError>;
    /// The saved envelopes of `slot` and all the data saved with them.
    fn scp_state(&self, slot: u64) -> Result<Option<SavedScp>, StoreError>;
    /// Every state entry at the last committed ledger.
    fn entries(&self) -> Result<Vec<(StateKey, StateEntry)>, StoreError>;
    /// The payout queue at the last committed ledger, oldest first.
    fn payouts(&self) -> Result<Vec<Payout>, StoreError>;

    /// Rebuilds the ledger state at the last committed ledger, checking it
    /// against that ledger's state root.
    fn load_state(&self, genesis: &Genesis) -> Result<Option<LedgerState>, StoreError> {
        let Some(lcl) = self.last_seq()? else { return Ok(None) };
        let header =
            self.header(lcl)?.ok_or_else(|| StoreError::Inconsistent(format!("ledger {lcl} has no header")))?;
        let entries = self.entries()?;
        let payouts = self.payouts()?;
        // Exactly the `window` newest headers, as a running node keeps them.
        let window = genesis.params.recent_window();
        let first = lcl.saturating_sub(window.saturating_sub(1)).max(1);
        let count = u32::try_from(lcl - first + 1)
            .map_err(|_| StoreError::Inconsistent(format!("recent window of {window} headers")))?;
        let recent = self.headers(first, count)?.iter().map(|h| (h.seq, h.hash(), h.rand)).collect();
        LedgerState::restore(genesis, header, entries, payouts, recent).map(Some).map_err(StoreError::Inconsistent)
    }
}

/// The herder's durable state. After a crash a store holds exactly the
/// ledgers whose `commit` returned, and the SCP statements whose
/// `save_scp_state` returned.
pub trait LedgerStore: LedgerRead {
    /// Commits one closed ledger atomically; the slot's saved SCP state and
    /// every earlier one are dropped with it.
    fn commit(&mut self, c: &ClosedLedger<'_>) -> Result<(), StoreError>;
    /// Persists the node's own latest envelopes for an open slot, and the
    /// data their values name not saved before (`data` adds to what the
    /// slot holds), before they are sent, so a restart never contradicts
    /// them and can still serve them.
    fn save_scp_state(&mut self, slot: u64, envs: &[Envelope], data: &[SlotData]) -> Result<(), StoreError>;

    /// Writes the genesis ledger's full state.
    fn init_genesis(&mut self, state: &LedgerState) -> Result<(), StoreError> {
        let entries: Vec<(StateKey, Option<StateEntry>)> =
            state.all_entries().into_iter().map(|(k, e)| (k, Some(e))).collect();
        let empty = TxSet { prev_header_hash: Hash256::ZERO, txs: Default::default() };
        let proof =
            ExternalizeProof { slot: 1, value: watt_core::scp::Value(Default::default()), commits: Default::default() };
        self.commit(&ClosedLedger {
            header: &state.header,
            tx_set: &empty,
            proof: &proof,
            prev_proof: None,
            changes: &entries,
            payouts_credited: 0,
            new_payouts: &[],
            results: &[],
        })
    }
}
