//! Push, not polling (SPEC §7): while the app is open, one node pushes each
//! new header with its proof. The wallet verifies a push like any answer;
//! this decides when a push is overdue (the node stopped pushing) and when
//! the account is worth proving again.

/// Ledger times without a push before the node counts as stopped.
const MISSED_LEDGERS: u64 = 3;
/// Never less than this, whatever the ledger time (scheduling, a slow link).
const MIN_GAP_MS: u64 = 2_000;

/// When the next push is due from the node followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushWatch {
    last_ms: u64,
    gap_ms: u64,
}

impl PushWatch {
    pub fn new(ledger_close_ms: u64, now_ms: u64) -> PushWatch {
        PushWatch { last_ms: now_ms, gap_ms: ledger_close_ms.saturating_mul(MISSED_LEDGERS).max(MIN_GAP_MS) }
    }

    pub fn on_push(&mut self, now_ms: u64) {
        self.last_ms = now_ms;
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
        w.on_push(12_500);
        assert!(!w.overdue(13_000), "a push resets the wait");
        // Sub-second ledgers still allow two seconds.
        assert_eq!(PushWatch::new(200, 0).wait_ms(0), 2_000);
    }

    #[test]
    fn the_account_is_proven_again_when_something_is_pending_or_once_per_interval() {
        assert!(account_due(None, 0, 5_000, false));
        assert!(!account_due(Some(1_000), 3_000, 5_000, false));
        assert!(account_due(Some(1_000), 3_000, 5_000, true));
        assert!(account_due(Some(1_000), 6_000, 5_000, false));
    }
}
