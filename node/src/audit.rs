//! `watt-node audit`: recomputes a day's distribution from stored history by
//! a straight path — one loop over the ledgers, their transactions and
//! results, and the proof sets — sharing no code with the incremental ledger
//! beyond the codec and key hashing, and compares it with what the ledger
//! recorded (SPEC §5, the whitepaper's "compared daily with the simulator").
//!
//! Storage weights are replayed from the successful sector and PoSt
//! operations (SPEC §6). Not replayed: sectors the ledger itself terminates
//! (three faulty periods, end of lifetime) and pledge penalties, which only
//! matter once pledges are on (phase 1 has `pledge_per_gib = 0`).

use crate::store::{LedgerRead, Store};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::codec::{decode, encode};
use watt_core::crypto::{hash_tagged, Domain, Hash256};
use watt_core::ledger::state::DayRecord;
use watt_core::ledger::state::Payout;
use watt_core::ledger::{Genesis, Operation, ScpValue, StateKey, TxOutcome};

#[derive(Default, Clone)]
struct Acct {
    created_day: u64,
    founding: bool,
    /// Admitted by its own invited first attestation (a paid-into wallet is not).
    miner: bool,
    circle: Vec<AccountId>,
    referrer: Option<AccountId>,
}

/// Finds the store and genesis under a devnet directory or a node data directory.
pub(crate) fn locate(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let data = if dir.join("ledger.redb").exists() { dir.to_path_buf() } else { dir.join("data-0") };
    if !data.join("ledger.redb").exists() {
        return Err(format!("no ledger.redb in {} or {}", dir.display(), dir.join("data-0").display()));
    }
    let genesis = [dir.join("genesis.json"), data.parent().map(|p| p.join("genesis.json")).unwrap_or_default()]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| format!("no genesis.json beside {}", data.display()))?;
    Ok((data, genesis))
}

