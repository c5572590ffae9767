//! What the simulator checks as ledgers close. A check that fails stops the
//! run with the seed and the ledger, so the failure replays exactly.

use super::phones::Phones;
use super::DayReport;
use crate::herder::Herder;
use crate::store::{LedgerRead, MemStore};
use std::collections::BTreeMap;
use watt_core::address::AccountId;
use watt_core::crypto::Hash256;
use watt_core::ledger::{Genesis, LedgerHeader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub check: &'static str,
    /// The ledger at which it was seen.
    pub ledger: u64,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "check {} failed at ledger {}: {}", self.check, self.ledger, self.detail)
    }
}

pub struct Checks {
    pub threshold: usize,
    pub violation: Option<Violation>,
    /// Highest ledger any honest validator closed.
    pub closed: u64,
    /// When `closed` last grew.
    progress_at: u64,
    /// Since when the honest validators that are up and connected have
    /// made a quorum (`None`: they do not).
    quorum_since: Option<u64>,
    /// Each validator's last ledger seen.
    seen: BTreeMap<usize, u64>,
    /// The first honest header seen at each ledger.
    headers: BTreeMap<u64, (usize, Hash256)>,
    /// Spans without an honest quorum that can reach itself: (from, to),
    /// `to` open while it lasts.
    outages: Vec<(u64, Option<u64>)>,
    /// Extra time the last outage allows for recovering (its length).
    recovery_ms: u64,
    /// The next day to check.
    next_day: u64,
    /// The independent recomputation of every day's distribution, fed the
    /// observer's ledgers as days complete.
    auditor: crate::audit::Auditor,
}

/// Ledgers of a working quorum in which a tap tried early must land.
pub(crate) const TAP_LEDGERS: u64 = 40;

/// How long an honest quorum may go without closing a ledger: the
/// nomination and ballot timeouts of a few rounds and a catch-up, far
/// below what a stall looks like.
pub(crate) fn liveness_bound_ms(ledger_ms: u64) -> u64 {
    60_000 + 20 * ledger_ms
}

impl Checks {
    pub fn new(threshold: usize, now: u64, genesis: &Genesis) -> Checks {
        Checks {
            threshold,
            violation: None,
            closed: 1,
            progress_at: now,
            quorum_since: Some(now),
            seen: BTreeMap::new(),
            headers: BTreeMap::new(),
            outages: Vec::new(),
            recovery_ms: 0,
            next_day: 0,
            auditor: crate::audit::Auditor::new(genesis),
        }
    }

