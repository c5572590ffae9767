//! The state tree (SPEC §3): a sparse Merkle tree over 256-bit keys with
//! BLAKE3, empty subtrees hashing to zero, and compressed paths (a subtree
//! holding one leaf is that leaf's hash), so depth is about log2(entries).
//! Updates touch only the changed paths; proofs of presence and absence are
//! checked against the root alone.

use crate::codec::BoundedVec;
use crate::crypto::{hash_tagged, Domain, Hash256, TaggedHasher};
use crate::ledger::StateProof;
use std::sync::Arc;

/// The hash of a leaf: binds the key and the value's hash.
pub fn leaf_hash(key: &Hash256, value_hash: &Hash256) -> Hash256 {
    let mut h = TaggedHasher::new(Domain::StateLeaf);
    h.update(&key.0).update(&value_hash.0);
    h.finalize()
}

fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut h = TaggedHasher::new(Domain::StateNode);
    h.update(&left.0).update(&right.0);
    h.finalize()
}

/// Hash of a state value's canonical bytes.
pub fn value_hash(bytes: &[u8]) -> Hash256 {
    hash_tagged(Domain::StateValue, bytes)
}

fn bit(key: &Hash256, depth: usize) -> bool {
    key.0[depth / 8] & (0x80 >> (depth % 8)) != 0
}

/// Nodes are shared (`Arc`) so a snapshot of the tree is O(1) and updates
/// copy only the changed path: the previous ledger's tree stays provable.
#[derive(Clone)]
enum Node {
    Empty,
    Leaf { key: Hash256, value_hash: Hash256 },
    Internal { left: Arc<Node>, right: Arc<Node>, hash: Hash256 },
}

impl Node {
    fn hash(&self) -> Hash256 {
        match self {
            Node::Empty => Hash256::ZERO,
            Node::Leaf { key, value_hash } => leaf_hash(key, value_hash),
            Node::Internal { hash, .. } => *hash,
        }
    }

    fn internal(left: Node, right: Node) -> Node {
        // Keep paths compressed: an internal node with one leaf below and an
        // empty side collapses to that leaf.
        match (&left, &right) {
            (Node::Empty, Node::Empty) => Node::Empty,
            (Node::Leaf { .. }, Node::Empty) => left,
            (Node::Empty, Node::Leaf { .. }) => right,
            _ => {
                let hash = node_hash(&left.hash(), &right.hash());
                Node::Internal { left: Arc::new(left), right: Arc::new(right), hash }
            }
        }
    }
}

/// The tree. Values live elsewhere; the tree holds their hashes.
#[derive(Clone)]
pub struct Smt {
    root: Node,
    len: usize,
}

impl Default for Smt {
    fn default() -> Self {
        Smt { root: Node::Empty, len: 0 }
    }
}

impl Smt {
    pub fn new() -> Smt {
        Smt::default()
    }

