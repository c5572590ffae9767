//! Quorum sets (SPEC §4): `{ threshold, validators, inner_sets }`.

use crate::address::NodeId;
use crate::codec::{encode, BoundedVec, Wire};
use crate::crypto::{hash_tagged, Domain, Hash256};
use serde::{Deserialize, Serialize};

/// Most nodes a quorum set may name, counting every level (stellar-core's limit).
pub const MAX_QSET_NODES: usize = 1000;
/// Deepest nesting of inner sets (the top level is depth 0).
pub const MAX_QSET_NESTING: usize = 4;

/// A node's quorum slices: any `threshold` of its `validators` and `inner_sets`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuorumSet {
    pub threshold: u32,
    pub validators: BoundedVec<NodeId, MAX_QSET_NODES>,
    pub inner_sets: BoundedVec<QuorumSet, MAX_QSET_NODES>,
}

impl Wire for QuorumSet {
    // 1,000 node ids plus the per-level overhead of a maximal nesting.
    const MAX_ENCODED_LEN: usize = 40 * 1024;
}

impl QuorumSet {
    pub fn hash(&self) -> Hash256 {
        hash_tagged(Domain::QuorumSet, &encode(self))
    }
}

/// Why a quorum set is not acceptable (stellar-core's sanity rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumSetError {
    #[error("inner sets nest deeper than {MAX_QSET_NESTING} levels")]
    TooDeep,
    #[error("threshold {threshold} is outside 1..={entries}")]
    BadThreshold { threshold: u32, entries: usize },
    #[error("threshold {threshold} of {entries} is below a majority (v-blocking sets would be smaller than quorums)")]
    BelowMajority { threshold: u32, entries: usize },
    #[error("node {0} appears more than once")]
    Duplicate(NodeId),
    #[error("more than {MAX_QSET_NODES} nodes")]
    TooManyNodes,
}

impl QuorumSet {
    /// A flat `threshold`-of-`validators` set.
    ///
    /// Panics with more than [`MAX_QSET_NODES`] validators (a caller's bug:
    /// sets read from peers or files are bounded when decoded).
    pub fn flat(threshold: u32, validators: Vec<NodeId>) -> QuorumSet {
        QuorumSet {
            threshold,
            validators: BoundedVec::try_from_vec(validators).expect("at most MAX_QSET_NODES validators"),
            inner_sets: BoundedVec::new(),
        }
    }

    /// Checks nesting, thresholds, duplicates and size; with `extra_checks`,
    /// also that every threshold is at least a majority, as stellar-core does
    /// for the local node's own set.
    pub fn check_sanity(&self, extra_checks: bool) -> Result<(), QuorumSetError> {
        let mut seen = std::collections::BTreeSet::new();
        self.check_level(0, extra_checks, &mut seen)?;
        if seen.len() > MAX_QSET_NODES {
            return Err(QuorumSetError::TooManyNodes);
        }
        Ok(())
    }

    fn check_level(
        &self,
        depth: usize,
        extra: bool,
        seen: &mut std::collections::BTreeSet<NodeId>,
    ) -> Result<(), QuorumSetError> {
        if depth > MAX_QSET_NESTING {
            return Err(QuorumSetError::TooDeep);
        }
        let entries = self.validators.len() + self.inner_sets.len();
        if self.threshold < 1 || self.threshold as usize > entries {
            return Err(QuorumSetError::BadThreshold { threshold: self.threshold, entries });
        }
        let v_blocking_size = entries - self.threshold as usize + 1;
        if extra && (self.threshold as usize) < v_blocking_size {
            return Err(QuorumSetError::BelowMajority { threshold: self.threshold, entries });
        }
        for v in self.validators.iter() {
            if !seen.insert(*v) {
                return Err(QuorumSetError::Duplicate(*v));
            }
            if seen.len() > MAX_QSET_NODES {
                return Err(QuorumSetError::TooManyNodes);
            }
        }
        for inner in self.inner_sets.iter() {
            inner.check_level(depth + 1, extra, seen)?;
        }
        Ok(())
    }

    /// Calls `f` on every node named at any level.
    pub fn for_each_node(&self, f: &mut impl FnMut(&NodeId)) {
        for v in self.validators.iter() {
            f(v);
        }
        for inner in self.inner_sets.iter() {
            inner.for_each_node(f);
        }
    }

