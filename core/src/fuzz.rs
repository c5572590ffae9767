//! Fuzz targets: each takes arbitrary bytes and must neither panic nor break
//! an invariant (a decoded value re-encodes to the same bytes; verifiers
//! answer with an error). The same functions serve `cargo fuzz` targets and
//! the bounded pass on stable that the test suite runs.

use crate::codec::{decode, encode, Wire};
use crate::crypto::Hash256;

fn canonical<T: Wire + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = decode::<T>(data) {
        let again = encode(&v);
        assert_eq!(again, data, "a decoded value must re-encode to the same bytes");
        assert_eq!(decode::<T>(&again).ok().as_ref(), Some(&v));
    }
}

/// Every wire and stored type: decoding is total and canonical.
pub fn decoders(data: &[u8]) {
    use crate::ledger::{LedgerHeader, Transaction, TxSet};
    use crate::wire::*;
    canonical::<Request>(data);
    canonical::<Response>(data);
    canonical::<PeerMessage>(data);
    canonical::<HeaderPush>(data);
    canonical::<ExternalizeProof>(data);
    canonical::<crate::scp::Envelope>(data);
    canonical::<Transaction>(data);
    canonical::<TxSet>(data);
    canonical::<LedgerHeader>(data);
    canonical::<crate::storage::proof::SealProof>(data);
    canonical::<crate::storage::proof::PostReveal>(data);
    if let Some(prefix) = data.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        if let Ok(frame_len) = check_frame_len(prefix, MAX_FRAME) {
            assert!(frame_len <= MAX_FRAME);
        }
    }
}

/// Text inputs: strkeys, recovery words, amounts and genesis files.
pub fn text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok((kind, key)) = crate::address::decode_strkey(s) {
        assert_eq!(crate::address::encode_strkey(kind, &key), s.trim());
    }
    let _ = crate::mnemonic::Mnemonic::parse(s);
    if let Ok(a) = s.parse::<crate::amount::Amount>() {
        assert_eq!(a.to_string().parse::<crate::amount::Amount>().ok(), Some(a));
    }
    let _ = crate::ledger::Genesis::from_json(data);
    if let Ok(invite) = crate::ledger::Invite::from_text(s) {
        assert_eq!(crate::ledger::Invite::from_text(&invite.to_text()).ok(), Some(invite));
    }
}

