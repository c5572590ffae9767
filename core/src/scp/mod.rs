//! The Stellar Consensus Protocol (SPEC §4) as a sans-IO state machine.
//!
//! [`Scp`] never touches a socket or a clock. The shell feeds it received
//! envelopes, timer expiries and values to nominate, each with `now` (ms), and
//! drains [`Effect`]s: envelopes to broadcast, timers to arm or cancel, values
//! externalized. Structure follows stellar-core `src/scp`: a [`Slot`] per
//! ledger holds a nomination and a ballot protocol; quorum math is in
//! [`quorum`]; everything application-specific goes through one [`Driver`].

pub mod ballot;
pub mod driver;
pub mod intersection;
pub mod nomination;
pub mod proof;
pub mod quorum;
#[cfg(any(test, feature = "testkit"))]
pub mod sim;
pub mod slot;
pub mod statement;

#[cfg(test)]
mod tests;

pub use ballot::Phase;
pub use driver::{Driver, TimerKind, Validity};
pub use quorum::QuorumSet;
pub use slot::Slot;
pub use statement::{Ballot, Envelope, Pledges, Statement, Value};

use crate::address::NodeId;
use crate::crypto::Hash256;
use slot::{Ctx, QsetCache};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the local node is.
#[derive(Debug, Clone)]
pub struct LocalNode {
    pub id: NodeId,
    pub qset: QuorumSet,
    pub qset_hash: Hash256,
}

/// What the shell must do after an input.
// Effects are drained at once, never stored in bulk: boxing the envelope
// would cost an allocation per statement for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this envelope to every peer.
    Broadcast(Envelope),
    /// Call [`Scp::timer_fired`] with this token at `at_ms` (replaces any timer
    /// of the same slot and kind).
    ArmTimer {
        slot: u64,
        kind: TimerKind,
        at_ms: u64,
        token: u64,
    },
    CancelTimer {
        slot: u64,
        kind: TimerKind,
    },
    /// Consensus reached on `value` for `slot`.
    Externalized {
        slot: u64,
        value: Value,
    },
}

/// Why an envelope was dropped; counted in [`Scp::drops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    BadSignature,
    /// An impossible statement (counters out of order, unsorted sets, ...).
    Insane,
    /// The sender's quorum set is unknown (the shell should fetch it and retry).
    UnknownQuorumSet,
    /// The sender's quorum set breaks the sanity rules.
    BadQuorumSet,
    /// The sender is outside the local node's transitive quorum.
    NotInQuorum,
    /// Not newer than what the node already has from that sender.
    Stale,
    InvalidValue,
    /// The slot is below the purge mark.
    OldSlot,
    /// Claims to come from the local node.
    FromSelf,
}

pub struct Scp<D: Driver> {
    local: LocalNode,
    driver: D,
    slots: BTreeMap<u64, Slot>,
    qsets: QsetCache,
    /// Nodes' latest claimed quorum-set hashes (for the transitive quorum).
    node_qsets: BTreeMap<NodeId, Hash256>,
    transitive: Option<BTreeSet<NodeId>>,
    effects: Vec<Effect>,
    next_token: u64,
    low_slot: u64,
    drops: BTreeMap<DropReason, u64>,
}

impl<D: Driver> Scp<D> {
    pub fn new(local_node: NodeId, quorum_set: QuorumSet, driver: D) -> Scp<D> {
        let qset_hash = quorum_set.hash();
        let mut qsets = QsetCache::default();
        qsets.by_hash.insert(qset_hash, Arc::new(quorum_set.clone()));
        Scp {
            local: LocalNode { id: local_node, qset: quorum_set, qset_hash },
            driver,
            slots: BTreeMap::new(),
            qsets,
            node_qsets: BTreeMap::new(),
            transitive: None,
            effects: Vec::new(),
            next_token: 0,
            low_slot: 0,
            drops: BTreeMap::new(),
        }
    }

