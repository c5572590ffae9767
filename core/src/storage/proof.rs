//! Storage proofs (SPEC §6): the seal proof that opens `seal_challenges`
//! nodes of a sealed sector, and the sequential PoSt chain over all of a
//! prover's sectors with its sampled reveal. Provers and verifiers are pure
//! functions over labels, leaves and commitments.

use super::graph::{hash_u64, SectorShape, StackedGraph, NODE_BYTES};
use super::seal::{column_hash, comm_r, label, parent_labels, zero_root, SealStore};
use crate::codec::BoundedVec;
use crate::crypto::Hash256;
use crate::ledger::MerklePath;
use crate::merkle;
use serde::{Deserialize, Serialize};

/// Most layers a column may carry.
pub const MAX_LAYERS: usize = 64;
/// Most seal challenges a proof may carry.
pub const MAX_SEAL_CHALLENGES: usize = 256;
/// Most PoSt samples a reveal may carry.
pub const MAX_POST_SAMPLES: usize = 1024;

fn h(parts: &[&[u8]]) -> Hash256 {
    let mut hasher = blake3::Hasher::new();
    for p in parts {
        hasher.update(p);
    }
    Hash256(*hasher.finalize().as_bytes())
}

/// `ticket = H("ticket" ‖ rand)`, `seal seed = H("seal" ‖ rand)`,
/// `beacon = H("post" ‖ rand)`, `samples seed = H("samples" ‖ rand)`, each
/// from the `rand` of the ledger SPEC §6 names.
pub fn ticket(rand: &Hash256) -> Hash256 {
    h(&[b"ticket", &rand.0])
}
pub fn seal_seed(rand: &Hash256) -> Hash256 {
    h(&[b"seal", &rand.0])
}
pub fn post_beacon(rand: &Hash256) -> Hash256 {
    h(&[b"post", &rand.0])
}
pub fn samples_seed(rand: &Hash256) -> Hash256 {
    h(&[b"samples", &rand.0])
}

/// Challenged node `j` of a seal proof: `H(seed ‖ replica_id ‖ j) mod n`.
pub fn seal_challenge(seed: &Hash256, replica_id: &Hash256, j: u64, nodes: u64) -> u64 {
    hash_u64(&h(&[&seed.0, &replica_id.0, &j.to_le_bytes()]).0) % nodes
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("{0}")]
    Shape(String),
    #[error("comm_r is not H(comm_c ‖ comm_r_last)")]
    CommR,
    #[error("the proof has {got} openings, {want} expected")]
    Count { got: usize, want: usize },
    #[error("opening {0} is for the wrong node or parents")]
    WrongNode(usize),
    #[error("a column of opening {0} does not match comm_c")]
    Column(usize),
    #[error("the label of layer {layer} in opening {opening} does not follow from its parents")]
    Label { opening: usize, layer: u32 },
    #[error("the replica leaf of opening {0} does not match comm_r_last or its label")]
    ReplicaLeaf(usize),
    #[error("the data leaf of opening {0} does not match comm_d")]
    DataLeaf(usize),
    #[error("PoSt step {0} does not verify")]
    PostStep(u64),
    #[error("the prover has no active sectors")]
    NoSectors,
}

/// One node's labels in every layer, opened against `comm_c`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnOpening {
    pub labels: BoundedVec<Hash256, MAX_LAYERS>,
    pub path: MerklePath,
}

/// One challenged node with its parents' columns and its leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeOpening {
    pub node: ColumnOpening,
    pub base: BoundedVec<ColumnOpening, 6>,
    pub exp: BoundedVec<ColumnOpening, 8>,
    pub replica_path: MerklePath,
    pub data_path: MerklePath,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealProof {
    pub openings: BoundedVec<ChallengeOpening, MAX_SEAL_CHALLENGES>,
}

impl crate::codec::Wire for SealProof {
    const MAX_ENCODED_LEN: usize = 8 * 1024 * 1024;
}

/// What a verifier knows of a sector before the proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedSector {
    pub shape: SectorShape,
    pub replica_id: Hash256,
    pub comm_d: Hash256,
    pub comm_c: Hash256,
    pub comm_r_last: Hash256,
    pub comm_r: Hash256,
}

