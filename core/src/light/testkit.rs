//! A scripted network for tests of light-client shells (feature `testkit`):
//! real ledgers closed by `apply`, real externalize proofs signed by the
//! genesis validators, and the answers an honest node would give. Tests bend
//! these answers into lies one field at a time.

use super::*;
use crate::amount::Amount;
use crate::codec::{BoundedBytes, BoundedVec};
use crate::crypto::{Keypair, SecretSeed};
use crate::ledger::{
    GenesisAccount, GenesisValidator, HeaderInputs, LedgerState, Params, Transaction, TransactionBody, TxSet,
};
use crate::scp::{Ballot, Pledges, Statement};
use crate::wire::Response;

/// The key of scripted validator or account number `i`.
pub fn key(i: u8) -> Keypair {
    // Seeds are fixed so failures replay; no scripted key is a real one.
    Keypair::from_seed(SecretSeed::from_bytes([i.wrapping_add(40); 32])).expect("a 32-byte seed is a valid key")
}

/// Validator `i`'s node id.
pub fn node(i: u8) -> NodeId {
    NodeId(key(i).public())
}

/// The externalize proof of slot `header.seq + 1` naming `header`, signed by
/// scripted validators `signers` (keys `key(i)`) under `genesis`'s first
/// quorum set; `tweak` changes the value (a second one is a fork).
pub fn externalize_proof(genesis: &Genesis, header: &LedgerHeader, signers: &[u8], tweak: u8) -> ExternalizeProof {
    let v = ScpValue {
        prev_header_hash: header.hash(),
        tx_set_hash: Hash256([tweak; 32]),
        close_time: header.close_time + 1000,
        proposer: node(0),
        rand: Hash256::ZERO,
        rand_proof: BoundedBytes::new(),
        prev_proof_hash: Hash256::ZERO,
        upgrades: BoundedVec::new(),
    };
    let value = Value(BoundedBytes::try_from_vec(encode(&v)).expect("a small value"));
    let slot = header.seq + 1;
    let qh = genesis.validators[0].quorum_set.hash();
    let envelopes: Vec<_> = signers
        .iter()
        .map(|i| {
            Statement {
                node_id: node(*i),
                slot_index: slot,
                pledges: Pledges::Confirm {
                    ballot: Ballot { counter: 1, value: value.clone() },
                    n_prepared: 1,
                    n_commit: 1,
                    n_h: 1,
                    quorum_set_hash: qh,
                },
            }
            .sign(&key(*i), &genesis.network_id())
        })
        .collect();
    ExternalizeProof::from_envelopes(slot, &envelopes).expect("a well-formed proof")
}

/// Four validators (each requires 3 of them), a reserve and founding accounts.
pub struct ScriptedNetwork {
    pub genesis: Genesis,
    pub state: LedgerState,
    /// Every header by seq (index `seq - 1`).
    pub headers: Vec<LedgerHeader>,
    /// Each closed ledger's results, by seq.
    pub results: BTreeMap<u64, Vec<TxResult>>,
}

/// Validators are keys 0..4; founding accounts are keys 10.. with `balance`.
impl ScriptedNetwork {
    pub const VALIDATORS: u8 = 4;

    pub fn new(founders: &[(u8, u64)], params: Params) -> ScriptedNetwork {
        let ids: Vec<NodeId> = (0..Self::VALIDATORS).map(node).collect();
        let q = QuorumSet::flat(3, ids.clone());
        let validators = ids
            .iter()
            .enumerate()
            .map(|(i, id)| GenesisValidator {
                name: format!("v{i}"),
                node_id: *id,
                vrf_key: id.0,
                quorum_set: q.clone(),
                addresses: vec![format!("127.0.0.1:{}", 40_000 + i)],
            })
            .collect();
        let founding = founders
            .iter()
            .map(|(k, units)| GenesisAccount { account: AccountId(key(*k).public()), balance: Amount(*units) })
            .collect();
        let genesis = Genesis {
            network_passphrase: "WATT scripted network".into(),
            genesis_time: 1_700_000_000,
            protocol_version: 1,
            validators: BoundedVec::try_from_vec(validators).expect("four validators"),
            reserve_account: AccountId(key(9).public()),
            founding_accounts: BoundedVec::try_from_vec(founding).expect("few founders"),
            params,
        };
        let state = LedgerState::from_genesis(&genesis);
        let headers = vec![state.header.clone()];
        ScriptedNetwork { genesis, state, headers, results: BTreeMap::new() }
    }

