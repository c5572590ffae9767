//! The ledger side of storage donation (SPEC §6): from the proven sector,
//! prover and day entries, decide what this phone owes the ledger now —
//! a pre-commit for a sealed sector, a seal proof once its seed ledger has
//! closed, the period's PoSt commitment, then its reveal — compute it from
//! the sector files and send it like any other transaction (stored first,
//! re-sent until it settles). Everything is re-derived from the ledger on
//! every call, so a killed process simply picks up where the ledger is.

use super::*;
use crate::storage::{self as donation, SectorPhase, StorageDuties};
use watt_core::ledger::storage::{
    deadline_index, post_window_ms, CommittedSector, ProverEntry, SectorEntry, SectorState,
};
use watt_core::storage::graph::{SectorShape, StackedGraph};
use watt_core::storage::power::{self, DeviceFacts};
use watt_core::storage::proof::{post_beacon, prove_seal, samples_seed, seal_seed, ProvenSector};
use watt_core::storage::prover::{self, ProvingSector};
use watt_core::storage::seal::FileSealStore;

/// Sectors whose ticket is this close to the window's end are re-sealed
/// rather than pre-committed (the pre-commit must land inside the window).
const TICKET_MARGIN: u64 = 4;

/// What a pending storage transaction is about.
#[derive(PartialEq, Eq)]
enum Pending {
    PreCommit(u64),
    ProveCommit(u64),
    PostCommit(u64),
    PostReveal(u64),
    Terminate(u64),
}

fn pending_of(op: &Operation) -> Option<Pending> {
    match op {
        Operation::SectorPreCommit { sector_number, .. } => Some(Pending::PreCommit(*sector_number)),
        Operation::SectorProveCommit { sector_number, .. } => Some(Pending::ProveCommit(*sector_number)),
        Operation::PostCommit { period, .. } => Some(Pending::PostCommit(*period)),
        Operation::PostReveal { period, .. } => Some(Pending::PostReveal(*period)),
        _ => None,
    }
}

fn pending_terminations(op: &Operation) -> Vec<Pending> {
    match op {
        Operation::SectorTerminate { sectors } => sectors.iter().map(|n| Pending::Terminate(*n)).collect(),
        _ => pending_of(op).into_iter().collect(),
    }
}

fn storage_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Storage(format!("sector storage: {e}"))
}

impl WattClient {
    /// A state entry proven against the verified tip or a header chained to it.
    async fn proven_entry(
        &self,
        st: &mut State,
        tip: &VerifiedHeader,
        key: StateKey,
    ) -> Result<Option<StateEntry>, ClientError> {
        let timeout = Duration::from_millis(self.inner.config.request_timeout_ms);
        let conns: Vec<(NodeId, quinn::Connection)> = st
            .conns
            .iter()
            .filter(|(n, _)| !st.light.standing.get(n).is_some_and(|s| s.demoted))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (node, conn) in conns {
            let Ok(Response::Entry { header_seq, entry, proof }) =
                request_within(&conn, &Request::GetEntry { key }, timeout).await
            else {
                continue;
            };
            // Only headers this phone verified: the tip or one chained down from it.
            let header = if header_seq == tip.header.seq {
                Some(tip.header.clone())
            } else {
                self.header_at(st, header_seq, tip, &conn).await
            };
            let Some(header) = header else { continue };
            match light::verify_entry(&header, &key, entry.as_deref(), &proof) {
                Ok(e) => return Ok(e),
                Err(e) => {
                    let ev = st.light.on_invalid(node, &e);
                    self.emit(light_to_client(ev));
                }
            }
        }
        Err(ClientError::Unverified(format!("no node proved {key:?} against a verified ledger")))
    }

    /// `rand` of ledger `seq`, from a verified header.
    async fn verified_rand(&self, st: &mut State, tip: &VerifiedHeader, seq: u64) -> Option<Hash256> {
        if seq == tip.header.seq {
            return Some(tip.header.rand);
        }
        let conns: Vec<quinn::Connection> = st.conns.values().cloned().collect();
        for conn in conns {
            if let Some(h) = self.header_at(st, seq, tip, &conn).await {
                return Some(h.rand);
            }
        }
        None
    }