    pub fn local(&self) -> &LocalNode {
        &self.local
    }
    pub fn driver(&self) -> &D {
        &self.driver
    }
    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }
    pub fn slot(&self, index: u64) -> Option<&Slot> {
        self.slots.get(&index)
    }
    pub fn drops(&self) -> &BTreeMap<DropReason, u64> {
        &self.drops
    }
    /// Effects produced so far; the shell acts on them in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Starts (or restarts) nominating `value` for `slot`; `prev` is the value
    /// externalized for the previous slot (leader selection depends on it).
    pub fn nominate(&mut self, slot: u64, value: Value, prev: Value, now: u64) -> bool {
        if slot < self.low_slot {
            return false;
        }
        self.with_slot(slot, now, |s, ctx| s.nominate(ctx, value, prev, false))
    }

    /// Stops nominating for `slot` (e.g. the ledger closed from catch-up).
    pub fn stop_nomination(&mut self, slot: u64, now: u64) {
        if self.slots.contains_key(&slot) {
            self.with_slot(slot, now, |s, ctx| s.stop_nomination(ctx));
        }
    }

    /// A timer armed by [`Effect::ArmTimer`] went off. Stale tokens are ignored.
    pub fn timer_fired(&mut self, slot: u64, kind: TimerKind, token: u64, now: u64) {
        let Some(s) = self.slots.get(&slot) else { return };
        if s.timers.get(&kind) != Some(&token) {
            return;
        }
        self.with_slot(slot, now, |s, ctx| match kind {
            TimerKind::Nomination => {
                s.timers.remove(&TimerKind::Nomination);
                if let (Some(v), Some(p)) = (s.nom.own_value.clone(), s.nom.previous_value.clone()) {
                    s.nominate(ctx, v, p, true);
                }
            }
            TimerKind::Ballot => s.ballot_timer_expired(ctx),
        });
    }

    /// Handles an envelope from the network. Every refusal is counted by reason.
    pub fn receive_envelope(&mut self, env: &Envelope, now: u64) -> Result<(), DropReason> {
        let r = self.check_and_process(env, now);
        if let Err(reason) = r {
            *self.drops.entry(reason).or_insert(0) += 1;
        }
        r
    }

    fn check_and_process(&mut self, env: &Envelope, now: u64) -> Result<(), DropReason> {
        let st = &env.statement;
        if st.slot_index < self.low_slot {
            return Err(DropReason::OldSlot);
        }
        if st.node_id == self.local.id {
            return Err(DropReason::FromSelf);
        }
        if !self.in_transitive_quorum(&st.node_id) {
            return Err(DropReason::NotInQuorum);
        }
        if !self.driver.verify(env) {
            return Err(DropReason::BadSignature);
        }
        if !matches!(st.pledges, Pledges::Externalize { .. }) {
            let hash = st.quorum_set_hash();
            if !self.qsets.by_hash.contains_key(&hash) {
                let q = self.driver.quorum_set(&hash).ok_or(DropReason::UnknownQuorumSet)?;
                if q.hash() != hash {
                    return Err(DropReason::UnknownQuorumSet);
                }
                q.check_sanity(false).map_err(|_| DropReason::BadQuorumSet)?;
                self.qsets.by_hash.insert(hash, Arc::new(q));
            }
            if self.node_qsets.insert(st.node_id, hash) != Some(hash) {
                self.transitive = None;
            }
        }
        let slot = st.slot_index;
        let env = env.clone();
        self.with_slot(slot, now, |s, ctx| s.process_envelope(ctx, &env, false))
    }

    /// Nodes reachable from the local quorum set through the quorum sets
    /// they announced.
    fn in_transitive_quorum(&mut self, node: &NodeId) -> bool {
        if self.transitive.is_none() {
            let mut seen: BTreeSet<NodeId> = BTreeSet::new();
            let mut todo: Vec<NodeId> = self.local.qset.nodes();
            while let Some(n) = todo.pop() {
                if !seen.insert(n) {
                    continue;
                }
                if let Some(q) = self.node_qsets.get(&n).and_then(|h| self.qsets.by_hash.get(h)) {
                    todo.extend(q.nodes().into_iter().filter(|m| !seen.contains(m)));
                }
            }
            self.transitive = Some(seen);
        }
        self.transitive.as_ref().is_some_and(|t| t.contains(node))
    }

    fn with_slot<R>(&mut self, index: u64, now: u64, f: impl FnOnce(&mut Slot, &mut Ctx<'_, D>) -> R) -> R {
        let slot = self.slots.entry(index).or_insert_with(|| Slot::new(index));
        let mut ctx = Ctx {
            local: &self.local,
            driver: &mut self.driver,
            qsets: &self.qsets,
            effects: &mut self.effects,
            now,
            next_token: &mut self.next_token,
        };
        f(slot, &mut ctx)
    }

    /// Restores the local node's own last statements for `slot` after a
    /// restart (what it persisted before broadcasting them).
    pub fn restore_own(&mut self, envs: &[Envelope]) -> Result<(), DropReason> {
        for env in envs {
            if env.statement.node_id != self.local.id || !self.driver.verify(env) {
                return Err(DropReason::BadSignature);
            }
            let index = env.statement.slot_index;
            let slot = self.slots.entry(index).or_insert_with(|| Slot::new(index));
            match &env.statement.pledges {
                Pledges::Nominate { votes, .. } => {
                    slot.restore_own_nomination(env)?;
                    // One value per proposer holds across a restart: those
                    // whose value it votes for have given theirs.
                    let mut nodes = self.local.qset.nodes();
                    nodes.push(self.local.id);
                    for v in votes.iter() {
                        if let Some(n) = nodes.iter().find(|n| self.driver.proposed_by(index, v, n)) {
                            slot.nom.taken_from.insert(*n);
                        }
                    }
                }
                _ => slot.restore_own_ballot(env)?,
            }
        }
        Ok(())
    }

    /// Forgets slots below `slot` (after they are closed and stored).
    pub fn purge_below(&mut self, slot: u64) {
        self.low_slot = self.low_slot.max(slot);
        self.slots = self.slots.split_off(&slot);
    }

    pub fn externalized(&self, slot: u64) -> Option<&Value> {
        self.slots.get(&slot).and_then(|s| s.externalized_value())
    }

    /// The latest envelopes of a slot from every node (for peers catching up).
    pub fn slot_envelopes(&self, slot: u64) -> Vec<Envelope> {
        self.slots.get(&slot).map(|s| s.latest_envelopes()).unwrap_or_default()
    }

    /// The local node's latest envelopes for `slot` (the shell re-broadcasts
    /// them periodically so lost messages do not stall the network).
    pub fn own_envelopes(&self, slot: u64) -> Vec<Envelope> {
        self.slots.get(&slot).map(|s| s.own_envelopes(&self.local.id)).unwrap_or_default()
    }

    /// Slots the node holds, lowest first.
    pub fn slot_indices(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        for s in self.slots.values() {
            s.check_invariants().map_err(|e| format!("slot {}: {e}", s.index))?;
        }
        Ok(())
    }
}