/// A small fixed network the verifiers check against.
fn anchor() -> (crate::ledger::Genesis, crate::light::TrustAnchor) {
    use crate::address::{AccountId, NodeId};
    use crate::codec::BoundedVec;
    use crate::ledger::{Genesis, GenesisValidator, Params};
    let keys: Vec<crate::crypto::Keypair> = (1..=4u8)
        .filter_map(|i| crate::crypto::Keypair::from_seed(crate::crypto::SecretSeed::from_bytes([i; 32])).ok())
        .collect();
    let q = crate::scp::QuorumSet::flat(3, keys.iter().map(|k| NodeId(k.public())).collect());
    let genesis = Genesis {
        network_passphrase: "WATT fuzz".into(),
        genesis_time: 1_700_000_000,
        protocol_version: 1,
        validators: BoundedVec::try_from_vec(
            keys.iter()
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
        .unwrap_or_default(),
        reserve_account: AccountId(crate::crypto::PublicKey([9; 32])),
        founding_accounts: BoundedVec::new(),
        params: Params::devnet(1000, 100),
    };
    let anchor = crate::light::TrustAnchor::from_genesis(&genesis);
    (genesis, anchor)
}

/// The light client's verifiers on arbitrary headers and proofs.
pub fn light_client(data: &[u8]) {
    use crate::ledger::{LedgerHeader, StateProof};
    use crate::wire::ExternalizeProof;
    let (_, anchor) = anchor();
    let split = data.first().map_or(0, |b| *b as usize).min(data.len().saturating_sub(1));
    let (a, b) = data.get(1..).unwrap_or(&[]).split_at(split.min(data.len().saturating_sub(1)));
    if let (Ok(h), Ok(p)) = (decode::<LedgerHeader>(a), decode::<ExternalizeProof>(b)) {
        // No signer of this fixed network signed anything the fuzzer made.
        assert!(crate::light::verify_latest(&anchor, &h, &p).is_err());
        let mut lc = crate::light::LightClient::new(anchor.clone());
        let (r, _) = lc.on_latest(crate::address::NodeId(crate::crypto::PublicKey([1; 32])), &h, &p);
        assert!(r.is_err() && lc.latest().is_none());
    }
    if let Ok(p) = decode::<StateProof>(data) {
        let _ = crate::ledger::smt::verify(&Hash256([1; 32]), &Hash256([2; 32]), &p);
    }
}

/// Seal and PoSt verification on arbitrary proofs for a fixed tiny sector.
pub fn storage_proofs(data: &[u8]) {
    use crate::storage::graph::SectorShape;
    use crate::storage::proof::*;
    let sector = SealedSector {
        shape: SectorShape { sector_bytes: 1 << 12, layers: 2 },
        replica_id: Hash256([1; 32]),
        comm_d: crate::storage::seal::zero_root(128),
        comm_c: Hash256([2; 32]),
        comm_r_last: Hash256([3; 32]),
        comm_r: crate::storage::seal::comm_r(&Hash256([2; 32]), &Hash256([3; 32])),
    };
    if let Ok(p) = decode::<SealProof>(data) {
        assert!(verify_seal(&sector, &Hash256([4; 32]), p.openings.len(), &p).is_err());
    }
    if let Ok(r) = decode::<PostReveal>(data) {
        let sectors = [ProvenSector { sector_number: 1, sector_bytes: 1 << 12, comm_r_last: Hash256([3; 32]) }];
        assert!(verify_post(
            &Hash256([5; 32]),
            &[6; 32],
            &sectors,
            64,
            &Hash256([7; 32]),
            &Hash256([8; 32]),
            r.steps.len(),
            &r
        )
        .is_err());
    }
}

/// `apply` on an arbitrary transaction set: never panics, the supply
/// invariant holds after it, and a failed apply changes nothing.
pub fn apply(data: &[u8]) {
    use crate::ledger::{HeaderInputs, LedgerState, TxSet};
    let Ok(mut set) = decode::<TxSet>(data) else { return };
    let (genesis, _) = anchor();
    let mut state = LedgerState::from_genesis(&genesis);
    set.prev_header_hash = state.header.hash();
    let before = state.header.clone();
    let inputs = HeaderInputs {
        close_time: state.header.close_time + 1000,
        rand: Hash256([1; 32]),
        prev_proof_hash: Hash256::ZERO,
        upgrades: vec![],
        participants: vec![],
    };
    match state.apply(&inputs, &set) {
        Ok(_) => assert!(state.check_invariant().is_ok()),
        Err(_) => assert_eq!(state.header, before),
    }
}

/// SCP envelope handling: the bytes are a program of statements from the
/// three other members of a fixed 4-node network (threshold 3), local
/// nominations and timer firings. Signatures are accepted, so the state
/// machine is what is fuzzed, not Ed25519: a Byzantine peer can say anything.
/// SCP must not panic, its invariants must hold after every step, a slot
/// keeps the value it externalized, and once the local node has accepted a
/// commit (CONFIRM) it never confirms or externalizes another value there.
pub fn scp_envelopes(data: &[u8]) {
    use crate::address::NodeId;
    use crate::crypto::{PublicKey, Signature};
    use crate::scp::{
        Ballot, Driver, Effect, Envelope, Pledges, QuorumSet, Scp, Statement, TimerKind, Validity, Value,
    };
    use std::collections::{BTreeMap, BTreeSet};

    struct AcceptAll(QuorumSet);
    impl Driver for AcceptAll {
        fn validate_value(&mut self, _slot: u64, value: &Value, _nomination: bool) -> Validity {
            match value.as_bytes().first() {
                Some(0xff) => Validity::Invalid,
                Some(_) => Validity::FullyValid,
                None => Validity::MaybeValid,
            }
        }
        fn combine_candidates(&mut self, _slot: u64, candidates: &BTreeSet<Value>) -> Option<Value> {
            candidates.iter().next_back().cloned()
        }
        fn sign(&mut self, statement: Statement) -> Envelope {
            Envelope { statement, signature: Signature::ZERO }
        }
        fn verify(&mut self, _envelope: &Envelope) -> bool {
            true
        }
        fn quorum_set(&mut self, hash: &Hash256) -> Option<QuorumSet> {
            (*hash == self.0.hash()).then(|| self.0.clone())
        }
    }

    let nodes: Vec<NodeId> = (1..=4u8).map(|i| NodeId(PublicKey([i; 32]))).collect();
    let qset = QuorumSet::flat(3, nodes.clone());
    let qset_hash = qset.hash();
    let mut scp = Scp::new(nodes[0], qset.clone(), AcceptAll(qset));
    let value = |x: u8| -> Value {
        // Three valid values, one invalid, one not yet checkable.
        let bytes: &[u8] = match x % 5 {
            0 => &[1],
            1 => &[2],
            2 => &[3],
            3 => &[0xff],
            _ => &[],
        };
        Value(crate::codec::BoundedBytes::try_from_slice(bytes).unwrap_or_default())
    };
    let values_of = |bits: u8| -> crate::codec::BoundedVec<Value, { crate::scp::statement::MAX_NOMINATED }> {
        let set: BTreeSet<Value> = (0..5u8).filter(|i| bits & (1 << i) != 0).map(value).collect();
        crate::codec::BoundedVec::try_from_vec(set.into_iter().collect()).unwrap_or_default()
    };
    let mut timers: BTreeMap<(u64, TimerKind), u64> = BTreeMap::new();
    let mut externalized: BTreeMap<u64, Value> = BTreeMap::new();
    let mut committed: BTreeMap<u64, Value> = BTreeMap::new();
    let mut now = 0u64;
    for step in data.chunks(6) {
        let mut b = [0u8; 6];
        b[..step.len()].copy_from_slice(step);
        let [op, a, c, d, e, f] = b;
        let slot = 1 + u64::from(a % 3);
        let from = nodes[1 + usize::from(c % 3)];
        let ballot = |n: u8, x: u8| Ballot { counter: u32::from(n % 5), value: value(x) };
        now += u64::from(f) * 10;
        let pledges = match op % 7 {
            0 => {
                scp.nominate(slot, value(d), value(0), now);
                None
            }
            1 => Some(Pledges::Nominate { quorum_set_hash: qset_hash, votes: values_of(d), accepted: values_of(e) }),
            2 => Some(Pledges::Prepare {
                quorum_set_hash: qset_hash,
                ballot: ballot(d, e),
                prepared: (f % 2 == 0).then(|| ballot(d.wrapping_sub(f % 3), e >> 3)),
                prepared_prime: (f % 5 == 0).then(|| ballot(d.wrapping_sub(2), e >> 5)),
                n_c: u32::from(f % 3),
                n_h: u32::from(d % 5),
            }),
            3 => Some(Pledges::Confirm {
                ballot: ballot(d, e),
                n_prepared: u32::from(f % 5),
                n_commit: u32::from(f % 3),
                n_h: u32::from(d % 5),
                quorum_set_hash: qset_hash,
            }),
            4 => Some(Pledges::Externalize {
                commit: ballot(d, e),
                n_h: u32::from(f % 5),
                commit_quorum_set_hash: qset_hash,
            }),
            5 => {
                let kind = if d % 2 == 0 { TimerKind::Nomination } else { TimerKind::Ballot };
                if let Some(token) = timers.remove(&(slot, kind)) {
                    scp.timer_fired(slot, kind, token, now);
                }
                None
            }
            _ => {
                // A statement for a slot long gone or far ahead.
                let far = if d % 2 == 0 { 0 } else { 1_000_000 };
                let _ = scp.receive_envelope(
                    &Envelope {
                        statement: Statement {
                            node_id: from,
                            slot_index: far,
                            pledges: Pledges::Externalize {
                                commit: ballot(d, e),
                                n_h: 1,
                                commit_quorum_set_hash: qset_hash,
                            },
                        },
                        signature: Signature::ZERO,
                    },
                    now,
                );
                None
            }
        };
        if let Some(pledges) = pledges {
            let _ = scp.receive_envelope(
                &Envelope {
                    statement: Statement { node_id: from, slot_index: slot, pledges },
                    signature: Signature::ZERO,
                },
                now,
            );
        }
        for effect in scp.take_effects() {
            match effect {
                Effect::ArmTimer { slot, kind, token, .. } => {
                    timers.insert((slot, kind), token);
                }
                Effect::CancelTimer { slot, kind } => {
                    timers.remove(&(slot, kind));
                }
                Effect::Externalized { slot, value } => {
                    let first = externalized.entry(slot).or_insert_with(|| value.clone());
                    assert_eq!(*first, value, "slot {slot} externalized two values");
                }
                Effect::Broadcast(env) => {
                    let slot = env.statement.slot_index;
                    let locked = match &env.statement.pledges {
                        Pledges::Confirm { ballot, .. } => Some(ballot.value.clone()),
                        Pledges::Externalize { commit, .. } => Some(commit.value.clone()),
                        _ => None,
                    };
                    if let Some(v) = locked {
                        let first = committed.entry(slot).or_insert_with(|| v.clone());
                        assert_eq!(*first, v, "slot {slot}: the local node accepted commits for two values");
                    }
                }
            }
        }
        if let Err(e) = scp.check_invariants() {
            panic!("SCP invariant broken: {e}");
        }
    }
}

/// All targets by name (the `cargo fuzz` binaries and the stable pass use these).
/// A fuzz target: bytes in, a panic on a broken property.
pub type Target = fn(&[u8]);

pub const TARGETS: &[(&str, Target)] = &[
    ("decoders", decoders),
    ("text", text),
    ("light_client", light_client),
    ("storage_proofs", storage_proofs),
    ("apply", apply),
    ("scp_envelopes", scp_envelopes),
];

#[cfg(test)]
mod tests {
    use super::*;

    use crate::crypto::splitmix::SplitMix64;

    /// Valid inputs of every kind, so mutations reach deep into the decoders.
    fn seeds() -> Vec<Vec<u8>> {
        use crate::wire::*;
        let (genesis, _) = anchor();
        let mut out = vec![
            encode(&Request::GetLatest),
            encode(&Request::GetHeaders { from: 3, count: 9 }),
            encode(&Request::Hello { network_id: genesis.network_id(), client_version: 1 }),
            encode(&crate::ledger::TxSet { prev_header_hash: Hash256([1; 32]), txs: Default::default() }),
            encode(&crate::ledger::LedgerState::from_genesis(&genesis).header),
            encode(&ExternalizeProof {
                slot: 2,
                value: crate::scp::Value(Default::default()),
                commits: Default::default(),
            }),
            crate::address::encode_strkey(crate::address::KeyKind::Account, &[7; 32]).into_bytes(),
            b"12.5 WATT".to_vec(),
            vec![0u8; 64],
        ];
        if let Ok(m) = crate::mnemonic::Mnemonic::from_entropy(&[3; 32]) {
            out.push(m.phrase().as_bytes().to_vec());
        }
        out
    }

    #[test]
    fn every_fuzz_target_survives_a_bounded_pass() {
        let seeds = seeds();
        // WATT_FUZZ_CASES raises the count; the default keeps the suite quick.
        let cases: u64 = std::env::var("WATT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000);
        let mut rng = SplitMix64::new(0x5eed);
        for (name, target) in TARGETS {
            for _ in 0..cases {
                let mut input = if rng.next_u64() % 4 == 0 {
                    (0..rng.next_u64() % 300).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
                } else {
                    seeds[(rng.next_u64() % seeds.len() as u64) as usize].clone()
                };
                // A few byte flips, truncations or insertions.
                for _ in 0..rng.next_u64() % 4 {
                    let r = rng.next_u64();
                    match r % 3 {
                        0 if !input.is_empty() => {
                            let i = (r >> 8) as usize % input.len();
                            input[i] ^= (r >> 40) as u8 | 1;
                        }
                        1 if !input.is_empty() => input.truncate((r >> 8) as usize % input.len()),
                        _ => input.insert((r >> 8) as usize % (input.len() + 1), (r >> 40) as u8),
                    }
                }
                let caught = std::panic::catch_unwind(|| target(&input));
                assert!(caught.is_ok(), "fuzz target {name} panicked on {}", crate::hex::encode(&input));
            }
        }
        // The unmutated seeds decode (so the pass is not only error paths).
        assert!(seeds.iter().any(|s| decode::<crate::wire::Request>(s).is_ok()));
    }

    /// The committed corpus (`fuzz/seeds/TARGET`, what libFuzzer found
    /// and `scripts/fuzz.sh --minimize` kept), replayed through its target:
    /// whatever once reached deep still passes.
    #[test]
    fn the_committed_fuzz_corpus_replays_cleanly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e} (every target has seeds)", dir.display()));
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                let input = std::fs::read(&path).expect("a seed file");
                let caught = std::panic::catch_unwind(|| target(&input));
                assert!(caught.is_ok(), "fuzz target {name} panicked on {}", path.display());
                replayed += 1;
            }
        }
        assert!(replayed >= TARGETS.len() * 10, "only {replayed} seeds");
    }
}
