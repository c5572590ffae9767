//! The wallet's transactions: what it may sign on the verified view, and
//! with which sequence number and lifetime. Refusals happen here, before a
//! key is touched.

use super::*;
use watt_core::amount::Amount;
use watt_core::codec::BoundedVec;
use watt_core::crypto::NetworkId;
use watt_core::ledger::{Attest, Invite, Operation, TransactionBody};
use watt_core::wire::TxRejection;

/// The next sequence number: past the account's and every pending one.
pub fn next_seq(entry_seq: u64, pending: &[PendingTx]) -> u64 {
    let pending_max = pending.iter().map(|p| p.tx.body.seq_num).max().unwrap_or(0);
    entry_seq.max(pending_max).saturating_add(1)
}

/// A payment's own arguments, checked before any node is asked.
pub fn check_payment(me: &AccountId, to: &AccountId, amount: Amount) -> Result<(), ClientError> {
    if to == me {
        return Err(ClientError::InvalidArgument("cannot pay your own address".into()));
    }
    if amount.units() == 0 {
        return Err(ClientError::InvalidArgument("the amount must be more than zero".into()));
    }
    Ok(())
}

/// Transactions larger than this go to one node at a time (see
/// `WattClient::submit`): a tap or a payment is a few hundred bytes, a PoSt
/// reveal hundreds of kilobytes.
const SMALL_TX_BYTES: usize = 4 * 1024;

/// Whether `tx` is sent to one node rather than to every node.
pub fn sent_to_one_node(tx: &watt_core::ledger::Transaction) -> bool {
    watt_core::codec::encode(tx).len() > SMALL_TX_BYTES
}

/// Rejections that no retry can fix.
pub fn is_final_rejection(r: &TxRejection) -> bool {
    matches!(
        r,
        TxRejection::Malformed
            | TxRejection::BadSignature
            | TxRejection::WrongNetwork
            | TxRejection::Expired
            | TxRejection::AlreadyAttested
    )
}

/// Why a just-signed transaction is dead: no node took it and every node
/// that answered refused it for good. None while it may still land.
pub fn refused_submission(accepted: usize, rejections: &[TxRejection]) -> Option<String> {
    match rejections.first() {
        Some(first) if accepted == 0 && rejections.iter().all(is_final_rejection) => Some(format!("{first:?}")),
        _ => None,
    }
}

fn one_op(op: Operation) -> Result<BoundedVec<Operation, { watt_core::ledger::MAX_OPS }>, ClientError> {
    BoundedVec::try_from_vec(vec![op]).map_err(|_| ClientError::InvalidArgument("too many operations".into()))
}

impl Wallet {
    fn lifetime_end(&self, tip: &VerifiedHeader) -> Option<u64> {
        Some(tip.header.seq.saturating_add(self.config.tx_lifetime_ledgers))
    }

    /// A payment of `amount` to `to` with `fee`, if the proven balance covers
    /// it on top of every pending payment and fee.
    pub fn pay_body(
        &self,
        me: AccountId,
        to: AccountId,
        amount: Amount,
        fee: Amount,
        account: &ProvenAccount,
        pending: &[PendingTx],
    ) -> Result<TransactionBody, ClientError> {
        check_payment(&me, &to, amount)?;
        let tip = self.signing_tip()?;
        let entry = account.entry.as_ref().ok_or(ClientError::NoAccount)?;
        let pending_out = pending
            .iter()
            .map(|p| {
                let paid = if let TxKind::Pay { amount, .. } = &p.kind { amount.units() } else { 0 };
                p.tx.body.fee.units().saturating_add(paid)
            })
            .fold(0u64, u64::saturating_add);
        let needed = amount
            .units()
            .checked_add(fee.units())
            .and_then(|n| n.checked_add(pending_out))
            .ok_or(ClientError::InvalidArgument("amount too large".into()))?;
        if entry.balance.units() < needed {
            return Err(ClientError::InsufficientBalance { available: entry.balance, needed: Amount(needed) });
        }
        Ok(TransactionBody {
            source: me,
            seq_num: next_seq(entry.seq_num, pending),
            fee,
            max_ledger: self.lifetime_end(&tip),
            ops: one_op(Operation::Pay { to, amount })?,
        })
    }

