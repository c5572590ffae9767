//! One consensus slot: its nomination and ballot protocols, and what they
//! share (the context handed in by [`super::Scp`] for each input).

use super::ballot::BallotState;
use super::driver::{Driver, TimerKind, Validity};
use super::nomination::NominationState;
use super::statement::{Ballot, Envelope, Pledges, Statement, Value};
use super::{DropReason, Effect, LocalNode, QuorumSet};
use crate::address::NodeId;
use crate::codec::BoundedVec;
use crate::crypto::Hash256;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// `(b, p, p', h, c)` of the ballot protocol, for tests and status pages.
pub type BallotView<'a> =
    (Option<&'a Ballot>, Option<&'a Ballot>, Option<&'a Ballot>, Option<&'a Ballot>, Option<&'a Ballot>);

/// Everything a slot may touch while handling one input.
pub(crate) struct Ctx<'a, D: Driver> {
    pub local: &'a LocalNode,
    pub driver: &'a mut D,
    pub qsets: &'a QsetCache,
    pub effects: &'a mut Vec<Effect>,
    pub now: u64,
    pub next_token: &'a mut u64,
}

/// Quorum sets by hash, and the singleton sets that EXTERNALIZE statements stand for.
#[derive(Default)]
pub(crate) struct QsetCache {
    pub by_hash: HashMap<Hash256, Arc<QuorumSet>>,
    singletons: std::sync::Mutex<HashMap<NodeId, Arc<QuorumSet>>>,
}

impl QsetCache {
    /// The quorum set a statement stands for. A node that externalized is
    /// done: its statement counts as a quorum of one (stellar-core does the same),
    /// so late nodes can follow it.
    pub fn of_statement(&self, st: &Statement) -> Option<Arc<QuorumSet>> {
        match &st.pledges {
            Pledges::Externalize { .. } => {
                let mut singles = self.singletons.lock().unwrap_or_else(|e| e.into_inner());
                Some(
                    singles
                        .entry(st.node_id)
                        .or_insert_with(|| {
                            Arc::new(QuorumSet {
                                threshold: 1,
                                validators: BoundedVec::from_iter_capped([st.node_id]),
                                inner_sets: BoundedVec::new(),
                            })
                        })
                        .clone(),
                )
            }
            other => self.by_hash.get(&quorum_set_hash(other)).cloned(),
        }
    }
}

fn quorum_set_hash(p: &Pledges) -> Hash256 {
    match p {
        Pledges::Nominate { quorum_set_hash, .. }
        | Pledges::Prepare { quorum_set_hash, .. }
        | Pledges::Confirm { quorum_set_hash, .. } => *quorum_set_hash,
        Pledges::Externalize { commit_quorum_set_hash, .. } => *commit_quorum_set_hash,
    }
}

pub struct Slot {
    pub index: u64,
    pub(crate) nom: NominationState,
    pub(crate) bal: BallotState,
    /// False once a statement with a not-fully-validated value was taken in:
    /// the slot then follows the network without emitting (stellar-core).
    pub(crate) fully_validated: bool,
    pub(crate) timers: BTreeMap<TimerKind, u64>,
}

impl Slot {
    pub(crate) fn new(index: u64) -> Slot {
        Slot {
            index,
            nom: NominationState::default(),
            bal: BallotState::default(),
            fully_validated: true,
            timers: BTreeMap::new(),
        }
    }

    pub(crate) fn process_envelope<D: Driver>(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        env: &Envelope,
        from_self: bool,
    ) -> Result<(), DropReason> {
        debug_assert_eq!(env.statement.slot_index, self.index);
        if matches!(env.statement.pledges, Pledges::Nominate { .. }) {
            self.process_nomination(ctx, env)
        } else {
            self.process_ballot_envelope(ctx, env, from_self)
        }
    }

    /// The lowest validity among a set of values (no values: invalid).
    pub(crate) fn validate_all<'v, D: Driver>(
        &self,
        ctx: &mut Ctx<'_, D>,
        values: impl IntoIterator<Item = &'v Value>,
        nomination: bool,
    ) -> Validity {
        let mut worst = None;
        for v in values {
            let r = ctx.driver.validate_value(self.index, v, nomination);
            worst = Some(worst.map_or(r, |w: Validity| w.min(r)));
            if r == Validity::Invalid {
                break;
            }
        }
        worst.unwrap_or(Validity::Invalid)
    }

    pub(crate) fn arm_timer<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, kind: TimerKind, round: u32) {
        *ctx.next_token += 1;
        let token = *ctx.next_token;
        self.timers.insert(kind, token);
        let at_ms = ctx.now.saturating_add(ctx.driver.timeout_ms(kind, round));
        ctx.effects.push(Effect::ArmTimer { slot: self.index, kind, at_ms, token });
    }

    pub(crate) fn cancel_timer<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, kind: TimerKind) {
        if self.timers.remove(&kind).is_some() {
            ctx.effects.push(Effect::CancelTimer { slot: self.index, kind });
        }
    }

    /// Signs a local statement (the envelope is then processed as our own).
    pub(crate) fn sign<D: Driver>(&self, ctx: &mut Ctx<'_, D>, pledges: Pledges) -> Envelope {
        ctx.driver.sign(Statement { node_id: ctx.local.id, slot_index: self.index, pledges })
    }

    pub(crate) fn emit<D: Driver>(&self, ctx: &mut Ctx<'_, D>, env: Envelope) {
        ctx.effects.push(Effect::Broadcast(env));
    }

    /// The envelopes this slot holds from every node: latest nomination and
    /// latest ballot statement (for re-broadcast and catch-up of peers).
    pub fn latest_envelopes(&self) -> Vec<Envelope> {
        self.nom.latest.values().chain(self.bal.latest.values()).cloned().collect()
    }

    /// The local node's own latest envelopes (nomination, ballot), for re-broadcast.
    pub fn own_envelopes(&self, local: &NodeId) -> Vec<Envelope> {
        self.nom.latest.get(local).into_iter().chain(self.bal.latest.get(local)).cloned().collect()
    }

    pub fn externalized_value(&self) -> Option<&Value> {
        self.bal.externalized_value()
    }

    /// The CONFIRM and EXTERNALIZE envelopes for the externalized value: the
    /// raw material of an externalize proof (SPEC §4).
    pub fn commit_envelopes(&self) -> Vec<Envelope> {
        let Some(v) = self.externalized_value() else { return Vec::new() };
        self.bal
            .latest
            .values()
            .filter(|e| match &e.statement.pledges {
                Pledges::Confirm { ballot, .. } => &ballot.value == v,
                Pledges::Externalize { commit, .. } => &commit.value == v,
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// Checks the ballot protocol's invariants; tests call it after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.bal.check_invariants()
    }

    /// The ballot protocol's `(b, p, p', h, c)`.
    pub fn ballot_state(&self) -> BallotView<'_> {
        (self.bal.b.as_ref(), self.bal.p.as_ref(), self.bal.p_prime.as_ref(), self.bal.h.as_ref(), self.bal.c.as_ref())
    }

    pub fn nomination_round(&self) -> u32 {
        self.nom.round
    }
}