    pub fn nodes(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        self.for_each_node(&mut |n| out.push(*n));
        out
    }

    /// Does `nodes` contain a slice of this set: at least `threshold` entries,
    /// each a member of `nodes` or (for inner sets) itself satisfied?
    pub fn is_slice(&self, nodes: &impl Fn(&NodeId) -> bool) -> bool {
        let mut left = self.threshold;
        if left == 0 {
            return false;
        }
        for v in self.validators.iter() {
            if nodes(v) {
                left -= 1;
                if left == 0 {
                    return true;
                }
            }
        }
        for inner in self.inner_sets.iter() {
            if inner.is_slice(nodes) {
                left -= 1;
                if left == 0 {
                    return true;
                }
            }
        }
        false
    }

    /// Does `nodes` intersect every slice (a v-blocking set)?
    pub fn is_v_blocking(&self, nodes: &impl Fn(&NodeId) -> bool) -> bool {
        if self.threshold == 0 {
            return false; // the empty set has no v-blocking set
        }
        let entries = self.validators.len() + self.inner_sets.len();
        // Entries that must be blocked so no slice is left.
        let mut left = (1 + entries).saturating_sub(self.threshold as usize);
        for v in self.validators.iter() {
            if nodes(v) {
                left -= 1;
                if left == 0 {
                    return true;
                }
            }
        }
        for inner in self.inner_sets.iter() {
            if inner.is_v_blocking(nodes) {
                left -= 1;
                if left == 0 {
                    return true;
                }
            }
        }
        false
    }

    /// The node's nomination weight in this set: the chance, as a fraction of
    /// `u64::MAX`, that a random slice contains it (stellar-core `getNodeWeight`).
    pub fn node_weight(&self, node: &NodeId) -> u64 {
        let n = u128::from(self.threshold);
        let d = (self.validators.len() + self.inner_sets.len()) as u128;
        if d == 0 {
            return 0;
        }
        if self.validators.iter().any(|v| v == node) {
            return (u128::from(u64::MAX) * n / d) as u64;
        }
        for inner in self.inner_sets.iter() {
            let w = inner.node_weight(node);
            if w > 0 {
                return (u128::from(w) * n / d) as u64;
            }
        }
        0
    }

    /// A smallest set of nodes from `alive` whose failure (on top of every
    /// node not in `alive`) leaves this set v-blocked; empty when it already is
    /// (stellar-core `findClosestVBlocking`). Its size is how many more
    /// failures the node can survive plus one.
    pub fn closest_v_blocking(&self, alive: &impl Fn(&NodeId) -> bool, excluded: Option<&NodeId>) -> Vec<NodeId> {
        let entries = self.validators.len() + self.inner_sets.len();
        let mut left = (1 + entries).saturating_sub(self.threshold as usize);
        let mut direct = Vec::new();
        for v in self.validators.iter() {
            if Some(v) == excluded {
                continue;
            }
            if alive(v) {
                direct.push(*v);
            } else {
                left -= 1;
                if left == 0 {
                    return Vec::new();
                }
            }
        }
        let mut inner_sets: Vec<Vec<NodeId>> = Vec::new();
        for inner in self.inner_sets.iter() {
            let v = inner.closest_v_blocking(alive, excluded);
            if v.is_empty() {
                left -= 1;
                if left == 0 {
                    return Vec::new();
                }
            } else {
                inner_sets.push(v);
            }
        }
        // Stable sort keeps the inner sets' order among equal sizes, as a multiset does.
        inner_sets.sort_by_key(Vec::len);
        direct.truncate(left);
        left -= direct.len();
        for v in inner_sets {
            if left == 0 {
                break;
            }
            direct.extend(v);
            left -= 1;
        }
        direct
    }
}

