//! The ledger side of storage donation (SPEC §6), decided sans IO: from
//! the proven prover, sector and day entries, what this phone owes the
//! ledger now — terminations, a pre-commit for a sealed sector, a seal proof
//! once its seed ledger has closed, the period's PoSt commitment, then its
//! reveal — and what it learnt (phases, earnings). Computing the proofs is
//! the shell's (CPU, off the async workers); everything is re-derived from
//! the ledger on every run, so a killed process picks up where the ledger is.

use crate::storage::{self as donation, SectorPhase, StorageDuties, StoragePlan};
use crate::types::{PendingTx, TxKind};
use std::collections::{BTreeMap, BTreeSet};
use watt_core::address::AccountId;
use watt_core::codec::BoundedVec;
use watt_core::crypto::Hash256;
use watt_core::ledger::state::DayRecord;
use watt_core::ledger::storage::{
    deadline_index, post_window_ms, CommittedSector, PostCommitment, ProverEntry, SectorEntry, SectorState,
};
use watt_core::ledger::{LedgerHeader, Operation, Params};
use watt_core::storage::power::{self, DeviceFacts};

/// Sectors whose ticket is this close to the window's end are re-sealed
/// rather than pre-committed (the pre-commit must land inside the window).
const TICKET_MARGIN: u64 = 4;

/// What a pending storage transaction is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    PreCommit(u64),
    ProveCommit(u64),
    PostCommit(u64),
    PostReveal(u64),
    Terminate(u64),
}

/// The storage work the wallet's pending transactions already carry.
pub fn pending_storage(pending: &[PendingTx]) -> Vec<Pending> {
    let of = |op: &Operation| -> Vec<Pending> {
        match op {
            Operation::SectorPreCommit { sector_number, .. } => vec![Pending::PreCommit(*sector_number)],
            Operation::SectorProveCommit { sector_number, .. } => vec![Pending::ProveCommit(*sector_number)],
            Operation::PostCommit { period, .. } => vec![Pending::PostCommit(*period)],
            Operation::PostReveal { period, .. } => vec![Pending::PostReveal(*period)],
            Operation::SectorTerminate { sectors } => sectors.iter().map(|n| Pending::Terminate(*n)).collect(),
            _ => Vec::new(),
        }
    };
    pending.iter().filter(|t| t.kind == TxKind::Storage).flat_map(|t| t.tx.body.ops.iter().flat_map(of)).collect()
}

/// The ledger's view of this prover, each entry proven by the shell.
#[derive(Debug, Clone, Default)]
pub struct LedgerView {
    pub prover: Option<ProverEntry>,
    /// The plan's sealed sectors that the ledger holds.
    pub sectors: BTreeMap<u64, SectorEntry>,
    /// Of the plan's `to_terminate`, those the ledger still holds.
    pub still_held: BTreeSet<u64>,
    /// The current period's day record.
    pub today: Option<DayRecord>,
    /// Day records of days whose storage earnings are still uncounted.
    pub days: BTreeMap<u64, DayRecord>,
}

/// Work that needs the sector files (and, for proofs, a verified `rand`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duty {
    /// Ready to sign as is.
    Send(Operation, String),
    /// The seal proof of `sector`, seeded by ledger `seed_seq`'s `rand`.
    ProveCommit { sector: u64, seed_seq: u64 },
    /// The period's PoSt walk over `due`, from the deadline's opening `rand`.
    PostCommit { period: u64, due: Vec<CommittedSector>, opening_rand: Hash256 },
    /// The reveal of a committed walk, sampled by ledger `samples_seq`'s `rand`.
    PostReveal { commit: PostCommitment, samples_seq: u64 },
}

impl Duty {
    /// The ledger whose `rand` the proof needs, if any.
    pub fn needs_rand(&self) -> Option<u64> {
        match self {
            Duty::ProveCommit { seed_seq, .. } => Some(*seed_seq),
            Duty::PostReveal { samples_seq, .. } => Some(*samples_seq),
            _ => None,
        }
    }
}

/// What the planner decided.
#[derive(Debug, Clone, Default)]
pub struct DutyPlan {
    pub duties: Vec<Duty>,
    /// Sectors to seal again (their files reset, a new ticket).
    pub reseal: Vec<u64>,
    /// Proven sectors whose inner layers can go (only the replica is kept).
    pub drop_layers: Vec<u64>,
    /// The plan with phases, deadline and earnings brought up to date.
    pub plan: StoragePlan,
    pub report: StorageDuties,
}

