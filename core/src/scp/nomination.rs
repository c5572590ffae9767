//! Nomination (draft-mazieres-dinrg-scp §3.4, stellar-core `NominationProtocol`):
//! round leaders by priority hash, NOMINATE votes and accepts by federated
//! voting, confirmed candidates combined through the driver and handed to
//! the ballot protocol.

use super::driver::{Driver, TimerKind, Validity};
use super::quorum::{is_quorum, is_v_blocking};
use super::slot::{Ctx, Slot};
use super::statement::{Envelope, Pledges, Value, MAX_NOMINATED};
use super::DropReason;
use crate::address::NodeId;
use crate::codec::BoundedVec;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(crate) struct NominationState {
    pub round: u32,
    pub votes: BTreeSet<Value>,
    pub accepted: BTreeSet<Value>,
    pub candidates: BTreeSet<Value>,
    pub latest: BTreeMap<NodeId, Envelope>,
    pub last_emitted: Option<Envelope>,
    pub round_leaders: BTreeSet<NodeId>,
    /// Proposers (round leaders, and the local node) whose value this node
    /// already votes for: one each per slot. Votes only grow and are capped
    /// at `MAX_NOMINATED`, so a leader with a new value in every statement,
    /// or a new own value every round, would fill them and leave no room
    /// for the value a quorum could agree on (found by the simulator).
    pub taken_from: BTreeSet<NodeId>,
    pub started: bool,
    pub latest_composite: Option<Value>,
    pub previous_value: Option<Value>,
    pub own_value: Option<Value>,
}

fn nomination_sets(env: &Envelope) -> Option<(&[Value], &[Value])> {
    match &env.statement.pledges {
        Pledges::Nominate { votes, accepted, .. } => Some((votes.as_slice(), accepted.as_slice())),
        _ => None,
    }
}