fn depth(nodes: u64) -> usize {
    nodes.trailing_zeros() as usize
}

/// The path of leaf `index` in a tree of `nodes` zero leaves (no tree built).
pub fn zero_path(index: u64, nodes: u64) -> MerklePath {
    let mut siblings = Vec::with_capacity(depth(nodes));
    let mut h = merkle::leaf_hash(&Hash256::ZERO);
    for _ in 0..depth(nodes) {
        siblings.push(h);
        h = merkle::node_hash(&h, &h);
    }
    // depth(nodes) is the trailing zeros of a u64: at most 64.
    MerklePath { index, siblings: BoundedVec::from_iter_capped(siblings) }
}

/// Opens `challenges` nodes of a sealed sector (all its layers in `store`).
/// Memory: the column tree and the replica tree (about 4 × sector), not the layers.
pub fn prove_seal(
    store: &dyn SealStore,
    graph: &StackedGraph,
    replica_id: &Hash256,
    seed: &Hash256,
    challenges: usize,
) -> Result<SealProof, super::seal::SealError> {
    let n = graph.nodes();
    let layers = graph.shape().layers;
    let comm_c_tree = merkle::levels(&super::seal::column_hashes(store, graph)?);
    let replica_tree = merkle::levels(&super::seal::replica_leaves(store, graph)?);
    let column = |i: u64| -> Result<ColumnOpening, super::seal::SealError> {
        let mut labels = Vec::with_capacity(layers as usize);
        for l in 1..=layers {
            let v = store.read_labels(l, i, 1)?;
            labels.push(*v.first().ok_or(super::seal::SealError::Truncated { layer: l, have: i, want: i + 1 })?);
        }
        Ok(ColumnOpening { labels: bounded(labels, "layers")?, path: merkle::path(&comm_c_tree, i) })
    };
    let mut parents = Vec::new();
    let mut openings = Vec::with_capacity(challenges);
    for j in 0..challenges as u64 {
        let c = seal_challenge(seed, replica_id, j, n);
        graph.base_parents(c, &mut parents);
        openings.push(ChallengeOpening {
            node: column(c)?,
            base: bounded(parents.iter().map(|&p| column(p)).collect::<Result<Vec<_>, _>>()?, "base parents")?,
            exp: bounded(
                graph.exp_parents(c).iter().map(|&p| column(p)).collect::<Result<Vec<_>, _>>()?,
                "expander parents",
            )?,
            replica_path: merkle::path(&replica_tree, c),
            data_path: zero_path(c, n),
        });
    }
    Ok(SealProof { openings: bounded(openings, "seal challenges")? })
}

/// A list that must fit its proof field; more is a shape error, never a cut.
fn bounded<T, const N: usize>(items: Vec<T>, what: &str) -> Result<BoundedVec<T, N>, super::seal::SealError> {
    BoundedVec::try_from_vec(items).map_err(|e| super::seal::SealError::Shape(format!("too many {what}: {e}")))
}

fn check_path(data: &Hash256, path: &MerklePath, index: u64, nodes: u64, root: &Hash256) -> bool {
    path.index == index && path.siblings.len() == depth(nodes) && merkle::root_from_path(data, path) == *root
}

