//! Binary Merkle trees of SPEC §1: leaf = H("leaf" ‖ 32 bytes), node =
//! H("node" ‖ left ‖ right), leaf count padded to a power of two with zero leaves.
//! Used for `results_hash` and the storage proofs' commitments.

use crate::crypto::Hash256;
use crate::ledger::MerklePath;

pub fn leaf_hash(data: &Hash256) -> Hash256 {
    let mut h = blake3::Hasher::new();
    h.update(b"leaf");
    h.update(&data.0);
    Hash256(*h.finalize().as_bytes())
}

pub fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut h = blake3::Hasher::new();
    h.update(b"node");
    h.update(&left.0);
    h.update(&right.0);
    Hash256(*h.finalize().as_bytes())
}

/// All levels of the tree, leaves first; the last level holds the root.
pub fn levels(leaves: &[Hash256]) -> Vec<Vec<Hash256>> {
    let width = leaves.len().max(1).next_power_of_two();
    let mut level: Vec<Hash256> = leaves.iter().map(leaf_hash).collect();
    level.resize(width, leaf_hash(&Hash256::ZERO));
    let mut out = vec![level];
    while out.last().map_or(0, Vec::len) > 1 {
        let prev = out.last().expect("non-empty");
        let next = prev.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        out.push(next);
    }
    out
}

pub fn root(leaves: &[Hash256]) -> Hash256 {
    if leaves.len() > 1 << 14 {
        return root_parallel(leaves);
    }
    levels(leaves).last().and_then(|l| l.first().copied()).unwrap_or(Hash256::ZERO)
}

/// The same root, with the two halves of a large tree hashed on two threads.
fn root_parallel(leaves: &[Hash256]) -> Hash256 {
    let width = leaves.len().next_power_of_two();
    let half = width / 2;
    let zero = leaf_hash(&Hash256::ZERO);
    // Root of `n` padded leaves starting at `start` (n a power of two).
    fn sub(leaves: &[Hash256], start: usize, n: usize, zero: &Hash256) -> Hash256 {
        let mut level: Vec<Hash256> = (start..start + n).map(|i| leaves.get(i).map_or(*zero, leaf_hash)).collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        level[0]
    }
    let (l, r) = std::thread::scope(|s| {
        let h = s.spawn(|| sub(leaves, half, half, &zero));
        let l = sub(leaves, 0, half, &zero);
        (l, join_worker(h))
    });
    node_hash(&l, &r)
}

/// Adds leaf number `count` (0-based) to a streaming frontier: the roots of
/// the complete subtrees so far, largest first. With [`frontier_root`] this
/// gives the same root as [`root`] without holding the leaves.
pub fn frontier_push(frontier: &mut Vec<Hash256>, count: u64, leaf: &Hash256) {
    let mut h = leaf_hash(leaf);
    let mut c = count;
    while c & 1 == 1 {
        let Some(left) = frontier.pop() else { break };
        h = node_hash(&left, &h);
        c >>= 1;
    }
    frontier.push(h);
}

/// The root of the `count` leaves pushed into `frontier`, padded with zero
/// leaves to a power of two as [`root`] pads.
pub fn frontier_root(frontier: &[Hash256], count: u64) -> Hash256 {
    if count == 0 {
        return root(&[]);
    }
    let depth = count.next_power_of_two().trailing_zeros();
    let mut stack = frontier.to_vec();
    let mut zero = leaf_hash(&Hash256::ZERO);
    let mut acc: Option<Hash256> = None;
    for level in 0..depth {
        if (count >> level) & 1 == 1 {
            let left = stack.pop().unwrap_or(Hash256::ZERO);
            acc = Some(node_hash(&left, &acc.unwrap_or(zero)));
        } else if let Some(a) = acc {
            acc = Some(node_hash(&a, &zero));
        }
        zero = node_hash(&zero, &zero);
    }
    acc.or_else(|| stack.pop()).unwrap_or(Hash256::ZERO)
}

/// Maps `f` over `items` on the machine's cores (order kept).
pub fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    par_chunks(items, PAR_MIN_ITEMS, |c| c.iter().map(&f).collect())
}