    pub fn fail(&mut self, check: &'static str, ledger: u64, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation { check, ledger, detail });
        }
    }

    /// Whether validator `i` closed a ledger it had not before.
    pub fn new_ledger(&mut self, i: usize, seq: u64) -> bool {
        let seen = self.seen.entry(i).or_insert(1);
        *seen < seq
    }

    /// Every ledger validator `i` closed since last time has the header
    /// every other honest validator has at that ledger.
    pub fn agreement(&mut self, i: usize, lcl: &LedgerHeader, store: &MemStore, now: u64) {
        let from = self.seen.get(&i).copied().unwrap_or(1) + 1;
        self.seen.insert(i, lcl.seq);
        for seq in from..=lcl.seq {
            let hash = if seq == lcl.seq {
                lcl.hash()
            } else {
                match store.header(seq) {
                    Ok(Some(h)) => h.hash(),
                    other => {
                        self.fail("stored", seq, format!("validator {i} has no header {seq}: {other:?}"));
                        return;
                    }
                }
            };
            match self.headers.get(&seq) {
                Some((j, h)) if *h != hash => {
                    let detail = format!("validators {j} and {i} closed ledger {seq} differently: {h} and {hash}");
                    self.fail("agreement", seq, detail);
                    return;
                }
                Some(_) => {}
                None => {
                    self.headers.insert(seq, (i, hash));
                }
            }
        }
        if lcl.seq > self.closed {
            self.closed = lcl.seq;
            self.progress_at = now;
        }
    }

    /// The network changed (a split or a heal): the bound counts from now.
    pub fn network_changed(&mut self, now: u64) {
        self.quorum_since = None;
        self.progress_at = self.progress_at.max(now);
    }

    pub fn liveness(&mut self, now: u64, quorum: bool, ledger_ms: u64) {
        let open = matches!(self.outages.last(), Some((_, None)));
        if !quorum {
            if !open {
                self.outages.push((now, None));
            }
            self.quorum_since = None;
            return;
        }
        if open {
            if let Some(last) = self.outages.last_mut() {
                last.1 = Some(now);
                // Ballot timeouts grew while no quorum could form (a round
                // longer each time): recovering takes up to as long again.
                self.recovery_ms = (now - last.0).min(watt_core::scp::driver::MAX_TIMEOUT_MS);
            }
        }
        let since = *self.quorum_since.get_or_insert(now);
        let waited = now.saturating_sub(since.max(self.progress_at));
        if waited > liveness_bound_ms(ledger_ms) + self.recovery_ms {
            let detail =
                format!("an honest quorum closed nothing for {} s after ledger {}", waited / 1000, self.closed);
            self.fail("liveness", self.closed, detail);
        }
    }

    /// How long an honest quorum could work between `from` and `to`.
    pub(crate) fn quorum_ms(&self, from: u64, to: u64) -> u64 {
        let down: u64 = self
            .outages
            .iter()
            .map(|(a, b)| {
                let (a, b) = ((*a).max(from), b.unwrap_or(to).min(to));
                b.saturating_sub(a)
            })
            .sum();
        to.saturating_sub(from).saturating_sub(down)
    }

    /// Once the observer has paid out a whole day: its distribution
    /// recomputed independently (`audit`: every attester paid exactly once
    /// at the SPEC §5 weight, the payouts root), the full supply invariant,
    /// and every honest phone's tap of that day in a ledger.
    pub fn day_checks(&mut self, h: &Herder<MemStore>, phones: &mut Phones, farm: &[AccountId]) -> Option<DayReport> {
        let day = self.next_day;
        let state = h.state();
        let rec = state.day_record(day)?;
        if !rec.distributed || rec.payouts_credited < rec.payouts {
            return None;
        }
        let seq = state.header.seq;
        self.next_day += 1;
        if let Err(e) = state.check_invariant() {
            self.fail("supply", seq, e.to_string());
        }
        let mut passed = true;
        let audit = self.auditor.advance(h.store(), seq).map(|()| self.auditor.days.get(&day).map(|a| a.compare(rec)));
        match audit {
            Ok(Some(audit)) if audit["agrees"] == true && audit["payouts_root_checked"] == true => {}
            Ok(Some(audit)) => {
                passed = false;
                self.fail("distribution", seq, format!("day {day}: {}", audit["differences"]));
            }
            Ok(None) => {
                passed = false;
                self.fail("distribution", seq, format!("day {day} was paid, but the audit found no distribution"));
            }
            Err(e) => {
                passed = false;
                self.fail("distribution", seq, format!("day {day} cannot be audited: {e}"));
            }
        }
        // A tap must land if, after it was tried, its day still had a
        // working quorum for `TAP_LEDGERS` ledgers: a network without one
        // (a split, crashes, silent validators) closes nothing.
        let ledger_ms = h.genesis().params.ledger_close_ms;
        let day_end = (h.genesis().genesis_time + (day + 1) * h.genesis().params.day_seconds) * 1000;
        let unlanded: Vec<_> = phones
            .unlanded(day, h.store())
            .into_iter()
            .filter(|(_, at)| self.quorum_ms(*at, day_end) >= TAP_LEDGERS * ledger_ms)
            .collect();
        if let Some((account, at)) = unlanded.first() {
            passed = false;
            let detail =
                format!("day {day}: {} honest taps never landed, first {account} tried at {at} ms", unlanded.len());
            self.fail("taps", seq, detail);
        }
        phones.forget(day);
        if let Some(detail) = farm_check(state, day, farm) {
            passed = false;
            self.fail("sybil", seq, detail);
        }
        if let Some(audit) = self.auditor.days.get(&day) {
            let day_start = day_end - h.genesis().params.day_seconds * 1000;
            if let Some((check, detail)) =
                storage_check(day, day_start, day_end, audit, phones, |from, to| self.quorum_ms(from, to))
            {
                passed = false;
                self.fail(check, seq, detail);
            }
        }
        // The day's ledgers: from its first to the next day's first.
        let first = rec.first_seq;
        let last = state.day_record(day + 1).map_or(seq, |r| r.first_seq.saturating_sub(1));
        let txs = (first..=last).map(|s| h.store().results(s).ok().flatten().map_or(0, |r| r.len() as u64)).sum();
        Some(DayReport {
            day,
            ledgers: last + 1 - first,
            txs,
            attesters: rec.attesters,
            minted: rec.emitted.units(),
            fees: rec.fees_paid.units(),
            storage_proven_bytes: rec.proven_bytes,
            new_accounts: rec.new_accounts,
            checks_passed: passed,
        })
    }
}