/// Checks a seal proof: every opened column against `comm_c`, every label
/// of each challenged node recomputed from its parents, the replica leaf
/// against `comm_r_last` and the data leaf (zeros) against `comm_d`.
pub fn verify_seal(
    sector: &SealedSector,
    seed: &Hash256,
    challenges: usize,
    proof: &SealProof,
) -> Result<(), ProofError> {
    let graph = StackedGraph::new(sector.shape).map_err(ProofError::Shape)?;
    let n = graph.nodes();
    let layers = sector.shape.layers as usize;
    if comm_r(&sector.comm_c, &sector.comm_r_last) != sector.comm_r {
        return Err(ProofError::CommR);
    }
    // A proof of nothing proves nothing (found by fuzzing).
    if challenges == 0 {
        return Err(ProofError::Shape("a seal proof needs at least one challenge".into()));
    }
    if proof.openings.len() != challenges {
        return Err(ProofError::Count { got: proof.openings.len(), want: challenges });
    }
    let mut parents = Vec::new();
    let (mut scratch, mut base, mut exp) = (Vec::new(), Vec::new(), Vec::new());
    for (k, o) in proof.openings.iter().enumerate() {
        let c = seal_challenge(seed, &sector.replica_id, k as u64, n);
        graph.base_parents(c, &mut parents);
        let exp_parents = graph.exp_parents(c);
        if o.node.path.index != c
            || o.base.len() != parents.len()
            || o.exp.len() != exp_parents.len()
            || o.base.iter().zip(&parents).any(|(col, &p)| col.path.index != p)
            || o.exp.iter().zip(&exp_parents).any(|(col, &p)| col.path.index != p)
        {
            return Err(ProofError::WrongNode(k));
        }
        for col in std::iter::once(&o.node).chain(o.base.iter()).chain(o.exp.iter()) {
            if col.labels.len() != layers
                || !check_path(&column_hash(&col.labels), &col.path, col.path.index, n, &sector.comm_c)
            {
                return Err(ProofError::Column(k));
            }
        }
        // Every label of the node, from its parents' columns.
        let base_col = |p: u64| o.base.iter().find(|col| col.path.index == p);
        let exp_col = |p: u64| o.exp.iter().find(|col| col.path.index == p);
        for l in 1..=layers as u32 {
            let li = l as usize - 1;
            parent_labels(
                &graph,
                l,
                c,
                |p| base_col(p).map_or(Hash256::ZERO, |col| col.labels[li]),
                |p| exp_col(p).map_or(Hash256::ZERO, |col| col.labels[li - 1]),
                &mut scratch,
                &mut base,
                &mut exp,
            );
            if label(&sector.replica_id, l, c, &base, &exp) != o.node.labels[li] {
                return Err(ProofError::Label { opening: k, layer: l });
            }
        }
        // Committed capacity: data is zero, so the replica leaf is the last label.
        let replica_leaf = o.node.labels[layers - 1];
        if !check_path(&replica_leaf, &o.replica_path, c, n, &sector.comm_r_last) {
            return Err(ProofError::ReplicaLeaf(k));
        }
        if !check_path(&Hash256::ZERO, &o.data_path, c, n, &sector.comm_d) || sector.comm_d != zero_root(n) {
            return Err(ProofError::DataLeaf(k));
        }
    }
    Ok(())
}

// ----- PoSt -----

/// One of a prover's active sectors as the chain sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvenSector {
    pub sector_number: u64,
    pub sector_bytes: u64,
    pub comm_r_last: Hash256,
}

/// Where offset `c mod total_bytes` falls: (index into `sectors`, node).
/// Sectors are concatenated in `sector_number` order.
pub fn locate(sectors: &[ProvenSector], c: &Hash256) -> Option<(usize, u64)> {
    let total: u64 = sectors.iter().map(|s| s.sector_bytes).sum();
    if total == 0 {
        return None;
    }
    let mut offset = hash_u64(&c.0) % total;
    for (k, s) in sectors.iter().enumerate() {
        if offset < s.sector_bytes {
            return Some((k, offset / NODE_BYTES));
        }
        offset -= s.sector_bytes;
    }
    None
}

/// `c_0 = H(beacon ‖ prover)`.
pub fn chain_start(beacon: &Hash256, prover: &[u8; 32]) -> Hash256 {
    h(&[&beacon.0, prover])
}

/// `c_j = H(c_{j-1} ‖ leaf ‖ j ‖ beacon)`. SPEC §6 writes
/// `H(c_{j-1} ‖ leaf ‖ j)`; the beacon is added so every step is bound to
/// its period. Without it a sampled step only checks its neighbour, and a
/// prover could replay last period's chain behind a fresh first step and
/// be caught only when the seam is sampled (~4% a period at defaults).
pub fn chain_next(prev: &Hash256, leaf: &Hash256, j: u64, beacon: &Hash256) -> Hash256 {
    h(&[&prev.0, &leaf.0, &j.to_le_bytes(), &beacon.0])
}

/// The chain-root tree's leaf for step `j`: `H(c_j ‖ leaf_j)`.
pub fn step_leaf(c: &Hash256, leaf: &Hash256) -> Hash256 {
    h(&[&c.0, &leaf.0])
}

