//! The wallet's transactions: on a freshly verified view, the wallet builds
//! the body; the shell signs it, stores it, and only then sends it.

use super::*;
use crate::net::request_within;
use crate::store::Settlement;
use crate::wallet::{self, Breadth};
use std::time::Duration;
use watt_core::crypto::Hash256;
use watt_core::ledger::{Invite, Operation, Transaction, TransactionBody};
use watt_core::wire::{Request, Response, TxRejection};

use crate::pause_point;

/// Nodes a small transaction is sent to, at least.
const SUBMIT_TO: usize = 2;

impl WattClient {
    /// Refreshes, then the account as just proven (refusing after a fork).
    pub(super) async fn fresh_account(&self, st: &mut State, breadth: Breadth) -> Result<ProvenAccount, ClientError> {
        self.refresh_locked(st, breadth).await?;
        st.wallet.signing_tip()?;
        self.inner.store.account()?.ok_or_else(|| ClientError::Unverified("no node proved this account's state".into()))
    }

    /// Pays `amount` to `to` with `fee`; returns the transaction hash once a
    /// node accepted it (or it is stored to be re-sent).
    pub async fn pay(&self, to: AccountId, amount: Amount, fee: Amount) -> Result<Hash256, ClientError> {
        let me = self.account_id()?;
        wallet::check_payment(&me, &to, amount)?;
        let mut st = self.inner.state.lock().await;
        let account = self.fresh_account(&mut st, Breadth::Usual).await?;
        let body = st.wallet.pay_body(me, to, amount, fee, &account, &self.inner.store.pending()?)?;
        self.sign_and_send(&mut st, body, TxKind::Pay { to, amount }, None).await
    }

    /// An invite for `invitee`'s first tap, valid for `valid_days` days from
    /// today (SPEC §5): signed by this wallet, shown as a QR code or a link
    /// (`Invite::to_text`). Only a miner past probation that tapped within 7
    /// days and has invitations left can use it; the ledger checks that.
    pub async fn create_invite(&self, invitee: AccountId, valid_days: u32) -> Result<Invite, ClientError> {
        let mut st = self.inner.state.lock().await;
        self.fresh_account(&mut st, Breadth::Usual).await?;
        let expiry_day = st.wallet.invite_expiry(valid_days)?;
        let key = self.keypair()?;
        Ok(Invite::sign(&key, st.wallet.network_id(), &invitee, expiry_day))
    }

    /// Today's tap. The first tap of a new account (or of a wallet that was
    /// only paid into) needs an `invite` from its inviter.
    pub async fn attest(&self, invite: Option<Invite>) -> Result<Hash256, ClientError> {
        let me = self.account_id()?;
        let mut st = self.inner.state.lock().await;
        let account = self.fresh_account(&mut st, Breadth::Usual).await?;
        let store = &self.inner.store;
        let today = st.wallet.tip().map_or(0, |t| t.header.day);
        let claimed = store.attested(today)?.is_some();
        let (body, day) = st.wallet.attest_body(me, invite, &account, claimed, &store.pending()?, now_ms())?;
        self.sign_and_send(&mut st, body, TxKind::Attest { day }, Some(day)).await
    }

    /// Sets the wallet's security circle (at most 5 accounts).
    pub async fn set_security_circle(&self, members: Vec<AccountId>) -> Result<Hash256, ClientError> {
        let members = watt_core::codec::BoundedVec::try_from_vec(members)
            .map_err(|_| ClientError::InvalidArgument("a security circle has at most 5 members".into()))?;
        self.simple_op(Operation::SetSecurityCircle { members }, TxKind::SetSecurityCircle).await
    }

    /// Names the account that referred this one (first 7 days only).
    pub async fn set_referrer(&self, referrer: AccountId) -> Result<Hash256, ClientError> {
        self.simple_op(Operation::SetReferrer { account: referrer }, TxKind::SetReferrer { referrer }).await
    }

    async fn simple_op(&self, op: Operation, kind: TxKind) -> Result<Hash256, ClientError> {
        let me = self.account_id()?;
        let mut st = self.inner.state.lock().await;
        let account = self.fresh_account(&mut st, Breadth::Usual).await?;
        let body = st.wallet.op_body(me, op, &account, &self.inner.store.pending()?)?;
        self.sign_and_send(&mut st, body, kind, None).await
    }

