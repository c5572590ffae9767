//! Storage donation on the phone (SPEC §6): the donated quota, the sectors
//! planned inside it, and background work in slices that the power policy
//! allows. Each sector seals in its own directory (`sectors/<number>/`)
//! through [`FileSealStore`], so a killed seal resumes from its checkpoint.
//!
//! The ledger side (pre-commit, prove-commit, one PoSt a period) is driven
//! by `WattClient::storage_duties` (planned in `wallet::duties`), which reads the proven sector and prover
//! entries and records here what it learnt ([`SectorPhase`], earnings).

use crate::error::ClientError;
use crate::store::ClientStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use watt_core::amount::Amount;
use watt_core::codec::{BoundedVec, Wire};
use watt_core::crypto::Hash256;
use watt_core::storage::graph::{replica_id, SectorShape, StackedGraph};
use watt_core::storage::power::{self, DeviceFacts, PowerDecision};
use watt_core::storage::proof::ticket;
use watt_core::storage::seal::{commitments, FileSealStore, SealStore, Sealer};

/// Nodes labelled between checkpoints: about 20–100 ms of work on a phone.
const SLICE_NODES: u64 = 16 * 1024;

/// Where a sector stands, as this phone last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectorPhase {
    Sealing,
    /// Sealed; its pre-commit is on the way.
    Sealed,
    /// On the ledger, waiting for its seal proof.
    PreCommitted,
    /// Proven; counted in every period's PoSt.
    Active,
    /// Missed a period's proof; proving again recovers it.
    Faulty,
    /// Its shape is not one this network accepts (size or layers).
    Unprovable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorRecord {
    pub number: u64,
    pub sector_bytes: u64,
    pub layers: u32,
    /// The ledger whose `rand` made the ticket.
    pub ticket_seq: u64,
    pub replica_id: Hash256,
    /// Set when every layer is labelled: comm_d, comm_c, comm_r_last, comm_r.
    pub commitments: Option<[Hash256; 4]>,
    pub phase: SectorPhase,
    pub activated_seq: Option<u64>,
    /// Only the replica is kept once the seal is proven.
    pub inner_layers_dropped: bool,
}

/// What the user donated and the sectors planned in it (one redb record).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoragePlan {
    pub donated_bytes: u64,
    pub sector_bytes: u64,
    pub layers: u32,
    pub sectors: BoundedVec<SectorRecord, 4096>,
    /// Storage rewards counted so far (from distributed day records).
    pub earned: Amount,
    pub last_proven_period: Option<u64>,
    /// Days with proven bytes whose distribution is still to be counted.
    pub uncounted: BoundedVec<(u64, u64), 16>,
    /// The latest days already counted in `earned` (never counted twice).
    pub counted_days: BoundedVec<u64, 16>,
    /// When the current period's proof window closes (Unix ms).
    pub next_deadline_ms: Option<u64>,
    /// Sectors dropped from the donation that the ledger still holds:
    /// `storage_duties` terminates them (returning their pledge).
    pub to_terminate: BoundedVec<u64, 4096>,
    /// Sector numbers are never reused (a dropped number may still be on the ledger).
    pub next_number: u64,
}

impl StoragePlan {
    pub(crate) fn mark_counted(&mut self, day: u64) {
        let mut v = std::mem::take(&mut self.counted_days).into_vec();
        v.push(day);
        v.sort_unstable();
        v.dedup();
        while v.len() > 16 {
            v.remove(0);
        }
        self.counted_days = BoundedVec::from_iter_capped(v);
    }
}

