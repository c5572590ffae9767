use super::graph::*;
use super::proof::*;
use super::seal::*;
use crate::crypto::Hash256;
use crate::merkle;
use std::collections::HashMap;

const MIB: u64 = 1 << 20;
/// SPEC §6 defaults for the chain and its reveal.
const STEPS: u64 = 4096;
const SAMPLES: usize = 160;
const SEAL_CHALLENGES: usize = 40;

fn shape() -> SectorShape {
    SectorShape { sector_bytes: MIB, layers: 2 }
}

fn owner(b: u8) -> [u8; 32] {
    [b; 32]
}

struct Sealed {
    graph: StackedGraph,
    store: MemorySealStore,
    replica_id: Hash256,
    comms: SealCommitments,
}

fn seal_sector(owner_byte: u8, number: u64, ticket_rand: u8) -> Sealed {
    let graph = StackedGraph::new(shape()).unwrap();
    let replica_id = replica_id(&owner(owner_byte), number, &ticket(&Hash256([ticket_rand; 32])));
    let mut store = MemorySealStore::default();
    let mut sealer = Sealer::resume(graph.clone(), replica_id, &store).unwrap();
    while !sealer.step(&mut store, u64::MAX).unwrap().done {}
    let comms = commitments(&store, &graph).unwrap();
    Sealed { graph, store, replica_id, comms }
}

fn sector_of(s: &Sealed) -> SealedSector {
    SealedSector {
        shape: shape(),
        replica_id: s.replica_id,
        comm_d: s.comms.comm_d,
        comm_c: s.comms.comm_c,
        comm_r_last: s.comms.comm_r_last,
        comm_r: s.comms.comm_r,
    }
}

fn seed() -> Hash256 {
    seal_seed(&Hash256([9; 32]))
}

#[test]
fn a_sealed_sectors_proof_verifies_and_binds_replica_owner_and_ticket() {
    let s = seal_sector(1, 7, 3);
    let proof = prove_seal(&s.store, &s.graph, &s.replica_id, &seed(), SEAL_CHALLENGES).unwrap();
    verify_seal(&sector_of(&s), &seed(), SEAL_CHALLENGES, &proof).unwrap();
    assert!(crate::codec::encode(&proof).len() > 100_000, "openings of 40 nodes with 15 columns each");

    // Another owner, another sector number or a stale ticket is another replica id.
    for other in [
        replica_id(&owner(2), 7, &ticket(&Hash256([3; 32]))),
        replica_id(&owner(1), 8, &ticket(&Hash256([3; 32]))),
        replica_id(&owner(1), 7, &ticket(&Hash256([4; 32]))),
    ] {
        let mut claimed = sector_of(&s);
        claimed.replica_id = other;
        assert!(verify_seal(&claimed, &seed(), SEAL_CHALLENGES, &proof).is_err());
    }
    // Commitments must hang together, and a seed is not interchangeable.
    let mut wrong = sector_of(&s);
    wrong.comm_r = Hash256([1; 32]);
    assert_eq!(verify_seal(&wrong, &seed(), SEAL_CHALLENGES, &proof), Err(ProofError::CommR));
    assert!(verify_seal(&sector_of(&s), &seal_seed(&Hash256([8; 32])), SEAL_CHALLENGES, &proof).is_err());
    assert!(matches!(verify_seal(&sector_of(&s), &seed(), SEAL_CHALLENGES - 1, &proof), Err(ProofError::Count { .. })));
}

#[test]
fn flipping_any_byte_of_an_opened_replica_node_fails_the_seal_proof() {
    let s = seal_sector(1, 7, 3);
    let n = s.graph.nodes();
    let c = seal_challenge(&seed(), &s.replica_id, 0, n);
    let mut parents = Vec::new();
    s.graph.base_parents(c, &mut parents);
    // Every byte of the challenged node's replica leaf, and a byte of each
    // parent's label in each layer.
    let mut targets: Vec<(u32, u64, usize)> = (0..32).map(|b| (2, c, b)).collect();
    for &p in parents.iter().chain(s.graph.exp_parents(c).iter()) {
        targets.push((1, p, 5));
        targets.push((2, p, 17));
    }
    for (layer, node, byte) in targets {
        let mut store = s.store.clone();
        store.layers.get_mut(&layer).unwrap()[node as usize].0[byte] ^= 0x01;
        let proof = prove_seal(&store, &s.graph, &s.replica_id, &seed(), SEAL_CHALLENGES).unwrap();
        assert!(
            verify_seal(&sector_of(&s), &seed(), SEAL_CHALLENGES, &proof).is_err(),
            "layer {layer} node {node} byte {byte}"
        );
    }
}

