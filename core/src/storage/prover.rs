//! The prover's side of a period's PoSt (SPEC §6) over sealed sectors in
//! any [`SealStore`]: walk the chain for `PostCommit`, then open the sampled
//! steps for `PostReveal`. Shared by the phone and the tests.

use super::graph::{SectorShape, StackedGraph};
use super::proof::{PostChain, PostReveal, ProofError, ProvenSector};
use super::seal::{replica_leaves, SealError, SealStore};
use crate::crypto::Hash256;
use crate::ledger::MerklePath;
use crate::merkle;
use std::collections::HashMap;

/// One sealed sector the chain walks: where it is and what the ledger knows of it.
pub struct ProvingSector<'a> {
    pub sector: ProvenSector,
    pub layers: u32,
    pub store: &'a dyn SealStore,
}

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Proof(#[from] ProofError),
}

fn leaf(s: &ProvingSector<'_>, node: u64) -> Result<Hash256, SealError> {
    // Committed capacity: the replica leaf is the last layer's label.
    let v = s.store.read_labels(s.layers, node, 1)?;
    v.first().copied().ok_or(SealError::Truncated { layer: s.layers, have: node, want: node + 1 })
}

/// Walks the chain of `steps` steps over `sectors` (in sector-number order).
pub fn walk(
    beacon: &Hash256,
    prover: &[u8; 32],
    sectors: &[ProvingSector<'_>],
    steps: u64,
) -> Result<PostChain, ProveError> {
    let proven: Vec<ProvenSector> = sectors.iter().map(|s| s.sector).collect();
    Ok(PostChain::walk(beacon, prover, &proven, steps, |k, node| leaf(&sectors[k], node))??)
}

/// Opens `samples` steps of a walked chain, building each touched sector's
/// replica tree once.
pub fn reveal(
    chain: &PostChain,
    samples_seed: &Hash256,
    samples: usize,
    sectors: &[ProvingSector<'_>],
) -> Result<PostReveal, ProveError> {
    let proven: Vec<ProvenSector> = sectors.iter().map(|s| s.sector).collect();
    let mut trees: HashMap<usize, Vec<Vec<Hash256>>> = HashMap::new();
    let r = chain.reveal(samples_seed, samples, &proven, |k, node| -> Result<MerklePath, SealError> {
        if let std::collections::hash_map::Entry::Vacant(e) = trees.entry(k) {
            let s = &sectors[k];
            let graph = StackedGraph::new(SectorShape { sector_bytes: s.sector.sector_bytes, layers: s.layers })
                .map_err(SealError::Shape)?;
            e.insert(merkle::levels(&replica_leaves(s.store, &graph)?));
        }
        Ok(merkle::path(&trees[&k], node))
    })?;
    Ok(r)
}
