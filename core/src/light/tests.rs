//! Lying nodes, one lie at a time: each answer is refused with a typed
//! error, the node is demoted, and valid answers keep working.

use super::*;
use crate::amount::Amount;
use crate::codec::BoundedVec;
use crate::crypto::{Keypair, SecretSeed};
use crate::ledger::{
    GenesisAccount, GenesisValidator, HeaderInputs, LedgerState, Operation, Params, TransactionBody, TxSet,
};
use crate::scp::Pledges;

fn key(i: u8) -> Keypair {
    Keypair::from_seed(SecretSeed::from_bytes([i + 40; 32])).unwrap()
}

struct World {
    genesis: Genesis,
    state: LedgerState,
    headers: Vec<LedgerHeader>,
    payer: Keypair,
}

fn world() -> World {
    let vals: Vec<Keypair> = (0..4).map(key).collect();
    let q = QuorumSet::flat(3, vals.iter().map(|k| NodeId(k.public())).collect());
    let payer = key(9);
    let genesis = Genesis {
        network_passphrase: "WATT light tests".into(),
        genesis_time: 1_700_000_000,
        protocol_version: 1,
        validators: BoundedVec::try_from_vec(
            vals.iter()
                .enumerate()
                .map(|(i, k)| GenesisValidator {
                    name: format!("v{i}"),
                    node_id: NodeId(k.public()),
                    vrf_key: k.public(),
                    quorum_set: q.clone(),
                    addresses: vec![],
                })
                .collect(),
        )
        .unwrap(),
        reserve_account: AccountId(key(8).public()),
        founding_accounts: BoundedVec::try_from_vec(vec![GenesisAccount {
            account: AccountId(payer.public()),
            balance: Amount(1_000),
        }])
        .unwrap(),
        params: Params::devnet(1000, 100),
    };
    let state = LedgerState::from_genesis(&genesis);
    let headers = vec![state.header.clone()];
    World { genesis, state, headers, payer }
}

impl World {
    fn close(&mut self, txs: Vec<crate::ledger::Transaction>) -> Vec<TxResult> {
        let set = TxSet { prev_header_hash: self.state.header.hash(), txs: BoundedVec::try_from_vec(txs).unwrap() };
        let inputs = HeaderInputs {
            close_time: self.state.header.close_time + 1000,
            rand: Hash256::ZERO,
            prev_proof_hash: Hash256::ZERO,
            upgrades: vec![],
            participants: vec![],
        };
        let out = self.state.apply(&inputs, &set).unwrap();
        self.headers.push(out.header);
        out.results
    }

    /// The externalize proof of slot `header.seq + 1`, signed by `signers`, for a value naming `header`.
    fn proof(&self, header: &LedgerHeader, signers: &[u8], tweak: u8) -> ExternalizeProof {
        super::testkit::externalize_proof(&self.genesis, header, signers, tweak)
    }
}

fn node(i: u8) -> NodeId {
    NodeId(key(i).public())
}

#[test]
fn a_quorum_proof_is_accepted_and_too_few_signers_are_not() {
    let mut w = world();
    w.close(vec![]);
    let h = w.headers[1].clone();
    let mut lc = LightClient::new(TrustAnchor::from_genesis(&w.genesis));
    let (r, ev) = lc.on_latest(node(0), &h, &w.proof(&h, &[0, 1], 0));
    assert_eq!(r, Err(LightError::Proof(ProofError::NoQuorum)));
    assert!(matches!(&ev[0], LightEvent::NodeDemoted { node: n, .. } if *n == node(0)));
    assert!(lc.latest().is_none());
    let (r, ev) = lc.on_latest(node(1), &h, &w.proof(&h, &[0, 1, 2], 0));
    assert_eq!(r, Ok(h.seq));
    assert_eq!(ev, vec![LightEvent::NewVerifiedHeader(h.seq)]);
    assert!(lc.may_sign());
}

