//! The ballot protocol (draft-mazieres-dinrg-scp §3.5, stellar-core
//! `BallotProtocol`): PREPARE, CONFIRM and EXTERNALIZE with the ballot
//! state `b`, `p`, `p'`, `h`, `c`, federated voting on "prepare" and "commit",
//! counter bumps on v-blocking sets and the ballot timer.

use super::driver::{Driver, TimerKind, Validity};
use super::quorum::{is_quorum, is_v_blocking};
use super::slot::{Ctx, Slot};
use super::statement::{Ballot, Envelope, Pledges, Statement, Value};
use super::{DropReason, Effect};
use crate::address::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Guard against runaway self-recursion while advancing a slot.
const MAX_ADVANCE_RECURSION: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Prepare,
    Confirm,
    Externalize,
}

#[derive(Default)]
pub(crate) struct BallotState {
    pub phase: Phase,
    /// `b`: the current ballot.
    pub b: Option<Ballot>,
    /// `p` and `p'`: the two highest accepted-prepared ballots, incompatible.
    pub p: Option<Ballot>,
    pub p_prime: Option<Ballot>,
    /// `h` and `c`: the highest and lowest ballots of the commit range.
    pub h: Option<Ballot>,
    pub c: Option<Ballot>,
    pub latest: BTreeMap<NodeId, Envelope>,
    /// `z`: the value confirmed prepared (or accepted committed), used on bumps.
    pub value_override: Option<Value>,
    pub heard_from_quorum: bool,
    pub level: u32,
    pub last_envelope: Option<Envelope>,
    pub last_emitted: Option<Envelope>,
}

fn compatible(a: &Ballot, b: &Ballot) -> bool {
    a.value == b.value
}
fn less_and_compatible(a: &Ballot, b: &Ballot) -> bool {
    a <= b && compatible(a, b)
}
fn less_and_incompatible(a: &Ballot, b: &Ballot) -> bool {
    a <= b && !compatible(a, b)
}
fn ballot(counter: u32, value: &Value) -> Ballot {
    Ballot { counter, value: value.clone() }
}

fn type_rank(p: &Pledges) -> u8 {
    match p {
        Pledges::Nominate { .. } => 0,
        Pledges::Prepare { .. } => 1,
        Pledges::Confirm { .. } => 2,
        Pledges::Externalize { .. } => 3,
    }
}

/// The counter a statement is working at (EXTERNALIZE: infinity).
fn statement_counter(p: &Pledges) -> u32 {
    match p {
        Pledges::Prepare { ballot, .. } => ballot.counter,
        Pledges::Confirm { ballot, .. } => ballot.counter,
        Pledges::Externalize { .. } => u32::MAX,
        Pledges::Nominate { .. } => 0,
    }
}

/// The ballot a statement is working on (for EXTERNALIZE-phase filtering).
fn working_ballot(p: &Pledges) -> Option<Ballot> {
    match p {
        Pledges::Prepare { ballot, .. } => Some(ballot.clone()),
        Pledges::Confirm { ballot: b, n_commit, .. } => Some(ballot(*n_commit, &b.value)),
        Pledges::Externalize { commit, .. } => Some(commit.clone()),
        Pledges::Nominate { .. } => None,
    }
}

fn is_newer_ballot_statement(old: &Pledges, new: &Pledges) -> bool {
    let (ro, rn) = (type_rank(old), type_rank(new));
    if ro != rn {
        return ro < rn;
    }
    match (old, new) {
        (Pledges::Externalize { .. }, Pledges::Externalize { .. }) => false,
        (
            Pledges::Confirm { ballot: ob, n_prepared: op, n_h: oh, .. },
            Pledges::Confirm { ballot: nb, n_prepared: np, n_h: nh, .. },
        ) => (ob, op, oh) < (nb, np, nh),
        (
            Pledges::Prepare { ballot: ob, prepared: op, prepared_prime: opp, n_h: oh, .. },
            Pledges::Prepare { ballot: nb, prepared: np, prepared_prime: npp, n_h: nh, .. },
        ) => (ob, op, opp, oh) < (nb, np, npp, nh),
        _ => false,
    }
}