#[test]
fn empty_proofs_prove_nothing() {
    // Regression (cargo fuzz, storage_proofs): zero challenges used to verify.
    let s = seal_sector(1, 7, 3);
    let empty = SealProof { openings: Default::default() };
    assert!(verify_seal(&sector_of(&s), &seed(), 0, &empty).is_err());
    let ss = sectors(&[&s], &[7]);
    let nothing = PostReveal { steps: Default::default() };
    assert!(verify_post(
        &post_beacon(&Hash256([1; 32])),
        &owner(1),
        &ss,
        STEPS,
        &Hash256::ZERO,
        &Hash256::ZERO,
        0,
        &nothing
    )
    .is_err());
}

#[test]
fn tampered_proofs_are_refused() {
    let s = seal_sector(1, 7, 3);
    let proof = prove_seal(&s.store, &s.graph, &s.replica_id, &seed(), SEAL_CHALLENGES).unwrap();
    let mut bad = proof.clone();
    let mut openings = bad.openings.into_vec();
    let mut labels = openings[3].node.labels.to_vec();
    labels[0].0[0] ^= 1;
    openings[3].node.labels = labels.try_into().unwrap();
    bad.openings = openings.try_into().unwrap();
    assert_eq!(verify_seal(&sector_of(&s), &seed(), SEAL_CHALLENGES, &bad), Err(ProofError::Column(3)));
    // A column opened for another node.
    let mut swapped = proof.clone();
    let mut openings = swapped.openings.into_vec();
    openings.swap(0, 1);
    swapped.openings = openings.try_into().unwrap();
    assert!(matches!(verify_seal(&sector_of(&s), &seed(), SEAL_CHALLENGES, &swapped), Err(ProofError::WrongNode(_))));
}

#[test]
fn an_interrupted_seal_resumes_to_the_same_commitments() {
    let reference = seal_sector(1, 7, 3);
    let graph = StackedGraph::new(shape()).unwrap();
    let mut store = MemorySealStore::default();
    let mut slices = 0;
    loop {
        // A new Sealer each slice: all state comes back from the store, as after kill -9.
        let mut sealer = Sealer::resume(graph.clone(), reference.replica_id, &store).unwrap();
        let p = sealer.step(&mut store, 5_000).unwrap();
        slices += 1;
        assert!(p.labels_done <= p.labels_total);
        if p.done {
            break;
        }
    }
    assert_eq!(slices, (2 * graph.nodes()).div_ceil(5_000));
    assert_eq!(commitments(&store, &graph).unwrap(), reference.comms);
    // Labels written past the last checkpoint (a kill between the two) are redone, not trusted.
    let mut torn = MemorySealStore::default();
    let mut sealer = Sealer::resume(graph.clone(), reference.replica_id, &torn).unwrap();
    sealer.step(&mut torn, 10_000).unwrap();
    torn.write_labels(1, 10_000, &[Hash256([0xEE; 32]); 100]).unwrap();
    let mut sealer = Sealer::resume(graph.clone(), reference.replica_id, &torn).unwrap();
    while !sealer.step(&mut torn, u64::MAX).unwrap().done {}
    assert_eq!(commitments(&torn, &graph).unwrap(), reference.comms);
    // Another sector's checkpoint is not resumed.
    assert!(matches!(Sealer::resume(graph, Hash256([1; 32]), &torn), Err(SealError::CheckpointMismatch)));
}

