//! The validator directory as nodes serve it to phones (SPEC §2 `GetNodes`,
//! §7): pages of proven entries, validator-set members first so announced
//! nodes with low-sorting ids cannot push them out of the first page, cut by
//! bytes as well as by count so a page always fits its frame.

use super::state::{LedgerState, StateEntry, StateKey};
use crate::address::NodeId;
use crate::wire::{NodeInfo, MAX_NODES_PAGE_BYTES};

/// Most entries in one page (the `Nodes` message's bound).
pub const MAX_NODES_PER_PAGE: usize = 1000;

/// One page of the directory, proven against the previous ledger's header
/// (the newest a phone can verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPage {
    pub header_seq: u64,
    pub nodes: Vec<NodeInfo>,
    /// Where the next page starts; None on the last page.
    pub next: Option<NodeId>,
}

impl LedgerState {
    /// The page after `after` (from the start when None), at most
    /// `MAX_NODES_PER_PAGE` entries and `MAX_NODES_PAGE_BYTES` encoded bytes
    /// (at least one entry). None until a previous ledger is provable.
    pub fn directory_page(&self, after: Option<NodeId>) -> Option<DirectoryPage> {
        use std::ops::Bound::{Excluded, Unbounded};
        let header_seq = self.prev.as_ref()?.header.seq;
        // Walk the two groups in order from `after`, without sorting the
        // directory: the work is a page's, however many nodes are announced.
        // (The validator set is at most 1,000 nodes.)
        let (members, rest_from): (Vec<NodeId>, _) = match after {
            None => (self.reward_set.iter().copied().collect(), Unbounded),
            Some(a) if self.reward_set.contains(&a) => {
                (self.reward_set.range((Excluded(a), Unbounded)).copied().collect(), Unbounded)
            }
            Some(a) => (Vec::new(), Excluded(a)),
        };
        let others =
            self.nodes.range((rest_from, Unbounded)).map(|(id, _)| *id).filter(|id| !self.reward_set.contains(id));
        let (mut nodes, mut bytes, mut next) = (Vec::new(), 0usize, None);
        for id in members.into_iter().chain(others) {
            let id = &id;
            // An entry announced by the last ledger is not provable yet.
            let Some((_, Some(StateEntry::Node(entry)), proof)) = self.prove_previous(&StateKey::Node(*id)) else {
                continue;
            };
            let info = NodeInfo { node_id: *id, entry, proof };
            let size = crate::codec::to_bytes(&info).map_or(usize::MAX, |b| b.len());
            let full = nodes.len() >= MAX_NODES_PER_PAGE || bytes.saturating_add(size) > MAX_NODES_PAGE_BYTES;
            if full && !nodes.is_empty() {
                next = nodes.last().map(|n: &NodeInfo| n.node_id);
                break;
            }
            bytes = bytes.saturating_add(size);
            nodes.push(info);
        }
        Some(DirectoryPage { header_seq, nodes, next })
    }
}
