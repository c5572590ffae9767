//! How a pending transaction ends: proven included (confirmed or failed),
//! proven unusable (expired, superseded), or still open and sent again.
//! A node saying it does not know a transaction proves nothing; only a
//! result proven under a verified header settles one.

use super::*;
use watt_core::amount::Amount;
use watt_core::crypto::Hash256;
use watt_core::ledger::{OpFailure, TxOutcome, TxResult};

/// Refreshes in which the account's sequence had moved past a transaction
/// that no node knew, before it counts as superseded.
const UNKNOWN_AFTER_USE: u32 = 3;

/// What the nodes said about one pending transaction.
#[derive(Debug, Clone)]
pub struct TxCheck {
    hash: Hash256,
    /// The first result proven under a verified header, and its ledger.
    outcome: Option<(u64, TxResult)>,
    asked: usize,
    unknown_to: usize,
    /// Nodes that hold it in their pool, waiting for a ledger.
    pooled: usize,
}

impl TxCheck {
    pub fn new(hash: Hash256) -> TxCheck {
        TxCheck { hash, outcome: None, asked: 0, unknown_to: 0, pooled: 0 }
    }

    /// True once a result is proven: no other node needs asking.
    pub fn proven(&self) -> bool {
        self.outcome.is_some()
    }

    /// Unknown only when no node proved it and every node asked said so.
    fn unknown(&self) -> bool {
        self.outcome.is_none() && self.unknown_to > 0 && self.unknown_to == self.asked
    }
}

/// What to do with a pending transaction after asking the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleStep {
    /// It ended: write this (history, the attestation day) and raise these.
    Settled(Write),
    /// Unknown everywhere though its sequence number was used: count it.
    Count(PendingTx),
    /// Still open and held in a node's pool: wait for a ledger (sending it
    /// again would cost its bytes again, a PoSt reveal's 240 KB each time).
    Wait,
    /// Still open and no node holds it: send it again.
    Resubmit,
}

impl Wallet {
    /// The ledger a `GetTx` answer names, when its header is needed to check it.
    pub fn tx_answer_seq(check: &TxCheck, answer: &Response) -> Option<u64> {
        match answer {
            Response::Tx { header_seq, result, .. } if result.tx_hash == check.hash => Some(*header_seq),
            _ => None,
        }
    }

    /// One node's `GetTx` answer. `header` is the verified header at the
    /// answer's ledger (None when the shell could not link one: the answer
    /// then proves nothing). A result that does not check demotes the node.
    pub fn on_tx_answer(
        &mut self,
        check: &mut TxCheck,
        node: NodeId,
        answer: Result<Response, NetError>,
        header: Option<&LedgerHeader>,
        fx: &mut Effects,
    ) {
        check.asked += 1;
        match answer {
            Ok(Response::Tx { header_seq, result, path }) => {
                if result.tx_hash != check.hash {
                    fx.light(self.light.on_invalid(node, &LightError::BadInclusion));
                    return;
                }
                let Some(header) = header.filter(|h| h.seq == header_seq) else { return };
                match light::verify_tx(header, &result, &path) {
                    Ok(()) => {
                        if check.outcome.is_none() {
                            check.outcome = Some((header_seq, result));
                        }
                    }
                    Err(e) => fx.light(self.light.on_invalid(node, &e)),
                }
            }
            Ok(Response::TxUnknown { hash }) if hash == check.hash => check.unknown_to += 1,
            // In the node's pool: a claim, cheap to believe (at worst the
            // transaction waits one refresh more before it is sent again).
            Ok(Response::TxAccepted { hash }) if hash == check.hash => check.pooled += 1,
            _ => {}
        }
    }

    /// Decides `p`'s fate from what the nodes said and the proven account.
    pub fn settle(&self, p: &PendingTx, check: &TxCheck, account: Option<&ProvenAccount>, now_ms: u64) -> SettleStep {
        let attest_day = match p.kind {
            TxKind::Attest { day } => Some(day),
            _ => None,
        };
        if let Some((seq, result)) = &check.outcome {
            let (status, took_effect) = match &result.outcome {
                TxOutcome::Success => (TxStatus::Confirmed { seq: *seq }, true),
                TxOutcome::OpFailed { reason, .. } => {
                    (TxStatus::Failed { seq: *seq, reason: format!("{reason:?}") }, false)
                }
                TxOutcome::Rejected(f) => (TxStatus::Failed { seq: *seq, reason: format!("{f:?}") }, false),
            };
            // Attested on another device the same day: the day is still taken.
            let already = matches!(result.outcome, TxOutcome::OpFailed { reason: OpFailure::AlreadyAttested, .. });
            let mut events = vec![ClientEvent::TransactionSettled { hash: check.hash, status: status.clone() }];
            if let (Some(day), true) = (attest_day, took_effect) {
                events.push(ClientEvent::AttestationConfirmed { day });
            }
            let settlement = Settlement {
                hash: check.hash,
                history: history_of(p, status, result.fee_charged, now_ms),
                attested_day: attest_day.filter(|_| took_effect || already),
                release_day: attest_day.filter(|_| !took_effect && !already),
            };
            return SettleStep::Settled(Write::Settle { settlement, events });
        }
        let used = account.and_then(|a| a.entry.as_ref()).map_or(0, |e| e.seq_num);
        let proven_at = account.map_or(0, |a| a.header_seq);
        let seq_num = p.tx.body.seq_num;
        // Proven by the account alone, whatever any node says: past its
        // last ledger with its sequence number unused, it can never apply
        // (every included transaction uses its sequence number).
        let expired = p.tx.body.max_ledger.is_some_and(|m| proven_at > m) && used < seq_num;
        if !expired && !check.unknown() {
            return if check.pooled > 0 { SettleStep::Wait } else { SettleStep::Resubmit };
        }
        if expired || (used >= seq_num && p.unknown_after_use >= UNKNOWN_AFTER_USE) {
            let status = if expired { TxStatus::Expired } else { TxStatus::Superseded };
            let events = vec![ClientEvent::TransactionSettled { hash: check.hash, status: status.clone() }];
            let settlement = Settlement {
                hash: check.hash,
                history: history_of(p, status, Amount::ZERO, now_ms),
                attested_day: None,
                release_day: attest_day,
            };
            return SettleStep::Settled(Write::Settle { settlement, events });
        }
        if used >= seq_num {
            let mut counted = p.clone();
            counted.unknown_after_use += 1;
            return SettleStep::Count(counted);
        }
        SettleStep::Resubmit
    }
}

/// The history line of a transaction that ended with `status`.
pub(crate) fn history_of(p: &PendingTx, status: TxStatus, fee_charged: Amount, now_ms: u64) -> HistoryEntry {
    let took_effect = matches!(status, TxStatus::Confirmed { .. });
    let kind = match &p.kind {
        TxKind::Pay { to, amount } => HistoryKind::Sent { to: *to, amount: *amount, fee: fee_charged },
        TxKind::Attest { day } => HistoryKind::Attested { day: *day },
        TxKind::SetSecurityCircle => HistoryKind::SecurityCircleSet,
        TxKind::SetReferrer { referrer } => HistoryKind::ReferrerSet { referrer: *referrer },
        TxKind::Storage => HistoryKind::Storage,
    };
    let moved = match (&p.kind, took_effect) {
        (TxKind::Pay { amount, .. }, true) => amount.units(),
        _ => 0,
    };
    HistoryEntry {
        id: 0,
        time_ms: now_ms,
        kind,
        tx_hash: Some(p.tx.hash()),
        status,
        charged: Amount(fee_charged.units().saturating_add(moved)),
    }
}