#[test]
fn file_store_seals_resumably_on_disk() {
    let dir = std::env::temp_dir().join(format!("watt-seal-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reference = seal_sector(1, 7, 3);
    let graph = StackedGraph::new(shape()).unwrap();
    {
        let mut store = FileSealStore::open(&dir).unwrap();
        let mut sealer = Sealer::resume(graph.clone(), reference.replica_id, &store).unwrap();
        sealer.step(&mut store, 40_000).unwrap();
    }
    let mut store = FileSealStore::open(&dir).unwrap();
    let cp = store.checkpoint().unwrap().unwrap();
    assert_eq!((cp.layer, cp.next_node), (2, 40_000 - graph.nodes()));
    let mut sealer = Sealer::resume(graph.clone(), reference.replica_id, &store).unwrap();
    while !sealer.step(&mut store, 7_000).unwrap().done {}
    assert_eq!(commitments(&store, &graph).unwrap(), reference.comms);
    let _ = std::fs::remove_dir_all(&dir);
}

fn sectors(list: &[&Sealed], numbers: &[u64]) -> Vec<ProvenSector> {
    list.iter()
        .zip(numbers)
        .map(|(s, &n)| ProvenSector { sector_number: n, sector_bytes: MIB, comm_r_last: s.comms.comm_r_last })
        .collect()
}

fn replica_paths<'a>(list: &'a [&Sealed]) -> impl FnMut(usize, u64) -> Result<crate::ledger::MerklePath, ()> + 'a {
    let trees: Vec<Vec<Vec<Hash256>>> =
        list.iter().map(|s| merkle::levels(&replica_leaves(&s.store, &s.graph).unwrap())).collect();
    move |k, node| Ok(merkle::path(&trees[k], node))
}

#[test]
fn post_chain_over_several_sectors_verifies_and_a_half_deleted_replica_does_not() {
    let (a, b) = (seal_sector(1, 1, 3), seal_sector(1, 2, 3));
    let list = [&a, &b];
    let ss = sectors(&list, &[1, 2]);
    let prover = owner(1);
    let beacon = post_beacon(&Hash256([5; 32]));
    let samples = samples_seed(&Hash256([6; 32]));
    let replicas: Vec<Vec<Hash256>> = list.iter().map(|s| replica_leaves(&s.store, &s.graph).unwrap()).collect();
    let chain =
        PostChain::walk::<()>(&beacon, &prover, &ss, STEPS, |k, node| Ok(replicas[k][node as usize])).unwrap().unwrap();
    // Both sectors are hit, in proportion to their size.
    let hits_a = chain.cs[..STEPS as usize].iter().filter(|c| locate(&ss, c).unwrap().0 == 0).count();
    assert!((1700..2400).contains(&hits_a), "{hits_a} of {STEPS} steps in sector 1");
    let root = chain.root();
    let reveal = chain.reveal(&samples, SAMPLES, &ss, replica_paths(&list)).unwrap();
    verify_post(&beacon, &prover, &ss, STEPS, &root, &samples, SAMPLES, &reveal).unwrap();
    assert!(crate::codec::encode(&reveal).len() < 400_000);
    // Another period's beacon, other sectors or another committed root do not verify.
    assert!(
        verify_post(&post_beacon(&Hash256([7; 32])), &prover, &ss, STEPS, &root, &samples, SAMPLES, &reveal).is_err()
    );
    let c = seal_sector(2, 1, 3);
    assert!(verify_post(&beacon, &owner(2), &sectors(&[&c, &b], &[1, 2]), STEPS, &root, &samples, SAMPLES, &reveal)
        .is_err());
    assert!(verify_post(&beacon, &prover, &ss, STEPS, &Hash256([1; 32]), &samples, SAMPLES, &reveal).is_err());

    // Replaying last period's chain behind a correct first step: every
    // sampled step after the seam fails, because each step hashes the beacon.
    let old_beacon = post_beacon(&Hash256([4; 32]));
    let old = PostChain::walk::<()>(&old_beacon, &prover, &ss, STEPS, |k, node| Ok(replicas[k][node as usize]))
        .unwrap()
        .unwrap();
    let mut spliced = old.clone();
    spliced.cs[0] = chain.cs[0];
    spliced.cs[1] = chain.cs[1];
    spliced.leaves[0] = chain.leaves[0];
    let spliced_reveal = spliced.reveal(&samples, SAMPLES, &ss, replica_paths(&list)).unwrap();
    assert!(verify_post(&beacon, &prover, &ss, STEPS, &spliced.root(), &samples, SAMPLES, &spliced_reveal).is_err());

    // Deleting half of sector 1's replica: the prover fills the holes with
    // zeros and commits; the reveal at default samples fails.
    let kept = |node: u64| node % 2 == 0;
    let lossy = PostChain::walk::<()>(&beacon, &prover, &ss, STEPS, |k, node| {
        Ok(if k == 0 && !kept(node) { Hash256::ZERO } else { replicas[k][node as usize] })
    })
    .unwrap()
    .unwrap();
    let lossy_reveal = lossy.reveal(&samples, SAMPLES, &ss, replica_paths(&list)).unwrap();
    assert!(verify_post(&beacon, &prover, &ss, STEPS, &lossy.root(), &samples, SAMPLES, &lossy_reveal).is_err());
    assert!(detection_probability(0.25, SAMPLES) > 0.999_999);
}

