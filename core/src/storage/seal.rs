//! Sealing (SPEC §6 PoRep): labelling the stacked graph layer by layer,
//! resumably, and the sector's commitments.
//!
//! The [`Sealer`] is a state machine over a [`SealStore`]: each `step`
//! labels at most a budget of nodes, makes them durable, then records a
//! checkpoint, so a paused or killed seal resumes where its last checkpoint
//! says without redoing more than that slice. It holds two layers in memory
//! (the previous one and the one being labelled); all layers stay on disk
//! until the prove-commit, whose challenges are only known then.

use super::graph::{StackedGraph, BASE_DEGREE, EXP_DEGREE};
use crate::crypto::Hash256;
use crate::merkle;

/// `label(l, i) = H(replica_id ‖ l ‖ i ‖ base parents' labels in layer l ‖
/// [l > 1: expander parents' labels in layer l-1])` (SPEC §6).
pub fn label(replica_id: &Hash256, layer: u32, node: u64, base: &[Hash256], exp: &[Hash256]) -> Hash256 {
    let mut h = blake3::Hasher::new();
    h.update(&replica_id.0);
    h.update(&layer.to_le_bytes());
    h.update(&node.to_le_bytes());
    for p in base {
        h.update(&p.0);
    }
    for p in exp {
        h.update(&p.0);
    }
    Hash256(*h.finalize().as_bytes())
}

/// `H(label(1,i) ‖ … ‖ label(L,i))`: the leaf of `comm_c`.
pub fn column_hash(labels: &[Hash256]) -> Hash256 {
    let mut h = blake3::Hasher::new();
    for l in labels {
        h.update(&l.0);
    }
    Hash256(*h.finalize().as_bytes())
}

/// `comm_r = H(comm_c ‖ comm_r_last)`.
pub fn comm_r(comm_c: &Hash256, comm_r_last: &Hash256) -> Hash256 {
    let mut h = blake3::Hasher::new();
    h.update(&comm_c.0);
    h.update(&comm_r_last.0);
    Hash256(*h.finalize().as_bytes())
}

/// The Merkle root of `nodes` zero leaves: `comm_d` of a committed-capacity
/// sector, computed in log time.
pub fn zero_root(nodes: u64) -> Hash256 {
    let mut h = merkle::leaf_hash(&Hash256::ZERO);
    let mut width = nodes.max(1).next_power_of_two();
    while width > 1 {
        h = merkle::node_hash(&h, &h);
        width /= 2;
    }
    h
}

/// Labels every base parent of `node` in `layer` and every expander parent
/// in the layer below, from the labels given, into `base` and `exp`.
#[allow(clippy::too_many_arguments)] // the hot loop's buffers, reused across nodes
pub(crate) fn parent_labels(
    graph: &StackedGraph,
    layer: u32,
    node: u64,
    this_layer: impl Fn(u64) -> Hash256,
    prev_layer: impl Fn(u64) -> Hash256,
    scratch: &mut Vec<u64>,
    base: &mut Vec<Hash256>,
    exp: &mut Vec<Hash256>,
) {
    graph.base_parents(node, scratch);
    base.clear();
    base.extend(scratch.iter().map(|&p| this_layer(p)));
    exp.clear();
    if layer > 1 {
        exp.extend(graph.exp_parents(node).iter().map(|&p| prev_layer(p)));
    }
}

/// Where a seal stands, durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealCheckpoint {
    pub replica_id: Hash256,
    pub sector_bytes: u64,
    pub layers: u32,
    /// The layer being labelled (1-based); `layers + 1` when all are done.
    pub layer: u32,
    /// Labels `[0, next_node)` of `layer` are durable.
    pub next_node: u64,
}

impl SealCheckpoint {
    pub const ENCODED_LEN: usize = 32 + 8 + 4 + 4 + 8;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..32].copy_from_slice(&self.replica_id.0);
        out[32..40].copy_from_slice(&self.sector_bytes.to_le_bytes());
        out[40..44].copy_from_slice(&self.layers.to_le_bytes());
        out[44..48].copy_from_slice(&self.layer.to_le_bytes());
        out[48..56].copy_from_slice(&self.next_node.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<SealCheckpoint> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        Some(SealCheckpoint {
            replica_id: Hash256(bytes[..32].try_into().expect("32 bytes")),
            sector_bytes: u64_at(32),
            layers: u32_at(40),
            layer: u32_at(44),
            next_node: u64_at(48),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sector storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Shape(String),
    #[error("the stored seal is for another sector (replica id or shape differ)")]
    CheckpointMismatch,
    #[error("the stored layer {layer} is shorter than its checkpoint says ({have} of {want} labels)")]
    Truncated { layer: u32, have: u64, want: u64 },
}

/// Durable storage of a sector's layers and its seal checkpoint.
pub trait SealStore {
    /// Writes labels `[start, start + labels.len())` of `layer` (1-based).
    fn write_labels(&mut self, layer: u32, start: u64, labels: &[Hash256]) -> std::io::Result<()>;
    /// Reads labels `[start, start + count)` of `layer`.
    fn read_labels(&self, layer: u32, start: u64, count: u64) -> std::io::Result<Vec<Hash256>>;
    /// Makes everything written so far durable, then the checkpoint.
    fn commit(&mut self, checkpoint: &SealCheckpoint) -> std::io::Result<()>;
    fn checkpoint(&self) -> std::io::Result<Option<SealCheckpoint>>;
}

/// What a seal slice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealProgress {
    pub layer: u32,
    pub next_node: u64,
    pub labels_done: u64,
    pub labels_total: u64,
    pub done: bool,
}

/// The sector's commitments once every layer is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealCommitments {
    pub comm_d: Hash256,
    pub comm_c: Hash256,
    pub comm_r_last: Hash256,
    pub comm_r: Hash256,
}