impl Wire for StoragePlan {
    const MAX_ENCODED_LEN: usize = 4096 * 256 + 64;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorStatus {
    pub number: u64,
    pub sector_bytes: u64,
    pub layers: u32,
    pub replica_id: Hash256,
    pub sealed: bool,
    pub phase: SectorPhase,
    pub labels_done: u64,
    pub labels_total: u64,
    pub comm_r: Option<Hash256>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStatus {
    pub donated_bytes: u64,
    pub used_bytes: u64,
    pub sectors: Vec<SectorStatus>,
    pub earned: Amount,
    pub last_proven_period: Option<u64>,
    pub next_deadline_ms: Option<u64>,
    /// Dropped sectors still to be terminated on the ledger.
    pub terminating: Vec<u64>,
}

/// What one `run_background` call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackgroundProgress {
    pub decision: PowerDecision,
    pub labels_done: u64,
    pub sectors_sealed: u32,
    /// Nothing left to do within the donation.
    pub idle: bool,
}

/// Where sector `number` of the wallet in `data_dir` keeps its files.
pub fn sector_dir(data_dir: &Path, number: u64) -> PathBuf {
    data_dir.join("sectors").join(number.to_string())
}

fn io(e: impl std::fmt::Display) -> ClientError {
    ClientError::Storage(format!("sector storage: {e}"))
}

fn plan(store: &ClientStore) -> Result<StoragePlan, ClientError> {
    Ok(store.storage_plan()?.unwrap_or_default())
}

/// Sets the donation. Lowering it releases space at once by dropping the
/// newest sectors first.
pub fn donate(
    store: &ClientStore,
    data_dir: &Path,
    bytes: u64,
    shape: SectorShape,
) -> Result<StorageStatus, ClientError> {
    shape.validate().map_err(ClientError::InvalidArgument)?;
    let mut p = plan(store)?;
    p.donated_bytes = bytes;
    p.sector_bytes = shape.sector_bytes;
    p.layers = shape.layers;
    let mut sectors = p.sectors.into_vec();
    let mut to_terminate = std::mem::take(&mut p.to_terminate).into_vec();
    while sectors.iter().map(|s| s.sector_bytes).sum::<u64>() > bytes {
        let Some(newest) = sectors.pop() else { break };
        // Anything the ledger may hold (or is about to) is terminated there too.
        if newest.phase != SectorPhase::Sealing && newest.phase != SectorPhase::Unprovable {
            to_terminate.push(newest.number);
        }
        match std::fs::remove_dir_all(sector_dir(data_dir, newest.number)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    p.sectors =
        BoundedVec::try_from_vec(sectors).map_err(|_| ClientError::InvalidArgument("too many sectors".into()))?;
    p.to_terminate =
        BoundedVec::try_from_vec(to_terminate).map_err(|_| ClientError::InvalidArgument("too many sectors".into()))?;
    store.set_storage_plan(&p)?;
    status(store, data_dir)
}

pub fn status(store: &ClientStore, data_dir: &Path) -> Result<StorageStatus, ClientError> {
    let p = plan(store)?;
    let mut sectors = Vec::new();
    for s in p.sectors.iter() {
        let n = s.sector_bytes / 32;
        let total = n * u64::from(s.layers);
        let done = match &s.commitments {
            Some(_) => total,
            None => FileSealStore::open(&sector_dir(data_dir, s.number))
                .and_then(|fs| fs.checkpoint())
                .map_err(io)?
                .map_or(0, |cp| ((u64::from(cp.layer) - 1) * n + cp.next_node).min(total)),
        };
        sectors.push(SectorStatus {
            number: s.number,
            sector_bytes: s.sector_bytes,
            layers: s.layers,
            replica_id: s.replica_id,
            sealed: s.commitments.is_some(),
            phase: s.phase,
            labels_done: done,
            labels_total: total,
            comm_r: s.commitments.map(|c| c[3]),
        });
    }
    Ok(StorageStatus {
        donated_bytes: p.donated_bytes,
        used_bytes: p.sectors.iter().map(|s| s.sector_bytes).sum(),
        sectors,
        earned: p.earned,
        last_proven_period: p.last_proven_period,
        next_deadline_ms: p.next_deadline_ms,
        terminating: p.to_terminate.to_vec(),
    })
}

/// Starts a sector over with a new ticket (its ticket went stale, its
/// pre-commit lapsed, or the ledger terminated it): the old layers go.
pub(crate) fn reset_sector(
    data_dir: &Path,
    rec: &mut SectorRecord,
    owner: &[u8; 32],
    ticket_from: (u64, Hash256),
) -> Result<(), ClientError> {
    match std::fs::remove_dir_all(sector_dir(data_dir, rec.number)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    rec.ticket_seq = ticket_from.0;
    rec.replica_id = replica_id(owner, rec.number, &ticket(&ticket_from.1));
    rec.commitments = None;
    rec.phase = SectorPhase::Sealing;
    rec.activated_seq = None;
    rec.inner_layers_dropped = false;
    Ok(())
}

/// A sealed sector's files (layers, or only the replica once proven).
pub(crate) fn open_sector(data_dir: &Path, number: u64) -> Result<FileSealStore, ClientError> {
    FileSealStore::open(&sector_dir(data_dir, number)).map_err(io)
}

/// The most urgent allowed work within `budget`: (proofs come with the
/// ledger operations) then sealing, never beyond the donation or the
/// device's free-space floor. `ticket_from` is the newest verified header
/// (seq, rand), needed only to plan a new sector.
pub fn seal_slices(
    store: &ClientStore,
    data_dir: &Path,
    owner: &[u8; 32],
    ticket_from: Option<(u64, Hash256)>,
    facts: &DeviceFacts,
    budget: Duration,
) -> Result<BackgroundProgress, ClientError> {
    let started = Instant::now();
    let mut p = plan(store)?;
    let next_bytes = if p.sectors.iter().any(|s| s.commitments.is_none()) { 0 } else { p.sector_bytes };
    let decision = power::decide(facts, next_bytes, None);
    let mut progress =
        BackgroundProgress { decision: decision.clone(), labels_done: 0, sectors_sealed: 0, idle: false };
    if !decision.may_seal {
        return Ok(progress);
    }
    loop {
        let Some(idx) = next_sector(store, &mut p, owner, ticket_from, facts, &mut progress)? else {
            return Ok(progress);
        };
        let rec = p.sectors[idx].clone();
        let shape = SectorShape { sector_bytes: rec.sector_bytes, layers: rec.layers };
        let graph = StackedGraph::new(shape).map_err(ClientError::InvalidArgument)?;
        let mut fs = FileSealStore::open(&sector_dir(data_dir, rec.number)).map_err(io)?;
        let mut sealer = Sealer::resume(graph.clone(), rec.replica_id, &fs).map_err(io)?;
        let before = sealer.progress().labels_done;
        let mut done = sealer.progress().done;
        while !done && started.elapsed() < budget {
            done = sealer.step(&mut fs, SLICE_NODES).map_err(io)?.done;
        }
        progress.labels_done += sealer.progress().labels_done - before;
        if !done {
            return Ok(progress);
        }
        let c = commitments(&fs, &graph).map_err(io)?;
        let mut sectors = p.sectors.into_vec();
        sectors[idx].commitments = Some([c.comm_d, c.comm_c, c.comm_r_last, c.comm_r]);
        sectors[idx].phase = SectorPhase::Sealed;
        p.sectors =
            BoundedVec::try_from_vec(sectors).map_err(|_| ClientError::InvalidArgument("too many sectors".into()))?;
        store.set_storage_plan(&p)?;
        progress.sectors_sealed += 1;
        if started.elapsed() >= budget {
            return Ok(progress);
        }
    }
}

/// The sector being sealed, or a new one if the donation has room (None:
/// stop, with `progress` saying why).
fn next_sector(
    store: &ClientStore,
    p: &mut StoragePlan,
    owner: &[u8; 32],
    ticket_from: Option<(u64, Hash256)>,
    facts: &DeviceFacts,
    progress: &mut BackgroundProgress,
) -> Result<Option<usize>, ClientError> {
    if let Some(i) = p.sectors.iter().position(|s| s.commitments.is_none()) {
        return Ok(Some(i));
    }
    let used: u64 = p.sectors.iter().map(|s| s.sector_bytes).sum();
    if p.sector_bytes == 0 || used + p.sector_bytes > p.donated_bytes {
        progress.idle = true;
        return Ok(None);
    }
    if power::free_space_floor(facts.total_bytes) + p.sector_bytes > facts.free_bytes {
        progress.decision.may_seal = false;
        progress.decision.reason = "free space would fall below the floor".into();
        return Ok(None);
    }
    let Some((ticket_seq, rand)) = ticket_from else {
        return Err(ClientError::NoNodeReachable(
            "a new sector needs a verified ledger for its ticket: refresh first".into(),
        ));
    };
    let number = p.sectors.iter().map(|s| s.number + 1).max().unwrap_or(1).max(p.next_number).max(1);
    p.next_number = number + 1;
    let mut sectors = std::mem::take(&mut p.sectors).into_vec();
    sectors.push(SectorRecord {
        number,
        sector_bytes: p.sector_bytes,
        layers: p.layers,
        ticket_seq,
        replica_id: replica_id(owner, number, &ticket(&rand)),
        commitments: None,
        phase: SectorPhase::Sealing,
        activated_seq: None,
        inner_layers_dropped: false,
    });
    p.sectors =
        BoundedVec::try_from_vec(sectors).map_err(|_| ClientError::InvalidArgument("too many sectors".into()))?;
    store.set_storage_plan(p)?;
    Ok(Some(p.sectors.len() - 1))
}

/// What one `storage_duties` call did on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageDuties {
    /// Operations signed and sent, in words ("pre-commit sector 3", "PoSt commit for period 12").
    pub submitted: Vec<String>,
    /// Sectors started over (stale ticket, lapsed pre-commit, terminated by the ledger).
    pub resealing: Vec<u64>,
    /// Why something due was not done now (power policy, missing files).
    pub deferred: Vec<String>,
    pub next_deadline_ms: Option<u64>,
}

/// The protocol's sector size for `bytes`, if it is one.
pub fn sector_size_of(bytes: u64) -> Option<watt_core::ledger::SectorSize> {
    sector_size(bytes)
}

pub(crate) fn sector_size(bytes: u64) -> Option<watt_core::ledger::SectorSize> {
    use watt_core::ledger::SectorSize as S;
    [S::Mib1, S::Mib16, S::Mib64, S::Mib256].into_iter().find(|s| s.bytes() == bytes)
}

/// This prover's share of a distributed day's storage class (SPEC §5):
/// `min(pool × bytes / total, cap × bytes / GiB) + fees × bytes / total`.
pub(crate) fn storage_share(rec: &watt_core::ledger::state::DayRecord, bytes: u64, cap_per_gib: Amount) -> Amount {
    let total = u128::from(rec.total_weights[2]);
    // Past u64 the ledger would not have paid it either: nothing is counted.
    watt_core::ledger::distribution::member_share(rec.pools[2], rec.fees[2], bytes, total, Some(cap_per_gib))
        .map_or(Amount::ZERO, |(e, f)| Amount(e.saturating_add(f)))
}