pub fn audit_day(dir: &Path, day: u64) -> Result<Json, String> {
    let (data, genesis_path) = locate(dir)?;
    let genesis =
        Genesis::from_json(&std::fs::read(&genesis_path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let store = Store::open(&data).map_err(|e| e.to_string())?;
    audit_store(&store, &genesis, day)
}

/// [`audit_day`] over any store: replays from genesis to the day's
/// distribution and compares it with the day's record.
pub fn audit_store(store: &impl LedgerRead, genesis: &Genesis, day: u64) -> Result<Json, String> {
    let state = store.load_state(genesis).map_err(|e| e.to_string())?.ok_or("empty store")?;
    let rec = state.day_record(day).cloned().ok_or_else(|| format!("day {day} has no record"))?;
    if !rec.distributed {
        return Err(format!(
            "day {day} is not distributed yet (ledger {} is on day {})",
            state.header.seq, state.header.day
        ));
    }
    let mut auditor = Auditor::new(genesis);
    while !auditor.days.contains_key(&day) && auditor.next_seq <= state.header.seq {
        auditor.feed(store)?;
    }
    let audit =
        auditor.days.get(&day).ok_or_else(|| format!("day {day}'s distribution ledger is not in the history"))?;
    Ok(audit.compare(&rec))
}

/// A day's distribution as the straight path recomputes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayAudit {
    pub day: u64,
    pub distributed_at_ledger: u64,
    pub attesters: u64,
    pub emitted: u128,
    pub fees_paid: u128,
    /// Class totals of weights: attesters, validators, storage.
    pub totals: [u128; 3],
    pub payouts: u64,
    pub payouts_root: Hash256,
    /// Proven bytes credited to each prover for the day.
    pub proven: BTreeMap<AccountId, u128>,
}

impl DayAudit {
    /// What differs from the day's record, as `audit` prints it.
    pub fn compare(&self, rec: &DayRecord) -> Json {
        let mut diffs = Vec::new();
        let mut check = |name: &str, recorded: u128, recomputed: u128| {
            if recorded != recomputed {
                diffs.push(
                    json!({ "field": name, "recorded": recorded.to_string(), "recomputed": recomputed.to_string() }),
                );
            }
        };
        check("attesters", u128::from(rec.attesters), u128::from(self.attesters));
        check("emitted", u128::from(rec.emitted.units()), self.emitted);
        check("fees_paid", u128::from(rec.fees_paid.units()), self.fees_paid);
        check("attester_weight_total", u128::from(rec.total_weights[0]), self.totals[0]);
        check("validator_weight_total", u128::from(rec.total_weights[1]), self.totals[1]);
        check("storage_weight_total", u128::from(rec.total_weights[2]), self.totals[2]);
        check("payouts", u128::from(rec.payouts), u128::from(self.payouts));
        // The root is recorded when the last payout is credited.
        let root_checked = rec.payouts_credited == rec.payouts;
        if root_checked && rec.payouts_root != self.payouts_root {
            diffs.push(json!({ "field": "payouts_root", "recorded": rec.payouts_root.to_hex(), "recomputed": self.payouts_root.to_hex() }));
        }
        json!({
            "day": self.day,
            "agrees": diffs.is_empty(),
            "distributed_at_ledger": self.distributed_at_ledger,
            "attesters": self.attesters,
            "emitted": self.emitted.to_string(),
            "fees_paid": self.fees_paid.to_string(),
            "payouts": self.payouts,
            "proven_bytes": self.totals[2].to_string(),
            "payouts_root_checked": root_checked,
            "differences": diffs,
        })
    }
}

/// The straight-path recomputation, fed one ledger at a time: `audit`
/// replays a store from genesis; the simulator keeps one beside its run.
pub struct Auditor {
    params: watt_core::ledger::Params,
    network: watt_core::crypto::NetworkId,
    genesis_time: u64,
    validators: BTreeSet<NodeId>,
    accounts: HashMap<AccountId, Acct>,
    attesters: BTreeMap<u64, BTreeSet<AccountId>>,
    counted: HashMap<u64, BTreeSet<NodeId>>,
    validator_slots: BTreeMap<u64, BTreeMap<NodeId, u64>>,
    fees_in: u128,
    fees_out: u128,
    emitted: u128,
    // Storage: sizes pre-committed, active sectors (bytes, activated at),
    // declared faults, each prover's committed bytes, proven bytes per day.
    precommitted: HashMap<(AccountId, u64), u64>,
    active: BTreeMap<(AccountId, u64), (u64, u64)>,
    declared: HashMap<(AccountId, u64), u64>,
    committed: HashMap<AccountId, (u64, u64)>,
    proven: BTreeMap<u64, BTreeMap<AccountId, u64>>,
    day_ledgers: BTreeMap<u64, Vec<(u64, u64)>>,
    first_seq: BTreeMap<u64, u64>,
    done: BTreeSet<u64>,
    /// The next ledger to feed.
    pub next_seq: u64,
    /// Each distributed day, recomputed.
    pub days: BTreeMap<u64, DayAudit>,
}

impl Auditor {
    pub fn new(genesis: &Genesis) -> Auditor {
        let mut accounts: HashMap<AccountId, Acct> = HashMap::new();
        for a in genesis.founding_accounts.iter() {
            accounts.insert(a.account, Acct { founding: true, ..Default::default() });
        }
        accounts.insert(genesis.reserve_account, Acct { founding: true, ..Default::default() });
        Auditor {
            params: genesis.params.clone(),
            network: genesis.network_id(),
            genesis_time: genesis.genesis_time,
            validators: genesis.validators.iter().map(|v| v.node_id).collect(),
            accounts,
            attesters: BTreeMap::new(),
            counted: HashMap::new(),
            validator_slots: BTreeMap::new(),
            fees_in: 0,
            fees_out: 0,
            emitted: 0,
            precommitted: HashMap::new(),
            active: BTreeMap::new(),
            declared: HashMap::new(),
            committed: HashMap::new(),
            proven: BTreeMap::new(),
            day_ledgers: BTreeMap::new(),
            first_seq: BTreeMap::from([(0, 1)]),
            done: BTreeSet::new(),
            next_seq: 2,
            days: BTreeMap::new(),
        }
    }

    /// Feeds every stored ledger up to `to`.
    pub fn advance(&mut self, store: &impl LedgerRead, to: u64) -> Result<(), String> {
        while self.next_seq <= to {
            self.feed(store)?;
        }
        Ok(())
    }

    /// Feeds ledger `next_seq`: the distributions due at its start, then its
    /// participation and transactions.
    pub fn feed(&mut self, store: &impl LedgerRead) -> Result<(), String> {
        let seq = self.next_seq;
        // Parameters are a few dozen numbers: copied, not the genesis
        // (tens of thousands of founding accounts) every ledger.
        let params = self.params.clone();
        let p = &params;
        let header = store.header(seq).map_err(|e| e.to_string())?.ok_or(format!("missing header {seq}"))?;
        for d in (self.first_seq.keys().next_back().copied().unwrap_or(0) + 1)..=header.day {
            self.first_seq.insert(d, seq);
        }
        self.day_ledgers.entry(header.day).or_default().push((seq, header.close_time));
        // Distributions due at the start of this ledger (after the grace ledgers).
        let due: Vec<u64> = self
            .first_seq
            .keys()
            .copied()
            .filter(|d| *d < header.day && !self.done.contains(d))
            .filter(|d| d + 1 < header.day || seq >= self.first_seq[&(d + 1)] + p.attest_grace_ledgers)
            .collect();
        for d in due {
            self.distribute(d, seq);
        }
        // This ledger's participation (its value's proof set) and transactions.
        if let Some(proof) = store.proof(seq).map_err(|e| e.to_string())? {
            let value = (!proof.commits.is_empty()).then_some(proof.value);
            if let Some(v) = value.and_then(|v| decode::<ScpValue>(v.as_bytes()).ok()) {
                if v.prev_proof_hash != Hash256::ZERO {
                    let set = store
                        .proof_set(&v.prev_proof_hash)
                        .map_err(|e| e.to_string())?
                        .ok_or(format!("ledger {seq} names proof set {} that is not stored", v.prev_proof_hash))?;
                    let network = self.network;
                    for e in set {
                        let n = e.statement.node_id;
                        if self.validators.contains(&n)
                            && e.verify(&network).is_ok()
                            && self.counted.entry(seq - 1).or_default().insert(n)
                        {
                            *self.validator_slots.entry(header.day).or_default().entry(n).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        let txs = store.tx_set(seq).map_err(|e| e.to_string())?.ok_or(format!("missing tx set {seq}"))?;
        let results = store.results(seq).map_err(|e| e.to_string())?.ok_or(format!("missing results {seq}"))?;
        for (tx, r) in txs.txs.iter().zip(results.iter()) {
            self.fees_in += u128::from(r.fee_charged.units());
            if r.outcome != TxOutcome::Success {
                continue;
            }
            let src = tx.body.source;
            for op in tx.body.ops.iter() {
                match op {
                    Operation::Pay { to, .. } => {
                        self.accounts.entry(*to).or_insert(Acct { created_day: header.day, ..Default::default() });
                    }
                    Operation::Attest(a) => {
                        // A successful first tap (of a new key or a wallet) makes a
                        // miner whose probation and referrer start that day.
                        let x = self.accounts.entry(src).or_default();
                        if !x.founding && !x.miner {
                            x.miner = true;
                            x.created_day = header.day;
                            x.referrer = a.invite.as_ref().map(|i| i.inviter);
                        }
                        self.attesters.entry(a.day).or_default().insert(src);
                    }
                    Operation::SetSecurityCircle { members } => {
                        if let Some(x) = self.accounts.get_mut(&src) {
                            x.circle = members.to_vec();
                        }
                    }
                    Operation::SetReferrer { account } => {
                        if let Some(x) = self.accounts.get_mut(&src) {
                            x.referrer = Some(*account);
                        }
                    }
                    Operation::SectorPreCommit { sector_number, size, .. } => {
                        self.precommitted.insert((src, *sector_number), size.bytes());
                    }
                    Operation::SectorProveCommit { sector_number, .. } => {
                        if let Some(bytes) = self.precommitted.remove(&(src, *sector_number)) {
                            self.active.insert((src, *sector_number), (bytes, seq));
                        }
                    }
                    Operation::SectorTerminate { sectors } => {
                        for n in sectors.iter() {
                            self.active.remove(&(src, *n));
                            self.precommitted.remove(&(src, *n));
                        }
                    }
                    Operation::SectorDeclareFault { sectors } => {
                        // Covers this period unless it is already committed, then the next.
                        let period = if self.committed.get(&src).is_some_and(|(p, _)| *p == header.day) {
                            header.day + 1
                        } else {
                            header.day
                        };
                        for n in sectors.iter() {
                            self.declared.insert((src, *n), period);
                        }
                    }
                    Operation::PostCommit { period, .. } => {
                        // The deadline opens at the first ledger of the period at or after its time.
                        let k = watt_core::ledger::storage::deadline_index(&src, *period, p.post_deadlines);
                        let open_ms = (self.genesis_time + period * p.day_seconds) * 1000
                            + u64::from(k) * (p.day_seconds * 1000 / u64::from(p.post_deadlines));
                        let opening = self
                            .day_ledgers
                            .get(period)
                            .and_then(|l| l.iter().find(|(_, ct)| *ct >= open_ms))
                            .map(|(s, _)| *s)
                            .unwrap_or(u64::MAX);
                        let bytes: u64 = self
                            .active
                            .range((src, 0)..=(src, u64::MAX))
                            .filter(|((_, n), (_, at))| *at < opening && self.declared.get(&(src, *n)) != Some(period))
                            .map(|(_, (b, _))| *b)
                            .sum();
                        self.committed.insert(src, (*period, bytes));
                    }
                    Operation::PostReveal { period, .. } => {
                        if let Some((_, bytes)) = self.committed.get(&src).filter(|(p, _)| p == period) {
                            *self.proven.entry(header.day).or_default().entry(src).or_insert(0) += bytes;
                        }
                    }
                    Operation::Participation { node_id, envelopes } => {
                        for e in envelopes.iter() {
                            if self.counted.entry(e.statement.slot_index).or_default().insert(*node_id) {
                                *self.validator_slots.entry(header.day).or_default().entry(*node_id).or_insert(0) += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        self.next_seq += 1;
        Ok(())
    }

    /// Day `d`'s distribution, straight from SPEC §5, at ledger `seq`.
    fn distribute(&mut self, d: u64, seq: u64) {
        // Parameters are a few dozen numbers: copied, not the genesis
        // (tens of thousands of founding accounts) every ledger.
        let params = self.params.clone();
        let p = &params;
        self.done.insert(d);
        let daily = u128::from(p.phase1_pool.units() / p.phase1_days);
        let remaining = u128::from(p.phase1_pool.units()).saturating_sub(self.emitted);
        let pool = daily.min(remaining);
        let split = [p.split_attesters_ppm, p.split_validators_ppm, p.split_storage_ppm];
        let fee_pool = self.fees_in - self.fees_out;
        // Attester weights, straight from SPEC §5.
        let set = self.attesters.remove(&d).unwrap_or_default();
        // Miners only: a wallet that was only paid into never vouches.
        let past = |a: &AccountId| {
            self.accounts.get(a).is_some_and(|x| x.founding || (x.miner && d >= x.created_day + p.probation_days))
        };
        // Attesters past probation that name each account their referrer
        // (counted once for the day, not once per attester: linear in it).
        let mut referred: HashMap<AccountId, u128> = HashMap::new();
        for r in &set {
            if let Some(x) = self.accounts.get(r).and_then(|x| x.referrer) {
                if past(r) {
                    *referred.entry(x).or_insert(0) += 1;
                }
            }
        }
        let mut weights: Vec<(AccountId, u128)> = Vec::new();
        for a in &set {
            let me = self.accounts.get(a).cloned().unwrap_or_default();
            let mut w: u128 = 1_000_000;
            let mut vouch = 0;
            for m in &me.circle {
                let mutual = self.accounts.get(m).is_some_and(|x| x.circle.contains(a));
                if mutual && past(m) {
                    vouch += 1;
                    if set.contains(m) {
                        w += 200_000;
                    }
                }
            }
            w += 250_000 * referred.get(a).copied().unwrap_or(0);
            w = w.min(3_000_000);
            if !past(a) && vouch < 3 {
                w = w * u128::from(p.probation_factor_ppm) / 1_000_000;
            }
            if w > 0 {
                weights.push((*a, w));
            }
        }
        let vweights: Vec<(AccountId, u128)> = self
            .validator_slots
            .get(&d)
            .map(|m| m.iter().map(|(n, c)| (AccountId(n.0), u128::from(*c))).collect())
            .unwrap_or_default();
        let sweights: Vec<(AccountId, u128)> = self
            .proven
            .remove(&d)
            .map(|m| m.into_iter().map(|(a, b)| (a, u128::from(b))).collect())
            .unwrap_or_default();
        let proven: BTreeMap<AccountId, u128> = sweights.iter().copied().collect();
        let mut pay: BTreeMap<Hash256, (AccountId, u128)> = BTreeMap::new();
        let mut day_emitted = 0u128;
        let mut day_fees = 0u128;
        let mut totals = [0u128; 3];
        for (c, class) in [weights, vweights, sweights].into_iter().enumerate() {
            let total: u128 = class.iter().map(|(_, w)| *w).sum();
            totals[c] = total;
            if total == 0 {
                continue;
            }
            let cp = pool * u128::from(split[c]) / 1_000_000;
            let cf = fee_pool * u128::from(split[c]) / 1_000_000;
            for (a, w) in class {
                let mut e = cp * w / total;
                if c == 2 {
                    e = e.min(u128::from(p.storage_pay_cap_per_gib_day.units()) * w / (1u128 << 30));
                }
                let f = cf * w / total;
                day_emitted += e;
                day_fees += f;
                pay.entry(StateKey::Account(a).hash()).or_insert((a, 0)).1 += e + f;
            }
        }
        self.emitted += day_emitted;
        self.fees_out += day_fees;
        let leaves: Vec<Hash256> = pay
            .values()
            .filter(|(_, amt)| *amt > 0)
            .map(|(a, amt)| {
                hash_tagged(Domain::StateValue, &encode(&Payout { day: d, account: *a, amount: Amount(*amt as u64) }))
            })
            .collect();
        self.days.insert(
            d,
            DayAudit {
                day: d,
                distributed_at_ledger: seq,
                attesters: set.len() as u64,
                emitted: day_emitted,
                fees_paid: day_fees,
                totals,
                payouts: leaves.len() as u64,
                payouts_root: watt_core::merkle::root(&leaves),
                proven,
            },
        );
    }
}
