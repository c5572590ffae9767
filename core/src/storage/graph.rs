//! The stacked depth-robust graph of SPEC §6: in every layer, node `i`
//! depends on node `i-1` and 5 more earlier nodes drawn by bucket sampling
//! (DRSample, as rust-fil-proofs' `BucketGraph`), and from layer 2 on, on 8
//! nodes of the previous layer given by a keyed Feistel permutation (as the
//! stacked expander graph). The same graph serves every layer.

use crate::crypto::Hash256;

/// Bytes per node (one label, one replica leaf).
pub const NODE_BYTES: u64 = 32;
/// Base parents: `i-1` plus 5 bucket-sampled ones.
pub const BASE_DEGREE: usize = 6;
/// Expander parents in the previous layer.
pub const EXP_DEGREE: usize = 8;
const FEISTEL_ROUNDS: u32 = 4;

/// A sector's size and layer count: all a graph depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorShape {
    pub sector_bytes: u64,
    pub layers: u32,
}

impl SectorShape {
    pub fn nodes(&self) -> u64 {
        self.sector_bytes / NODE_BYTES
    }

    /// A shape is usable when it has a power-of-two node count of at least 2
    /// (Merkle trees need no padding then) and at least one layer.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.nodes();
        if self.sector_bytes % NODE_BYTES != 0 || n < 2 || !n.is_power_of_two() {
            return Err(format!(
                "sector size {} is not a power-of-two number (≥ 2) of 32-byte nodes",
                self.sector_bytes
            ));
        }
        if self.layers == 0 || self.layers > 64 {
            return Err(format!("{} layers is outside 1..=64", self.layers));
        }
        Ok(())
    }
}

/// `H(tag ‖ sector_size ‖ layers)`: the key of one half of the graph.
fn graph_key(tag: &[u8], shape: &SectorShape) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(tag);
    h.update(&shape.sector_bytes.to_le_bytes());
    h.update(&shape.layers.to_le_bytes());
    *h.finalize().as_bytes()
}

/// First 8 bytes of a hash as `u64` LE (SPEC §1's map to a range, before the `mod`).
pub fn hash_u64(h: &[u8; 32]) -> u64 {
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

#[derive(Debug, Clone)]
pub struct StackedGraph {
    shape: SectorShape,
    nodes: u64,
    base_key: [u8; 32],
    /// Feistel half width in bits: the domain `[0, nodes × 8)` fits in `2 × half_bits`.
    half_bits: u32,
    /// The Feistel round keys, from `H("watt/v1/drg/exp" ‖ size ‖ layers)`.
    round_keys: [u64; FEISTEL_ROUNDS as usize],
}

impl StackedGraph {
    pub fn new(shape: SectorShape) -> Result<StackedGraph, String> {
        shape.validate()?;
        let nodes = shape.nodes();
        let domain = nodes * EXP_DEGREE as u64;
        let bits = 64 - (domain - 1).leading_zeros();
        let exp_key = graph_key(b"watt/v1/drg/exp", &shape);
        let mut keys = [0u8; 8 * FEISTEL_ROUNDS as usize];
        blake3::Hasher::new().update(&exp_key).finalize_xof().fill(&mut keys);
        let round_keys =
            std::array::from_fn(|r| u64::from_le_bytes(keys[8 * r..8 * r + 8].try_into().expect("8 bytes")));
        Ok(StackedGraph {
            shape,
            nodes,
            base_key: graph_key(b"watt/v1/drg/base", &shape),
            half_bits: bits.div_ceil(2),
            round_keys,
        })
    }

    pub fn shape(&self) -> SectorShape {
        self.shape
    }

    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Base parents of node `i` in order: none for node 0, `[0]` for node 1,
    /// else `i-1` then 5 bucket-sampled nodes of `[0, i-1)` (duplicates kept).
    pub fn base_parents(&self, i: u64, out: &mut Vec<u64>) {
        out.clear();
        if i == 0 {
            return;
        }
        out.push(i - 1);
        if i == 1 {
            return;
        }
        // DRSample: pick a distance bucket [2^(b-1), 2^b) uniformly among the
        // buckets that fit, then a distance inside it, so near and far
        // parents are both common (what makes the graph depth-robust).
        let limit = i - 1; // parents come from [0, limit)
        let buckets = 64 - limit.leading_zeros() as u64;
        // One hash per node: H(base_key ‖ i) read as an extendable output,
        // 16 bytes (bucket, distance) per sampled parent.
        let mut h = blake3::Hasher::new();
        h.update(&self.base_key);
        h.update(&i.to_le_bytes());
        let mut r = [0u8; 16 * (BASE_DEGREE - 1)];
        h.finalize_xof().fill(&mut r);
        for k in 0..BASE_DEGREE - 1 {
            let word = |o: usize| u64::from_le_bytes(r[16 * k + o..16 * k + o + 8].try_into().expect("8 bytes"));
            let b = word(0) % buckets + 1;
            let lo = 1u64 << (b - 1);
            let hi = (1u64 << b).min(limit + 1);
            let d = lo + word(8) % (hi - lo);
            out.push(limit - d);
        }
    }

    /// Expander parents of node `i` in the previous layer: the Feistel image
    /// of `i × 8 + k` over `[0, n × 8)`, divided by 8 (so every node has
    /// exactly 8 children too).
    pub fn exp_parents(&self, i: u64) -> [u64; EXP_DEGREE] {
        let mut out = [0u64; EXP_DEGREE];
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.permute(i * EXP_DEGREE as u64 + k as u64) / EXP_DEGREE as u64;
        }
        out
    }

    /// A keyed permutation of `[0, n × 8)`: a balanced Feistel network on
    /// `2 × half_bits` bits, cycle-walking until the image is in the domain.
    fn permute(&self, x: u64) -> u64 {
        let domain = self.nodes * EXP_DEGREE as u64;
        let mut v = x;
        loop {
            v = self.feistel(v);
            if v < domain {
                return v;
            }
        }
    }

    /// The round function is a keyed 64-bit mixer (SplitMix64's finaliser
    /// over `right ^ key`): the expander only needs a fixed, well-spread
    /// permutation that everyone computes alike (it is public), and a hash
    /// per round would cost more than the labels themselves.
    fn feistel(&self, v: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (v >> self.half_bits, v & mask);
        for key in self.round_keys {
            let f = crate::crypto::splitmix::mix64(right ^ key);
            (left, right) = (right, left ^ (f & mask));
        }
        (left << self.half_bits) | right
    }
}