    /// The newest header.
    pub fn tip(&self) -> &LedgerHeader {
        &self.state.header
    }

    /// Closes one ledger with `txs`, `step_ms` after the last.
    pub fn close(&mut self, txs: Vec<Transaction>, step_ms: u64) -> Vec<TxResult> {
        let set = TxSet { prev_header_hash: self.state.header.hash(), txs: BoundedVec::from_iter_capped(txs) };
        let inputs = HeaderInputs {
            close_time: self.state.header.close_time + step_ms,
            rand: Hash256(*blake3::hash(&self.state.header.seq.to_le_bytes()).as_bytes()),
            prev_proof_hash: Hash256::ZERO,
            upgrades: vec![],
            participants: vec![],
        };
        let out = self.state.apply(&inputs, &set).expect("scripted ledgers apply");
        self.headers.push(out.header.clone());
        self.results.insert(out.header.seq, out.results.clone());
        out.results
    }

    /// Signs `body` with account key `k`.
    pub fn sign(&self, body: TransactionBody, k: u8) -> Transaction {
        body.sign(&key(k), &self.genesis.network_id())
    }

    /// The externalize proof of slot `header.seq + 1` naming `header`,
    /// signed by `signers`; `tweak` changes the value (a second one is a fork).
    pub fn proof(&self, header: &LedgerHeader, signers: &[u8], tweak: u8) -> ExternalizeProof {
        externalize_proof(&self.genesis, header, signers, tweak)
    }

    /// `GetLatest`: the newest header with a quorum's proof.
    pub fn latest(&self) -> Response {
        self.latest_with(0)
    }

    /// `GetLatest` with another value for the same slot (`tweak` ≠ 0: a fork).
    pub fn latest_with(&self, tweak: u8) -> Response {
        let header = self.tip().clone();
        let proof = self.proof(&header, &[0, 1, 2], tweak);
        Response::Latest { header, proof }
    }

    /// `GetAccount` against the newest header.
    pub fn account(&self, k: u8) -> Response {
        let (entry, proof) = self.state.prove(&StateKey::Account(AccountId(key(k).public())));
        let entry = entry.and_then(|e| match e {
            StateEntry::Account(a) => Some(a),
            _ => None,
        });
        Response::Account { header_seq: self.tip().seq, entry, proof }
    }

    /// `GetEntry` against the newest header.
    pub fn entry(&self, key: &StateKey) -> Response {
        let (entry, proof) = self.state.prove(key);
        let entry = entry.map(|e| BoundedBytes::try_from_vec(encode(&e)).expect("entries fit a frame"));
        Response::Entry { header_seq: self.tip().seq, entry, proof }
    }

    /// `GetTx`: the result with its path, or `TxUnknown`.
    pub fn tx(&self, hash: &Hash256) -> Response {
        for (seq, results) in &self.results {
            if let Some(i) = results.iter().position(|r| r.tx_hash == *hash) {
                let leaves: Vec<Hash256> = results.iter().map(|r| r.leaf()).collect();
                let path = crate::merkle::path(&crate::merkle::levels(&leaves), i as u64);
                return Response::Tx { header_seq: *seq, result: results[i].clone(), path };
            }
        }
        Response::TxUnknown { hash: *hash }
    }

    /// `GetProvenHeader { seq }`: header `seq` with a quorum's proof of the next slot.
    pub fn proven_header(&self, seq: u64) -> Response {
        let header = self.headers[(seq - 1) as usize].clone();
        let proof = self.proof(&header, &[0, 1, 2], 0);
        Response::Latest { header, proof }
    }

    /// `GetHeaders { from, count }`.
    pub fn headers(&self, from: u64, count: u32) -> Response {
        let hs: Vec<LedgerHeader> =
            self.headers.iter().filter(|h| h.seq >= from).take(count as usize).cloned().collect();
        Response::Headers { headers: BoundedVec::from_iter_capped(hs) }
    }
}