    /// Does what the ledger expects of this phone's sectors now: pre-commit,
    /// prove-commit, the period's PoSt commit and reveal, as `facts` allow.
    /// Sealing itself is [`WattClient::run_background`].
    pub async fn storage_duties(&self, facts: &DeviceFacts) -> Result<StorageDuties, ClientError> {
        let mut events = Vec::new();
        let r = async {
            let me = self.account_id()?;
            let mut st = self.inner.state.lock().await;
            let (tip, account) = self.fresh_view(&mut st, &mut events).await?;
            let entry = account.entry.ok_or(ClientError::NoAccount)?;
            let mut plan = self.inner.store.storage_plan()?.unwrap_or_default();
            let mut out = StorageDuties::default();
            if plan.sectors.iter().all(|s| s.commitments.is_none())
                && plan.uncounted.is_empty()
                && plan.to_terminate.is_empty()
            {
                return Ok(out);
            }
            let p = self.inner.genesis.params.clone();
            let dir = self.data_dir().to_path_buf();
            let owner = me.0 .0;
            let pending: Vec<Pending> = self
                .inner
                .store
                .pending()?
                .iter()
                .filter(|t| t.kind == TxKind::Storage)
                .flat_map(|t| t.tx.body.ops.iter().flat_map(pending_terminations).collect::<Vec<_>>())
                .collect();

            // The ledger's view of this prover and its sealed sectors.
            let prover: Option<ProverEntry> = match self.proven_entry(&mut st, &tip, StateKey::Prover(me)).await? {
                Some(StateEntry::Prover(x)) => Some(x),
                _ => None,
            };
            let mut on_ledger: BTreeMap<u64, SectorEntry> = BTreeMap::new();
            for rec in plan.sectors.iter().filter(|s| s.commitments.is_some()) {
                if let Some(StateEntry::Sector(e)) =
                    self.proven_entry(&mut st, &tip, StateKey::Sector(me, rec.number)).await?
                {
                    on_ledger.insert(rec.number, e);
                }
            }

            // Sectors the user no longer donates: terminate those the ledger still holds.
            let mut terminate = Vec::new();
            let mut keep = Vec::new();
            for n in plan.to_terminate.iter().copied() {
                if pending.contains(&Pending::Terminate(n)) {
                    keep.push(n);
                    continue;
                }
                match self.proven_entry(&mut st, &tip, StateKey::Sector(me, n)).await? {
                    Some(StateEntry::Sector(_)) => {
                        terminate.push(n);
                        keep.push(n);
                    }
                    // Gone from the ledger; a pre-commit still on its way is waited for.
                    _ if pending.contains(&Pending::PreCommit(n)) || pending.contains(&Pending::ProveCommit(n)) => {
                        keep.push(n)
                    }
                    _ => {}
                }
            }
            // `keep` is drawn from the plan's own list: never longer.
            plan.to_terminate = BoundedVec::from_iter_capped(keep);

            // The period's deadline comes first: the power policy weighs it.
            let period = tip.header.day;
            let day = match self.proven_entry(&mut st, &tip, StateKey::Day(period)).await? {
                Some(StateEntry::Day(r)) => Some(r),
                _ => None,
            };
            let k = deadline_index(&me, period, p.post_deadlines);
            let (_, close_ms) = post_window_ms(&p, self.inner.genesis.genesis_time, period, k);
            let has_active = on_ledger.values().any(|e| e.state != SectorState::PreCommitted);
            let committed = prover.as_ref().and_then(|x| x.post.as_ref()).filter(|c| c.period == period);
            let post_due = has_active && !committed.is_some_and(|c| c.revealed);
            out.next_deadline_ms = has_active.then_some(close_ms);
            plan.next_deadline_ms = out.next_deadline_ms;
            let deadline_in = post_due.then(|| close_ms.saturating_sub(tip.header.close_time));
            let decision = power::decide(facts, 0, deadline_in);

            let mut ops: Vec<(Operation, String)> = Vec::new();
            if !terminate.is_empty() {
                let what = format!("terminate sectors {terminate:?}");
                let sectors = BoundedVec::try_from_vec(terminate)
                    .map_err(|_| ClientError::InvalidArgument("too many sectors".into()))?;
                ops.push((Operation::SectorTerminate { sectors }, what));
            }
            let ticket_from = (tip.header.seq, tip.header.rand);
            let mut sectors = std::mem::take(&mut plan.sectors).into_vec();
            for rec in sectors.iter_mut() {
                let Some(comms) = rec.commitments else { continue };
                let Some(size) = donation::sector_size(rec.sector_bytes).filter(|_| rec.layers == p.sector_layers)
                else {
                    rec.phase = SectorPhase::Unprovable;
                    continue;
                };
                match on_ledger.get(&rec.number) {
                    None => {
                        let was_on_ledger =
                            matches!(rec.phase, SectorPhase::PreCommitted | SectorPhase::Active | SectorPhase::Faulty);
                        if pending.contains(&Pending::PreCommit(rec.number)) {
                            continue;
                        }
                        let stale = tip.header.seq.saturating_sub(rec.ticket_seq) + TICKET_MARGIN > p.ticket_window;
                        if was_on_ledger || stale {
                            donation::reset_sector(&dir, rec, &owner, ticket_from)?;
                            out.resealing.push(rec.number);
                            continue;
                        }
                        rec.phase = SectorPhase::Sealed;
                        let [comm_d, comm_c, comm_r_last, comm_r] = comms;
                        let op = Operation::SectorPreCommit {
                            sector_number: rec.number,
                            size,
                            ticket_seq: rec.ticket_seq,
                            comm_d,
                            comm_r,
                            comm_c,
                            comm_r_last,
                        };
                        ops.push((op, format!("pre-commit sector {}", rec.number)));
                    }
                    Some(e) if e.state == SectorState::PreCommitted => {
                        rec.phase = SectorPhase::PreCommitted;
                        let lapsed = tip.header.seq > e.precommit_seq.saturating_add(p.prove_commit_window);
                        if e.replica_id != rec.replica_id || lapsed {
                            // Not this seal (an older pre-commit), or too late: the ledger
                            // forfeits it; seal again and pre-commit over it.
                            if lapsed {
                                donation::reset_sector(&dir, rec, &owner, ticket_from)?;
                                out.resealing.push(rec.number);
                            }
                            continue;
                        }
                        let seed_seq = e.precommit_seq + p.seed_delay;
                        if tip.header.seq < seed_seq || pending.contains(&Pending::ProveCommit(rec.number)) {
                            continue;
                        }
                        if !decision.may_upload_seal_proofs {
                            out.deferred
                                .push(format!("seal proof of sector {}: needs an unmetered network", rec.number));
                            continue;
                        }
                        let Some(rand) = self.verified_rand(&mut st, &tip, seed_seq).await else {
                            out.deferred.push(format!(
                                "seal proof of sector {}: seed ledger {seed_seq} not verified yet",
                                rec.number
                            ));
                            continue;
                        };
                        let fs = donation::open_sector(&dir, rec.number)?;
                        let graph =
                            StackedGraph::new(SectorShape { sector_bytes: rec.sector_bytes, layers: rec.layers })
                                .map_err(ClientError::InvalidArgument)?;
                        let proof =
                            prove_seal(&fs, &graph, &rec.replica_id, &seal_seed(&rand), p.seal_challenges as usize)
                                .map_err(storage_err)?;
                        let proof = BoundedBytes::try_from_slice(&encode(&proof))
                            .map_err(|_| storage_err("seal proof too large"))?;
                        ops.push((
                            Operation::SectorProveCommit { sector_number: rec.number, proof },
                            format!("prove-commit sector {}", rec.number),
                        ));
                    }
                    Some(e) => {
                        rec.phase =
                            if e.state == SectorState::Faulty { SectorPhase::Faulty } else { SectorPhase::Active };
                        rec.activated_seq = Some(e.activated_seq);
                        if !rec.inner_layers_dropped {
                            donation::open_sector(&dir, rec.number)?
                                .drop_inner_layers(rec.layers)
                                .map_err(storage_err)?;
                            rec.inner_layers_dropped = true;
                        }
                    }
                }
            }
            plan.sectors = BoundedVec::try_from_vec(sectors)
                .map_err(|_| ClientError::InvalidArgument("too many sectors".into()))?;

            // The period's PoSt: commit inside the window, reveal after the sample ledger.
            let opening = day.as_ref().and_then(|r| r.post_openings.get(k as usize).copied());
            match (committed, opening) {
                (None, Some((opening_seq, opening_rand)))
                    if post_due
                        && tip.header.close_time < close_ms
                        && !pending.contains(&Pending::PostCommit(period)) =>
                {
                    let due: Vec<CommittedSector> = on_ledger
                        .iter()
                        .filter(|(_, e)| {
                            e.state != SectorState::PreCommitted
                                && e.activated_seq < opening_seq
                                && e.declared_fault_period != Some(period)
                        })
                        .map(|(n, e)| CommittedSector { number: *n, bytes: e.size.bytes(), comm_r_last: e.comm_r_last })
                        .collect();
                    if !due.is_empty() && decision.may_prove {
                        let stores = Self::open_stores(&dir, &plan, &due)?;
                        let chain = self.walk_post(&Self::proving(&due, &stores), &opening_rand, &owner)?;
                        ops.push((
                            Operation::PostCommit { period, chain_root: chain.root() },
                            format!("PoSt commit for period {period}"),
                        ));
                    } else if !due.is_empty() {
                        out.deferred.push(format!("PoSt for period {period}: {}", decision.reason));
                    }
                }
                (Some(c), _) if !c.revealed && !pending.contains(&Pending::PostReveal(period)) => {
                    let samples_seq = c.commit_seq + p.post_reveal_delay;
                    if tip.header.seq >= samples_seq {
                        if let Some(rand) = self.verified_rand(&mut st, &tip, samples_seq).await {
                            // The same walk as the commit (it is deterministic), then the openings.
                            let stores = Self::open_stores(&dir, &plan, &c.sectors)?;
                            let sectors = Self::proving(&c.sectors, &stores);
                            let chain = self.walk_post(&sectors, &c.opening_rand, &owner)?;
                            let reveal =
                                prover::reveal(&chain, &samples_seed(&rand), p.post_samples as usize, &sectors)
                                    .map_err(storage_err)?;
                            let proof = BoundedBytes::try_from_slice(&encode(&reveal))
                                .map_err(|_| storage_err("PoSt reveal too large"))?;
                            ops.push((
                                Operation::PostReveal { period, proof },
                                format!("PoSt reveal for period {period}"),
                            ));
                        }
                    }
                }
                _ => {}
            }

            // Earnings: each proven day's storage share, once its distribution is fixed.
            if let Some(x) = &prover {
                plan.last_proven_period = x.last_proven_period;
                let mut uncounted = std::mem::take(&mut plan.uncounted).into_vec();
                for (d, b) in x.credits.iter() {
                    if !uncounted.iter().any(|(u, _)| u == d) && !plan.counted_days.contains(d) {
                        uncounted.push((*d, *b));
                    }
                    if let Some(u) = uncounted.iter_mut().find(|(u, _)| u == d) {
                        u.1 = *b;
                    }
                }
                plan.uncounted = newest_days(uncounted);
            }
            let mut still = Vec::new();
            let uncounted: Vec<(u64, u64)> = plan.uncounted.to_vec();
            for (d, b) in uncounted {
                match self.proven_entry(&mut st, &tip, StateKey::Day(d)).await {
                    Ok(Some(StateEntry::Day(r))) if r.distributed => {
                        plan.earned = plan
                            .earned
                            .checked_add(donation::storage_share(&r, b, p.storage_pay_cap_per_gib_day))
                            .unwrap_or(plan.earned);
                        plan.mark_counted(d);
                    }
                    _ => still.push((d, b)),
                }
            }
            plan.uncounted = newest_days(still);
            self.inner.store.set_storage_plan(&plan)?;

            for (op, what) in ops {
                let body = self.fee_free_body(me, entry.seq_num, &tip, op)?;
                self.sign_and_send(&mut st, body, TxKind::Storage, None).await?;
                out.submitted.push(what);
            }
            Ok(out)
        }
        .await;
        self.emit(events);
        r
    }