/// Impossible statements are refused (stellar-core `isStatementSane`).
fn is_statement_sane(st: &Statement, from_self: bool) -> bool {
    match &st.pledges {
        Pledges::Prepare { ballot, prepared, prepared_prime, n_c, n_h, .. } => {
            // Only the local node may hold b = 0, and it never emits it.
            let mut ok = from_self || ballot.counter > 0;
            ok &= match (prepared_prime, prepared) {
                (Some(pp), Some(p)) => less_and_incompatible(pp, p),
                _ => true,
            };
            ok &= *n_h == 0 || prepared.as_ref().is_some_and(|p| *n_h <= p.counter);
            ok &= *n_c == 0 || (*n_h != 0 && ballot.counter >= *n_h && *n_h >= *n_c);
            ok
        }
        // Accepted commits and prepared ballots count from 1: a CONFIRM naming
        // counter 0 for either says nothing real (fuzzing found it could move
        // the local node to CONFIRM without a prepared ballot).
        Pledges::Confirm { ballot, n_prepared, n_commit, n_h, .. } => {
            ballot.counter > 0 && *n_prepared > 0 && *n_commit > 0 && *n_h <= ballot.counter && *n_commit <= *n_h
        }
        Pledges::Externalize { commit, n_h, .. } => commit.counter > 0 && *n_h >= commit.counter,
        Pledges::Nominate { .. } => false,
    }
}

fn statement_values(p: &Pledges) -> Vec<&Value> {
    match p {
        Pledges::Prepare { ballot, prepared, prepared_prime, .. } => {
            let mut v = Vec::new();
            if ballot.counter != 0 {
                v.push(&ballot.value);
            }
            if let Some(x) = prepared {
                v.push(&x.value);
            }
            if let Some(x) = prepared_prime {
                v.push(&x.value);
            }
            v
        }
        Pledges::Confirm { ballot, .. } => vec![&ballot.value],
        Pledges::Externalize { commit, .. } => vec![&commit.value],
        Pledges::Nominate { .. } => Vec::new(),
    }
}

/// Does the statement vote (or more) to prepare `b`?
fn votes_prepared(b: &Ballot, p: &Pledges) -> bool {
    match p {
        Pledges::Prepare { ballot, .. } => less_and_compatible(b, ballot),
        Pledges::Confirm { ballot, .. } => compatible(b, ballot),
        Pledges::Externalize { commit, .. } => compatible(b, commit),
        Pledges::Nominate { .. } => false,
    }
}

/// Does the statement accept `b` as prepared?
fn accepts_prepared(b: &Ballot, p: &Pledges) -> bool {
    match p {
        Pledges::Prepare { prepared, prepared_prime, .. } => {
            prepared.as_ref().is_some_and(|x| less_and_compatible(b, x))
                || prepared_prime.as_ref().is_some_and(|x| less_and_compatible(b, x))
        }
        Pledges::Confirm { ballot: c, n_prepared, .. } => less_and_compatible(b, &ballot(*n_prepared, &c.value)),
        Pledges::Externalize { commit, .. } => compatible(b, commit),
        Pledges::Nominate { .. } => false,
    }
}

/// Does the statement vote to commit every ballot of `interval` with `b`'s value?
fn votes_commit(b: &Ballot, interval: (u32, u32), p: &Pledges) -> bool {
    match p {
        Pledges::Prepare { ballot, n_c, n_h, .. } => {
            compatible(b, ballot) && *n_c != 0 && *n_c <= interval.0 && interval.1 <= *n_h
        }
        Pledges::Confirm { ballot, n_commit, .. } => compatible(b, ballot) && *n_commit <= interval.0,
        Pledges::Externalize { commit, .. } => compatible(b, commit) && commit.counter <= interval.0,
        Pledges::Nominate { .. } => false,
    }
}

/// Does the statement accept commit of every ballot of `interval`?
fn accepts_commit(b: &Ballot, interval: (u32, u32), p: &Pledges) -> bool {
    match p {
        Pledges::Confirm { ballot, n_commit, n_h, .. } => {
            compatible(b, ballot) && *n_commit <= interval.0 && interval.1 <= *n_h
        }
        Pledges::Externalize { commit, .. } => compatible(b, commit) && commit.counter <= interval.0,
        _ => false,
    }
}

/// Scans `boundaries` from the top for the widest interval `pred` holds on
/// (stellar-core `findExtendedInterval`). `(0, 0)` when none.
fn find_extended_interval(boundaries: &BTreeSet<u32>, mut pred: impl FnMut((u32, u32)) -> bool) -> (u32, u32) {
    let mut candidate = (0u32, 0u32);
    for &b in boundaries.iter().rev() {
        let cur = if candidate.0 == 0 {
            (b, b)
        } else if b > candidate.1 {
            continue;
        } else {
            (b, candidate.1)
        };
        if pred(cur) {
            candidate = cur;
        } else if candidate.0 != 0 {
            break;
        }
    }
    candidate
}

