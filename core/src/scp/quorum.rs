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