/// Every honest donor whose proof of `day` was tried in the first
/// `MUST_LAND_PERMILLE` of the day, with a working quorum from then to the
/// day's end, is credited its whole sector for the day (so its sector stays
/// active, and the audit then checks its share); the half-data prover is
/// credited only for a period in which every sample fell on data it still
/// holds.
fn storage_check(
    day: u64,
    day_start: u64,
    day_end: u64,
    audit: &crate::audit::DayAudit,
    phones: &Phones,
    quorum_ms: impl Fn(u64, u64) -> u64,
) -> Option<(&'static str, String)> {
    let sector = u128::from(super::donors::SECTOR.bytes());
    for d in &phones.donors {
        let credited = audit.proven.get(&d.id).copied().unwrap_or(0);
        if d.cheater {
            if credited > 0 && d.lucky.get(&day) != Some(&true) {
                return Some((
                    "half_data",
                    format!("day {day}: the half-data prover {} was credited {credited} bytes", d.id),
                ));
            }
            continue;
        }
        let Some(&at) = d.tried.get(&day) else { continue };
        let early = at < day_start + (day_end - day_start) * super::phones::MUST_LAND_PERMILLE / 1000;
        let worked = quorum_ms(at, day_end) == day_end - at;
        if early && worked && credited != sector {
            return Some((
                "storage",
                format!(
                    "day {day}: honest donor {} proved from {at} ms but was credited {credited} of {sector} bytes",
                    d.id
                ),
            ));
        }
    }
    None
}

/// The sybil farm admitted on `day` no more miners than its accounts could
/// invite that day: `invites_per_day` for each one past probation.
fn farm_check(state: &watt_core::ledger::LedgerState, day: u64, farm: &[AccountId]) -> Option<String> {
    let p = &state.params;
    let accounts: Vec<_> = farm.iter().filter_map(|id| state.account(id)).collect();
    let eligible = accounts
        .iter()
        .filter(|a| {
            a.flags & watt_core::ledger::AccountEntry::FLAG_FOUNDING != 0
                || (a.is_miner() && a.created_day + p.probation_days <= day)
        })
        .count() as u64;
    let admitted = accounts
        .iter()
        .filter(|a| {
            a.is_miner() && a.flags & watt_core::ledger::AccountEntry::FLAG_FOUNDING == 0 && a.created_day == day
        })
        .count() as u64;
    let allowed = eligible * u64::from(p.invites_per_day);
    (admitted > allowed).then(|| {
        format!("day {day}: the sybil farm got {admitted} new miners, its {eligible} eligible inviters allow {allowed}")
    })
}