    fn open_stores(
        dir: &Path,
        plan: &donation::StoragePlan,
        sectors: &[CommittedSector],
    ) -> Result<Vec<(FileSealStore, u32)>, ClientError> {
        sectors
            .iter()
            .map(|c| {
                let rec = plan.sectors.iter().find(|r| r.number == c.number).ok_or_else(|| {
                    ClientError::Storage(format!("sector {} is on the ledger but not on this device", c.number))
                })?;
                Ok((donation::open_sector(dir, c.number)?, rec.layers))
            })
            .collect()
    }

    fn proving<'a>(sectors: &[CommittedSector], stores: &'a [(FileSealStore, u32)]) -> Vec<ProvingSector<'a>> {
        sectors
            .iter()
            .zip(stores)
            .map(|(c, (fs, layers))| ProvingSector {
                sector: ProvenSector { sector_number: c.number, sector_bytes: c.bytes, comm_r_last: c.comm_r_last },
                layers: *layers,
                store: fs,
            })
            .collect()
    }

    fn walk_post(
        &self,
        sectors: &[ProvingSector<'_>],
        opening_rand: &Hash256,
        owner: &[u8; 32],
    ) -> Result<watt_core::storage::proof::PostChain, ClientError> {
        prover::walk(&post_beacon(opening_rand), owner, sectors, u64::from(self.inner.genesis.params.post_chain_steps))
            .map_err(storage_err)
    }
}

/// The newest days of a list of (day, bytes) credits, as many as the plan
/// keeps: an older day past that is dropped from the phone's tally (it was
/// settled on the ledger long ago), never the whole list.
pub(crate) fn newest_days<const N: usize>(mut days: Vec<(u64, u64)>) -> BoundedVec<(u64, u64), N> {
    days.sort_unstable();
    let cut = days.len().saturating_sub(N);
    BoundedVec::from_iter_capped(days.into_iter().skip(cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16 #13: a prover with more than 16 days of credits not yet
    /// counted had the whole list wiped (`unwrap_or_default()`); now the
    /// newest 16 days stay.
    #[test]
    fn earnings_past_the_plans_bound_keep_the_newest_days() {
        let days: Vec<(u64, u64)> = (0..20u64).rev().map(|d| (d, d * 10)).collect();
        let kept: BoundedVec<(u64, u64), 16> = newest_days(days);
        assert_eq!(kept.to_vec(), (4..20u64).map(|d| (d, d * 10)).collect::<Vec<_>>());
        let few: BoundedVec<(u64, u64), 16> = newest_days(vec![(3, 1), (1, 2)]);
        assert_eq!(few.to_vec(), vec![(1, 2), (3, 1)]);
    }
}