fn strictly_sorted(v: &[Value]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// `new` is newer when it keeps every old vote and accept and adds at least one.
fn is_newer_nomination(old: &Envelope, new: &Envelope) -> bool {
    let (Some((ov, oa)), Some((nv, na))) = (nomination_sets(old), nomination_sets(new)) else { return false };
    let superset = |o: &[Value], n: &[Value]| o.iter().all(|x| n.binary_search(x).is_ok());
    superset(ov, nv) && superset(oa, na) && (nv.len() > ov.len() || na.len() > oa.len())
}

impl Slot {
    pub(crate) fn process_nomination<D: Driver>(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        env: &Envelope,
    ) -> Result<(), DropReason> {
        let Some((votes, accepted)) = nomination_sets(env) else { return Err(DropReason::Insane) };
        if !strictly_sorted(votes) || !strictly_sorted(accepted) || votes.len() + accepted.len() == 0 {
            return Err(DropReason::Insane);
        }
        let node = env.statement.node_id;
        if let Some(old) = self.nom.latest.get(&node) {
            if !is_newer_nomination(old, env) {
                return Err(DropReason::Stale);
            }
        }
        self.nom.latest.insert(node, env.clone());
        if !self.nom.started {
            return Ok(());
        }

        let mut modified = false;
        let mut new_candidates = false;
        let local_qset = ctx.local.qset.clone();

        // Promote votes to accepted.
        for v in votes {
            if self.nom.accepted.contains(v) {
                continue;
            }
            let voted = |e: &Envelope| nomination_sets(e).is_some_and(|(vs, _)| vs.binary_search(v).is_ok());
            let acc = |e: &Envelope| nomination_sets(e).is_some_and(|(_, a)| a.binary_search(v).is_ok());
            if self.federated_accept_nom(ctx, &local_qset, voted, acc) {
                match ctx.driver.validate_value(self.index, v, true) {
                    Validity::FullyValid => {
                        let room = self.nom.votes.contains(v) || self.nom.votes.len() < MAX_NOMINATED;
                        if room && self.nom.accepted.len() < MAX_NOMINATED {
                            self.nom.accepted.insert(v.clone());
                            self.nom.votes.insert(v.clone());
                            modified = true;
                        }
                    }
                    _ => {
                        // It made it far: vote for a valid variation if there is one.
                        if let Some(alt) = ctx.driver.extract_valid_value(self.index, v) {
                            if self.nom.votes.len() < MAX_NOMINATED && self.nom.votes.insert(alt) {
                                modified = true;
                            }
                        }
                    }
                }
            }
        }

        // Promote accepted to candidates.
        let accepted_now: Vec<Value> = self.nom.accepted.iter().cloned().collect();
        for a in accepted_now {
            if self.nom.candidates.contains(&a) {
                continue;
            }
            let acc = |e: &Envelope| nomination_sets(e).is_some_and(|(_, x)| x.binary_search(&a).is_ok());
            if is_quorum(&local_qset, self.nom.latest.iter(), |e: &Envelope| ctx.qsets.of_statement(&e.statement), acc)
            {
                self.nom.candidates.insert(a);
                new_candidates = true;
            }
        }

        // Take the round leaders' votes while there are no candidates yet.
        if self.nom.candidates.is_empty() && self.nom.round_leaders.contains(&node) {
            if let Some(new_vote) = self.new_value_from_nomination(ctx, env) {
                modified |= self.take_vote(node, new_vote);
            }
        }

        if modified {
            self.emit_nomination(ctx);
        }
        if new_candidates {
            if let Some(composite) = ctx.driver.combine_candidates(self.index, &self.nom.candidates) {
                self.nom.latest_composite = Some(composite.clone());
                self.bump_state(ctx, composite, false);
            }
        }
        Ok(())
    }

    fn federated_accept_nom<D: Driver>(
        &self,
        ctx: &Ctx<'_, D>,
        local_qset: &super::QuorumSet,
        voted: impl Fn(&Envelope) -> bool,
        accepted: impl Fn(&Envelope) -> bool,
    ) -> bool {
        if is_v_blocking(local_qset, self.nom.latest.iter(), &accepted) {
            return true;
        }
        is_quorum(
            local_qset,
            self.nom.latest.iter(),
            |e: &Envelope| ctx.qsets.of_statement(&e.statement),
            |e| accepted(e) || voted(e),
        )
    }

    /// Starts (or, on a timeout, continues) nominating `value` for this slot.
    pub(crate) fn nominate<D: Driver>(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        value: Value,
        prev: Value,
        timed_out: bool,
    ) -> bool {
        if timed_out && !self.nom.started {
            return false; // nomination was stopped meanwhile
        }
        self.nom.started = true;
        self.nom.previous_value = Some(prev);
        self.nom.own_value = Some(value.clone());
        self.nom.round = self.nom.round.saturating_add(1);
        self.update_round_leaders(ctx);
        // A round that elects nobody (every node drew above its weight) is
        // skipped at once, not waited out: every validator skips the same ones.
        while self.nom.round_leaders.is_empty() && self.nom.round < MAX_SKIPPED_ROUNDS {
            self.nom.round += 1;
            self.update_round_leaders(ctx);
        }

        let mut updated = false;
        let local = ctx.local.id;
        if self.nom.round_leaders.contains(&local) && !self.nom.taken_from.contains(&local) {
            updated |= self.take_vote(local, value);
        }
        let leaders: Vec<NodeId> = self.nom.round_leaders.iter().copied().collect();
        for leader in leaders {
            if let Some(env) = self.nom.latest.get(&leader).cloned() {
                if let Some(v) = self.new_value_from_nomination(ctx, &env) {
                    updated |= self.take_vote(leader, v);
                }
            }
        }
        let round = self.nom.round;
        self.arm_timer(ctx, TimerKind::Nomination, round);
        if updated {
            self.emit_nomination(ctx);
        }
        updated
    }

    /// Restores nomination votes and accepts from the node's own last NOMINATE.
    pub(crate) fn restore_own_nomination(&mut self, env: &Envelope) -> Result<(), DropReason> {
        let (votes, accepted) = nomination_sets(env).ok_or(DropReason::Insane)?;
        self.nom.votes = votes.iter().cloned().collect();
        self.nom.accepted = accepted.iter().cloned().collect();
        self.nom.latest.insert(env.statement.node_id, env.clone());
        self.nom.last_emitted = Some(env.clone());
        Ok(())
    }

    pub(crate) fn stop_nomination<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.nom.started = false;
        self.cancel_timer(ctx, TimerKind::Nomination);
    }

    /// The round's leaders, added to those of earlier rounds. Every node,
    /// the local one too, is weighed by its place in the local quorum set,
    /// so validators that share a quorum set elect the same leaders
    /// (stellar-core's newer application weights do the same). The classic
    /// rule gave the local node full weight, so a node that others found
    /// ineligible still led itself: with four validators about one round in
    /// nine split three ways, elected no value and ran a timeout late.
    fn update_round_leaders<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        let qset = ctx.local.qset.clone();
        let mut nodes = qset.nodes();
        // A node outside its own quorum set (configuration allows it) is
        // still weighed, in full as under the classic rule: elected by none
        // of its own weight, it would never propose at all.
        if !nodes.contains(&ctx.local.id) {
            nodes.push(ctx.local.id);
        }
        let mut leaders = BTreeSet::new();
        let mut top = 0;
        for n in nodes {
            let w = self.node_priority(ctx, &n, &qset);
            if w > top {
                top = w;
                leaders.clear();
            }
            if w == top && w > 0 {
                leaders.insert(n);
            }
        }
        self.nom.round_leaders.extend(leaders);
    }

    fn node_priority<D: Driver>(&self, ctx: &mut Ctx<'_, D>, node: &NodeId, qset: &super::QuorumSet) -> u64 {
        let weight = match qset.node_weight(node) {
            0 if *node == ctx.local.id => u64::MAX,
            w => w,
        };
        let prev = self.nom.previous_value.clone().unwrap_or_else(empty_value);
        if ctx.driver.hash_node(self.index, &prev, false, self.nom.round, node) <= weight {
            ctx.driver.hash_node(self.index, &prev, true, self.nom.round, node)
        } else {
            0
        }
    }

    /// Votes for `value`, the one value taken from `proposer` this slot.
    fn take_vote(&mut self, proposer: NodeId, value: Value) -> bool {
        if self.nom.votes.len() >= MAX_NOMINATED || !self.nom.taken_from.insert(proposer) {
            return false;
        }
        self.nom.votes.insert(value)
    }

    /// The highest-hash valid value of a leader's statement that we do not
    /// vote for yet; none once one of its values was taken this slot.
    fn new_value_from_nomination<D: Driver>(&self, ctx: &mut Ctx<'_, D>, env: &Envelope) -> Option<Value> {
        let leader = env.statement.node_id;
        if self.nom.taken_from.contains(&leader) {
            return None;
        }
        let (votes, accepted) = nomination_sets(env)?;
        let prev = self.nom.previous_value.clone().unwrap_or_else(empty_value);
        let mut best: Option<(u64, Value)> = None;
        for v in accepted.iter().chain(votes.iter()) {
            if !ctx.driver.proposed_by(self.index, v, &leader) {
                continue;
            }
            let candidate = match ctx.driver.validate_value(self.index, v, true) {
                Validity::FullyValid => Some(v.clone()),
                _ => ctx.driver.extract_valid_value(self.index, v),
            };
            let Some(candidate) = candidate else { continue };
            if self.nom.votes.contains(&candidate) {
                continue;
            }
            let h = ctx.driver.hash_value(self.index, &prev, self.nom.round, &candidate);
            if best.as_ref().is_none_or(|(bh, _)| h >= *bh) {
                best = Some((h, candidate));
            }
        }
        best.map(|(_, v)| v)
    }

    fn emit_nomination<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        let pledges = Pledges::Nominate {
            quorum_set_hash: ctx.local.qset_hash,
            // Both sets grow only while below MAX_NOMINATED (process_nomination, nominate).
            votes: BoundedVec::from_iter_capped(self.nom.votes.iter().cloned()),
            accepted: BoundedVec::from_iter_capped(self.nom.accepted.iter().cloned()),
        };
        let env = self.sign(ctx, pledges);
        if self.process_nomination(ctx, &env).is_ok() {
            let newer = self.nom.last_emitted.as_ref().is_none_or(|last| is_newer_nomination(last, &env));
            if newer {
                self.nom.last_emitted = Some(env.clone());
                if self.fully_validated {
                    self.emit(ctx, env);
                }
            }
        }
    }
}

/// Rounds skipped at most while none elects a leader (each elects nobody
/// with probability `Π (1 - weight)`, 1/256 for a 3-of-4 set).
const MAX_SKIPPED_ROUNDS: u32 = 64;

fn empty_value() -> Value {
    Value(crate::codec::BoundedBytes::new())
}
