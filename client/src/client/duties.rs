//! The shell of the storage duties: read the ledger's view (proven
//! entries), let the wallet plan, prove on a blocking thread with the state
//! lock released (a seal proof or a PoSt walk takes seconds to minutes),
//! then sign and send what was proven.

use super::*;
use crate::storage::{self as donation, StorageDuties, StoragePlan};
use crate::wallet::duties::{self, Duty, DutyContext, LedgerView};
use crate::wallet::Breadth;
use watt_core::codec::encode;
use watt_core::crypto::Hash256;
use watt_core::ledger::storage::CommittedSector;
use watt_core::ledger::{Operation, Params, StateEntry, StateKey};
use watt_core::storage::graph::{SectorShape, StackedGraph};
use watt_core::storage::power::DeviceFacts;
use watt_core::storage::proof::{post_beacon, prove_seal, samples_seed, seal_seed, PostChain, ProvenSector};
use watt_core::storage::prover::{self, ProvingSector};
use watt_core::storage::seal::FileSealStore;

fn storage_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Storage(format!("sector storage: {e}"))
}

/// A duty with the `rand` its proof needs, ready for the prover thread.
struct Job {
    duty: Duty,
    rand: Option<Hash256>,
}

impl WattClient {
    /// Does what the ledger expects of this phone's sectors now: terminations,
    /// pre-commit, prove-commit, the period's PoSt commit and reveal, as
    /// `facts` allow. Sealing itself is [`WattClient::run_background`]'s.
    pub async fn storage_duties(&self, facts: &DeviceFacts) -> Result<StorageDuties, ClientError> {
        let me = self.account_id()?;
        let plan = self.inner.store.storage_plan()?.unwrap_or_default();
        if !duties::has_ledger_work(&plan) {
            return Ok(StorageDuties::default());
        }
        let (jobs, mut report) = {
            let mut st = self.inner.state.lock().await;
            let account = self.fresh_account(&mut st, Breadth::One).await?;
            account.entry.as_ref().ok_or(ClientError::NoAccount)?;
            let tip = st.wallet.signing_tip()?.header;
            let pending = duties::pending_storage(&self.inner.store.pending()?);
            let view = self.ledger_view(&mut st, &me, &plan).await?;
            let p = &self.inner.genesis.params;
            let cx =
                DutyContext { me: &me, tip: &tip, params: p, genesis_time: self.inner.genesis.genesis_time, facts };
            let decided = duties::plan_duties(cx, plan, &view, &pending);
            let mut plan = decided.plan;
            let mut report = decided.report;
            self.apply_file_work(&mut plan, &decided.reseal, &decided.drop_layers, (tip.seq, tip.rand), &me)?;
            report.resealing = decided.reseal;
            self.inner.store.set_storage_plan(&plan)?;
            let mut jobs = Vec::new();
            for duty in decided.duties {
                let rand = match duty.needs_rand() {
                    Some(seq) => match self.verified_rand(&mut st, seq).await {
                        Some(r) => Some(r),
                        None => {
                            report.deferred.push(format!("{}: ledger {seq} not verified yet", describe(&duty)));
                            continue;
                        }
                    },
                    None => None,
                };
                jobs.push(Job { duty, rand });
            }
            (jobs, report)
        };
        // Proofs are CPU work: off the async workers, without the state lock.
        let dir = self.data_dir().to_path_buf();
        let params = self.inner.genesis.params.clone();
        let plan = self.inner.store.storage_plan()?.unwrap_or_default();
        let owner = me.0 .0;
        let ops = tokio::task::spawn_blocking(move || prove_all(&dir, &params, &plan, &owner, jobs))
            .await
            .map_err(|e| storage_err(format!("prover thread: {e}")))??;
        let mut st = self.inner.state.lock().await;
        for (op, what) in ops {
            let account = self.inner.store.account()?.ok_or(ClientError::NoAccount)?;
            let body = st.wallet.op_body(me, op, &account, &self.inner.store.pending()?)?;
            self.sign_and_send(&mut st, body, TxKind::Storage, None).await?;
            report.submitted.push(what);
        }
        Ok(report)
    }

    /// The prover, its sectors, today's and the uncounted days' records,
    /// each proven against the verified tip or a header chained to it.
    async fn ledger_view(&self, st: &mut State, me: &AccountId, plan: &StoragePlan) -> Result<LedgerView, ClientError> {
        let mut view = LedgerView::default();
        if let Some(StateEntry::Prover(x)) = self.proven_entry(st, StateKey::Prover(*me)).await? {
            view.prover = Some(x);
        }
        for rec in plan.sectors.iter().filter(|s| s.commitments.is_some()) {
            if let Some(StateEntry::Sector(e)) = self.proven_entry(st, StateKey::Sector(*me, rec.number)).await? {
                view.sectors.insert(rec.number, e);
            }
        }
        for n in plan.to_terminate.iter().copied() {
            if let Some(StateEntry::Sector(_)) = self.proven_entry(st, StateKey::Sector(*me, n)).await? {
                view.still_held.insert(n);
            }
        }
        let today = st.wallet.tip().map_or(0, |t| t.header.day);
        if let Some(StateEntry::Day(r)) = self.proven_entry(st, StateKey::Day(today)).await? {
            view.today = Some(r);
        }
        for d in duties::days_to_read(plan, view.prover.as_ref()) {
            // A day no node can prove now is counted on a later run.
            if let Ok(Some(StateEntry::Day(r))) = self.proven_entry(st, StateKey::Day(d)).await {
                view.days.insert(d, r);
            }
        }
        Ok(view)
    }