/// Below this many items, work runs on the calling thread.
pub const PAR_MIN_ITEMS: usize = 4096;

/// The result of a scoped worker; its panic is re-raised in the caller.
/// Every parallel step of `apply` joins through this, so a worker that
/// panics can never turn into a short or default result and a wrong root.
pub fn join_worker<U>(h: std::thread::ScopedJoinHandle<'_, U>) -> U {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs `f` on one contiguous chunk of `items` per core and concatenates
/// the results in order (for work that wants per-thread scratch space).
/// A panic in a worker is re-raised here, never turned into a short result.
/// Fewer than `min_items` run on the calling thread.
pub fn par_chunks<T: Sync, U: Send>(items: &[T], min_items: usize, f: impl Fn(&[T]) -> Vec<U> + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if items.len() < min_items.max(1) || threads < 2 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let hs: Vec<_> = items.chunks(size).map(|c| s.spawn(move || f(c))).collect();
        hs.into_iter().flat_map(join_worker).collect()
    })
}

/// The path of leaf `index` (siblings bottom-up).
pub fn path(levels: &[Vec<Hash256>], index: u64) -> MerklePath {
    let mut siblings = Vec::new();
    let mut i = index as usize;
    for level in &levels[..levels.len().saturating_sub(1)] {
        siblings.push(level[i ^ 1]);
        i /= 2;
    }
    // A tree over at most 2^64 leaves has at most 64 levels above them.
    MerklePath { index, siblings: crate::codec::BoundedVec::from_iter_capped(siblings) }
}

/// Recomputes the root from a leaf and its path.
pub fn root_from_path(data: &Hash256, path: &MerklePath) -> Hash256 {
    ancestor(data, path.index, &path.siblings)
}

/// The ancestor of leaf `index` (holding `data`) that `siblings`, taken
/// bottom-up, lead to: the root when they are the whole path.
pub fn ancestor(data: &Hash256, index: u64, siblings: &[Hash256]) -> Hash256 {
    let mut h = leaf_hash(data);
    let mut i = index;
    for s in siblings {
        h = if i & 1 == 0 { node_hash(&h, s) } else { node_hash(s, &h) };
        i >>= 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_root_equals_the_root_of_all_leaves() {
        for n in (0..70u64).chain([127, 128, 129, 1000, 20_000]) {
            let leaves: Vec<Hash256> = (0..n).map(|i| Hash256(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
            let mut frontier = Vec::new();
            for (i, l) in leaves.iter().enumerate() {
                frontier_push(&mut frontier, i as u64, l);
                assert!(frontier.len() <= 64);
            }
            assert_eq!(frontier_root(&frontier, n), root(&leaves), "{n} leaves");
        }
    }

    #[test]
    fn paths_verify_and_bind_position() {
        let leaves: Vec<Hash256> = (0..5u8).map(|i| Hash256([i; 32])).collect();
        let lv = levels(&leaves);
        let r = root(&leaves);
        assert_eq!(lv[0].len(), 8);
        for (i, l) in leaves.iter().enumerate() {
            let p = path(&lv, i as u64);
            assert_eq!(root_from_path(l, &p), r);
            let mut wrong = p.clone();
            wrong.index ^= 1;
            assert_ne!(root_from_path(l, &wrong), r);
        }
        assert_ne!(root_from_path(&Hash256([9; 32]), &path(&lv, 0)), r);
    }

    #[test]
    fn parallel_root_equals_sequential() {
        let leaves: Vec<Hash256> =
            (0..20_000u32).map(|i| Hash256(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
        assert_eq!(root_parallel(&leaves), levels(&leaves).last().unwrap()[0]);
    }

    #[test]
    fn root_matches_hand_computation() {
        let a = Hash256([1; 32]);
        let b = Hash256([2; 32]);
        assert_eq!(root(&[a, b]), node_hash(&leaf_hash(&a), &leaf_hash(&b)));
        assert_eq!(root(&[a]), leaf_hash(&a));
    }
}
