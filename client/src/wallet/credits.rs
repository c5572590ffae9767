//! Proven balance increases the wallet's own transactions do not explain
//! become history: a reward when a day this wallet attested has since ended
//! (payouts follow the day boundary), a payment from someone otherwise.

use super::*;
use watt_core::amount::Amount;

/// What the store holds that explains (or does not) a balance change.
#[derive(Debug, Clone, Copy)]
pub struct Book<'a> {
    /// The account as proven before this refresh, and now.
    pub before: Option<&'a ProvenAccount>,
    pub now: Option<&'a ProvenAccount>,
    pub pending: &'a [PendingTx],
    /// Newest first, as the store lists it.
    pub history: &'a [HistoryEntry],
    pub rewarded_through: Option<u64>,
    pub confirmed_attest_days: &'a [u64],
}

/// The history line (and event) for credits between `before` and `now`, if any.
pub fn attribute_credits(tip: &LedgerHeader, book: Book<'_>) -> Effects {
    let mut fx = Effects::default();
    let (Some(before), Some(now)) = (book.before, book.now) else { return fx };
    let Some(new_entry) = now.entry.as_ref() else { return fx };
    if now.header_seq <= before.header_seq {
        return fx;
    }
    let old_balance = before.entry.as_ref().map_or(0, |e| e.balance.units());
    // Our own transactions applied in (before, now] that are still unsettled
    // make the difference ambiguous: wait until they settle.
    let old_seq = before.entry.as_ref().map_or(0, |e| e.seq_num);
    if book.pending.iter().any(|p| p.tx.body.seq_num <= new_entry.seq_num && p.tx.body.seq_num > old_seq) {
        return fx;
    }
    let spent: u64 = book
        .history
        .iter()
        .filter_map(|h| match h.status {
            TxStatus::Confirmed { seq } | TxStatus::Failed { seq, .. }
                if seq > before.header_seq && seq <= now.header_seq =>
            {
                Some(h.charged.units())
            }
            _ => None,
        })
        .fold(0u64, u64::saturating_add);
    let credited = new_entry.balance.units().saturating_add(spent).saturating_sub(old_balance);
    if credited == 0 {
        return fx;
    }
    let amount = Amount(credited);
    let reward_day = book
        .confirmed_attest_days
        .iter()
        .copied()
        .filter(|d| *d < tip.day && book.rewarded_through.is_none_or(|r| *d > r))
        .max();
    let kind = match reward_day {
        Some(day) => {
            fx.writes.push(Write::RewardedThrough(day));
            fx.events.push(ClientEvent::RewardPaid { day, amount });
            HistoryKind::Reward { day, amount }
        }
        None => {
            fx.events.push(ClientEvent::PaymentReceived { amount, balance: new_entry.balance });
            HistoryKind::Received { amount }
        }
    };
    fx.writes.push(Write::History(HistoryEntry {
        id: 0,
        time_ms: tip.close_time,
        kind,
        tx_hash: None,
        status: TxStatus::Confirmed { seq: now.header_seq },
        charged: Amount::ZERO,
    }));
    fx
}
