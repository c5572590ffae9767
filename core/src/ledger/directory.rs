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
    /// The directory's order: validator-set members first, then by id.
    fn directory_key(&self, id: &NodeId) -> (bool, NodeId) {
        (!self.reward_set.contains(id), *id)
    }

    /// The page after `after` (from the start when None), at most
    /// `MAX_NODES_PER_PAGE` entries and `MAX_NODES_PAGE_BYTES` encoded bytes
    /// (at least one entry). None until a previous ledger is provable.
    pub fn directory_page(&self, after: Option<NodeId>) -> Option<DirectoryPage> {
        let mut ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        ids.sort_by_key(|id| self.directory_key(id));
        let start = after.map_or(0, |a| {
            let k = self.directory_key(&a);
            ids.partition_point(|id| self.directory_key(id) <= k)
        });
        let header_seq = self.prev.as_ref()?.header.seq;
        let (mut nodes, mut bytes, mut next) = (Vec::new(), 0usize, None);
        for id in &ids[start..] {
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