pub struct Sealer {
    graph: StackedGraph,
    replica_id: Hash256,
    layer: u32,
    next_node: u64,
    prev: Vec<Hash256>,
    cur: Vec<Hash256>,
}

impl Sealer {
    /// Starts a seal, or resumes the one `store` holds for the same sector.
    pub fn resume(graph: StackedGraph, replica_id: Hash256, store: &dyn SealStore) -> Result<Sealer, SealError> {
        let shape = graph.shape();
        let n = graph.nodes();
        let (layer, next_node) = match store.checkpoint()? {
            None => (1, 0),
            Some(cp) => {
                if cp.replica_id != replica_id || cp.sector_bytes != shape.sector_bytes || cp.layers != shape.layers {
                    return Err(SealError::CheckpointMismatch);
                }
                (cp.layer, cp.next_node.min(n))
            }
        };
        let mut sealer =
            Sealer { graph, replica_id, layer, next_node, prev: Vec::new(), cur: Vec::with_capacity(n as usize) };
        if layer <= shape.layers {
            if layer > 1 {
                sealer.prev = read_exact(store, layer - 1, 0, n)?;
            }
            sealer.cur = read_exact(store, layer, 0, next_node)?;
        }
        Ok(sealer)
    }

    pub fn progress(&self) -> SealProgress {
        let shape = self.graph.shape();
        let n = self.graph.nodes();
        let total = n * u64::from(shape.layers);
        let done_layers = u64::from(self.layer.min(shape.layers + 1) - 1);
        let labels_done = (done_layers * n + if self.layer <= shape.layers { self.next_node } else { 0 }).min(total);
        SealProgress {
            layer: self.layer,
            next_node: self.next_node,
            labels_done,
            labels_total: total,
            done: self.layer > shape.layers,
        }
    }

    /// Labels at most `budget` nodes, makes them durable and checkpoints.
    pub fn step(&mut self, store: &mut dyn SealStore, budget: u64) -> Result<SealProgress, SealError> {
        let shape = self.graph.shape();
        let n = self.graph.nodes();
        let mut left = budget.max(1);
        let (mut scratch, mut base, mut exp) =
            (Vec::with_capacity(BASE_DEGREE), Vec::with_capacity(BASE_DEGREE), Vec::with_capacity(EXP_DEGREE));
        while left > 0 && self.layer <= shape.layers {
            let start = self.next_node;
            let end = start.saturating_add(left).min(n);
            for i in start..end {
                let (cur, prev) = (&self.cur, &self.prev);
                parent_labels(
                    &self.graph,
                    self.layer,
                    i,
                    |p| cur[p as usize],
                    |p| prev[p as usize],
                    &mut scratch,
                    &mut base,
                    &mut exp,
                );
                let l = label(&self.replica_id, self.layer, i, &base, &exp);
                self.cur.push(l);
            }
            store.write_labels(self.layer, start, &self.cur[start as usize..end as usize])?;
            left -= end - start;
            self.next_node = end;
            if end == n {
                self.layer += 1;
                self.next_node = 0;
                self.prev = std::mem::take(&mut self.cur);
                self.cur = Vec::with_capacity(n as usize);
            }
        }
        store.commit(&SealCheckpoint {
            replica_id: self.replica_id,
            sector_bytes: shape.sector_bytes,
            layers: shape.layers,
            layer: self.layer,
            next_node: self.next_node,
        })?;
        Ok(self.progress())
    }
}

fn read_exact(store: &dyn SealStore, layer: u32, start: u64, count: u64) -> Result<Vec<Hash256>, SealError> {
    let v = store.read_labels(layer, start, count)?;
    if (v.len() as u64) < count {
        return Err(SealError::Truncated { layer, have: v.len() as u64, want: count });
    }
    Ok(v)
}

/// Columns of all layers, chunk by chunk (so memory stays at a few layers).
pub fn column_hashes(store: &dyn SealStore, graph: &StackedGraph) -> Result<Vec<Hash256>, SealError> {
    let n = graph.nodes();
    let layers = graph.shape().layers;
    let chunk = 1u64 << 14;
    let mut out = Vec::with_capacity(n as usize);
    let mut start = 0;
    while start < n {
        let count = chunk.min(n - start);
        let per_layer: Vec<Vec<Hash256>> =
            (1..=layers).map(|l| read_exact(store, l, start, count)).collect::<Result<_, _>>()?;
        let mut col = Vec::with_capacity(layers as usize);
        for k in 0..count as usize {
            col.clear();
            col.extend(per_layer.iter().map(|l| l[k]));
            out.push(column_hash(&col));
        }
        start += count;
    }
    Ok(out)
}