/// The inputs that do not come from the ledger's entries.
#[derive(Debug, Clone, Copy)]
pub struct DutyContext<'a> {
    pub me: &'a AccountId,
    pub tip: &'a LedgerHeader,
    pub params: &'a Params,
    pub genesis_time: u64,
    pub facts: &'a DeviceFacts,
}

/// Whether there is anything for the ledger at all (no sealed sector, no
/// earnings to count, nothing to terminate: no need to ask the nodes).
pub fn has_ledger_work(plan: &StoragePlan) -> bool {
    plan.sectors.iter().any(|s| s.commitments.is_some()) || !plan.uncounted.is_empty() || !plan.to_terminate.is_empty()
}

/// Days whose day records the earnings need: the plan's uncounted ones and
/// the prover's newly credited ones.
pub fn days_to_read(plan: &StoragePlan, prover: Option<&ProverEntry>) -> BTreeSet<u64> {
    let mut days: BTreeSet<u64> = plan.uncounted.iter().map(|(d, _)| *d).collect();
    if let Some(x) = prover {
        days.extend(x.credits.iter().map(|(d, _)| *d).filter(|d| !plan.counted_days.contains(d)));
    }
    days
}

/// Decides the storage duties from the ledger's view.
pub fn plan_duties(cx: DutyContext<'_>, mut plan: StoragePlan, view: &LedgerView, pending: &[Pending]) -> DutyPlan {
    let mut out = DutyPlan::default();
    let terminate = plan_terminations(&mut plan, view, pending);
    if !terminate.is_empty() {
        let what = format!("terminate sectors {terminate:?}");
        let sectors = BoundedVec::from_iter_capped(terminate);
        out.duties.push(Duty::Send(Operation::SectorTerminate { sectors }, what));
    }
    // The period's deadline comes first: the power policy weighs it.
    let period = cx.tip.day;
    let k = deadline_index(cx.me, period, cx.params.post_deadlines);
    let (_, close_ms) = post_window_ms(cx.params, cx.genesis_time, period, k);
    let has_active = view.sectors.values().any(|e| e.state != SectorState::PreCommitted);
    let committed = view.prover.as_ref().and_then(|x| x.post.as_ref()).filter(|c| c.period == period);
    let post_due = has_active && !committed.is_some_and(|c| c.revealed);
    out.report.next_deadline_ms = has_active.then_some(close_ms);
    plan.next_deadline_ms = out.report.next_deadline_ms;
    let deadline_in = post_due.then(|| close_ms.saturating_sub(cx.tip.close_time));
    let decision = power::decide(cx.facts, 0, deadline_in);

    plan_sectors(cx, &mut plan, view, pending, decision.may_upload_seal_proofs, &mut out);
    let opening = view.today.as_ref().and_then(|r| r.post_openings.get(k as usize).copied());
    match (committed, opening) {
        (None, Some((opening_seq, opening_rand)))
            if post_due && cx.tip.close_time < close_ms && !pending.contains(&Pending::PostCommit(period)) =>
        {
            let due: Vec<CommittedSector> = view
                .sectors
                .iter()
                .filter(|(_, e)| {
                    e.state != SectorState::PreCommitted
                        && e.activated_seq < opening_seq
                        && e.declared_fault_period != Some(period)
                })
                .map(|(n, e)| CommittedSector { number: *n, bytes: e.size.bytes(), comm_r_last: e.comm_r_last })
                .collect();
            if !due.is_empty() && decision.may_prove {
                out.duties.push(Duty::PostCommit { period, due, opening_rand });
            } else if !due.is_empty() {
                out.report.deferred.push(format!("PoSt for period {period}: {}", decision.reason));
            }
        }
        (Some(c), _) if !c.revealed && !pending.contains(&Pending::PostReveal(period)) => {
            let samples_seq = c.commit_seq + cx.params.post_reveal_delay;
            if cx.tip.seq >= samples_seq {
                out.duties.push(Duty::PostReveal { commit: c.clone(), samples_seq });
            }
        }
        _ => {}
    }
    count_earnings(&mut plan, view, cx.params.storage_pay_cap_per_gib_day);
    out.plan = plan;
    out
}

/// Sectors the user no longer donates: terminate those the ledger still
/// holds, keep waiting for those still on their way.
fn plan_terminations(plan: &mut StoragePlan, view: &LedgerView, pending: &[Pending]) -> Vec<u64> {
    let mut terminate = Vec::new();
    let mut keep = Vec::new();
    for n in plan.to_terminate.iter().copied() {
        if pending.contains(&Pending::Terminate(n)) {
            keep.push(n);
        } else if view.still_held.contains(&n) {
            terminate.push(n);
            keep.push(n);
        } else if pending.contains(&Pending::PreCommit(n)) || pending.contains(&Pending::ProveCommit(n)) {
            keep.push(n); // gone from the ledger, but a pre-commit is still on its way
        }
    }
    // `keep` is drawn from the plan's own list: never longer.
    plan.to_terminate = BoundedVec::from_iter_capped(keep);
    terminate
}

