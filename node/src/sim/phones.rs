//! Phone models: people who tap once a day, pay each other, set security
//! circles and referrers, invite friends, and go quiet for days. Each
//! talks to one validator per action (any honest one that is up), as the
//! phone library does, keeps one transaction in flight, and resubmits what
//! was lost.

use super::donors::Donor;
use crate::herder::{Action, Herder};
use crate::store::{LedgerRead, MemStore};
use std::collections::BTreeMap;
use watt_core::address::AccountId;
use watt_core::amount::Amount;
use watt_core::codec::BoundedVec;
use watt_core::crypto::splitmix::SplitMix64;
use watt_core::crypto::{Hash256, Keypair, NetworkId};
use watt_core::ledger::{Attest, Genesis, Invite, Operation, Transaction, TransactionBody};
use watt_core::wire::{Request, Response, TxRejection};

/// A tap tried in the first `MUST_LAND_PERMILLE` of its day must land: the
/// rest of the day leaves room for resubmission through any fault the
/// simulator injects.
pub(crate) const MUST_LAND_PERMILLE: u64 = 600;
/// Ledgers between looks at a transaction in flight.
const CHECK_LEDGERS: u64 = 3;
/// Ledgers after which a transaction not in any ledger is sent again.
const RESEND_LEDGERS: u64 = 12;
/// Ledgers between a storage donor's looks at its duties.
const STORAGE_LEDGERS: u64 = 4;

