//! Network-wide quorum analysis: does every pair of quorums intersect
//! (safety), and how many failures can each node survive (liveness)?
//! Used by tests, the simulator and the node's health report.

use super::QuorumSet;
use crate::address::NodeId;
use std::collections::BTreeMap;

/// Exact intersection checking enumerates subsets; beyond this many nodes it
/// says so instead of guessing.
pub const MAX_EXACT_NODES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intersection {
    /// Every two quorums share a node.
    Intersects,
    /// Two disjoint quorums exist (each listed): the network can fork.
    Split { a: Vec<NodeId>, b: Vec<NodeId> },
    /// More than [`MAX_EXACT_NODES`] nodes: not checked.
    TooLarge { nodes: usize },
}

/// Checks quorum intersection over the nodes whose quorum sets are given.
/// Nodes named in a set but absent from `qsets` can never be in a quorum.
pub fn check_intersection(qsets: &BTreeMap<NodeId, QuorumSet>) -> Intersection {
    let nodes: Vec<NodeId> = qsets.keys().copied().collect();
    let n = nodes.len();
    if n > MAX_EXACT_NODES {
        return Intersection::TooLarge { nodes: n };
    }
    if n == 0 {
        return Intersection::Intersects;
    }
    let index: BTreeMap<NodeId, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let sets: Vec<&QuorumSet> = nodes.iter().map(|n| &qsets[n]).collect();
    let full: u32 = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
    // The largest quorum inside `mask`: drop members whose slice is not in it until stable.
    let max_quorum = |mut mask: u32| -> u32 {
        loop {
            let mut next = mask;
            for (i, q) in sets.iter().enumerate() {
                if mask & (1 << i) != 0 && !q.is_slice(&|m: &NodeId| index.get(m).is_some_and(|j| mask & (1 << j) != 0))
                {
                    next &= !(1 << i);
                }
            }
            if next == mask {
                return mask;
            }
            mask = next;
        }
    };
    let to_nodes = |mask: u32| -> Vec<NodeId> { (0..n).filter(|i| mask & (1 << i) != 0).map(|i| nodes[i]).collect() };
    // Every split puts node 0 on one side: enumerate that side.
    for rest in 0..(1u32 << (n - 1)) {
        let side = 1 | (rest << 1);
        let a = max_quorum(side);
        if a == 0 {
            continue;
        }
        let b = max_quorum(full & !side);
        if b != 0 {
            return Intersection::Split { a: to_nodes(a), b: to_nodes(b) };
        }
    }
    Intersection::Intersects
}

/// How many more nodes can crash before `node`'s quorum set is v-blocked
/// (it can then no longer close ledgers), given which nodes are up now.
pub fn failures_survivable(qset: &QuorumSet, node: &NodeId, up: &impl Fn(&NodeId) -> bool) -> usize {
    let blocking = qset.closest_v_blocking(up, Some(node));
    blocking.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scp::quorum::tests::node;

    fn flat_all(t: u32, ids: &[u8]) -> BTreeMap<NodeId, QuorumSet> {
        let q = QuorumSet::flat(t, ids.iter().map(|i| node(*i)).collect());
        ids.iter().map(|i| (node(*i), q.clone())).collect()
    }

    #[test]
    fn majority_core_intersects() {
        assert_eq!(check_intersection(&flat_all(3, &[0, 1, 2, 3])), Intersection::Intersects);
        assert_eq!(check_intersection(&flat_all(5, &[0, 1, 2, 3, 4, 5, 6])), Intersection::Intersects);
    }

    #[test]
    fn half_threshold_splits() {
        match check_intersection(&flat_all(2, &[0, 1, 2, 3])) {
            Intersection::Split { a, b } => {
                assert_eq!(a.len(), 2);
                assert_eq!(b.len(), 2);
                assert!(a.iter().all(|x| !b.contains(x)));
            }
            other => panic!("expected a split, got {other:?}"),
        }
    }

    #[test]
    fn too_large_is_stated() {
        let ids: Vec<u8> = (0..21).collect();
        assert_eq!(check_intersection(&flat_all(15, &ids)), Intersection::TooLarge { nodes: 21 });
    }

    #[test]
    fn survivable_failures_in_a_core() {
        let q = QuorumSet::flat(5, (0..7).map(node).collect());
        let all = |_: &NodeId| true;
        assert_eq!(failures_survivable(&q, &node(0), &all), 2);
        let two_down = |n: &NodeId| *n != node(5) && *n != node(6);
        assert_eq!(failures_survivable(&q, &node(0), &two_down), 0);
    }
}
