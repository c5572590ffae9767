//! Adversaries: Byzantine validators (equivocating, silent, sending
//! garbage), accounts that flood the transaction lanes, send oversized
//! transactions and replay applied ones, and the deliberately broken rule
//! the checks must catch.

use super::{Adversaries, Injected, Validator};
use crate::herder::{Action, Herder};
use crate::store::{LedgerRead, MemStore};
use watt_core::address::AccountId;
use watt_core::amount::Amount;
use watt_core::codec::{decode, encode};
use watt_core::codec::{BoundedBytes, BoundedVec};
use watt_core::crypto::splitmix::SplitMix64;
use watt_core::crypto::{Hash256, Keypair, NetworkId};
use watt_core::ledger::ScpValue;
use watt_core::ledger::{Attest, Genesis, LedgerHeader, LedgerState, Operation, Transaction, TransactionBody};
use watt_core::scp::{Envelope, Pledges, Statement, Value};
use watt_core::wire::{PeerMessage, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byzantine {
    Equivocate,
    Silent,
    Garbage,
    /// A round leader that offers a new variant of its value in every
    /// nomination (other close times, the same VRF output), hoping to
    /// pick what wins or to fill the others' votes.
    Grind,
}

#[derive(Debug, Clone, Copy)]
pub enum AdversaryEvent {
    Flood,
    Oversized,
    Replay,
    Farm,
}

/// Invitations the sybil farm tries a day: more than `invites_per_day`
/// allows its inviters, so the limit is tested, not just respected.
const FARM_TRIES_PER_DAY: u32 = 10;

/// A sybil farm: one founding account that invites fresh keys of its own
/// (signed by any of its accounts, eligible or not), and every admitted
/// member taps every day.
struct Farm {
    root: Keypair,
    members: Vec<Keypair>,
    /// (day, invitations tried that day).
    tried: (u64, u32),
}

/// Re-signs `env` with something else said: a second, conflicting
/// statement for the same slot.
fn conflicting(env: &Envelope, key: &Keypair, network: &NetworkId) -> Envelope {
    let mut st: Statement = env.statement.clone();
    match &mut st.pledges {
        Pledges::Nominate { votes, .. } => {
            // Votes for fewer values to some peers than to others.
            let mut v = votes.to_vec();
            v.pop();
            *votes = BoundedVec::from_iter_capped(v);
        }
        Pledges::Prepare { ballot, .. } | Pledges::Confirm { ballot, .. } => {
            ballot.counter = ballot.counter.saturating_add(1);
        }
        Pledges::Externalize { n_h, .. } => *n_h = n_h.saturating_add(1),
    }
    st.sign(key, network)
}

/// `env` with eight more variants of each value of its own that it votes
/// for: the same tx set, rand and proof, a later close time each.
fn ground(env: &Envelope, key: &Keypair, network: &NetworkId, rng: &mut SplitMix64) -> Envelope {
    let mut st = env.statement.clone();
    if let Pledges::Nominate { votes, .. } = &mut st.pledges {
        let mut all: Vec<Value> = votes.to_vec();
        for v in votes.iter() {
            let Ok(value) = decode::<ScpValue>(v.as_bytes()) else { continue };
            if value.proposer != st.node_id {
                continue;
            }
            for _ in 0..8 {
                let variant = ScpValue { close_time: value.close_time + 1 + rng.next_u64() % 1_000, ..value.clone() };
                if let Ok(bytes) = BoundedBytes::try_from_vec(encode(&variant)) {
                    all.push(Value(bytes));
                }
            }
        }
        all.sort();
        all.dedup();
        all.truncate(watt_core::scp::statement::MAX_NOMINATED);
        *votes = BoundedVec::from_iter_capped(all);
    }
    st.sign(key, network)
}

/// What a Byzantine validator does instead of its honest actions.
pub fn byzantine_actions(
    kind: Byzantine,
    key: &Keypair,
    network: &NetworkId,
    actions: Vec<Action>,
    rng: &mut SplitMix64,
) -> Vec<Action> {
    match kind {
        Byzantine::Silent => Vec::new(),
        Byzantine::Grind => actions
            .into_iter()
            .map(|a| match a {
                Action::Broadcast { msg: PeerMessage::Envelope(env), except }
                    if matches!(env.statement.pledges, Pledges::Nominate { .. }) =>
                {
                    let env = ground(&env, key, network, rng);
                    Action::Broadcast { msg: PeerMessage::Envelope(env), except }
                }
                other => other,
            })
            .collect(),
        Byzantine::Equivocate => {
            let mut out = Vec::new();
            for a in actions {
                if let Action::Broadcast { msg: PeerMessage::Envelope(env), except } = &a {
                    // Half the time, a second statement that contradicts the first.
                    if rng.next_u64() % 2 == 0 {
                        let other = conflicting(env, key, network);
                        out.push(Action::Broadcast { msg: PeerMessage::Envelope(other), except: *except });
                    }
                }
                out.push(a);
            }
            out
        }
        Byzantine::Garbage => {
            let mut out = Vec::new();
            for a in actions {
                if let Action::Broadcast { msg: PeerMessage::Envelope(env), .. } = &a {
                    // A forged copy, a statement for a slot far ahead, and
                    // catch-up data nobody asked for.
                    let mut forged = env.clone();
                    forged.signature.0[(rng.next_u64() % 64) as usize] ^= 0x5a;
                    out.push(Action::Broadcast { msg: PeerMessage::Envelope(forged), except: None });
                    let mut ahead = env.statement.clone();
                    ahead.slot_index += 1 + rng.next_u64() % 1_000;
                    out.push(Action::Broadcast { msg: PeerMessage::Envelope(ahead.sign(key, network)), except: None });
                    out.push(Action::Broadcast {
                        msg: PeerMessage::Catchup { ledgers: BoundedVec::new() },
                        except: None,
                    });
                    let hash = Hash256([(rng.next_u64() & 0xff) as u8; 32]);
                    out.push(Action::Broadcast { msg: PeerMessage::GetTxSet { hash }, except: None });
                }
                out.push(a);
            }
            out
        }
    }
}

/// Accounts that attack the transaction lanes.
pub struct Adversary {
    flood: Option<Keypair>,
    oversized: Option<Keypair>,
    replay: bool,
    farm: Option<Farm>,
    network: Option<NetworkId>,
    /// Replays that a validator accepted into its pool (must be none).
    pub replays_accepted: u64,
    /// Transactions over `max_tx_bytes` a validator accepted (must be none).
    pub oversized_accepted: u64,
    pub replays_refused: u64,
}

impl Adversary {
    pub fn new(a: &Adversaries, rng: &mut SplitMix64) -> Adversary {
        Adversary {
            flood: a.flood.then(|| super::seeded_key(rng)),
            oversized: a.oversized.then(|| super::seeded_key(rng)),
            replay: a.replay,
            farm: a.sybil.then(|| Farm { root: super::seeded_key(rng), members: Vec::new(), tried: (0, 0) }),
            network: None,
            replays_accepted: 0,
            replays_refused: 0,
            oversized_accepted: 0,
        }
    }

    /// The adversaries' own (founding) accounts.
    pub fn accounts(&self) -> Vec<AccountId> {
        let farm = self.farm.as_ref().map(|f| &f.root);
        [self.flood.as_ref(), self.oversized.as_ref(), farm]
            .into_iter()
            .flatten()
            .map(|k| AccountId(k.public()))
            .collect()
    }

    /// Every account of the sybil farm (its root first).
    pub fn farm_accounts(&self) -> Vec<AccountId> {
        let Some(f) = &self.farm else { return Vec::new() };
        std::iter::once(&f.root).chain(&f.members).map(|k| AccountId(k.public())).collect()
    }

    pub fn setup(&mut self, genesis: &Genesis, _validators: &[Validator]) {
        self.network = Some(genesis.network_id());
    }

    pub fn first_events(&self, ledger_ms: u64) -> Vec<(u64, AdversaryEvent)> {
        let mut out = Vec::new();
        if self.flood.is_some() {
            out.push((ledger_ms / 2, AdversaryEvent::Flood));
        }
        if self.oversized.is_some() {
            out.push((ledger_ms * 3, AdversaryEvent::Oversized));
        }
        if self.replay {
            out.push((ledger_ms * 5, AdversaryEvent::Replay));
        }
        if self.farm.is_some() {
            out.push((ledger_ms * 4, AdversaryEvent::Farm));
        }
        out
    }

    fn sign(&self, key: &Keypair, seq: u64, fee: u64, op: Operation) -> Option<Transaction> {
        let network = self.network?;
        let ops = BoundedVec::try_from_vec(vec![op]).ok()?;
        let body =
            TransactionBody { source: AccountId(key.public()), seq_num: seq, fee: Amount(fee), max_ledger: None, ops };
        Some(body.sign(key, &network))
    }

    fn submit(herder: &mut Herder<MemStore>, tx: Transaction) -> (bool, Vec<Action>) {
        let accepted = matches!(herder.phone_request(Request::SubmitTx(tx)), Response::TxAccepted { .. });
        (accepted, herder.take_outbox())
    }

    pub fn handle(
        &mut self,
        ev: AdversaryEvent,
        herder: &mut Herder<MemStore>,
        now: u64,
        rng: &mut SplitMix64,
    ) -> (Vec<Action>, Vec<(u64, AdversaryEvent)>) {
        let ledger_ms = herder.genesis().params.ledger_close_ms;
        let mut actions = Vec::new();
        let mut next = Vec::new();
        match ev {
            AdversaryEvent::Flood => {
                if let Some(key) = self.flood.clone() {
                    let me = AccountId(key.public());
                    let seq = herder.state().account(&me).map_or(0, |a| a.seq_num) + 1;
                    let lcl = herder.lcl().clone();
                    let balance = herder.state().account(&me).map_or(0, |a| a.balance.units());
                    let mut txs = Vec::new();
                    for k in 0..20u64 {
                        let to = AccountId(
                            Keypair::from_seed(watt_core::crypto::SecretSeed::from_bytes([k as u8; 32]))
                                .expect("seed")
                                .public(),
                        );
                        let tx = match k % 5 {
                            // Sequence numbers far ahead.
                            0 => self.sign(&key, seq + 100 + k, 1_000, Operation::Pay { to, amount: Amount(1) }),
                            // More than the balance.
                            1 => self.sign(
                                &key,
                                seq,
                                1_000,
                                Operation::Pay { to, amount: Amount(balance.saturating_mul(2).max(1)) },
                            ),
                            // Taps for another day, and on an anchor that is not one.
                            2 => self.sign(
                                &key,
                                seq,
                                0,
                                Operation::Attest(Attest {
                                    day: lcl.day + 3,
                                    anchor_seq: lcl.seq,
                                    anchor_hash: lcl.hash(),
                                    invite: None,
                                    device_token: None,
                                }),
                            ),
                            3 => self.sign(
                                &key,
                                seq,
                                0,
                                Operation::Attest(Attest {
                                    day: lcl.day,
                                    anchor_seq: lcl.seq,
                                    anchor_hash: Hash256([7; 32]),
                                    invite: None,
                                    device_token: None,
                                }),
                            ),
                            // A forged signature.
                            _ => self.sign(&key, seq, 1_000, Operation::Pay { to, amount: Amount(1) }).map(|mut t| {
                                t.signature.0[(rng.next_u64() % 64) as usize] ^= 1;
                                t
                            }),
                        };
                        txs.extend(tx);
                    }
                    // The proof lane: a seal proof and a reveal over the
                    // lane's threshold, for a sector and a commitment that
                    // do not exist (honest donors' proofs must still land).
                    let junk = vec![0x5a; herder.genesis().params.proof_lane_min_bytes as usize + 1024];
                    if let Ok(proof) = BoundedBytes::try_from_vec(junk.clone()) {
                        let op = Operation::SectorProveCommit { sector_number: 7, proof };
                        txs.extend(self.sign(&key, seq, 1_000, op));
                    }
                    if let Ok(proof) = BoundedBytes::try_from_vec(junk) {
                        let op = Operation::PostReveal { period: lcl.day, proof };
                        txs.extend(self.sign(&key, seq, 1_000, op));
                    }
                    for tx in txs {
                        actions.extend(Self::submit(herder, tx).1);
                    }
                    next.push((now + ledger_ms / 2, AdversaryEvent::Flood));
                }
            }
            AdversaryEvent::Oversized => {
                if let Some(key) = self.oversized.clone() {
                    let me = AccountId(key.public());
                    let seq = herder.state().account(&me).map_or(0, |a| a.seq_num) + 1;
                    let limit = herder.genesis().params.max_tx_bytes as usize;
                    let proof = vec![0xab; limit + 1];
                    if let Ok(proof) = BoundedBytes::try_from_vec(proof) {
                        let op = Operation::SectorProveCommit { sector_number: 1, proof };
                        if let Some(tx) = self.sign(&key, seq, 1_000, op) {
                            let (accepted, a) = Self::submit(herder, tx);
                            actions.extend(a);
                            self.oversized_accepted += u64::from(accepted);
                        }
                    }
                    next.push((now + 5 * ledger_ms, AdversaryEvent::Oversized));
                }
            }
            AdversaryEvent::Replay => {
                // Every transaction of a ledger two behind, sent again.
                let seq = herder.lcl().seq.saturating_sub(2);
                let old: Vec<Transaction> =
                    herder.store().tx_set(seq).ok().flatten().map(|s| s.txs.to_vec()).unwrap_or_default();
                for tx in old {
                    let (accepted, a) = Self::submit(herder, tx);
                    actions.extend(a);
                    if accepted {
                        self.replays_accepted += 1;
                    } else {
                        self.replays_refused += 1;
                    }
                }
                next.push((now + 3 * ledger_ms, AdversaryEvent::Replay));
            }
            AdversaryEvent::Farm => {
                next.push((now + 2 * ledger_ms, AdversaryEvent::Farm));
                let Some(mut farm) = self.farm.take() else { return (actions, next) };
                for tx in self.farm_txs(&mut farm, herder, rng) {
                    actions.extend(Self::submit(herder, tx).1);
                }
                self.farm = Some(farm);
            }
        }
        (actions, next)
    }

    /// Today's taps of the farm's miners that have not tapped yet, and one
    /// more invitation while today's tries last.
    fn farm_txs(&self, farm: &mut Farm, herder: &Herder<MemStore>, rng: &mut SplitMix64) -> Vec<Transaction> {
        let state = herder.state();
        let lcl = state.header.clone();
        let day = lcl.day;
        let attest = |invite| {
            Operation::Attest(Attest { day, anchor_seq: lcl.seq, anchor_hash: lcl.hash(), invite, device_token: None })
        };
        // Keys never admitted are dropped the day after they tried.
        farm.members.retain(|k| state.account(&AccountId(k.public())).is_some() || farm.tried.0 == day);
        let mut txs = Vec::new();
        for key in std::iter::once(&farm.root).chain(&farm.members) {
            let Some(acc) = state.account(&AccountId(key.public())) else { continue };
            if acc.is_miner() && acc.last_attest_day != Some(day) {
                txs.extend(self.sign(key, acc.seq_num + 1, 0, attest(None)));
            }
        }
        if farm.tried.0 != day {
            farm.tried = (day, 0);
        }
        if farm.tried.1 < FARM_TRIES_PER_DAY {
            farm.tried.1 += 1;
            let Some(network) = self.network else { return txs };
            // Any farm account signs, on probation or not: the ledger decides.
            let inviters: Vec<&Keypair> = std::iter::once(&farm.root)
                .chain(farm.members.iter().filter(|k| state.account(&AccountId(k.public())).is_some()))
                .collect();
            let inviter = inviters[(rng.next_u64() % inviters.len() as u64) as usize];
            let key = super::seeded_key(rng);
            let invite = watt_core::ledger::Invite::sign(inviter, &network, &AccountId(key.public()), day + 1);
            txs.extend(self.sign(&key, 1, 0, attest(Some(invite))));
            farm.members.push(key);
        }
        txs
    }
}

/// The deliberately broken rule: once `day` is paid out, one validator
/// queues a tap's payout of that day again (the lowest account, paid the
/// day's attester share a second time).
pub fn inject(kind: Injected, herder: &mut Herder<MemStore>, genesis: &Genesis, header: &LedgerHeader) -> bool {
    match kind {
        Injected::PayoutTwice { day } => {
            let state = herder.state();
            let Some(rec) = state.day_record(day) else { return false };
            if header.day < day || !rec.distributed || rec.payouts_credited < rec.payouts {
                return false;
            }
            let Some(account) = state.accounts().map(|(id, _)| *id).min() else { return false };
            let share = rec.pools[0].units() / rec.attesters.max(1);
            let mut queue = state.payout_queue();
            queue.push(watt_core::ledger::state::Payout { day, account, amount: Amount(share.max(1)) });
            match LedgerState::restore(
                genesis,
                state.header.clone(),
                state.all_entries(),
                queue,
                state.recent_headers(),
            ) {
                Ok(broken) => {
                    herder.scp.driver_mut().state = broken;
                    true
                }
                Err(_) => false,
            }
        }
    }
}