/// The replica of a committed-capacity sector: data (zeros) XOR the last layer.
pub fn replica_leaves(store: &dyn SealStore, graph: &StackedGraph) -> Result<Vec<Hash256>, SealError> {
    read_exact(store, graph.shape().layers, 0, graph.nodes())
}

/// The commitments of a finished seal.
pub fn commitments(store: &dyn SealStore, graph: &StackedGraph) -> Result<SealCommitments, SealError> {
    let comm_c = merkle::root(&column_hashes(store, graph)?);
    let comm_r_last = merkle::root(&replica_leaves(store, graph)?);
    Ok(SealCommitments { comm_d: zero_root(graph.nodes()), comm_c, comm_r_last, comm_r: comm_r(&comm_c, &comm_r_last) })
}

/// A [`SealStore`] in memory (tests, benchmarks).
#[derive(Debug, Default, Clone)]
pub struct MemorySealStore {
    pub layers: std::collections::BTreeMap<u32, Vec<Hash256>>,
    pub checkpoint: Option<SealCheckpoint>,
}

impl SealStore for MemorySealStore {
    fn write_labels(&mut self, layer: u32, start: u64, labels: &[Hash256]) -> std::io::Result<()> {
        let v = self.layers.entry(layer).or_default();
        let start = start as usize;
        if v.len() < start + labels.len() {
            v.resize(start + labels.len(), Hash256::ZERO);
        }
        v[start..start + labels.len()].copy_from_slice(labels);
        Ok(())
    }

    fn read_labels(&self, layer: u32, start: u64, count: u64) -> std::io::Result<Vec<Hash256>> {
        let v = self.layers.get(&layer).map(Vec::as_slice).unwrap_or(&[]);
        let s = (start as usize).min(v.len());
        let e = (start.saturating_add(count) as usize).min(v.len());
        Ok(v[s..e].to_vec())
    }

    fn commit(&mut self, checkpoint: &SealCheckpoint) -> std::io::Result<()> {
        self.checkpoint = Some(*checkpoint);
        Ok(())
    }

    fn checkpoint(&self) -> std::io::Result<Option<SealCheckpoint>> {
        Ok(self.checkpoint)
    }
}

/// A [`SealStore`] in a directory: one file per layer (`layer-<l>`, 32 bytes
/// per node) and `checkpoint`, replaced atomically after the layer files
/// are synced.
pub struct FileSealStore {
    dir: std::path::PathBuf,
    dirty: std::collections::BTreeSet<u32>,
}

impl FileSealStore {
    pub fn open(dir: &std::path::Path) -> std::io::Result<FileSealStore> {
        std::fs::create_dir_all(dir)?;
        Ok(FileSealStore { dir: dir.to_path_buf(), dirty: Default::default() })
    }

    fn layer_path(&self, layer: u32) -> std::path::PathBuf {
        self.dir.join(format!("layer-{layer}"))
    }

    /// Deletes the layers below the last (after the prove-commit landed).
    pub fn drop_inner_layers(&self, layers: u32) -> std::io::Result<()> {
        for l in 1..layers {
            match std::fs::remove_file(self.layer_path(l)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl SealStore for FileSealStore {
    fn write_labels(&mut self, layer: u32, start: u64, labels: &[Hash256]) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut f =
            std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(self.layer_path(layer))?;
        f.seek(SeekFrom::Start(start * 32))?;
        let mut buf = Vec::with_capacity(labels.len() * 32);
        for l in labels {
            buf.extend_from_slice(&l.0);
        }
        f.write_all(&buf)?;
        self.dirty.insert(layer);
        Ok(())
    }

    fn read_labels(&self, layer: u32, start: u64, count: u64) -> std::io::Result<Vec<Hash256>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = match std::fs::File::open(self.layer_path(layer)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len() / 32;
        let count = count.min(len.saturating_sub(start));
        f.seek(SeekFrom::Start(start * 32))?;
        let mut buf = vec![0u8; (count * 32) as usize];
        f.read_exact(&mut buf)?;
        Ok(buf.chunks_exact(32).map(|c| Hash256(c.try_into().expect("32 bytes"))).collect())
    }

    fn commit(&mut self, checkpoint: &SealCheckpoint) -> std::io::Result<()> {
        for layer in std::mem::take(&mut self.dirty) {
            std::fs::OpenOptions::new().write(true).open(self.layer_path(layer))?.sync_data()?;
        }
        let tmp = self.dir.join("checkpoint.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&checkpoint.encode())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("checkpoint"))?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    fn checkpoint(&self) -> std::io::Result<Option<SealCheckpoint>> {
        match std::fs::read(self.dir.join("checkpoint")) {
            Ok(b) => SealCheckpoint::decode(&b)
                .map(Some)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "damaged seal checkpoint")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