/// The previous step is opened beside its own: only the hashes below the
/// level where the two paths meet are sent, and every byte of them counts.
#[test]
fn a_reveal_proves_each_previous_step_with_its_neighbours_path_and_refuses_any_change_to_it() {
    let a = seal_sector(1, 1, 3);
    let list = [&a];
    let ss = sectors(&list, &[1]);
    let prover = owner(1);
    let beacon = post_beacon(&Hash256([5; 32]));
    let samples = samples_seed(&Hash256([6; 32]));
    let replica = replica_leaves(&a.store, &a.graph).unwrap();
    let chain =
        PostChain::walk::<()>(&beacon, &prover, &ss, STEPS, |_, node| Ok(replica[node as usize])).unwrap().unwrap();
    let root = chain.root();
    let reveal = chain.reveal(&samples, SAMPLES, &ss, replica_paths(&list)).unwrap();
    let verify = |r: &PostReveal| verify_post(&beacon, &prover, &ss, STEPS, &root, &samples, SAMPLES, r);
    verify(&reveal).unwrap();
    // One chain path (12 hashes) and about one more hash per sample, not two
    // whole paths: 1 MiB sectors (15-hash replica paths) stay under 1,100 B a sample.
    let bytes = crate::codec::encode(&reveal).len();
    assert!(bytes < SAMPLES * 1_100, "{bytes} bytes for {SAMPLES} samples");
    let extra: usize = reveal.steps.iter().map(|o| o.prev_below.len()).sum();
    assert!(extra < SAMPLES * 3, "{extra} hashes below the meeting levels");

    let k = reveal.steps.iter().position(|o| !o.prev_below.is_empty()).expect("some j-1 is even");
    let tampered = |f: &dyn Fn(&mut PostStepOpening)| {
        let mut r = reveal.clone();
        f(&mut r.steps.as_mut_slice()[k]);
        r
    };
    let cases: [(&str, PostReveal); 6] = [
        ("a flipped hash below", tampered(&|o| o.prev_below.as_mut_slice()[0].0[0] ^= 1)),
        (
            "a hash too many",
            tampered(&|o| {
                let mut v = o.prev_below.to_vec();
                v.push(Hash256::ZERO);
                o.prev_below = crate::codec::BoundedVec::from_iter_capped(v);
            }),
        ),
        (
            "a hash too few",
            tampered(&|o| {
                let v = o.prev_below.to_vec();
                o.prev_below = crate::codec::BoundedVec::from_iter_capped(v[1..].to_vec());
            }),
        ),
        ("another previous leaf", tampered(&|o| o.leaf_prev = Some(Hash256([3; 32])))),
        ("no previous leaf", tampered(&|o| o.leaf_prev = None)),
        (
            "another meeting sibling",
            tampered(&|o| {
                let t = levels_apart(sample_step(&samples, k as u64, STEPS));
                o.step_path.siblings.as_mut_slice()[t].0[0] ^= 1;
            }),
        ),
    ];
    for (what, r) in &cases {
        assert!(verify(r).is_err(), "{what} was accepted");
    }
    // Step 1 has no previous step: carrying one is refused, not ignored.
    let one = PostChain::walk::<()>(&beacon, &prover, &ss, 1, |_, node| Ok(replica[node as usize])).unwrap().unwrap();
    let mut first = one.reveal(&samples, 2, &ss, replica_paths(&list)).unwrap();
    let verify_one = |r: &PostReveal| verify_post(&beacon, &prover, &ss, 1, &one.root(), &samples, 2, r);
    verify_one(&first).unwrap();
    first.steps.as_mut_slice()[0].leaf_prev = Some(Hash256::ZERO);
    assert!(verify_one(&first).is_err(), "a previous leaf for step 1 was accepted");
    // j-1 = m·2^t, m odd: t levels apart.
    assert_eq!([1, 2, 3, 5, 9, 4097].map(levels_apart), [0, 0, 1, 2, 3, 12]);
}