/// A walked chain: `c_0..=c_T` and `leaf_1..=leaf_T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostChain {
    pub cs: Vec<Hash256>,
    pub leaves: Vec<Hash256>,
}

impl PostChain {
    /// Walks `steps` steps; `leaf_at(sector index, node)` reads the replica.
    /// Sequential by construction: step j's offset needs step j-1's hash.
    pub fn walk<E>(
        beacon: &Hash256,
        prover: &[u8; 32],
        sectors: &[ProvenSector],
        steps: u64,
        mut leaf_at: impl FnMut(usize, u64) -> Result<Hash256, E>,
    ) -> Result<Result<PostChain, ProofError>, E> {
        let mut cs = Vec::with_capacity(steps as usize + 1);
        let mut leaves = Vec::with_capacity(steps as usize);
        cs.push(chain_start(beacon, prover));
        for j in 1..=steps {
            let prev = cs[j as usize - 1];
            let Some((k, node)) = locate(sectors, &prev) else { return Ok(Err(ProofError::NoSectors)) };
            let leaf = leaf_at(k, node)?;
            leaves.push(leaf);
            cs.push(chain_next(&prev, &leaf, j, beacon));
        }
        Ok(Ok(PostChain { cs, leaves }))
    }

    fn tree(&self) -> Vec<Vec<Hash256>> {
        let items: Vec<Hash256> = self.cs[1..].iter().zip(&self.leaves).map(|(c, l)| step_leaf(c, l)).collect();
        merkle::levels(&items)
    }

    /// What `PostCommit` carries.
    pub fn root(&self) -> Hash256 {
        self.tree().last().and_then(|l| l.first()).copied().unwrap_or(Hash256::ZERO)
    }

    /// Opens the sampled steps; `replica_path(sector index, node)` gives the
    /// leaf's path under that sector's `comm_r_last`.
    pub fn reveal<E>(
        &self,
        samples_seed: &Hash256,
        samples: usize,
        sectors: &[ProvenSector],
        mut replica_path: impl FnMut(usize, u64) -> Result<MerklePath, E>,
    ) -> Result<PostReveal, E> {
        let steps = self.leaves.len() as u64;
        let tree = self.tree();
        let mut out = Vec::with_capacity(samples);
        for k in 0..samples as u64 {
            let j = sample_step(samples_seed, k, steps);
            let prev = self.cs[j as usize - 1];
            let (sector, node) = locate(sectors, &prev).unwrap_or((0, 0));
            out.push(PostStepOpening {
                c_prev: prev,
                leaf_prev: (j > 1).then(|| self.leaves[j as usize - 2]),
                // At most the tree's depth, itself at most 64 (`merkle::path`).
                prev_below: BoundedVec::from_iter_capped(if j > 1 {
                    merkle::path(&tree, j - 2).siblings.into_vec().into_iter().take(levels_apart(j)).collect()
                } else {
                    Vec::new()
                }),
                leaf: self.leaves[j as usize - 1],
                step_path: merkle::path(&tree, j - 1),
                replica_path: replica_path(sector, node)?,
            });
        }
        // `samples` is at most MAX_POST_SAMPLES (Params::validate; the prover's caller).
        Ok(PostReveal { steps: BoundedVec::from_iter_capped(out) })
    }
}

/// For step `j > 1`: how many levels of the chain tree lie below the one
/// where leaf `j-2` (step `j-1`) and leaf `j-1` (step `j`) have sibling
/// ancestors. `j-1 = m·2^t` with `m` odd makes `(j-2) >> t = m-1`, the left
/// sibling of `(j-1) >> t = m`: `t` is the trailing zeros of `j-1`.
/// Step 1 has no previous step: 0.
pub fn levels_apart(j: u64) -> usize {
    if j <= 1 {
        return 0;
    }
    (j - 1).trailing_zeros() as usize
}

/// Sampled step `k`: `1 + H(samples_seed ‖ k) mod T`.
pub fn sample_step(samples_seed: &Hash256, k: u64, steps: u64) -> u64 {
    1 + hash_u64(&h(&[&samples_seed.0, &k.to_le_bytes()]).0) % steps.max(1)
}