#[test]
fn forged_signature_and_wrong_header_are_refused() {
    let mut w = world();
    w.close(vec![]);
    let h = w.headers[1].clone();
    let anchor = TrustAnchor::from_genesis(&w.genesis);
    let mut p = w.proof(&h, &[0, 1, 2], 0);
    let mut commits = p.commits.to_vec();
    commits[1].signature.0[0] ^= 1;
    p.commits = BoundedVec::try_from_vec(commits).unwrap();
    assert_eq!(verify_latest(&anchor, &h, &p), Err(LightError::Proof(ProofError::BadSignature(node(1)))));
    // A valid proof presented with another header.
    let other = w.headers[0].clone();
    assert_eq!(
        verify_latest(&anchor, &other, &w.proof(&h, &[0, 1, 2], 0)),
        Err(LightError::HeaderMismatch { seq: other.seq, slot: h.seq + 1 })
    );
    // Signers outside the pinned validators do not count.
    assert!(verify_latest(&anchor, &h, &w.proof(&h, &[0, 1, 7], 0)).is_err());
}

#[test]
fn two_valid_values_for_one_slot_are_fork_evidence() {
    let mut w = world();
    w.close(vec![]);
    let h = w.headers[1].clone();
    let mut lc = LightClient::new(TrustAnchor::from_genesis(&w.genesis));
    assert!(lc.on_latest(node(0), &h, &w.proof(&h, &[0, 1, 2], 1)).0.is_ok());
    let (_, ev) = lc.on_latest(node(1), &h, &w.proof(&h, &[1, 2, 3], 2));
    assert_eq!(ev, vec![LightEvent::ForkDetected(h.seq + 1)]);
    assert!(!lc.may_sign(), "after fork evidence the phone refuses to sign");
    assert_eq!(lc.fork.as_ref().map(|f| f.slot), Some(h.seq + 1));
}

#[test]
fn stale_headers_do_not_replace_newer_ones() {
    let mut w = world();
    w.close(vec![]);
    w.close(vec![]);
    w.close(vec![]);
    let (h1, h2, h3) = (w.headers[1].clone(), w.headers[2].clone(), w.headers[3].clone());
    let mut lc = LightClient::new(TrustAnchor::from_genesis(&w.genesis));
    // A node first seen with an old header, replaying the same proof after
    // the chain moved on, is stale the second time.
    let p1 = w.proof(&h1, &[0, 1, 2], 0);
    assert_eq!(lc.on_latest(node(3), &h1, &p1).0, Ok(h1.seq));
    assert!(lc.on_latest(node(0), &h3, &w.proof(&h3, &[0, 1, 2], 0)).0.is_ok());
    assert_eq!(lc.on_latest(node(3), &h1, &p1).0, Err(LightError::Stale { got: h1.seq, have: h3.seq }));
    // One ledger behind is a node a moment late: accepted, not newest.
    assert_eq!(lc.on_latest(node(2), &h2, &w.proof(&h2, &[0, 1, 2], 0)).0, Ok(h2.seq));
    assert_eq!(
        lc.on_latest(node(1), &h1, &w.proof(&h1, &[0, 1, 2], 0)).0,
        Err(LightError::Stale { got: h1.seq, have: h3.seq })
    );
    assert_eq!(lc.latest().unwrap().header.seq, h3.seq);
    let h2 = h3;
    assert!(lc.is_stale(h2.close_time + 60_001, 60_000));
    assert!(!lc.is_stale(h2.close_time + 1_000, 60_000));
    // Older headers link down by prev_hash, and a broken link is refused.
    verify_chain(&h2, &w.headers[..3]).unwrap();
    let mut bad = w.headers[..3].to_vec();
    bad[1].close_time += 1;
    assert_eq!(verify_chain(&h2, &bad), Err(LightError::BrokenChain(h1.seq)));
}

