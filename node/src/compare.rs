//! `watt-node compare`: the daily comparison of a real node with the
//! simulator's ledger (the whitepaper's simulator "compared with the testnet
//! every day until they agree"). It replays the inputs the node stored —
//! each ledger's externalized value, tx set and the proof set the value
//! names — through `LedgerState::apply` from genesis, as the simulator's
//! validators apply them, and reports the first ledger whose header differs
//! and any difference in the day's record. `watt-node audit` stays the
//! independent recomputation of the distribution.

use crate::herder::{committed_value, header_inputs};
use crate::store::{proof_set_hash, LedgerRead, Store};
use serde_json::{json, Value as Json};
use std::path::Path;
use watt_core::codec::decode;
use watt_core::crypto::Hash256;
use watt_core::ledger::{Genesis, LedgerState, ScpValue};

/// The first ledger whose stored inputs do not give its stored header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub ledger: u64,
    pub what: String,
}

/// Replays every stored ledger; `Ok(state)` at the last one, or the first
/// difference.
pub fn replay(store: &impl LedgerRead, genesis: &Genesis) -> Result<LedgerState, Difference> {
    let network = genesis.network_id();
    let mut state = LedgerState::from_genesis(genesis);
    let differ = |ledger: u64, what: String| Difference { ledger, what };
    let stored = |seq: u64, what: &str, e: String| differ(seq, format!("cannot read the stored {what}: {e}"));
    match store.header(1) {
        Ok(Some(h)) if h.hash() == state.header.hash() => {}
        Ok(Some(h)) => return Err(differ(1, format!("genesis header {} is not {}", h.hash(), state.header.hash()))),
        other => return Err(differ(1, format!("no genesis header stored: {other:?}"))),
    }
    let last = store.last_seq().map_err(|e| stored(1, "last ledger", e.to_string()))?.unwrap_or(1);
    for seq in 2..=last {
        let header = store
            .header(seq)
            .map_err(|e| stored(seq, "header", e.to_string()))?
            .ok_or_else(|| differ(seq, "no header stored".into()))?;
        let proof = store
            .proof(seq)
            .map_err(|e| stored(seq, "externalize proof", e.to_string()))?
            .ok_or_else(|| differ(seq, "no externalize proof stored".into()))?;
        let value =
            committed_value(&proof).ok_or_else(|| differ(seq, "the externalize proof commits to nothing".into()))?;
        let v: ScpValue = decode(value.as_bytes())
            .map_err(|e| differ(seq, format!("the externalized value does not decode: {e}")))?;
        let set = store
            .tx_set(seq)
            .map_err(|e| stored(seq, "tx set", e.to_string()))?
            .ok_or_else(|| differ(seq, "no tx set stored".into()))?;
        if set.hash() != v.tx_set_hash {
            return Err(differ(
                seq,
                format!("the stored tx set hashes to {}, its value names {}", set.hash(), v.tx_set_hash),
            ));
        }
        let prev_envs = if v.prev_proof_hash == Hash256::ZERO {
            Vec::new()
        } else {
            let envs = store
                .proof_set(&v.prev_proof_hash)
                .map_err(|e| stored(seq, "proof set", e.to_string()))?
                .ok_or_else(|| differ(seq, format!("proof set {} is not stored", v.prev_proof_hash)))?;
            if proof_set_hash(&envs) != v.prev_proof_hash {
                return Err(differ(seq, "the stored proof set does not hash to its name".into()));
            }
            envs
        };
        let inputs = header_inputs(&v, &prev_envs, |e| e.verify(&network).is_ok());
        state.apply(&inputs, &set).map_err(|e| differ(seq, format!("the stored inputs do not apply: {e}")))?;
        if state.header.hash() != header.hash() {
            return Err(differ(
                seq,
                format!("replayed header {} differs from the stored {}", state.header.hash(), header.hash()),
            ));
        }
    }
    Ok(state)
}

/// Compares day `day` of a store with the replay: every header up to the
/// last stored ledger, and the day's record.
pub fn compare_store(store: &impl LedgerRead, genesis: &Genesis, day: u64) -> Result<Json, String> {
    let stored = store.load_state(genesis).map_err(|e| e.to_string())?.ok_or("empty store")?;
    let rec = stored.day_record(day).cloned().ok_or_else(|| format!("day {day} has no record"))?;
    let replayed = replay(store, genesis);
    let (difference, record_matches) = match &replayed {
        Ok(state) => (None, state.day_record(day) == Some(&rec)),
        Err(d) => (Some(d.clone()), false),
    };
    Ok(json!({
        "day": day,
        "compare_ok": difference.is_none() && record_matches,
        "ledgers": stored.header.seq,
        "first_difference": difference.as_ref().map(|d| json!({ "ledger": d.ledger, "what": d.what })),
        "day_record_matches": record_matches,
    }))
}

/// [`compare_store`] over a node's data directory (or a devnet's).
pub fn compare_dir(dir: &Path, day: u64) -> Result<Json, String> {
    let (data, genesis_path) = crate::audit::locate(dir)?;
    let genesis =
        Genesis::from_json(&std::fs::read(&genesis_path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let store = Store::open(&data).map_err(|e| e.to_string())?;
    compare_store(&store, &genesis, day)
}
