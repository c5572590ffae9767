//! The phone's background run: the one place that orders its storage work.
//! The app (through the FFI), the `watt` CLI and the devnet's phones all
//! call [`WattClient::run_background`].

use super::*;
use crate::storage::{BackgroundProgress, StorageDuties};
use std::time::Duration;
use watt_core::storage::power::DeviceFacts;

/// Passes a run makes waiting for a PoSt reveal after its commit.
const REVEAL_TRIES: u32 = 3;

fn committed_post(d: &StorageDuties) -> bool {
    d.submitted.iter().any(|s| s.starts_with("PoSt commit"))
}

fn revealed_post(d: &StorageDuties) -> bool {
    d.submitted.iter().any(|s| s.starts_with("PoSt reveal"))
}

/// What one background run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackgroundReport {
    pub sealing: BackgroundProgress,
    /// The ledger duties done (both passes together).
    pub duties: StorageDuties,
    /// Why the ledger duties were skipped (no node reachable, nothing
    /// verified, no account yet), if they were; sealing works offline.
    pub ledger_skipped: Option<String>,
}

impl WattClient {
    /// Storage work in a fixed order, within about `budget_ms` of sealing:
    /// 1. the ledger's duties (a PoSt before its deadline outranks sealing),
    ///    and after a PoSt commit, its reveal once the sample ledger closed;
    /// 2. sealing, on a blocking thread, in checkpointed slices;
    /// 3. the duties again when sealing finished a sector, so its pre-commit
    ///    goes out in the same run.
    ///
    /// The state lock is never held while sealing or proving.
    pub async fn run_background(&self, facts: &DeviceFacts, budget_ms: u64) -> Result<BackgroundReport, ClientError> {
        let mut duties = StorageDuties::default();
        let mut ledger_skipped = self.duties_pass(facts, &mut duties).await?;
        if ledger_skipped.is_none() && committed_post(&duties) {
            ledger_skipped = self.reveal_pass(facts, &mut duties).await?;
        }
        if self.needs_ticket()? {
            // A new sector's ticket comes from a verified ledger; sealing itself works offline.
            if let Err(e) = self.refresh_with(crate::wallet::Breadth::One).await {
                ledger_skipped.get_or_insert(e.to_string());
            }
        }
        let owner = self.account_id()?;
        let tip = self.inner.store.tip()?.map(|t| (t.header.seq, t.header.rand));
        let c = self.clone();
        let facts_now = *facts;
        let sealing = tokio::task::spawn_blocking(move || {
            crate::storage::seal_slices(
                &c.inner.store,
                c.data_dir(),
                &owner.0 .0,
                tip,
                &facts_now,
                Duration::from_millis(budget_ms),
            )
        })
        .await
        .map_err(|e| ClientError::Storage(format!("sealing thread: {e}")))??;
        if sealing.sectors_sealed > 0 && ledger_skipped.is_none() {
            ledger_skipped = self.duties_pass(facts, &mut duties).await?;
        }
        Ok(BackgroundReport { sealing, duties, ledger_skipped })
    }

    /// A PoSt commit went out: its reveal is due `post_reveal_delay` ledgers
    /// after it lands (seconds on mainnet), so the same run waits for it
    /// rather than waking the phone again. At most `REVEAL_TRIES` passes.
    async fn reveal_pass(&self, facts: &DeviceFacts, into: &mut StorageDuties) -> Result<Option<String>, ClientError> {
        let p = &self.inner.genesis.params;
        let wait = Duration::from_millis(p.ledger_close_ms.saturating_mul(p.post_reveal_delay.saturating_add(1)));
        for _ in 0..REVEAL_TRIES {
            tokio::time::sleep(wait).await;
            let skipped = self.duties_pass(facts, into).await?;
            if skipped.is_some() || revealed_post(into) {
                return Ok(skipped);
            }
        }
        Ok(None)
    }

    /// One pass of the ledger duties; network trouble skips it (said why).
    async fn duties_pass(&self, facts: &DeviceFacts, into: &mut StorageDuties) -> Result<Option<String>, ClientError> {
        match self.storage_duties(facts).await {
            Ok(d) => {
                into.submitted.extend(d.submitted);
                into.resealing.extend(d.resealing);
                into.deferred.extend(d.deferred);
                into.next_deadline_ms = d.next_deadline_ms.or(into.next_deadline_ms);
                Ok(None)
            }
            Err(
                e @ (ClientError::NoNodeReachable(_)
                | ClientError::Unverified(_)
                | ClientError::NoAccount
                | ClientError::ForkDetected { .. }),
            ) => Ok(Some(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// True when the next sealing slice would start a new sector.
    fn needs_ticket(&self) -> Result<bool, ClientError> {
        let plan = self.inner.store.storage_plan()?.unwrap_or_default();
        let used: u64 = plan.sectors.iter().map(|s| s.sector_bytes).sum();
        let all_sealed = plan.sectors.iter().all(|s| s.commitments.is_some());
        Ok(all_sealed && plan.sector_bytes > 0 && used + plan.sector_bytes <= plan.donated_bytes)
    }
}