#[test]
fn account_and_transaction_proofs_are_checked_against_the_verified_header() {
    let mut w = world();
    let payee = AccountId(key(7).public());
    let tx = TransactionBody {
        source: AccountId(w.payer.public()),
        seq_num: 1,
        fee: Amount(1),
        max_ledger: None,
        ops: BoundedVec::try_from_vec(vec![Operation::Pay { to: payee, amount: Amount(10) }]).unwrap(),
    }
    .sign(&w.payer, &w.genesis.network_id());
    let results = w.close(vec![tx]);
    w.close(vec![]); // the proofs are served as of the previous ledger
    let h = w.headers[1].clone();
    let verified = verify_latest(&TrustAnchor::from_genesis(&w.genesis), &h, &w.proof(&h, &[0, 1, 2], 0)).unwrap();
    let (_, entry, proof) = w.state.prove_previous(&StateKey::Account(payee)).unwrap();
    let Some(StateEntry::Account(acc)) = entry else { panic!("payee exists") };
    assert_eq!(verify_account(&verified, &payee, Some(&acc), &proof).unwrap().map(|a| a.balance), Some(Amount(10)));
    // A node that lies about the balance, or claims absence.
    let mut lie = acc.clone();
    lie.balance = Amount(1_000_000);
    assert_eq!(verify_account(&verified, &payee, Some(&lie), &proof), Err(LightError::EntryMismatch));
    assert_eq!(verify_account(&verified, &payee, None, &proof), Err(LightError::EntryMismatch));
    let mut bad_proof = proof.clone();
    if let Some((_, vh)) = bad_proof.leaf.as_mut() {
        vh.0[0] ^= 1;
    }
    assert_eq!(verify_account(&verified, &payee, Some(&acc), &bad_proof), Err(LightError::BadStateProof));
    // The transaction's result under results_hash.
    let leaves: Vec<Hash256> = results.iter().map(|r| r.leaf()).collect();
    let path = crate::merkle::path(&crate::merkle::levels(&leaves), 0);
    verify_tx(&verified.header, &results[0], &path).unwrap();
    let mut forged = results[0].clone();
    forged.fee_charged = Amount(0);
    assert_eq!(verify_tx(&verified.header, &forged, &path), Err(LightError::BadInclusion));
}

#[test]
fn compact_proofs_rebuild_the_signed_envelopes_exactly() {
    let mut w = world();
    w.close(vec![]);
    w.close(vec![]);
    let (h1, h2) = (w.headers[1].clone(), w.headers[2].clone());
    let p = w.proof(&h1, &[0, 1, 2], 0);
    let envelopes = p.envelopes();
    let network = w.genesis.network_id();
    assert!(envelopes.iter().all(|e| e.verify(&network).is_ok()), "rebuilt envelopes carry valid signatures");
    assert_eq!(ExternalizeProof::from_envelopes(p.slot, &envelopes).unwrap(), p);
    // Fewer bytes than the envelopes listed in full (the value once).
    let full: usize = envelopes.iter().map(|e| encode(e).len()).sum();
    assert!(encode(&p).len() * 3 < full * 2, "{} vs {full}", encode(&p).len());
    // One value per proof, commits only, one slot.
    let mut mixed = envelopes.clone();
    mixed.extend(w.proof(&h2, &[3], 0).envelopes().into_iter().map(|mut e| {
        e.statement.slot_index = p.slot;
        e
    }));
    assert_eq!(ExternalizeProof::from_envelopes(p.slot, &mixed), Err(crate::wire::ProofShapeError::MixedValues));
    assert_eq!(
        ExternalizeProof::from_envelopes(p.slot + 1, &envelopes),
        Err(crate::wire::ProofShapeError::WrongSlot(node(0)))
    );
    let mut nominate = envelopes[0].clone();
    nominate.statement.pledges =
        Pledges::Nominate { quorum_set_hash: Hash256::ZERO, votes: BoundedVec::new(), accepted: BoundedVec::new() };
    assert_eq!(
        ExternalizeProof::from_envelopes(p.slot, &[nominate]),
        Err(crate::wire::ProofShapeError::NotCommit(node(0)))
    );
}

