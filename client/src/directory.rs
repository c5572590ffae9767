//! The default node set (SPEC §7, from the whitepaper): nodes run by the
//! accounts nearest to the user in the trust graph (security circles,
//! breadth-first), then random picks among the highest PageRank of the
//! validators' quorum-set graph, personalized to the pinned validators so
//! announced sybil nodes that only point at each other gain no rank. Pure:
//! the shell fetches and proves the directory and circles, this ranks them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use watt_core::address::{AccountId, NodeId};
use watt_core::scp::QuorumSet;

/// A proven directory entry, as the ranking needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryNode {
    pub node_id: NodeId,
    pub owner: Option<AccountId>,
    pub quorum_set: QuorumSet,
}

/// Accounts in breadth-first order from `me` over security circles, at most
/// `limit` (excluding `me`).
pub fn trust_neighbours(me: &AccountId, circles: &BTreeMap<AccountId, Vec<AccountId>>, limit: usize) -> Vec<AccountId> {
    let mut seen = BTreeSet::from([*me]);
    let mut queue = VecDeque::from([*me]);
    let mut out = Vec::new();
    while let Some(a) = queue.pop_front() {
        for m in circles.get(&a).map(Vec::as_slice).unwrap_or(&[]) {
            if out.len() >= limit {
                return out;
            }
            if seen.insert(*m) {
                out.push(*m);
                queue.push_back(*m);
            }
        }
    }
    out
}

/// Personalized PageRank over "v trusts w" edges (w in v's quorum set), with
/// the random walk restarting only at `pinned`. Damping 0.85, fixed
/// iterations; integer-free but deterministic for equal inputs.
pub fn pagerank(nodes: &[DirectoryNode], pinned: &[NodeId]) -> BTreeMap<NodeId, f64> {
    let ids: BTreeSet<NodeId> = nodes.iter().map(|n| n.node_id).chain(pinned.iter().copied()).collect();
    let index: BTreeMap<NodeId, usize> = ids.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let n = ids.len();
    if n == 0 {
        return BTreeMap::new();
    }
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for node in nodes {
        let from = index[&node.node_id];
        let mut targets: BTreeSet<usize> =
            node.quorum_set.nodes().iter().filter_map(|t| index.get(t).copied()).collect();
        targets.remove(&from);
        out_edges[from] = targets.into_iter().collect();
    }
    let restart: Vec<usize> = pinned.iter().filter_map(|p| index.get(p).copied()).collect();
    let teleport = |rank: &mut [f64], mass: f64| {
        if restart.is_empty() {
            rank.iter_mut().for_each(|r| *r += mass / n as f64);
        } else {
            restart.iter().for_each(|&i| rank[i] += mass / restart.len() as f64);
        }
    };
    const DAMPING: f64 = 0.85;
    let mut rank = vec![0.0; n];
    teleport(&mut rank, 1.0);
    for _ in 0..50 {
        let mut next = vec![0.0; n];
        let mut dangling = 0.0;
        for (i, edges) in out_edges.iter().enumerate() {
            if edges.is_empty() {
                dangling += rank[i];
            } else {
                let share = rank[i] / edges.len() as f64;
                edges.iter().for_each(|&j| next[j] += DAMPING * share);
            }
        }
        teleport(&mut next, (1.0 - DAMPING) + DAMPING * dangling);
        rank = next;
    }
    ids.into_iter().zip(rank).collect()
}

/// A small deterministic generator for the random picks (splitmix64): the
/// shell seeds it from the OS; tests seed it with a constant.
pub struct Picker(watt_core::crypto::splitmix::SplitMix64);

impl Picker {
    pub fn new(seed: u64) -> Picker {
        Picker(watt_core::crypto::splitmix::SplitMix64::new(seed))
    }
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n.max(1) as u64) as usize
    }
}

