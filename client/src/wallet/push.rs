//! Push, not polling (SPEC §7): while the app is open, one node pushes each
//! new header with its proof. The wallet verifies a push like any answer;
//! this decides when a push is overdue (the node stopped pushing) and when
//! the account is worth proving again.

/// Ledger times without a push before the node counts as stopped.
const MISSED_LEDGERS: u64 = 3;
/// Never less than this, whatever the ledger time (scheduling, a slow link).
const MIN_GAP_MS: u64 = 2_000;

/// Pushes in a row that bring no newer header before the node is dropped:
/// verifying a push costs signature checks, and a node repeating old
/// headers would spend the phone's battery on them.
const STALE_PUSHES: u32 = 3;

/// When the next push is due from the node followed, and whether its pushes
/// still bring anything new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushWatch {
    last_ms: u64,
    gap_ms: u64,
    stale_in_a_row: u32,
}

/// What to do with a push, decided before any signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A newer header than the tip: verify it.
    Verify,
    /// Nothing newer: ignore it.
    Skip,
    /// Too many pushes with nothing newer: stop following this node.
    Drop,
}

impl PushWatch {
    pub fn new(ledger_close_ms: u64, now_ms: u64) -> PushWatch {
        PushWatch {
            last_ms: now_ms,
            gap_ms: ledger_close_ms.saturating_mul(MISSED_LEDGERS).max(MIN_GAP_MS),
            stale_in_a_row: 0,
        }
    }

    /// A push of header `seq` arrived at `now_ms`; the wallet's tip is `tip`;
    /// `known` is whether the wallet holds a proof of the same value for the
    /// push's slot. Only a push that brings a newer header resets the wait,
    /// and an older one is verified only when it names another value than
    /// the one known (it may be fork evidence).
    pub fn on_push(&mut self, now_ms: u64, seq: u64, tip: Option<u64>, known: bool) -> Admit {
        if tip.is_some_and(|t| seq <= t) {
            if !known {
                return Admit::Verify;
            }
            self.stale_in_a_row += 1;
            return if self.stale_in_a_row >= STALE_PUSHES { Admit::Drop } else { Admit::Skip };
        }
        self.stale_in_a_row = 0;
        self.last_ms = now_ms;
        Admit::Verify
    }

    /// How long to wait for the next push from `now_ms` before giving up.
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        self.last_ms.saturating_add(self.gap_ms).saturating_sub(now_ms)
    }

    pub fn overdue(&self, now_ms: u64) -> bool {
        self.wait_ms(now_ms) == 0
    }
}

/// Whether a pushed header should come with a fresh account proof: when
/// transactions are pending (they settle against it), or once per `every_ms`.
pub fn account_due(last_proof_ms: Option<u64>, now_ms: u64, every_ms: u64, pending: bool) -> bool {
    pending || last_proof_ms.is_none_or(|t| now_ms.saturating_sub(t) >= every_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_silent_for_three_ledger_times_has_stopped_pushing() {
        let mut w = PushWatch::new(1_000, 10_000);
        assert_eq!(w.wait_ms(10_000), 3_000);
        assert!(!w.overdue(12_999));
        assert!(w.overdue(13_000));
        assert_eq!(w.on_push(12_500, 8, Some(7), false), Admit::Verify);
        assert!(!w.overdue(13_000), "a push resets the wait");
        // Sub-second ledgers still allow two seconds.
        assert_eq!(PushWatch::new(200, 0).wait_ms(0), 2_000);
    }

    #[test]
    fn a_node_repeating_old_headers_is_ignored_then_dropped_and_never_resets_the_wait() {
        let mut w = PushWatch::new(1_000, 0);
        assert_eq!(w.on_push(100, 5, Some(5), true), Admit::Skip);
        assert_eq!(w.on_push(200, 4, Some(5), true), Admit::Skip);
        assert!(w.overdue(3_000), "old headers kept the node followed");
        // A newer one in between starts the count again.
        assert_eq!(w.on_push(300, 6, Some(5), false), Admit::Verify);
        assert_eq!(w.on_push(400, 6, Some(6), true), Admit::Skip);
        assert_eq!(w.on_push(500, 6, Some(6), true), Admit::Skip);
        assert_eq!(w.on_push(600, 6, Some(6), true), Admit::Drop);
        // The first header after a cold start is always checked.
        assert_eq!(PushWatch::new(1_000, 0).on_push(0, 1, None, false), Admit::Verify);
    }

    /// Helper review of issue 18: a push for a slot the wallet knew was
    /// skipped before its value was looked at, so following one node hid a
    /// conflicting proof. Another value for a known slot is verified.
    #[test]
    fn an_old_slot_with_another_value_is_verified_as_possible_fork_evidence() {
        let mut w = PushWatch::new(1_000, 0);
        assert_eq!(w.on_push(100, 5, Some(5), false), Admit::Verify);
    }

    #[test]
    fn the_account_is_proven_again_when_something_is_pending_or_once_per_interval() {
        assert!(account_due(None, 0, 5_000, false));
        assert!(!account_due(Some(1_000), 3_000, 5_000, false));
        assert!(account_due(Some(1_000), 3_000, 5_000, true));
        assert!(account_due(Some(1_000), 6_000, 5_000, false));
    }
}