    pub fn root(&self) -> Hash256 {
        self.root.hash()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets `key` to a value with hash `value_hash`, or removes it (`None`).
    pub fn update(&mut self, key: Hash256, value_hash: Option<Hash256>) {
        let root = std::mem::replace(&mut self.root, Node::Empty);
        let (root, delta) = Self::update_at(root, 0, key, value_hash);
        self.root = root;
        self.len = (self.len as isize + delta) as usize;
    }

    fn update_at(node: Node, depth: usize, key: Hash256, value: Option<Hash256>) -> (Node, isize) {
        match node {
            Node::Empty => match value {
                Some(v) => (Node::Leaf { key, value_hash: v }, 1),
                None => (Node::Empty, 0),
            },
            Node::Leaf { key: k, .. } if k == key => match value {
                Some(nv) => (Node::Leaf { key, value_hash: nv }, 0),
                None => (Node::Empty, -1),
            },
            Node::Leaf { key: k, value_hash: v } => match value {
                None => (Node::Leaf { key: k, value_hash: v }, 0),
                Some(nv) => {
                    // Split: push the existing leaf down until the keys diverge.
                    let existing = Node::Leaf { key: k, value_hash: v };
                    let new = Node::Leaf { key, value_hash: nv };
                    (Self::split(existing, &k, new, &key, depth), 1)
                }
            },
            Node::Internal { left, right, .. } => {
                let take = |a: Arc<Node>| Arc::try_unwrap(a).unwrap_or_else(|shared| (*shared).clone());
                let (left, right, delta) = if bit(&key, depth) {
                    let (r, d) = Self::update_at(take(right), depth + 1, key, value);
                    (take(left), r, d)
                } else {
                    let (l, d) = Self::update_at(take(left), depth + 1, key, value);
                    (l, take(right), d)
                };
                (Node::internal(left, right), delta)
            }
        }
    }

    fn split(a: Node, ka: &Hash256, b: Node, kb: &Hash256, depth: usize) -> Node {
        let (ba, bb) = (bit(ka, depth), bit(kb, depth));
        if ba == bb {
            let below = Self::split(a, ka, b, kb, depth + 1);
            let hash_input = below;
            return if ba {
                let hash = node_hash(&Hash256::ZERO, &hash_input.hash());
                Node::Internal { left: Arc::new(Node::Empty), right: Arc::new(hash_input), hash }
            } else {
                let hash = node_hash(&hash_input.hash(), &Hash256::ZERO);
                Node::Internal { left: Arc::new(hash_input), right: Arc::new(Node::Empty), hash }
            };
        }
        if ba {
            Node::internal(b, a)
        } else {
            Node::internal(a, b)
        }
    }

    /// Applies many updates at once (`None` removes): each internal node on
    /// the touched paths is rehashed once, and the two halves of the tree are
    /// updated on separate threads when the batch is large.
    pub fn update_many(&mut self, mut items: Vec<(Hash256, Option<Hash256>)>) {
        items.sort_by_key(|a| a.0);
        items.dedup_by(|later, earlier| {
            // Keep the last update of a key.
            if later.0 == earlier.0 {
                earlier.1 = later.1;
                true
            } else {
                false
            }
        });
        let root = std::mem::replace(&mut self.root, Node::Empty);
        let (root, delta) = Self::batch(root, 0, &items);
        self.root = root;
        self.len = (self.len as isize + delta) as usize;
    }

    fn batch(node: Node, depth: usize, items: &[(Hash256, Option<Hash256>)]) -> (Node, isize) {
        if items.is_empty() {
            return (node, 0);
        }
        match node {
            Node::Empty => {
                let leaves: Vec<(Hash256, Hash256)> = items.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
                let n = leaves.len() as isize;
                (Self::build(depth, &leaves), n)
            }
            Node::Leaf { key, value_hash } => {
                let mut leaves: Vec<(Hash256, Hash256)> =
                    items.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
                if !items.iter().any(|(k, _)| *k == key) {
                    let at = leaves.partition_point(|(k, _)| *k < key);
                    leaves.insert(at, (key, value_hash));
                }
                let n = leaves.len() as isize - 1;
                (Self::build(depth, &leaves), n)
            }
            Node::Internal { left, right, .. } => {
                let take = |a: Arc<Node>| Arc::try_unwrap(a).unwrap_or_else(|shared| (*shared).clone());
                let split = items.partition_point(|(k, _)| !bit(k, depth));
                let (li, ri) = items.split_at(split);
                let (l, r) = (take(left), take(right));
                let ((l, dl), (r, dr)) = if depth < 2 && items.len() > 512 {
                    std::thread::scope(|s| {
                        let h = s.spawn(move || Self::batch(r, depth + 1, ri));
                        let lres = Self::batch(l, depth + 1, li);
                        let rres = crate::merkle::join_worker(h);
                        (lres, rres)
                    })
                } else {
                    (Self::batch(l, depth + 1, li), Self::batch(r, depth + 1, ri))
                };
                (Node::internal(l, r), dl + dr)
            }
        }
    }

    /// A compressed subtree holding exactly `leaves` (sorted, distinct).
    fn build(depth: usize, leaves: &[(Hash256, Hash256)]) -> Node {
        match leaves.len() {
            0 => Node::Empty,
            1 => Node::Leaf { key: leaves[0].0, value_hash: leaves[0].1 },
            _ => {
                let split = leaves.partition_point(|(k, _)| !bit(k, depth));
                let (l, r) = leaves.split_at(split);
                // Two or more leaves never collapse into one side's leaf.
                Node::internal(Self::build(depth + 1, l), Self::build(depth + 1, r))
            }
        }
    }

    /// A proof for `key`: the leaf met on its path (if any) and the siblings
    /// from the root down to it.
    pub fn prove(&self, key: &Hash256) -> StateProof {
        let mut siblings = Vec::new();
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return proof(None, siblings),
                Node::Leaf { key: k, value_hash } => return proof(Some((*k, *value_hash)), siblings),
                Node::Internal { left, right, .. } => {
                    if bit(key, depth) {
                        siblings.push(left.hash());
                        node = right;
                    } else {
                        siblings.push(right.hash());
                        node = left;
                    }
                    depth += 1;
                }
            }
        }
    }
}

fn proof(leaf: Option<(Hash256, Hash256)>, siblings: Vec<Hash256>) -> StateProof {
    // Keys are 256-bit hashes: no path is deeper than 256.
    StateProof { leaf, siblings: BoundedVec::from_iter_capped(siblings) }
}

/// What a proof shows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proven {
    /// Present with this value hash.
    Present(Hash256),
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtProofError {
    #[error("the proof does not lead to the trusted state root")]
    RootMismatch,
    #[error("the proof's leaf is not on the key's path")]
    LeafOffPath,
}