    /// Today's tap on the verified tip. `claimed` is whether this phone
    /// already signed one for today. The first tap of an account that is not
    /// a miner needs `invite`, made for this account and not expired.
    pub fn attest_body(
        &self,
        me: AccountId,
        invite: Option<Invite>,
        account: &ProvenAccount,
        claimed: bool,
        pending: &[PendingTx],
        now_ms: u64,
    ) -> Result<(TransactionBody, u64), ClientError> {
        let tip = self.signing_tip()?;
        let day = tip.header.day;
        let entry = account.entry.as_ref();
        let on_ledger = entry.is_some_and(|e| e.last_attest_day == Some(day) || e.prev_attest_day == Some(day));
        if claimed || on_ledger {
            return Err(ClientError::AlreadyAttested { day, next_day_in_s: self.next_day_in_s(day, now_ms) });
        }
        // A new key, or a wallet someone paid into, becomes a miner only
        // through its own invited first tap (SPEC §5).
        let needs_invite = !entry.is_some_and(|e| e.is_miner());
        let invite = match (needs_invite, invite) {
            (false, _) => None,
            (true, None) => return Err(ClientError::NeedsInviter),
            (true, Some(i)) => Some(self.check_invite(i, &me, day)?),
        };
        let seq_num = match entry {
            Some(e) => next_seq(e.seq_num, pending),
            None => 1,
        };
        let op = Operation::Attest(Attest {
            day,
            anchor_seq: tip.header.seq,
            anchor_hash: tip.header.hash(),
            invite,
            device_token: None,
        });
        let body = TransactionBody {
            source: me,
            seq_num,
            fee: Amount::ZERO,
            max_ledger: self.lifetime_end(&tip),
            ops: one_op(op)?,
        };
        Ok((body, day))
    }

    fn check_invite(&self, i: Invite, me: &AccountId, day: u64) -> Result<Invite, ClientError> {
        if i.verify(&self.light.anchor.network_id, me).is_err() {
            return Err(ClientError::InvalidArgument(
                "this invite was made for another account or another network".into(),
            ));
        }
        if i.expiry_day < day {
            return Err(ClientError::InvalidArgument(format!(
                "this invite expired on day {} (today is day {day}): ask for a new one",
                i.expiry_day
            )));
        }
        Ok(i)
    }

    /// A one-operation, fee-free transaction with the next sequence number.
    pub fn op_body(
        &self,
        me: AccountId,
        op: Operation,
        account: &ProvenAccount,
        pending: &[PendingTx],
    ) -> Result<TransactionBody, ClientError> {
        let tip = self.signing_tip()?;
        let entry = account.entry.as_ref().ok_or(ClientError::NoAccount)?;
        Ok(TransactionBody {
            source: me,
            seq_num: next_seq(entry.seq_num, pending),
            fee: Amount::ZERO,
            max_ledger: self.lifetime_end(&tip),
            ops: one_op(op)?,
        })
    }

    /// The last day an invite made now is good for: `valid_days` from today.
    pub fn invite_expiry(&self, valid_days: u32) -> Result<u64, ClientError> {
        let tip = self.signing_tip()?;
        Ok(tip.header.day.saturating_add(u64::from(valid_days.max(1)) - 1))
    }

    /// Seconds until the day after `day` starts, by the genesis clock.
    pub fn next_day_in_s(&self, day: u64, now_ms: u64) -> u64 {
        self.light.day_start_ms(day.saturating_add(1)).saturating_sub(now_ms) / 1000
    }

    pub fn network_id(&self) -> &NetworkId {
        &self.light.anchor.network_id
    }
}