/// Each sealed sector against its ledger entry: pre-commit, prove-commit,
/// reseal, or note it active.
fn plan_sectors(
    cx: DutyContext<'_>,
    plan: &mut StoragePlan,
    view: &LedgerView,
    pending: &[Pending],
    may_upload: bool,
    out: &mut DutyPlan,
) {
    let p = cx.params;
    let mut sectors = std::mem::take(&mut plan.sectors).into_vec();
    for rec in sectors.iter_mut() {
        let Some([comm_d, comm_c, comm_r_last, comm_r]) = rec.commitments else { continue };
        let Some(size) = donation::sector_size(rec.sector_bytes).filter(|_| rec.layers == p.sector_layers) else {
            rec.phase = SectorPhase::Unprovable;
            continue;
        };
        match view.sectors.get(&rec.number) {
            None => {
                if pending.contains(&Pending::PreCommit(rec.number)) {
                    continue;
                }
                let was_on_ledger =
                    matches!(rec.phase, SectorPhase::PreCommitted | SectorPhase::Active | SectorPhase::Faulty);
                let stale = cx.tip.seq.saturating_sub(rec.ticket_seq) + TICKET_MARGIN > p.ticket_window;
                if was_on_ledger || stale {
                    out.reseal.push(rec.number);
                    continue;
                }
                rec.phase = SectorPhase::Sealed;
                let op = Operation::SectorPreCommit {
                    sector_number: rec.number,
                    size,
                    ticket_seq: rec.ticket_seq,
                    comm_d,
                    comm_r,
                    comm_c,
                    comm_r_last,
                };
                out.duties.push(Duty::Send(op, format!("pre-commit sector {}", rec.number)));
            }
            Some(e) if e.state == SectorState::PreCommitted => {
                rec.phase = SectorPhase::PreCommitted;
                let lapsed = cx.tip.seq > e.precommit_seq.saturating_add(p.prove_commit_window);
                if lapsed {
                    // Too late: the ledger forfeits it; seal again and pre-commit over it.
                    out.reseal.push(rec.number);
                    continue;
                }
                if e.replica_id != rec.replica_id {
                    continue; // an older pre-commit of this number, not this seal
                }
                let seed_seq = e.precommit_seq + p.seed_delay;
                if cx.tip.seq < seed_seq || pending.contains(&Pending::ProveCommit(rec.number)) {
                    continue;
                }
                if !may_upload {
                    out.report
                        .deferred
                        .push(format!("seal proof of sector {}: needs an unmetered network", rec.number));
                    continue;
                }
                out.duties.push(Duty::ProveCommit { sector: rec.number, seed_seq });
            }
            Some(e) => {
                rec.phase = if e.state == SectorState::Faulty { SectorPhase::Faulty } else { SectorPhase::Active };
                rec.activated_seq = Some(e.activated_seq);
                if !rec.inner_layers_dropped {
                    out.drop_layers.push(rec.number);
                }
            }
        }
    }
    // The same records, changed in place: never more than were there.
    plan.sectors = BoundedVec::from_iter_capped(sectors);
}

/// Each proven day's storage share, once its distribution is fixed.
fn count_earnings(plan: &mut StoragePlan, view: &LedgerView, cap_per_gib_day: watt_core::amount::Amount) {
    if let Some(x) = &view.prover {
        plan.last_proven_period = x.last_proven_period;
        let mut uncounted = std::mem::take(&mut plan.uncounted).into_vec();
        for (d, b) in x.credits.iter() {
            if !uncounted.iter().any(|(u, _)| u == d) && !plan.counted_days.contains(d) {
                uncounted.push((*d, *b));
            }
            if let Some(u) = uncounted.iter_mut().find(|(u, _)| u == d) {
                u.1 = *b;
            }
        }
        plan.uncounted = newest_days(uncounted);
    }
    let mut still = Vec::new();
    let uncounted: Vec<(u64, u64)> = plan.uncounted.iter().copied().collect();
    for (d, b) in uncounted {
        match view.days.get(&d) {
            Some(r) if r.distributed => {
                let share = donation::storage_share(r, b, cap_per_gib_day);
                plan.earned = plan.earned.checked_add(share).unwrap_or(plan.earned);
                plan.mark_counted(d);
            }
            _ => still.push((d, b)),
        }
    }
    plan.uncounted = newest_days(still);
}