impl BallotState {
    pub fn externalized_value(&self) -> Option<&Value> {
        (self.phase == Phase::Externalize).then(|| self.c.as_ref().map(|c| &c.value)).flatten()
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        let fail = |m: &str| Err(format!("ballot invariant: {m}"));
        if matches!(self.phase, Phase::Confirm | Phase::Externalize)
            && (self.b.is_none() || self.p.is_none() || self.c.is_none() || self.h.is_none())
        {
            return fail("CONFIRM/EXTERNALIZE need b, p, c and h");
        }
        if let Some(b) = &self.b {
            if b.counter == 0 {
                return fail("b.counter is 0");
            }
        }
        if let (Some(p), Some(pp)) = (&self.p, &self.p_prime) {
            if !less_and_incompatible(pp, p) {
                return fail("p' must be below p and incompatible with it");
            }
        }
        if let Some(h) = &self.h {
            match &self.b {
                Some(b) if less_and_compatible(h, b) => {}
                _ => return fail("h must be below b and compatible with it"),
            }
        }
        if let Some(c) = &self.c {
            let (Some(h), Some(b)) = (&self.h, &self.b) else { return fail("c needs h and b") };
            if !less_and_compatible(c, h) || !less_and_compatible(h, b) {
                return fail("c <= h <= b, all compatible");
            }
        }
        Ok(())
    }
}

impl Slot {
    pub(crate) fn process_ballot_envelope<D: Driver>(
        &mut self,
        ctx: &mut Ctx<'_, D>,
        env: &Envelope,
        from_self: bool,
    ) -> Result<(), DropReason> {
        let st = &env.statement;
        if !is_statement_sane(st, from_self) {
            return Err(DropReason::Insane);
        }
        if let Some(old) = self.bal.latest.get(&st.node_id) {
            if !is_newer_ballot_statement(&old.statement.pledges, &st.pledges) {
                return Err(DropReason::Stale);
            }
        }
        let validity = self.validate_all(ctx, statement_values(&st.pledges), false);
        if validity == Validity::Invalid {
            return Err(DropReason::InvalidValue);
        }
        if validity != Validity::FullyValid {
            self.fully_validated = false;
        }
        if self.bal.phase != Phase::Externalize {
            self.bal.latest.insert(st.node_id, env.clone());
            self.advance_slot(ctx, &st.pledges);
            return Ok(());
        }
        // Externalized: keep statements that agree (they make the proof bigger).
        let committed = self.bal.c.as_ref().map(|c| &c.value);
        if working_ballot(&st.pledges).is_some_and(|w| Some(&w.value) == committed) {
            self.bal.latest.insert(st.node_id, env.clone());
            return Ok(());
        }
        Err(DropReason::Stale)
    }