    /// Signs, stores, then sends (in that order: a crash after signing leaves
    /// the transaction pending, to be re-sent, never re-signed).
    pub(super) async fn sign_and_send(
        &self,
        st: &mut State,
        body: TransactionBody,
        kind: TxKind,
        attest_day: Option<u64>,
    ) -> Result<Hash256, ClientError> {
        let key = self.keypair()?;
        let tx = body.sign(&key, st.wallet.network_id());
        drop(key);
        let hash = tx.hash();
        let p = PendingTx { tx: tx.clone(), kind, signed_ms: now_ms(), unknown_after_use: 0 };
        if !self.inner.store.add_pending(&p, attest_day)? {
            let day = attest_day.unwrap_or(0);
            return Err(ClientError::AlreadyAttested { day, next_day_in_s: st.wallet.next_day_in_s(day, now_ms()) });
        }
        pause_point("after-sign");
        let to = self.submission_conns(st, &tx).await;
        let (accepted, rejections) = self.submit(&to, &tx).await;
        if let Some(reason) = wallet::refused_submission(accepted, &rejections) {
            let status = TxStatus::Failed { seq: 0, reason: reason.clone() };
            let settlement = Settlement {
                hash,
                history: wallet::history_of(&p, status, Amount::ZERO, now_ms()),
                attested_day: None,
                release_day: attest_day,
            };
            self.inner.store.settle(settlement)?;
            return Err(ClientError::Rejected(reason));
        }
        pause_point("after-submit");
        Ok(hash)
    }

    /// Where a transaction goes: the open connections, topped up to
    /// `SUBMIT_TO` nodes for a small one. After a cross-check a wallet
    /// talks to one node, and one node alone could drop the transaction
    /// unseen while its headers keep verifying.
    pub(super) async fn submission_conns(&self, st: &mut State, tx: &Transaction) -> Vec<(NodeId, quinn::Connection)> {
        let mut conns = st.good_conns();
        if wallet::sent_to_one_node(tx) || conns.len() >= SUBMIT_TO {
            return conns;
        }
        let Ok(records) = self.inner.store.nodes() else { return conns };
        let connected = st.connected();
        let timeout = Duration::from_millis(self.inner.config.connect_timeout_ms);
        for rec in st.wallet.nodes_to_ask(&records, &connected, &connected) {
            if conns.len() >= SUBMIT_TO {
                break;
            }
            // An unreachable node is skipped: the transaction is stored and re-sent.
            if let Ok(c) = super::sync::connect(&self.inner.endpoint, &rec, timeout).await {
                self.inner.stats.lock().unwrap_or_else(|e| e.into_inner()).connects += 1;
                st.put_conn(rec.node_id, c.clone(), &self.inner.retired);
                conns.push((rec.node_id, c));
            }
        }
        conns
    }

    /// Sends a signed transaction to the connections given; returns how
    /// many took it and the rejections heard. A small one goes to every
    /// node (a lying or lagging node cannot sit on it); a large one (a seal
    /// proof, a PoSt reveal) to one node after another until one takes it,
    /// since validators flood it to each other anyway.
    pub(super) async fn submit(
        &self,
        conns: &[(NodeId, quinn::Connection)],
        tx: &Transaction,
    ) -> (usize, Vec<TxRejection>) {
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        let one_is_enough = wallet::sent_to_one_node(tx);
        let mut accepted = 0;
        let mut rejections = Vec::new();
        for (_, conn) in conns {
            match request_within(conn, &Request::SubmitTx(tx.clone()), timeout).await {
                Ok(Response::TxAccepted { .. }) | Ok(Response::TxRejected { reason: TxRejection::Duplicate, .. }) => {
                    accepted += 1
                }
                Ok(Response::TxRejected { reason, .. }) => rejections.push(reason),
                _ => {}
            }
            if one_is_enough && accepted > 0 {
                break;
            }
        }
        (accepted, rejections)
    }

    /// Waits until `hash` is no longer pending, then returns how it ended:
    /// while the wallet follows pushed headers (which settle it), by waiting
    /// for its events; otherwise by refreshing.
    pub async fn wait_settled(&self, hash: Hash256, timeout_ms: u64) -> Result<TxStatus, ClientError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let step = Duration::from_millis((self.inner.genesis.params.ledger_close_ms / 2).clamp(100, 2_000));
        loop {
            // Registered before the checks, so a settlement in between still wakes us.
            let queued = self.inner.queued.notified();
            if let Some(h) = self.inner.store.history(1024)?.into_iter().find(|h| h.tx_hash == Some(hash)) {
                return Ok(h.status);
            }
            if !self.inner.store.pending()?.iter().any(|p| p.tx.hash() == hash) {
                return Err(ClientError::InvalidArgument(format!("unknown transaction {}", hash.to_hex())));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::SettleTimeout);
            }
            if self.following() {
                let ledger = Duration::from_millis(self.inner.genesis.params.ledger_close_ms.max(100));
                let _ = tokio::time::timeout(2 * ledger, queued).await;
            } else {
                let _ = self.refresh().await;
                tokio::time::sleep(step).await;
            }
        }
    }
}