    /// Resets sectors to seal again and drops proven sectors' inner layers.
    fn apply_file_work(
        &self,
        plan: &mut StoragePlan,
        reseal: &[u64],
        drop_layers: &[u64],
        ticket_from: (u64, Hash256),
        me: &AccountId,
    ) -> Result<(), ClientError> {
        let dir = self.data_dir();
        let mut sectors = std::mem::take(&mut plan.sectors).into_vec();
        for rec in sectors.iter_mut() {
            if reseal.contains(&rec.number) {
                donation::reset_sector(dir, rec, &me.0 .0, ticket_from)?;
            } else if drop_layers.contains(&rec.number) {
                donation::open_sector(dir, rec.number)?.drop_inner_layers(rec.layers).map_err(storage_err)?;
                rec.inner_layers_dropped = true;
            }
        }
        plan.sectors = watt_core::codec::BoundedVec::from_iter_capped(sectors);
        Ok(())
    }

    /// `rand` of ledger `seq`, from a verified header.
    async fn verified_rand(&self, st: &mut State, seq: u64) -> Option<Hash256> {
        if let Some(h) = st.wallet.header_at(seq) {
            return Some(h.rand);
        }
        for (_, conn) in st.good_conns() {
            if let Some(h) = self.verified_header(st, seq, &conn).await {
                return Some(h.rand);
            }
        }
        None
    }
}

fn describe(duty: &Duty) -> String {
    match duty {
        Duty::Send(_, what) => what.clone(),
        Duty::ProveCommit { sector, .. } => format!("prove-commit sector {sector}"),
        Duty::PostCommit { period, .. } => format!("PoSt commit for period {period}"),
        Duty::PostReveal { commit, .. } => format!("PoSt reveal for period {}", commit.period),
    }
}

/// Computes each duty's proof from the sector files (blocking).
fn prove_all(
    dir: &Path,
    p: &Params,
    plan: &StoragePlan,
    owner: &[u8; 32],
    jobs: Vec<Job>,
) -> Result<Vec<(Operation, String)>, ClientError> {
    let mut ops = Vec::new();
    for Job { duty, rand } in jobs {
        let what = describe(&duty);
        let op = match (duty, rand) {
            (Duty::Send(op, _), _) => op,
            (Duty::ProveCommit { sector, .. }, Some(rand)) => {
                let rec = plan.sectors.iter().find(|r| r.number == sector).ok_or_else(|| missing(sector))?;
                let fs = donation::open_sector(dir, sector)?;
                let graph = StackedGraph::new(SectorShape { sector_bytes: rec.sector_bytes, layers: rec.layers })
                    .map_err(ClientError::InvalidArgument)?;
                let proof = prove_seal(&fs, &graph, &rec.replica_id, &seal_seed(&rand), p.seal_challenges as usize)
                    .map_err(storage_err)?;
                let proof = watt_core::codec::BoundedBytes::try_from_slice(&encode(&proof))
                    .map_err(|_| storage_err("seal proof too large"))?;
                Operation::SectorProveCommit { sector_number: sector, proof }
            }
            (Duty::PostCommit { period, due, opening_rand }, _) => {
                let stores = open_stores(dir, plan, &due)?;
                let chain = walk_post(p, &proving(&due, &stores), &opening_rand, owner)?;
                Operation::PostCommit { period, chain_root: chain.root() }
            }
            (Duty::PostReveal { commit, .. }, Some(rand)) => {
                // The same walk as the commit (it is deterministic), then the openings.
                let stores = open_stores(dir, plan, &commit.sectors)?;
                let sectors = proving(&commit.sectors, &stores);
                let chain = walk_post(p, &sectors, &commit.opening_rand, owner)?;
                let reveal = prover::reveal(&chain, &samples_seed(&rand), p.post_samples as usize, &sectors)
                    .map_err(storage_err)?;
                let proof = watt_core::codec::BoundedBytes::try_from_slice(&encode(&reveal))
                    .map_err(|_| storage_err("PoSt reveal too large"))?;
                Operation::PostReveal { period: commit.period, proof }
            }
            // A proof without its rand was deferred before it got here.
            (_, None) => continue,
        };
        ops.push((op, what));
    }
    Ok(ops)
}

fn missing(n: u64) -> ClientError {
    ClientError::Storage(format!("sector {n} is on the ledger but not on this device"))
}

fn open_stores(
    dir: &Path,
    plan: &StoragePlan,
    sectors: &[CommittedSector],
) -> Result<Vec<(FileSealStore, u32)>, ClientError> {
    sectors
        .iter()
        .map(|c| {
            let rec = plan.sectors.iter().find(|r| r.number == c.number).ok_or_else(|| missing(c.number))?;
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
    p: &Params,
    sectors: &[ProvingSector<'_>],
    opening_rand: &Hash256,
    owner: &[u8; 32],
) -> Result<PostChain, ClientError> {
    prover::walk(&post_beacon(opening_rand), owner, sectors, u64::from(p.post_chain_steps)).map_err(storage_err)
}