    fn advance_slot<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, hint: &Pledges) {
        self.bal.level += 1;
        if self.bal.level >= MAX_ADVANCE_RECURSION {
            tracing::error!(slot = self.index, "SCP: ballot recursion limit reached");
            self.bal.level -= 1;
            return;
        }
        let mut did_work = self.attempt_accept_prepared(ctx, hint);
        did_work = self.attempt_confirm_prepared(ctx, hint) || did_work;
        did_work = self.attempt_accept_commit(ctx, hint) || did_work;
        did_work = self.attempt_confirm_commit(ctx, hint) || did_work;
        if self.bal.level == 1 {
            loop {
                let bumped = self.attempt_bump(ctx);
                did_work = bumped || did_work;
                if !bumped {
                    break;
                }
            }
            self.check_heard_from_quorum(ctx);
        }
        self.bal.level -= 1;
        if did_work {
            self.send_latest_envelope(ctx);
        }
    }

    fn federated_accept<D: Driver>(
        &self,
        ctx: &Ctx<'_, D>,
        voted: impl Fn(&Pledges) -> bool,
        accepted: impl Fn(&Pledges) -> bool,
    ) -> bool {
        let q = &ctx.local.qset;
        if is_v_blocking(q, self.bal.latest.iter(), |e: &Envelope| accepted(&e.statement.pledges)) {
            return true;
        }
        is_quorum(
            q,
            self.bal.latest.iter(),
            |e: &Envelope| ctx.qsets.of_statement(&e.statement),
            |e: &Envelope| accepted(&e.statement.pledges) || voted(&e.statement.pledges),
        )
    }

    fn federated_ratify<D: Driver>(&self, ctx: &Ctx<'_, D>, voted: impl Fn(&Pledges) -> bool) -> bool {
        is_quorum(
            &ctx.local.qset,
            self.bal.latest.iter(),
            |e: &Envelope| ctx.qsets.of_statement(&e.statement),
            |e: &Envelope| voted(&e.statement.pledges),
        )
    }

    /// Ballots worth testing for "prepared", highest first (stellar-core `getPrepareCandidates`).
    fn prepare_candidates(&self, hint: &Pledges) -> BTreeSet<Ballot> {
        let mut hints = BTreeSet::new();
        match hint {
            Pledges::Prepare { ballot: b, prepared, prepared_prime, .. } => {
                hints.insert(b.clone());
                if let Some(p) = prepared {
                    hints.insert(p.clone());
                }
                if let Some(p) = prepared_prime {
                    hints.insert(p.clone());
                }
            }
            Pledges::Confirm { ballot: c, n_prepared, .. } => {
                hints.insert(ballot(*n_prepared, &c.value));
                hints.insert(ballot(u32::MAX, &c.value));
            }
            Pledges::Externalize { commit, .. } => {
                hints.insert(ballot(u32::MAX, &commit.value));
            }
            Pledges::Nominate { .. } => {}
        }
        let mut candidates = BTreeSet::new();
        for top in hints.iter().rev() {
            for env in self.bal.latest.values() {
                match &env.statement.pledges {
                    Pledges::Prepare { ballot: b, prepared, prepared_prime, .. } => {
                        if less_and_compatible(b, top) {
                            candidates.insert(b.clone());
                        }
                        if let Some(p) = prepared.as_ref().filter(|p| less_and_compatible(p, top)) {
                            candidates.insert(p.clone());
                        }
                        if let Some(p) = prepared_prime.as_ref().filter(|p| less_and_compatible(p, top)) {
                            candidates.insert(p.clone());
                        }
                    }
                    Pledges::Confirm { ballot: c, n_prepared, .. } => {
                        if compatible(top, c) {
                            candidates.insert(top.clone());
                            if *n_prepared < top.counter {
                                candidates.insert(ballot(*n_prepared, &top.value));
                            }
                        }
                    }
                    Pledges::Externalize { commit, .. } => {
                        if compatible(top, commit) {
                            candidates.insert(top.clone());
                        }
                    }
                    Pledges::Nominate { .. } => {}
                }
            }
        }
        // Ballots start at counter 1; a peer may still name a (0, x) as its
        // p or p'. Accepting or confirming it would set b to counter 0
        // (found by the `scp_envelopes` fuzz target).
        candidates.retain(|b| b.counter > 0);
        candidates
    }

    fn attempt_accept_prepared<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, hint: &Pledges) -> bool {
        if !matches!(self.bal.phase, Phase::Prepare | Phase::Confirm) {
            return false;
        }
        let candidates = self.prepare_candidates(hint);
        for b in candidates.iter().rev() {
            if self.bal.phase == Phase::Confirm {
                // Only ballots that can raise p are of interest now.
                match &self.bal.p {
                    Some(p) if less_and_compatible(p, b) => {}
                    _ => continue,
                }
            }
            if self.bal.p_prime.as_ref().is_some_and(|pp| b <= pp) {
                continue;
            }
            if self.bal.p.as_ref().is_some_and(|p| less_and_compatible(b, p)) {
                continue;
            }
            if self.federated_accept(ctx, |st| votes_prepared(b, st), |st| accepts_prepared(b, st)) {
                return self.set_accept_prepared(ctx, b.clone());
            }
        }
        false
    }

    fn set_accept_prepared<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, b: Ballot) -> bool {
        let mut did_work = self.set_prepared(b);
        // An incompatible higher prepared ballot aborts the commit vote (c).
        if self.bal.c.is_some() {
            if let Some(h) = &self.bal.h {
                let p_aborts = self.bal.p.as_ref().is_some_and(|p| less_and_incompatible(h, p));
                let pp_aborts = self.bal.p_prime.as_ref().is_some_and(|pp| less_and_incompatible(h, pp));
                if p_aborts || pp_aborts {
                    debug_assert_eq!(self.bal.phase, Phase::Prepare);
                    self.bal.c = None;
                    did_work = true;
                }
            }
        }
        if did_work {
            self.emit_current_state(ctx);
        }
        did_work
    }

    fn set_prepared(&mut self, b: Ballot) -> bool {
        match &self.bal.p {
            None => {
                self.bal.p = Some(b);
                true
            }
            Some(p) => match p.cmp(&b) {
                std::cmp::Ordering::Less => {
                    if !compatible(p, &b) {
                        self.bal.p_prime = Some(p.clone());
                    }
                    self.bal.p = Some(b);
                    true
                }
                std::cmp::Ordering::Greater => {
                    // b is below p and incompatible with it (callers skip the rest).
                    if self.bal.p_prime.as_ref().is_none_or(|pp| *pp < b) {
                        self.bal.p_prime = Some(b);
                        true
                    } else {
                        false
                    }
                }
                std::cmp::Ordering::Equal => false,
            },
        }
    }

    fn attempt_confirm_prepared<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, hint: &Pledges) -> bool {
        if self.bal.phase != Phase::Prepare || self.bal.p.is_none() {
            return false;
        }
        let candidates: Vec<Ballot> = self.prepare_candidates(hint).into_iter().rev().collect();
        let mut new_h_index = None;
        for (i, h) in candidates.iter().enumerate() {
            if self.bal.h.as_ref().is_some_and(|cur| cur >= h) {
                break;
            }
            if self.federated_ratify(ctx, |st| accepts_prepared(h, st)) {
                new_h_index = Some(i);
                break;
            }
        }
        let Some(hi) = new_h_index else { return false };
        let new_h = candidates[hi].clone();
        let mut new_c: Option<Ballot> = None;
        let b_cur = self.bal.b.clone().unwrap_or_else(|| ballot(0, &new_h.value));
        let p_ok = self.bal.p.as_ref().is_none_or(|p| !less_and_incompatible(&new_h, p));
        let pp_ok = self.bal.p_prime.as_ref().is_none_or(|pp| !less_and_incompatible(&new_h, pp));
        if self.bal.c.is_none() && p_ok && pp_ok {
            for b in &candidates[hi..] {
                if *b < b_cur {
                    break;
                }
                if !less_and_compatible(b, &new_h) {
                    continue;
                }
                if self.federated_ratify(ctx, |st| accepts_prepared(b, st)) {
                    new_c = Some(b.clone());
                } else {
                    break;
                }
            }
        }
        self.set_confirm_prepared(ctx, new_c, new_h)
    }

    fn set_confirm_prepared<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, new_c: Option<Ballot>, new_h: Ballot) -> bool {
        let mut did_work = false;
        self.bal.value_override = Some(new_h.value.clone());
        if self.bal.b.as_ref().is_none_or(|b| compatible(b, &new_h)) {
            if self.bal.h.as_ref().is_none_or(|h| new_h > *h) {
                self.bal.h = Some(new_h.clone());
                did_work = true;
            }
            if let Some(c) = new_c.filter(|c| c.counter != 0) {
                debug_assert!(self.bal.c.is_none());
                self.bal.c = Some(c);
                did_work = true;
            }
        }
        did_work = self.update_current_if_needed(ctx, &new_h) || did_work;
        if did_work {
            self.emit_current_state(ctx);
        }
        did_work
    }

    fn commit_boundaries(&self, b: &Ballot) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for env in self.bal.latest.values() {
            match &env.statement.pledges {
                Pledges::Prepare { ballot, n_c, n_h, .. } => {
                    if compatible(b, ballot) && *n_c != 0 {
                        out.insert(*n_c);
                        out.insert(*n_h);
                    }
                }
                Pledges::Confirm { ballot, n_commit, n_h, .. } => {
                    if compatible(b, ballot) {
                        out.insert(*n_commit);
                        out.insert(*n_h);
                    }
                }
                Pledges::Externalize { commit, n_h, .. } => {
                    if compatible(b, commit) {
                        out.insert(commit.counter);
                        out.insert(*n_h);
                        out.insert(u32::MAX);
                    }
                }
                Pledges::Nominate { .. } => {}
            }
        }
        out
    }

    fn attempt_accept_commit<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, hint: &Pledges) -> bool {
        if !matches!(self.bal.phase, Phase::Prepare | Phase::Confirm) {
            return false;
        }
        let b = match hint {
            Pledges::Prepare { ballot: hb, n_c, n_h, .. } => {
                if *n_c == 0 {
                    return false;
                }
                ballot(*n_h, &hb.value)
            }
            Pledges::Confirm { ballot: c, n_h, .. } => ballot(*n_h, &c.value),
            Pledges::Externalize { commit, n_h, .. } => ballot(*n_h, &commit.value),
            Pledges::Nominate { .. } => return false,
        };
        if self.bal.phase == Phase::Confirm && !self.bal.h.as_ref().is_some_and(|h| compatible(&b, h)) {
            return false;
        }
        let boundaries = self.commit_boundaries(&b);
        if boundaries.is_empty() {
            return false;
        }
        let (lo, hi) = find_extended_interval(&boundaries, |iv| {
            self.federated_accept(ctx, |st| votes_commit(&b, iv, st), |st| accepts_commit(&b, iv, st))
        });
        if lo == 0 {
            return false;
        }
        if self.bal.phase != Phase::Confirm || self.bal.h.as_ref().is_some_and(|h| hi > h.counter) {
            return self.set_accept_commit(ctx, ballot(lo, &b.value), ballot(hi, &b.value));
        }
        false
    }

    fn set_accept_commit<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, c: Ballot, h: Ballot) -> bool {
        let mut did_work = false;
        self.bal.value_override = Some(h.value.clone());
        if self.bal.h.as_ref() != Some(&h) || self.bal.c.as_ref() != Some(&c) {
            self.bal.c = Some(c);
            self.bal.h = Some(h.clone());
            did_work = true;
        }
        if self.bal.phase == Phase::Prepare {
            self.bal.phase = Phase::Confirm;
            if self.bal.b.as_ref().is_some_and(|b| !less_and_compatible(&h, b)) {
                self.bump_to_ballot(h.clone(), false);
            }
            self.bal.p_prime = None;
            did_work = true;
        }
        if did_work {
            let hh = self.bal.h.clone().unwrap_or(h);
            self.update_current_if_needed(ctx, &hh);
            self.emit_current_state(ctx);
        }
        did_work
    }

    fn attempt_confirm_commit<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, hint: &Pledges) -> bool {
        if self.bal.phase != Phase::Confirm || self.bal.h.is_none() || self.bal.c.is_none() {
            return false;
        }
        let b = match hint {
            Pledges::Confirm { ballot: c, n_h, .. } => ballot(*n_h, &c.value),
            Pledges::Externalize { commit, n_h, .. } => ballot(*n_h, &commit.value),
            _ => return false,
        };
        if !self.bal.c.as_ref().is_some_and(|c| compatible(&b, c)) {
            return false;
        }
        let boundaries = self.commit_boundaries(&b);
        let (lo, hi) =
            find_extended_interval(&boundaries, |iv| self.federated_ratify(ctx, |st| accepts_commit(&b, iv, st)));
        if lo == 0 {
            return false;
        }
        self.set_confirm_commit(ctx, ballot(lo, &b.value), ballot(hi, &b.value))
    }

    fn set_confirm_commit<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, c: Ballot, h: Ballot) -> bool {
        self.bal.c = Some(c.clone());
        self.bal.h = Some(h.clone());
        self.update_current_if_needed(ctx, &h);
        self.bal.phase = Phase::Externalize;
        self.emit_current_state(ctx);
        self.stop_nomination(ctx);
        self.cancel_timer(ctx, TimerKind::Ballot);
        ctx.effects.push(Effect::Externalized { slot: self.index, value: c.value });
        true
    }

    /// Moves to the lowest counter that no v-blocking set is above (draft §3.5.5).
    fn attempt_bump<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) -> bool {
        if !matches!(self.bal.phase, Phase::Prepare | Phase::Confirm) {
            return false;
        }
        let target = self.bal.b.as_ref().map_or(0, |b| b.counter);
        let mut counters: BTreeSet<u32> =
            self.bal.latest.values().map(|e| statement_counter(&e.statement.pledges)).collect();
        counters.insert(target);
        for &n in counters.iter() {
            if n < target {
                continue;
            }
            let blocking = is_v_blocking(&ctx.local.qset, self.bal.latest.iter(), |e: &Envelope| {
                statement_counter(&e.statement.pledges) > n
            });
            if !blocking {
                if n == target {
                    break;
                }
                return self.abandon_ballot(ctx, n);
            }
        }
        false
    }

    /// Leaves the current ballot for counter `n` (0: the next counter).
    pub(crate) fn abandon_ballot<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, n: u32) -> bool {
        let value = self
            .nom
            .latest_composite
            .clone()
            .filter(|v| !v.as_bytes().is_empty())
            .or_else(|| self.bal.b.as_ref().map(|b| b.value.clone()));
        match value {
            Some(v) if n == 0 => self.bump_state(ctx, v, true),
            Some(v) => self.bump_state_to(ctx, v, n),
            None => false,
        }
    }

    /// Starts the ballot protocol on `value`, or (forced) moves to the next counter.
    pub(crate) fn bump_state<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, value: Value, force: bool) -> bool {
        if !force && self.bal.b.is_some() {
            return false;
        }
        let n = self.bal.b.as_ref().map_or(1, |b| b.counter.saturating_add(1));
        self.bump_state_to(ctx, value, n)
    }

    fn bump_state_to<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>, value: Value, n: u32) -> bool {
        if !matches!(self.bal.phase, Phase::Prepare | Phase::Confirm) {
            return false;
        }
        // Once a value is confirmed prepared (or accepted committed), bumps keep it.
        let value = self.bal.value_override.clone().unwrap_or(value);
        let updated = self.update_current_value(Ballot { counter: n, value });
        if updated {
            self.emit_current_state(ctx);
            self.check_heard_from_quorum(ctx);
        }
        updated
    }

    fn update_current_value(&mut self, b: Ballot) -> bool {
        if !matches!(self.bal.phase, Phase::Prepare | Phase::Confirm) {
            return false;
        }
        match &self.bal.b {
            None => {
                self.bump_to_ballot(b, true);
                true
            }
            Some(cur) => {
                if self.bal.c.as_ref().is_some_and(|c| !compatible(c, &b)) {
                    return false;
                }
                if *cur < b {
                    self.bump_to_ballot(b, true);
                    true
                } else {
                    false
                }
            }
        }
    }

    fn update_current_if_needed<D: Driver>(&mut self, _ctx: &mut Ctx<'_, D>, h: &Ballot) -> bool {
        if self.bal.b.as_ref().is_none_or(|b| b < h) {
            self.bump_to_ballot(h.clone(), true);
            return true;
        }
        false
    }

    fn bump_to_ballot(&mut self, b: Ballot, check: bool) {
        debug_assert!(self.bal.phase != Phase::Externalize);
        if check {
            debug_assert!(self.bal.b.as_ref().is_none_or(|cur| b >= *cur));
        }
        let bumped = self.bal.b.as_ref().is_none_or(|cur| cur.counter != b.counter);
        if self.bal.h.as_ref().is_some_and(|h| !compatible(&b, h)) {
            self.bal.h = None;
        }
        self.bal.b = Some(b);
        if bumped {
            self.bal.heard_from_quorum = false;
        }
    }

    fn current_pledges(&self, ctx_qset_hash: crate::crypto::Hash256) -> Option<Pledges> {
        let bal = &self.bal;
        match bal.phase {
            Phase::Prepare => Some(Pledges::Prepare {
                quorum_set_hash: ctx_qset_hash,
                ballot: bal.b.clone().unwrap_or_else(|| ballot(0, &Value(Default::default()))),
                prepared: bal.p.clone(),
                prepared_prime: bal.p_prime.clone(),
                n_c: bal.c.as_ref().map_or(0, |c| c.counter),
                n_h: bal.h.as_ref().map_or(0, |h| h.counter),
            }),
            Phase::Confirm => Some(Pledges::Confirm {
                ballot: bal.b.clone()?,
                n_prepared: bal.p.as_ref()?.counter,
                n_commit: bal.c.as_ref()?.counter,
                n_h: bal.h.as_ref()?.counter,
                quorum_set_hash: ctx_qset_hash,
            }),
            Phase::Externalize => Some(Pledges::Externalize {
                commit: bal.c.clone()?,
                n_h: bal.h.as_ref()?.counter,
                commit_quorum_set_hash: ctx_qset_hash,
            }),
        }
    }

    fn emit_current_state<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        debug_assert_eq!(self.bal.check_invariants(), Ok(()));
        let Some(pledges) = self.current_pledges(ctx.local.qset_hash) else { return };
        let can_emit = self.bal.b.is_some();
        // The same statement again (h moved only in value): nothing to do.
        if self.bal.latest.get(&ctx.local.id).is_some_and(|e| e.statement.pledges == pledges) {
            return;
        }
        let env = self.sign(ctx, pledges);
        match self.process_ballot_envelope(ctx, &env, true) {
            Ok(()) => {
                let newer = self
                    .bal
                    .last_envelope
                    .as_ref()
                    .is_none_or(|last| is_newer_ballot_statement(&last.statement.pledges, &env.statement.pledges));
                if can_emit && newer {
                    self.bal.last_envelope = Some(env);
                    self.send_latest_envelope(ctx);
                }
            }
            Err(reason) => {
                // Our own statement refused by ourselves would be a bug in this module.
                tracing::error!(slot = self.index, ?reason, "SCP: local ballot statement rejected");
                debug_assert!(false, "local ballot statement rejected: {reason:?}");
            }
        }
    }

    fn send_latest_envelope<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.bal.level != 0 || !self.fully_validated {
            return;
        }
        if let Some(env) = &self.bal.last_envelope {
            if self.bal.last_emitted.as_ref() != Some(env) {
                self.bal.last_emitted = Some(env.clone());
                let env = env.clone();
                self.emit(ctx, env);
            }
        }
    }

    fn check_heard_from_quorum<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        let Some(b) = self.bal.b.clone() else { return };
        let heard = is_quorum(
            &ctx.local.qset,
            self.bal.latest.iter(),
            |e: &Envelope| ctx.qsets.of_statement(&e.statement),
            |e: &Envelope| match &e.statement.pledges {
                Pledges::Prepare { ballot, .. } => b.counter <= ballot.counter,
                _ => true,
            },
        );
        if heard {
            let was = self.bal.heard_from_quorum;
            self.bal.heard_from_quorum = true;
            if !was && self.bal.phase != Phase::Externalize {
                self.arm_timer(ctx, TimerKind::Ballot, b.counter);
            }
            if self.bal.phase == Phase::Externalize {
                self.cancel_timer(ctx, TimerKind::Ballot);
            }
        } else {
            self.bal.heard_from_quorum = false;
            self.cancel_timer(ctx, TimerKind::Ballot);
        }
    }

    pub(crate) fn ballot_timer_expired<D: Driver>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.timers.remove(&TimerKind::Ballot);
        self.abandon_ballot(ctx, 0);
    }

    pub fn phase(&self) -> Phase {
        self.bal.phase
    }

    /// Restores the local ballot state from the node's own last statement
    /// (after a restart), as stellar-core's `setStateFromEnvelope` does, so
    /// the node never contradicts what it said before it stopped.
    pub(crate) fn restore_own_ballot(&mut self, env: &Envelope) -> Result<(), DropReason> {
        if !is_statement_sane(&env.statement, true) {
            return Err(DropReason::Insane);
        }
        let b = &mut self.bal;
        match &env.statement.pledges {
            Pledges::Prepare { ballot: cur, prepared, prepared_prime, n_c, n_h, .. } => {
                b.phase = Phase::Prepare;
                b.b = (cur.counter > 0).then(|| cur.clone());
                b.p = prepared.clone();
                b.p_prime = prepared_prime.clone();
                b.h = (*n_h > 0).then(|| ballot(*n_h, &cur.value));
                b.c = (*n_c > 0).then(|| ballot(*n_c, &cur.value));
            }
            Pledges::Confirm { ballot: cur, n_prepared, n_commit, n_h, .. } => {
                b.phase = Phase::Confirm;
                b.b = Some(cur.clone());
                b.p = Some(ballot(*n_prepared, &cur.value));
                b.p_prime = None;
                b.h = Some(ballot(*n_h, &cur.value));
                b.c = Some(ballot(*n_commit, &cur.value));
                b.value_override = Some(cur.value.clone());
            }
            Pledges::Externalize { commit, n_h, .. } => {
                b.phase = Phase::Externalize;
                let h = ballot(*n_h, &commit.value);
                b.b = Some(h.clone());
                b.p = Some(h.clone());
                b.p_prime = None;
                b.h = Some(h);
                b.c = Some(commit.clone());
            }
            Pledges::Nominate { .. } => return Err(DropReason::Insane),
        }
        b.latest.insert(env.statement.node_id, env.clone());
        b.last_envelope = Some(env.clone());
        b.last_emitted = Some(env.clone());
        b.check_invariants().map_err(|_| DropReason::Insane)
    }
}