/// The default set of `want` nodes: first nodes owned by trust-graph
/// neighbours (nearest first), then random picks among the top `2 × want`
/// (at least 8) by personalized PageRank; nodes the pinned validators cannot
/// reach have no rank and are never picked. `exclude` (demoted nodes) never appear.
pub fn default_node_set(
    neighbours: &[AccountId],
    directory: &[DirectoryNode],
    pinned: &[NodeId],
    exclude: &BTreeSet<NodeId>,
    want: usize,
    picker: &mut Picker,
) -> Vec<NodeId> {
    let mut chosen: Vec<NodeId> = Vec::new();
    for a in neighbours {
        for n in directory.iter().filter(|n| n.owner.as_ref() == Some(a)) {
            if chosen.len() < want.div_ceil(2) && !exclude.contains(&n.node_id) && !chosen.contains(&n.node_id) {
                chosen.push(n.node_id);
            }
        }
    }
    let ranks = pagerank(directory, pinned);
    let mut ranked: Vec<(NodeId, f64)> =
        ranks.into_iter().filter(|(id, r)| *r > 1e-12 && !exclude.contains(id) && !chosen.contains(id)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate((2 * want).max(8));
    while chosen.len() < want && !ranked.is_empty() {
        let (id, _) = ranked.remove(picker.below(ranked.len()));
        chosen.push(id);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use watt_core::crypto::PublicKey;

    fn node(i: u8) -> NodeId {
        NodeId(PublicKey([i; 32]))
    }
    fn acct(i: u8) -> AccountId {
        AccountId(PublicKey([i; 32]))
    }
    fn dir(i: u8, owner: Option<u8>, trusts: &[u8]) -> DirectoryNode {
        DirectoryNode {
            node_id: node(i),
            owner: owner.map(acct),
            quorum_set: QuorumSet::flat(1, trusts.iter().map(|t| node(*t)).collect()),
        }
    }

    #[test]
    fn breadth_first_neighbours_nearest_first_without_repeats() {
        let circles = BTreeMap::from([
            (acct(1), vec![acct(2), acct(3)]),
            (acct(2), vec![acct(1), acct(4)]),
            (acct(3), vec![acct(4), acct(5)]),
            (acct(4), vec![acct(6)]),
        ]);
        assert_eq!(trust_neighbours(&acct(1), &circles, 10), vec![acct(2), acct(3), acct(4), acct(5), acct(6)]);
        assert_eq!(trust_neighbours(&acct(1), &circles, 2), vec![acct(2), acct(3)]);
        assert!(trust_neighbours(&acct(9), &circles, 10).is_empty());
    }

    #[test]
    fn sybil_cluster_gains_no_rank_from_pointing_at_itself() {
        // Pinned core 1..=4 trusting each other; node 5 trusted by the core;
        // sybils 20..=29 trust each other (and the core), nobody trusts them.
        let mut d: Vec<DirectoryNode> = (1..=4).map(|i| dir(i, None, &[1, 2, 3, 4, 5])).collect();
        d.push(dir(5, None, &[1, 2]));
        let sybils: Vec<u8> = (20..30).collect();
        for s in &sybils {
            let mut t = sybils.clone();
            t.extend([1, 2]);
            d.push(dir(*s, None, &t));
        }
        let pinned: Vec<NodeId> = (1..=4).map(node).collect();
        let r = pagerank(&d, &pinned);
        let total: f64 = r.values().sum();
        assert!((total - 1.0).abs() < 1e-9, "rank is a distribution: {total}");
        for s in &sybils {
            assert!(r[&node(*s)] < 1e-12, "sybil {s} got rank {}", r[&node(*s)]);
        }
        assert!(r[&node(5)] > 0.01);
        // Unpersonalized, the sybils would collect most of the rank.
        let flat = pagerank(&d, &[]);
        let sybil_mass: f64 = sybils.iter().map(|s| flat[&node(*s)]).sum();
        assert!(sybil_mass > 0.3, "{sybil_mass}");
    }

    #[test]
    fn default_set_prefers_trust_graph_then_high_rank_and_skips_demoted() {
        let mut d: Vec<DirectoryNode> = (1..=6).map(|i| dir(i, None, &[1, 2, 3, 4, 5, 6])).collect();
        d.push(dir(40, Some(7), &[1]));
        for s in 50..60 {
            d.push(dir(s, None, &[50, 51, 52]));
        }
        let pinned: Vec<NodeId> = (1..=4).map(node).collect();
        let exclude = BTreeSet::from([node(2)]);
        for seed in 0..20 {
            let set = default_node_set(&[acct(7)], &d, &pinned, &exclude, 3, &mut Picker::new(seed));
            assert_eq!(set.len(), 3);
            assert_eq!(set[0], node(40), "the neighbour's node comes first");
            assert!(!set.contains(&node(2)), "demoted node chosen");
            assert!(set[1..].iter().all(|n| (1..=6).map(node).any(|c| c == *n)), "{set:?}");
            let mut uniq = set.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!(uniq.len(), 3);
        }
        // Different seeds spread the load over the top-ranked nodes.
        let picks: BTreeSet<NodeId> =
            (0..20).flat_map(|s| default_node_set(&[], &d, &pinned, &exclude, 2, &mut Picker::new(s))).collect();
        assert!(picks.len() >= 4, "{picks:?}");
    }
}