/// One opened chain step `j`: `c_{j-1}` (proven in the chain tree with the
/// previous step unless `j = 1`), the leaf, `c_j` implied, and the leaf's
/// path under its sector's `comm_r_last`.
///
/// Steps `j-1` and `j` are neighbouring leaves of the chain tree, so their
/// paths are the same above the level where they meet: the previous step
/// carries only its siblings below that level (`prev_below`, on average one
/// hash), and the rest is `step_path`. That halves the chain part of a
/// reveal, the bulk of what a phone uploads every day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostStepOpening {
    pub c_prev: Hash256,
    pub leaf_prev: Option<Hash256>,
    /// Leaf `j-2`'s siblings below the level where its ancestor and leaf
    /// `j-1`'s are siblings: exactly [`levels_apart`]`(j)` hashes, none for `j = 1`.
    pub prev_below: BoundedVec<Hash256, 64>,
    pub leaf: Hash256,
    pub step_path: MerklePath,
    pub replica_path: MerklePath,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostReveal {
    pub steps: BoundedVec<PostStepOpening, MAX_POST_SAMPLES>,
}

impl crate::codec::Wire for PostReveal {
    const MAX_ENCODED_LEN: usize = 4 * 1024 * 1024;
}

/// Checks a reveal against the committed `chain_root`: each sampled step's
/// hashes chain, its leaf sits where `c_{j-1}` points in the right sector's
/// replica, and both steps are in the committed chain.
#[allow(clippy::too_many_arguments)]
pub fn verify_post(
    beacon: &Hash256,
    prover: &[u8; 32],
    sectors: &[ProvenSector],
    steps: u64,
    chain_root: &Hash256,
    samples_seed: &Hash256,
    samples: usize,
    reveal: &PostReveal,
) -> Result<(), ProofError> {
    if sectors.is_empty() {
        return Err(ProofError::NoSectors);
    }
    if samples == 0 || steps == 0 {
        return Err(ProofError::Shape("a PoSt reveal needs at least one step and one sample".into()));
    }
    if reveal.steps.len() != samples {
        return Err(ProofError::Count { got: reveal.steps.len(), want: samples });
    }
    let width = steps.max(1).next_power_of_two();
    let chain_depth = width.trailing_zeros() as usize;
    for (k, o) in reveal.steps.iter().enumerate() {
        let j = sample_step(samples_seed, k as u64, steps);
        let bad = || ProofError::PostStep(j);
        let c_j = chain_next(&o.c_prev, &o.leaf, j, beacon);
        if o.step_path.index != j - 1
            || o.step_path.siblings.len() != chain_depth
            || merkle::root_from_path(&step_leaf(&c_j, &o.leaf), &o.step_path) != *chain_root
        {
            return Err(bad());
        }
        // c_{j-1} is in the committed chain: leaf j-2's subtree, computed
        // from its own siblings below the meeting level, is the sibling that
        // step j's verified path carries at that level.
        if j == 1 {
            if o.c_prev != chain_start(beacon, prover) || o.leaf_prev.is_some() || !o.prev_below.is_empty() {
                return Err(bad());
            }
        } else {
            let Some(leaf_prev) = &o.leaf_prev else { return Err(bad()) };
            let below = levels_apart(j);
            let (Some(meeting), true) = (o.step_path.siblings.get(below), o.prev_below.len() == below) else {
                return Err(bad());
            };
            if merkle::ancestor(&step_leaf(&o.c_prev, leaf_prev), j - 2, &o.prev_below) != *meeting {
                return Err(bad());
            }
        }
        let (sector, node) = locate(sectors, &o.c_prev).ok_or(ProofError::NoSectors)?;
        let s = &sectors[sector];
        if !check_path(&o.leaf, &o.replica_path, node, s.sector_bytes / NODE_BYTES, &s.comm_r_last) {
            return Err(bad());
        }
    }
    Ok(())
}

/// The probability that a reveal of `samples` steps catches a prover whose
/// chain is wrong at a fraction `f` of steps.
pub fn detection_probability(f: f64, samples: usize) -> f64 {
    1.0 - (1.0 - f).powi(samples as i32)
}