/// The newest days of a list of (day, bytes) credits, as many as the plan
/// keeps: an older day past that is dropped from the phone's tally (it was
/// settled on the ledger long ago), never the whole list.
pub(crate) fn newest_days<const N: usize>(mut days: Vec<(u64, u64)>) -> BoundedVec<(u64, u64), N> {
    days.sort_unstable();
    let cut = days.len().saturating_sub(N);
    BoundedVec::from_iter_capped(days.into_iter().skip(cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SectorRecord;
    use watt_core::amount::Amount;
    use watt_core::ledger::SectorSize;
    use watt_core::storage::power::Network;

    const MIB: u64 = 1 << 20;

    fn params() -> Params {
        Params::devnet(1000, 100)
    }

    fn me() -> AccountId {
        AccountId(watt_core::light::testkit::key(10).public())
    }

    fn tip(seq: u64) -> LedgerHeader {
        let n = watt_core::light::testkit::ScriptedNetwork::new(&[], params());
        let mut h = n.tip().clone();
        h.seq = seq;
        h.close_time = n.genesis.genesis_time * 1000 + seq * 1000;
        h
    }

    fn sealed(number: u64, ticket_seq: u64) -> SectorRecord {
        SectorRecord {
            number,
            sector_bytes: MIB,
            layers: params().sector_layers,
            ticket_seq,
            replica_id: Hash256([number as u8; 32]),
            commitments: Some([Hash256([1; 32]), Hash256([2; 32]), Hash256([3; 32]), Hash256([4; 32])]),
            phase: SectorPhase::Sealed,
            activated_seq: None,
            inner_layers_dropped: false,
        }
    }

    fn plan_of(sectors: Vec<SectorRecord>) -> StoragePlan {
        StoragePlan { sectors: BoundedVec::try_from_vec(sectors).unwrap(), ..StoragePlan::default() }
    }

    fn on_ledger(rec: &SectorRecord, state: SectorState, precommit_seq: u64) -> SectorEntry {
        SectorEntry {
            size: SectorSize::Mib1,
            ticket_seq: rec.ticket_seq,
            precommit_seq,
            replica_id: rec.replica_id,
            comm_d: Hash256([1; 32]),
            comm_c: Hash256([2; 32]),
            comm_r_last: Hash256([3; 32]),
            comm_r: Hash256([4; 32]),
            pledge: Amount(1),
            state,
            activated_seq: precommit_seq + 3,
            activated_day: 0,
            faulty_periods: 0,
            declared_fault_period: None,
        }
    }

    fn run(plan: StoragePlan, view: &LedgerView, pending: &[Pending], seq: u64, facts: DeviceFacts) -> DutyPlan {
        let (me, tip, p) = (me(), tip(seq), params());
        let cx =
            DutyContext { me: &me, tip: &tip, params: &p, genesis_time: tip.close_time / 1000 - seq, facts: &facts };
        plan_duties(cx, plan, view, pending)
    }

    fn desk() -> DeviceFacts {
        DeviceFacts::plugged_in_desktop()
    }

    #[test]
    fn a_sealed_sector_the_ledger_lacks_is_pre_committed_once() {
        let plan = plan_of(vec![sealed(1, 10)]);
        let d = run(plan.clone(), &LedgerView::default(), &[], 12, desk());
        assert!(matches!(
            &d.duties[..],
            [Duty::Send(Operation::SectorPreCommit { sector_number: 1, ticket_seq: 10, .. }, _)]
        ));
        // Already on its way: nothing more.
        let d = run(plan, &LedgerView::default(), &[Pending::PreCommit(1)], 12, desk());
        assert!(d.duties.is_empty());
    }

    #[test]
    fn a_sector_whose_ticket_is_about_to_lapse_is_sealed_again_not_pre_committed() {
        let window = params().ticket_window;
        let d = run(plan_of(vec![sealed(1, 10)]), &LedgerView::default(), &[], 10 + window - 2, desk());
        assert!(d.duties.is_empty());
        assert_eq!(d.reseal, vec![1]);
    }

    #[test]
    fn a_seal_proof_waits_for_its_seed_ledger_and_for_an_unmetered_network() {
        let rec = sealed(1, 10);
        let mut view = LedgerView::default();
        view.sectors.insert(1, on_ledger(&rec, SectorState::PreCommitted, 20));
        let seed = 20 + params().seed_delay;
        let d = run(plan_of(vec![rec.clone()]), &view, &[], seed - 1, desk());
        assert!(d.duties.is_empty(), "before the seed ledger: {:?}", d.duties);
        assert_eq!(d.plan.sectors[0].phase, SectorPhase::PreCommitted);
        let d = run(plan_of(vec![rec.clone()]), &view, &[], seed, desk());
        assert_eq!(d.duties, vec![Duty::ProveCommit { sector: 1, seed_seq: seed }]);
        assert_eq!(d.duties[0].needs_rand(), Some(seed));
        let metered = DeviceFacts { network: Network::Metered, ..desk() };
        let d = run(plan_of(vec![rec]), &view, &[], seed, metered);
        assert!(d.duties.is_empty());
        assert!(d.report.deferred[0].contains("unmetered"), "{:?}", d.report.deferred);
    }

    #[test]
    fn a_lapsed_pre_commit_is_sealed_again() {
        let rec = sealed(1, 10);
        let mut view = LedgerView::default();
        view.sectors.insert(1, on_ledger(&rec, SectorState::PreCommitted, 20));
        let d = run(plan_of(vec![rec]), &view, &[], 21 + params().prove_commit_window, desk());
        assert_eq!(d.reseal, vec![1]);
        assert!(d.duties.is_empty());
    }

    #[test]
    fn an_active_sector_drops_its_inner_layers_and_the_periods_post_is_due() {
        let rec = sealed(1, 10);
        let mut view = LedgerView::default();
        view.sectors.insert(1, on_ledger(&rec, SectorState::Active, 20));
        view.today = Some(DayRecord {
            post_openings: BoundedVec::try_from_vec(vec![(30, Hash256([7; 32]))]).unwrap(),
            ..DayRecord::default()
        });
        let d = run(plan_of(vec![rec.clone()]), &view, &[], 40, desk());
        assert_eq!(d.drop_layers, vec![1]);
        assert_eq!(d.plan.sectors[0].phase, SectorPhase::Active);
        let [Duty::PostCommit { period: 0, due, opening_rand }] = &d.duties[..] else { panic!("{:?}", d.duties) };
        assert_eq!(due.iter().map(|c| c.number).collect::<Vec<_>>(), vec![1]);
        assert_eq!(*opening_rand, Hash256([7; 32]));
        assert!(d.report.next_deadline_ms.is_some());
        // On a pending commit nothing is done twice.
        let d = run(plan_of(vec![rec]), &view, &[Pending::PostCommit(0)], 40, desk());
        assert!(d.duties.is_empty());
    }

    #[test]
    fn a_dropped_sector_the_ledger_holds_is_terminated_and_one_it_forgot_is_let_go() {
        let mut plan = plan_of(vec![]);
        plan.to_terminate = BoundedVec::try_from_vec(vec![3, 4, 5]).unwrap();
        let mut view = LedgerView::default();
        view.still_held.insert(3);
        let d = run(plan, &view, &[Pending::PreCommit(4)], 40, desk());
        assert!(
            matches!(&d.duties[..], [Duty::Send(Operation::SectorTerminate { sectors }, _)] if sectors.to_vec() == vec![3])
        );
        // 3 waits for its termination to land, 4 for its pre-commit; 5 is gone.
        assert_eq!(d.plan.to_terminate.to_vec(), vec![3, 4]);
    }

    #[test]
    fn earnings_count_each_distributed_day_once() {
        let mut plan = plan_of(vec![]);
        plan.uncounted = BoundedVec::try_from_vec(vec![(1, 1 << 30)]).unwrap();
        let mut view = LedgerView::default();
        let day = DayRecord {
            distributed: true,
            total_weights: [0, 0, 1 << 30],
            pools: [Amount(0), Amount(0), Amount(500)],
            ..DayRecord::default()
        };
        view.days.insert(1, day);
        let d = run(plan, &view, &[], 40, desk());
        assert_eq!(d.plan.earned, Amount(500));
        assert!(d.plan.uncounted.is_empty());
        assert_eq!(d.plan.counted_days.to_vec(), vec![1]);
        let again = run(d.plan.clone(), &view, &[], 41, desk());
        assert_eq!(again.plan.earned, Amount(500), "counted twice");
    }

    #[test]
    fn earnings_past_the_plans_bound_keep_the_newest_days() {
        let days: Vec<(u64, u64)> = (0..20u64).rev().map(|d| (d, d * 10)).collect();
        let kept: BoundedVec<(u64, u64), 16> = newest_days(days);
        assert_eq!(kept.to_vec(), (4..20u64).map(|d| (d, d * 10)).collect::<Vec<_>>());
        let few: BoundedVec<(u64, u64), 16> = newest_days(vec![(3, 1), (1, 2)]);
        assert_eq!(few.to_vec(), vec![(1, 2), (3, 1)]);
    }
}