/// `replica_id = H("watt/v1/replica" ‖ owner ‖ sector_number ‖ ticket)`.
pub fn replica_id(owner: &[u8; 32], sector_number: u64, ticket: &Hash256) -> Hash256 {
    let mut h = blake3::Hasher::new();
    h.update(b"watt/v1/replica");
    h.update(owner);
    h.update(&sector_number.to_le_bytes());
    h.update(&ticket.0);
    Hash256(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(sector_bytes: u64) -> StackedGraph {
        StackedGraph::new(SectorShape { sector_bytes, layers: 2 }).unwrap()
    }

    #[test]
    fn base_parents_are_earlier_nodes_with_i_minus_1_first() {
        let g = graph(1 << 20);
        let mut p = Vec::new();
        g.base_parents(0, &mut p);
        assert!(p.is_empty());
        g.base_parents(1, &mut p);
        assert_eq!(p, vec![0]);
        g.base_parents(2, &mut p);
        assert_eq!(p, vec![1, 0, 0, 0, 0, 0], "node 2 can only reach node 0 besides node 1");
        let mut far = 0;
        for i in 2..g.nodes() {
            g.base_parents(i, &mut p);
            assert_eq!(p.len(), BASE_DEGREE);
            assert_eq!(p[0], i - 1);
            assert!(p[1..].iter().all(|&q| q < i - 1), "node {i}: {p:?}");
            far += p[1..].iter().filter(|&&q| i - q > 1024).count();
        }
        assert!(far > 1000, "bucket sampling reaches far back too ({far})");
    }

    #[test]
    fn expander_is_a_permutation_so_every_node_has_eight_children() {
        let g = graph(1 << 16);
        let mut children = vec![0u32; g.nodes() as usize];
        for i in 0..g.nodes() {
            for p in g.exp_parents(i) {
                children[p as usize] += 1;
            }
        }
        assert!(children.iter().all(|&c| c == EXP_DEGREE as u32));
        // Keyed by size and layers: another shape is another graph.
        let other = StackedGraph::new(SectorShape { sector_bytes: 1 << 16, layers: 3 }).unwrap();
        assert_ne!(
            (0..64).map(|i| g.exp_parents(i)).collect::<Vec<_>>(),
            (0..64).map(|i| other.exp_parents(i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shapes_must_be_powers_of_two() {
        assert!(SectorShape { sector_bytes: 3 * 32, layers: 2 }.validate().is_err());
        assert!(SectorShape { sector_bytes: 1 << 20, layers: 0 }.validate().is_err());
        assert!(SectorShape { sector_bytes: 1 << 20, layers: 2 }.validate().is_ok());
    }
}