/// Checks a proof for `key` against `root` (SPEC §3, §7).
pub fn verify(root: &Hash256, key: &Hash256, p: &StateProof) -> Result<Proven, SmtProofError> {
    let depth = p.siblings.len();
    let (mut h, result) = match &p.leaf {
        None => (Hash256::ZERO, Proven::Absent),
        Some((k, v)) => {
            // The leaf must sit where `key` would: same first `depth` bits.
            if (0..depth).any(|d| bit(k, d) != bit(key, d)) {
                return Err(SmtProofError::LeafOffPath);
            }
            (leaf_hash(k, v), if k == key { Proven::Present(*v) } else { Proven::Absent })
        }
    };
    for d in (0..depth).rev() {
        let s = &p.siblings[d];
        h = if bit(key, d) { node_hash(s, &h) } else { node_hash(&h, s) };
    }
    if &h != root {
        return Err(SmtProofError::RootMismatch);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn k(i: u32) -> Hash256 {
        Hash256(*blake3::hash(&i.to_le_bytes()).as_bytes())
    }

    /// The root computed from scratch over sorted keys, as a reference.
    fn reference_root(entries: &BTreeMap<Hash256, Hash256>) -> Hash256 {
        fn go(items: &[(Hash256, Hash256)], depth: usize) -> Hash256 {
            match items.len() {
                0 => Hash256::ZERO,
                1 => leaf_hash(&items[0].0, &items[0].1),
                _ => {
                    let split = items.iter().position(|(k, _)| bit(k, depth)).unwrap_or(items.len());
                    node_hash(&go(&items[..split], depth + 1), &go(&items[split..], depth + 1))
                }
            }
        }
        let items: Vec<_> = entries.iter().map(|(a, b)| (*a, *b)).collect();
        go(&items, 0)
    }

    #[test]
    fn empty_tree_root_is_zero_and_proves_absence() {
        let t = Smt::new();
        assert_eq!(t.root(), Hash256::ZERO);
        assert_eq!(verify(&t.root(), &k(1), &t.prove(&k(1))), Ok(Proven::Absent));
    }

    #[test]
    fn tampered_proofs_fail() {
        let mut t = Smt::new();
        for i in 0..100 {
            t.update(k(i), Some(k(1000 + i)));
        }
        let root = t.root();
        let p = t.prove(&k(5));
        assert_eq!(verify(&root, &k(5), &p), Ok(Proven::Present(k(1005))));
        // A different value hash.
        let mut bad = p.clone();
        bad.leaf = Some((k(5), k(9999)));
        assert_eq!(verify(&root, &k(5), &bad), Err(SmtProofError::RootMismatch));
        // Claiming absence with an empty leaf.
        let mut bad = p.clone();
        bad.leaf = None;
        assert_eq!(verify(&root, &k(5), &bad), Err(SmtProofError::RootMismatch));
        // Someone else's leaf presented for our key is off its path (or wrong root).
        let other = t.prove(&k(6));
        assert!(verify(&root, &k(5), &other).is_err());
    }

    proptest! {
        // A batch of updates gives the same root as applying them one by one.
        #[test]
        fn batch_update_equals_single_updates(
            first in proptest::collection::vec((0u32..300, proptest::option::of(0u32..1000)), 0..200),
            second in proptest::collection::vec((0u32..300, proptest::option::of(0u32..1000)), 0..900),
        ) {
            let mut one = Smt::new();
            let mut many = Smt::new();
            for ops in [&first, &second] {
                for (key, val) in ops.iter() {
                    one.update(k(*key), val.map(k));
                }
                many.update_many(ops.iter().map(|(key, val)| (k(*key), val.map(k))).collect());
                prop_assert_eq!(many.root(), one.root());
                prop_assert_eq!(many.len(), one.len());
            }
        }

        // Incremental updates give the from-scratch root, and every key's proof
        // shows exactly its value or its absence.
        #[test]
        fn incremental_root_equals_reference(ops in proptest::collection::vec((0u32..60, proptest::option::of(0u32..1000)), 1..120)) {
            let mut t = Smt::new();
            let mut model = BTreeMap::new();
            for (key, val) in ops {
                let val = val.map(k);
                t.update(k(key), val);
                match val { Some(v) => { model.insert(k(key), v); } None => { model.remove(&k(key)); } }
                prop_assert_eq!(t.root(), reference_root(&model));
                prop_assert_eq!(t.len(), model.len());
            }
            let root = t.root();
            for key in 0..60u32 {
                let got = verify(&root, &k(key), &t.prove(&k(key))).unwrap();
                match model.get(&k(key)) {
                    Some(v) => prop_assert_eq!(got, Proven::Present(*v)),
                    None => prop_assert_eq!(got, Proven::Absent),
                }
            }
        }
    }
}