#[derive(Debug, Clone, Copy)]
pub enum PhoneEvent {
    /// The phone's daily tap (and what it does after).
    Day { phone: usize, day: u64 },
    /// A look at the transaction in flight.
    Check { phone: usize },
    /// Someone invites a friend, who taps at once.
    Invite,
    /// A storage donor's look at its sector and this period's proof.
    Storage { donor: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tap(u64),
    Other,
}

struct InFlight {
    tx: Transaction,
    kind: Kind,
    sent_at: u64,
}

struct Phone {
    key: Keypair,
    id: AccountId,
    /// A founding account (its taps must land); invitees may lose the
    /// admission lottery.
    founding: bool,
    invite: Option<Invite>,
    inflight: Option<InFlight>,
    /// What is left to do today after the tap.
    todo: Vec<Operation>,
    quiet_until: u64,
    circle_set: bool,
}

/// The taps a day's check expects: (phone, first try at, hashes tried).
#[derive(Default)]
pub struct DayTaps {
    pub tried: BTreeMap<usize, (u64, Vec<Hash256>)>,
}

pub struct Phones {
    list: Vec<Phone>,
    network: NetworkId,
    genesis_ms: u64,
    day_ms: u64,
    ledger_ms: u64,
    pub taps: BTreeMap<u64, DayTaps>,
    /// The phones that donate storage.
    pub donors: Vec<Donor>,
    pub submitted: u64,
    pub rejected: BTreeMap<String, u64>,
}

fn pick(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

impl Phones {
    /// `donors` of the phones donate storage, the first of them keeping
    /// only half its data when `half_data` is set.
    pub fn new(keys: Vec<Keypair>, genesis: &Genesis, donors: usize, half_data: bool) -> Phones {
        let donors = keys
            .iter()
            .take(donors)
            .enumerate()
            .map(|(i, k)| Donor::new(i, AccountId(k.public()), half_data && i == 0))
            .collect();
        let list = keys
            .into_iter()
            .map(|key| Phone {
                id: AccountId(key.public()),
                key,
                founding: true,
                invite: None,
                inflight: None,
                todo: Vec::new(),
                quiet_until: 0,
                circle_set: false,
            })
            .collect();
        Phones {
            list,
            network: genesis.network_id(),
            genesis_ms: genesis.genesis_time * 1000,
            day_ms: genesis.params.day_seconds * 1000,
            ledger_ms: genesis.params.ledger_close_ms,
            taps: BTreeMap::new(),
            donors,
            submitted: 0,
            rejected: BTreeMap::new(),
        }
    }

    /// Every phone's first tap, at a random time of day 0 (offsets from now).
    pub fn first_events(&self, rng: &mut SplitMix64, day_ms: u64) -> Vec<(u64, PhoneEvent)> {
        let mut out: Vec<(u64, PhoneEvent)> = (0..self.list.len())
            .map(|p| (self.tap_offset(rng, day_ms), PhoneEvent::Day { phone: p, day: 0 }))
            .collect();
        if !self.list.is_empty() {
            out.push((day_ms / 4, PhoneEvent::Invite));
        }
        for donor in 0..self.donors.len() {
            out.push((rng.next_u64() % (20 * self.ledger_ms), PhoneEvent::Storage { donor }));
        }
        out
    }

    /// When in its day a phone taps: mostly early, some late.
    fn tap_offset(&self, rng: &mut SplitMix64, day_ms: u64) -> u64 {
        // Never in the first ledgers of a day (the anchor is of the day
        // before) nor in the last few (the day may end before it lands).
        let lo = 3 * self.ledger_ms;
        let hi = day_ms.saturating_sub(3 * self.ledger_ms).max(lo + 1);
        lo + rng.next_u64() % (hi - lo)
    }

    fn day_start(&self, day: u64) -> u64 {
        self.genesis_ms + day * self.day_ms
    }

    /// Handles one event on validator `herder`; returns the validator's
    /// actions and the phone's next events.
    pub fn handle(
        &mut self,
        ev: PhoneEvent,
        herder: &mut Herder<MemStore>,
        now: u64,
        day_ms: u64,
        rng: &mut SplitMix64,
    ) -> (Vec<Action>, Vec<(u64, PhoneEvent)>) {
        let mut next = Vec::new();
        match ev {
            PhoneEvent::Day { phone, day } => {
                let tomorrow = self.day_start(day + 1) + self.tap_offset(rng, day_ms);
                next.push((tomorrow, PhoneEvent::Day { phone, day: day + 1 }));
                let p = &mut self.list[phone];
                if day < p.quiet_until {
                    return (Vec::new(), next);
                }
                // Some people go quiet for a few days.
                if rng.next_u64() % 100 < 3 {
                    p.quiet_until = day + 1 + rng.next_u64() % 4;
                    return (Vec::new(), next);
                }
                // Something still in flight (yesterday's late payment): drop it.
                p.inflight = None;
                p.todo.clear();
                if rng.next_u64() % 100 < 20 {
                    let to = self.list[pick(rng, self.list.len())].id;
                    self.list[phone].todo.push(Operation::Pay { to, amount: Amount(1 + rng.next_u64() % 1_000) });
                }
                if !self.list[phone].circle_set && rng.next_u64() % 100 < 5 && self.list.len() > 4 {
                    let members: Vec<AccountId> = (0..3).map(|_| self.list[pick(rng, self.list.len())].id).collect();
                    let mut members: Vec<AccountId> =
                        members.into_iter().filter(|m| *m != self.list[phone].id).collect();
                    members.sort();
                    members.dedup();
                    if let Ok(members) = BoundedVec::try_from_vec(members) {
                        self.list[phone].todo.push(Operation::SetSecurityCircle { members });
                        self.list[phone].circle_set = true;
                    }
                }
                let actions = self.tap(phone, day, herder, now);
                next.push((now + CHECK_LEDGERS * self.ledger_ms, PhoneEvent::Check { phone }));
                (actions, next)
            }
            PhoneEvent::Check { phone } => {
                let actions = self.check(phone, herder, now, &mut next);
                (actions, next)
            }
            PhoneEvent::Storage { donor } => {
                next.push((now + STORAGE_LEDGERS * self.ledger_ms, PhoneEvent::Storage { donor }));
                // Storage runs in the background, quiet days too, one
                // transaction in flight like everything else.
                let phone = self.donors[donor].phone;
                if self.list[phone].inflight.is_some() {
                    return (Vec::new(), next);
                }
                let Some(op) = self.donors[donor].next_op(herder.state(), herder.store(), now) else {
                    return (Vec::new(), next);
                };
                let Some(tx) = self.sign(phone, herder, 1_000, op) else { return (Vec::new(), next) };
                next.push((now + CHECK_LEDGERS * self.ledger_ms, PhoneEvent::Check { phone }));
                (self.submit(phone, tx, Kind::Other, herder, now), next)
            }
            PhoneEvent::Invite => {
                let day = (now - self.genesis_ms) / self.day_ms;
                let inviter = pick(rng, self.list.len());
                let mut seed = [0u8; 32];
                for c in seed.chunks_mut(8) {
                    c.copy_from_slice(&rng.next_u64().to_le_bytes());
                }
                let key = Keypair::from_seed(watt_core::crypto::SecretSeed::from_bytes(seed)).expect("any seed");
                let id = AccountId(key.public());
                let invite = Invite::sign(&self.list[inviter].key, &self.network, &id, day + 1);
                let referrer = self.list[inviter].id;
                self.list.push(Phone {
                    key,
                    id,
                    founding: false,
                    invite: Some(invite),
                    inflight: None,
                    todo: vec![Operation::SetReferrer { account: referrer }],
                    quiet_until: 0,
                    circle_set: true,
                });
                let phone = self.list.len() - 1;
                let actions = self.tap(phone, day, herder, now);
                next.push((now + CHECK_LEDGERS * self.ledger_ms, PhoneEvent::Check { phone }));
                next.push((
                    self.day_start(day + 1) + self.tap_offset(rng, day_ms),
                    PhoneEvent::Day { phone, day: day + 1 },
                ));
                // A few invitations a day, at random times.
                let gap = day_ms / (2 + (self.list.len() as u64 / 200).min(50));
                next.push((now + 1 + rng.next_u64() % (2 * gap), PhoneEvent::Invite));
                (actions, next)
            }
        }
    }

    fn sign(&self, phone: usize, herder: &Herder<MemStore>, fee: u64, op: Operation) -> Option<Transaction> {
        let p = &self.list[phone];
        let seq = herder.state().account(&p.id).map_or(0, |a| a.seq_num) + 1;
        let ops = BoundedVec::try_from_vec(vec![op]).ok()?;
        Some(
            TransactionBody { source: p.id, seq_num: seq, fee: Amount(fee), max_ledger: None, ops }
                .sign(&p.key, &self.network),
        )
    }

    fn tap(&mut self, phone: usize, day: u64, herder: &mut Herder<MemStore>, now: u64) -> Vec<Action> {
        let lcl = herder.lcl().clone();
        let p = &self.list[phone];
        // A first tap carries its invite until the account exists.
        let invite = if herder.state().account(&p.id).is_none() { p.invite.clone() } else { None };
        let op =
            Operation::Attest(Attest { day, anchor_seq: lcl.seq, anchor_hash: lcl.hash(), invite, device_token: None });
        let Some(tx) = self.sign(phone, herder, 0, op) else { return Vec::new() };
        let early = now < self.day_start(day) + self.day_ms * MUST_LAND_PERMILLE / 1000;
        let taps = self.taps.entry(day).or_default();
        if self.list[phone].founding && (early || taps.tried.contains_key(&phone)) {
            taps.tried.entry(phone).or_insert((now, Vec::new())).1.push(tx.hash());
        }
        self.submit(phone, tx, Kind::Tap(day), herder, now)
    }

    fn submit(
        &mut self,
        phone: usize,
        tx: Transaction,
        kind: Kind,
        herder: &mut Herder<MemStore>,
        now: u64,
    ) -> Vec<Action> {
        self.submitted += 1;
        match herder.phone_request(Request::SubmitTx(tx.clone())) {
            Response::TxAccepted { .. } => {
                self.list[phone].inflight = Some(InFlight { tx, kind, sent_at: now });
            }
            Response::TxRejected { reason, .. } => {
                *self.rejected.entry(rejection_name(&reason)).or_insert(0) += 1;
                match (reason, kind) {
                    // Tapped already today (an earlier try landed): done.
                    (TxRejection::AlreadyAttested, Kind::Tap(_))
                    | (TxRejection::WouldFail(watt_core::ledger::OpFailure::AlreadyAttested), Kind::Tap(_)) => {}
                    // Anything else may pass on another validator or a
                    // later ledger (one behind still on yesterday, a full
                    // pool): try again at the next check, built afresh.
                    _ => self.list[phone].inflight = Some(InFlight { tx, kind, sent_at: 0 }),
                }
            }
            _ => {}
        }
        herder.take_outbox()
    }

    fn check(
        &mut self,
        phone: usize,
        herder: &mut Herder<MemStore>,
        now: u64,
        next: &mut Vec<(u64, PhoneEvent)>,
    ) -> Vec<Action> {
        let Some(f) = self.list[phone].inflight.as_ref() else { return self.next_todo(phone, herder, now, next) };
        let hash = f.tx.hash();
        let landed = herder.store().tx_ledger(&hash).ok().flatten().is_some();
        if landed {
            self.list[phone].inflight = None;
            return self.next_todo(phone, herder, now, next);
        }
        let day = (now - self.genesis_ms) / self.day_ms;
        if let Kind::Tap(d) = f.kind {
            if d != day {
                // The day it was for is over.
                self.list[phone].inflight = None;
                return Vec::new();
            }
        }
        next.push((now + CHECK_LEDGERS * self.ledger_ms, PhoneEvent::Check { phone }));
        if now.saturating_sub(f.sent_at) < RESEND_LEDGERS * self.ledger_ms || herder.pool.contains(&hash) {
            return Vec::new();
        }
        // Lost (dropped by the network, refused, or on a validator that
        // crashed): build it again against this validator's ledger.
        let kind = f.kind;
        match kind {
            Kind::Tap(d) => self.tap(phone, d, herder, now),
            Kind::Other => {
                let op = f.tx.body.ops.iter().next().cloned();
                match op.and_then(|op| self.sign(phone, herder, f.tx.body.fee.units(), op)) {
                    Some(tx) => self.submit(phone, tx, Kind::Other, herder, now),
                    None => Vec::new(),
                }
            }
        }
    }

    fn next_todo(
        &mut self,
        phone: usize,
        herder: &mut Herder<MemStore>,
        now: u64,
        next: &mut Vec<(u64, PhoneEvent)>,
    ) -> Vec<Action> {
        let Some(op) = self.list[phone].todo.pop() else { return Vec::new() };
        let Some(tx) = self.sign(phone, herder, 1_000, op) else { return Vec::new() };
        next.push((now + CHECK_LEDGERS * self.ledger_ms, PhoneEvent::Check { phone }));
        self.submit(phone, tx, Kind::Other, herder, now)
    }

    /// Founding phones whose tap of `day` was tried early and did not land.
    pub fn unlanded(&self, day: u64, store: &MemStore) -> Vec<(AccountId, u64)> {
        let Some(taps) = self.taps.get(&day) else { return Vec::new() };
        taps.tried
            .iter()
            .filter(|(_, (_, hashes))| !hashes.iter().any(|h| store.tx_ledger(h).ok().flatten().is_some()))
            .map(|(p, (at, _))| (self.list[*p].id, *at))
            .collect()
    }

    /// Forgets a day's taps once checked.
    pub fn forget(&mut self, day: u64) {
        self.taps.remove(&day);
    }
}

pub fn rejection_name(r: &TxRejection) -> String {
    match r {
        TxRejection::WouldFail(f) => format!("would_fail_{f:?}").to_lowercase(),
        TxRejection::BadSequence { .. } => "bad_sequence".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}