#[test]
fn reported_fork_evidence_is_checked_by_the_same_rules() {
    let mut w = world();
    w.close(vec![]);
    let h = w.headers[1].clone();
    let anchor = TrustAnchor::from_genesis(&w.genesis);
    let slot = h.seq + 1;
    let (a, b) = (w.proof(&h, &[0, 1, 2], 0), w.proof(&h, &[1, 2, 3], 1));
    assert_eq!(check_fork_evidence(&anchor, slot, &a, &b), Ok(()));
    assert_eq!(check_fork_evidence(&anchor, slot, &a, &a), Err(LightError::NotAFork), "one value twice");
    assert_eq!(check_fork_evidence(&anchor, slot + 1, &a, &b), Err(LightError::NotAFork), "another slot");
    let weak = w.proof(&h, &[0, 1], 1);
    assert_eq!(check_fork_evidence(&anchor, slot, &a, &weak), Err(LightError::NotAFork), "no quorum behind b");
}

/// Helper review of issue 18: a genuine proof paired with a header whose seq
/// is u64::MAX made `seq + 1` overflow; with overflow checks on (release)
/// and `panic = "abort"` (the phone build), any node could kill the app.
#[test]
fn a_header_at_u64_max_is_refused_without_overflow() {
    let mut w = world();
    w.close(vec![]);
    let h = w.headers[1].clone();
    let proof = w.proof(&h, &[0, 1, 2], 0);
    let mut bent = h.clone();
    bent.seq = u64::MAX;
    let anchor = TrustAnchor::from_genesis(&w.genesis);
    assert!(matches!(verify_latest(&anchor, &bent, &proof), Err(LightError::HeaderMismatch { .. })));
}

/// Helper review of issue 18: a proof padded with envelopes from signers
/// nobody trusts verified every padded signature (a thousand per proof) before
/// the quorum test: a cheap way to make phones and validators burn CPU. Now
/// untrusted signers are ignored unchecked and the quorum is decided on ids.
#[test]
fn envelopes_from_untrusted_signers_are_ignored_unchecked() {
    let mut w = world();
    w.close(vec![]);
    let h = w.headers[1].clone();
    let honest = w.proof(&h, &[0, 1, 2], 0);
    let mut envelopes = honest.envelopes();
    let stranger = Keypair::from_seed(SecretSeed::from_bytes([99; 32])).unwrap();
    let mut junk = envelopes[0].clone();
    junk.statement.node_id = NodeId(stranger.public());
    envelopes.push(junk); // a bad signature from a stranger
    let padded = ExternalizeProof::from_envelopes(honest.slot, &envelopes).unwrap();
    let anchor = TrustAnchor::from_genesis(&w.genesis);
    let mut checked = 0;
    let r = crate::scp::proof::verify_externalize_proof_with(
        padded.slot,
        &padded.envelopes(),
        &anchor.local_qset,
        |n| anchor.quorum_sets.get(n).cloned(),
        |e| {
            checked += 1;
            e.verify(&anchor.network_id).is_ok()
        },
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(checked, 3, "only the trusted signers' signatures are checked");
    // Strangers alone are no quorum, and none of their signatures is checked.
    let strangers: Vec<_> = (0..3u8)
        .map(|i| {
            let k = Keypair::from_seed(SecretSeed::from_bytes([120 + i; 32])).unwrap();
            let mut e = honest.envelopes()[0].clone();
            e.statement.node_id = NodeId(k.public());
            e.statement.clone().sign(&k, &w.genesis.network_id())
        })
        .collect();
    let mut checked = 0;
    let r = crate::scp::proof::verify_externalize_proof_with(
        honest.slot,
        &strangers,
        &anchor.local_qset,
        |n| anchor.quorum_sets.get(n).cloned(),
        |_| {
            checked += 1;
            true
        },
    );
    assert_eq!(r, Err(ProofError::NoQuorum));
    assert_eq!(checked, 0);
}