/// A prover that deleted its replica and recomputes labels on demand,
/// remembering what it computed this period, counting every label.
struct Regenerator<'a> {
    graph: &'a StackedGraph,
    replica_id: Hash256,
    memo: HashMap<(u32, u64), Hash256>,
    computed: u64,
}

impl Regenerator<'_> {
    fn label(&mut self, layer: u32, node: u64) -> Hash256 {
        // Iterative depth-first evaluation: a label needs its base parents in
        // its layer and expander parents in the layer below.
        let mut stack = vec![(layer, node)];
        let mut parents = Vec::new();
        while let Some(&(l, i)) = stack.last() {
            if self.memo.contains_key(&(l, i)) {
                stack.pop();
                continue;
            }
            self.graph.base_parents(i, &mut parents);
            let mut missing: Vec<(u32, u64)> =
                parents.iter().map(|&p| (l, p)).filter(|k| !self.memo.contains_key(k)).collect();
            if l > 1 {
                missing.extend(
                    self.graph.exp_parents(i).iter().map(|&p| (l - 1, p)).filter(|k| !self.memo.contains_key(k)),
                );
            }
            if missing.is_empty() {
                let base: Vec<Hash256> = parents.iter().map(|&p| self.memo[&(l, p)]).collect();
                let exp: Vec<Hash256> = if l > 1 {
                    self.graph.exp_parents(i).iter().map(|&p| self.memo[&(l - 1, p)]).collect()
                } else {
                    Vec::new()
                };
                self.memo.insert((l, i), label(&self.replica_id, l, i, &base, &exp));
                self.computed += 1;
                stack.pop();
            } else {
                stack.extend(missing);
            }
        }
        self.memo[&(layer, node)]
    }
}

#[test]
fn regenerating_a_deleted_replica_on_demand_costs_nearly_a_full_reseal_per_period() {
    let s = seal_sector(1, 7, 3);
    let ss = sectors(&[&s], &[7]);
    let full_reseal = s.graph.nodes() * u64::from(shape().layers);
    for period in 0..2u8 {
        let mut cheat = Regenerator { graph: &s.graph, replica_id: s.replica_id, memo: HashMap::new(), computed: 0 };
        let beacon = post_beacon(&Hash256([period; 32]));
        let chain =
            PostChain::walk::<()>(&beacon, &owner(1), &ss, STEPS, |_, node| Ok(cheat.label(2, node))).unwrap().unwrap();
        // The cheat's chain is the honest one (so it would pass)...
        let honest = replica_leaves(&s.store, &s.graph).unwrap();
        assert!(chain
            .leaves
            .iter()
            .zip(&chain.cs)
            .all(|(leaf, c)| *leaf == honest[locate(&ss, c).unwrap().1 as usize]));
        // ...and it paid for nearly every label of a full re-seal.
        let ratio = cheat.computed as f64 / full_reseal as f64;
        assert!(ratio >= 0.9, "period {period}: {} of {full_reseal} labels ({ratio:.3})", cheat.computed);
    }
}