/// Is the set of nodes whose latest statements pass `filter` a quorum for
/// `local`? Repeatedly drops nodes whose own slices are not inside the set,
/// then checks the local slice (stellar-core `LocalNode::isQuorum`).
pub fn is_quorum<'a, S: 'a, Q: std::borrow::Borrow<QuorumSet>>(
    local: &QuorumSet,
    statements: impl IntoIterator<Item = (&'a NodeId, &'a S)>,
    qset_of: impl Fn(&S) -> Option<Q>,
    filter: impl Fn(&S) -> bool,
) -> bool {
    let mut members: Vec<(&NodeId, Option<Q>)> =
        statements.into_iter().filter(|(_, s)| filter(s)).map(|(n, s)| (n, qset_of(s))).collect();
    loop {
        let before = members.len();
        let ids: std::collections::BTreeSet<NodeId> = members.iter().map(|(n, _)| **n).collect();
        members.retain(|(_, q)| q.as_ref().is_some_and(|q| q.borrow().is_slice(&|n| ids.contains(n))));
        if members.len() == before {
            break;
        }
    }
    let ids: std::collections::BTreeSet<NodeId> = members.iter().map(|(n, _)| **n).collect();
    local.is_slice(&|n| ids.contains(n))
}

/// Is the set of nodes whose latest statements pass `filter` v-blocking for `local`?
pub fn is_v_blocking<'a, S: 'a>(
    local: &QuorumSet,
    statements: impl IntoIterator<Item = (&'a NodeId, &'a S)>,
    filter: impl Fn(&S) -> bool,
) -> bool {
    let ids: std::collections::BTreeSet<NodeId> =
        statements.into_iter().filter(|(_, s)| filter(s)).map(|(n, _)| *n).collect();
    local.is_v_blocking(&|n| ids.contains(n))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::PublicKey;

    pub fn node(i: u8) -> NodeId {
        NodeId(PublicKey([i; 32]))
    }
    fn set(ids: &[u8]) -> impl Fn(&NodeId) -> bool {
        let v: Vec<NodeId> = ids.iter().map(|i| node(*i)).collect();
        move |n| v.contains(n)
    }
    fn qs(t: u32, v: &[u8], inner: Vec<QuorumSet>) -> QuorumSet {
        QuorumSet {
            threshold: t,
            validators: BoundedVec::try_from_vec(v.iter().map(|i| node(*i)).collect()).unwrap(),
            inner_sets: BoundedVec::try_from_vec(inner).unwrap(),
        }
    }

    #[test]
    fn slices_and_v_blocking_in_a_flat_set() {
        let q = qs(3, &[0, 1, 2, 3], vec![]);
        assert!(q.is_slice(&set(&[0, 1, 2])));
        assert!(!q.is_slice(&set(&[0, 1])));
        assert!(q.is_v_blocking(&set(&[2, 3])));
        assert!(!q.is_v_blocking(&set(&[3])));
        assert!(!q.is_v_blocking(&set(&[])));
    }

    #[test]
    fn slices_and_v_blocking_with_inner_sets() {
        // 2 of { a, {2 of b1 b2 b3}, {2 of c1 c2 c3} }
        let q = qs(2, &[1], vec![qs(2, &[10, 11, 12], vec![]), qs(2, &[20, 21, 22], vec![])]);
        assert!(q.is_slice(&set(&[1, 10, 11])));
        assert!(q.is_slice(&set(&[10, 11, 20, 22])));
        assert!(!q.is_slice(&set(&[1, 10, 20])));
        // Blocking needs 2 of the 3 entries: a plus one inner set (2 of its nodes).
        assert!(q.is_v_blocking(&set(&[1, 10, 11])));
        assert!(!q.is_v_blocking(&set(&[1, 10, 20])));
        assert!(q.is_v_blocking(&set(&[10, 12, 21, 22])));
    }

    #[test]
    fn sanity_rules() {
        assert_eq!(qs(3, &[1, 2, 3], vec![]).check_sanity(true), Ok(()));
        assert_eq!(
            qs(0, &[1], vec![]).check_sanity(false),
            Err(QuorumSetError::BadThreshold { threshold: 0, entries: 1 })
        );
        assert_eq!(
            qs(3, &[1, 2], vec![]).check_sanity(false),
            Err(QuorumSetError::BadThreshold { threshold: 3, entries: 2 })
        );
        assert_eq!(qs(2, &[1, 1], vec![]).check_sanity(false), Err(QuorumSetError::Duplicate(node(1))));
        assert_eq!(qs(1, &[1], vec![qs(1, &[1], vec![])]).check_sanity(false), Err(QuorumSetError::Duplicate(node(1))));
        assert_eq!(
            qs(2, &[1, 2, 3, 4], vec![]).check_sanity(true),
            Err(QuorumSetError::BelowMajority { threshold: 2, entries: 4 })
        );
        assert_eq!(qs(2, &[1, 2, 3, 4], vec![]).check_sanity(false), Ok(()));
        let mut deep = qs(1, &[50], vec![]);
        for i in 0..4u8 {
            deep = qs(1, &[i], vec![deep]);
        }
        assert_eq!(deep.check_sanity(false), Ok(()));
        assert_eq!(qs(1, &[60], vec![deep]).check_sanity(false), Err(QuorumSetError::TooDeep));
        let many: Vec<NodeId> = (0..1001u32)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_le_bytes());
                NodeId(PublicKey(k))
            })
            .collect();
        let halves = QuorumSet {
            threshold: 2,
            validators: BoundedVec::new(),
            inner_sets: BoundedVec::try_from_vec(vec![
                QuorumSet::flat(300, many[..600].to_vec()),
                QuorumSet::flat(300, many[600..].to_vec()),
            ])
            .unwrap(),
        };
        assert_eq!(halves.check_sanity(false), Err(QuorumSetError::TooManyNodes));
    }

    #[test]
    fn weights_follow_thresholds() {
        let q = qs(2, &[1, 2], vec![qs(1, &[3, 4], vec![])]);
        let w1 = q.node_weight(&node(1));
        assert_eq!(w1, (u128::from(u64::MAX) * 2 / 3) as u64);
        // Inner node: 1/2 within, times 2/3 above.
        let w3 = q.node_weight(&node(3));
        assert_eq!(w3, ((u128::from(u64::MAX) / 2) * 2 / 3) as u64);
        assert_eq!(q.node_weight(&node(9)), 0);
    }

    #[test]
    fn quorum_needs_every_members_slice() {
        use std::collections::BTreeMap;
        // 0..3 all use 3-of-4; 4 uses {4, 9} 2-of-2 and 9 is silent.
        let core = qs(3, &[0, 1, 2, 3], vec![]);
        let odd = qs(2, &[4, 9], vec![]);
        let mut st: BTreeMap<NodeId, QuorumSet> = BTreeMap::new();
        st.insert(node(0), core.clone());
        st.insert(node(1), core.clone());
        st.insert(node(2), core.clone());
        assert!(is_quorum(&core, st.iter(), |q| Some(q.clone()), |_| true));
        st.remove(&node(2));
        st.insert(node(4), odd.clone());
        assert!(!is_quorum(&core, st.iter(), |q| Some(q.clone()), |_| true));
        // A local set that 4 alone could satisfy is still not a quorum: 4's own slice fails.
        assert!(!is_quorum(&qs(1, &[4], vec![]), st.iter(), |q| Some(q.clone()), |_| true));
    }

    // Mirrors stellar-core's "v-blocking distance" test cases.
    #[test]
    fn v_blocking_distance() {
        let q = qs(2, &[0, 1, 2], vec![]);
        // All alive: blocking 2-of-3 needs 2 nodes.
        assert_eq!(q.closest_v_blocking(&set(&[0, 1, 2]), None).len(), 2);
        // One already gone: one more.
        assert_eq!(q.closest_v_blocking(&set(&[0, 1]), None).len(), 1);
        // Two gone: already blocked.
        assert_eq!(q.closest_v_blocking(&set(&[0]), None).len(), 0);
        // Excluding the local node from the count.
        assert_eq!(q.closest_v_blocking(&set(&[0, 1, 2]), Some(&node(0))).len(), 2);

        let q = qs(2, &[0, 1, 2], vec![qs(2, &[10, 11, 12], vec![]), qs(2, &[20, 21, 22], vec![])]);
        // 5 entries, threshold 2: 4 entries must be blocked; 3 validators + the cheapest inner (2 nodes).
        let alive = set(&[0, 1, 2, 10, 11, 12, 20, 21, 22]);
        assert_eq!(q.closest_v_blocking(&alive, None).len(), 5);
        // With 10 and 11 down, the first inner set is blocked already: 3 more.
        let alive = set(&[0, 1, 2, 12, 20, 21, 22]);
        assert_eq!(q.closest_v_blocking(&alive, None).len(), 3);
    }
}
