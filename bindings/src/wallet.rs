//! `Wallet`: the mobile core's `WattClient` as the SDKs see it.

use crate::platform::{ForeignKeyStore, PlatformFacts, PowerDecision, SecretKeyStore};
use crate::types::*;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use watt_client::{ClientConfig, WattClient};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::Amount;
use watt_core::crypto::Hash256;
use watt_core::ledger::Genesis;

/// The library's own tokio runtime: every async call runs here, so the app
/// needs no Rust executor and a slow network never blocks its threads.
fn runtime() -> Result<&'static tokio::runtime::Runtime, WattError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("watt-core")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| WattError::Internal { reason: format!("cannot start the core's runtime: {e}") })
}

async fn on_core<T: Send + 'static>(
    work: impl Future<Output = Result<T, WattError>> + Send + 'static,
) -> Result<T, WattError> {
    AbortOnDrop(runtime()?.spawn(work)).await.map_err(|e| WattError::Internal { reason: e.to_string() })?
}

/// The core's task for one call, aborted when the app cancels the call (the
/// foreign future is dropped): a cancelled `wait_event` must not keep the
/// wallet, and its open database, alive until its timeout.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

fn account(text: &str) -> Result<AccountId, WattError> {
    text.trim()
        .parse()
        .map_err(|e: watt_core::address::AddressError| WattError::InvalidAddress { reason: e.to_string() })
}

fn invite_from_text(text: &str) -> Result<watt_core::ledger::Invite, WattError> {
    watt_core::ledger::Invite::from_text(text).map_err(|e| WattError::InvalidArgument { detail: e.to_string() })
}

fn tx_hash(text: &str) -> Result<Hash256, WattError> {
    Hash256::from_hex(text.trim()).map_err(|e| WattError::InvalidArgument { detail: format!("transaction hash: {e}") })
}

/// Tunables (SPEC §7 defaults from [`default_wallet_config`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletConfig {
    pub nodes_wanted: u32,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub stale_after_ms: u64,
    pub tx_lifetime_ledgers: u64,
}

#[uniffi::export]
pub fn default_wallet_config() -> WalletConfig {
    let c = ClientConfig::default();
    WalletConfig {
        nodes_wanted: c.nodes_wanted as u32,
        request_timeout_ms: c.request_timeout_ms,
        connect_timeout_ms: c.connect_timeout_ms,
        stale_after_ms: c.stale_after_ms,
        tx_lifetime_ledgers: c.tx_lifetime_ledgers,
    }
}

/// Opens (or creates) the wallet in `data_dir` for the network whose genesis
/// file is `genesis_json` (the app bundles it; its hash is pinned on first open).
#[uniffi::export]
pub async fn open_wallet(
    data_dir: String,
    genesis_json: String,
    config: WalletConfig,
    key_store: Arc<dyn SecretKeyStore>,
    platform: Option<Arc<dyn PlatformFacts>>,
) -> Result<Arc<Wallet>, WattError> {
    crate::logging::install();
    let genesis = Genesis::from_json(genesis_json.as_bytes())
        .map_err(|e| WattError::InvalidArgument { detail: format!("genesis: {e}") })?;
    let config = ClientConfig {
        nodes_wanted: config.nodes_wanted.max(1) as usize,
        request_timeout_ms: config.request_timeout_ms,
        connect_timeout_ms: config.connect_timeout_ms,
        stale_after_ms: config.stale_after_ms,
        tx_lifetime_ledgers: config.tx_lifetime_ledgers,
        selection_seed: None,
    };
    let dir = PathBuf::from(data_dir);
    let client =
        on_core(
            async move { Ok(WattClient::open(&dir, genesis, config, Arc::new(ForeignKeyStore(key_store))).await?) },
        )
        .await?;
    Ok(Arc::new(Wallet { client: Arc::new(client), platform }))
}

#[derive(uniffi::Object)]
pub struct Wallet {
    client: Arc<WattClient>,
    platform: Option<Arc<dyn PlatformFacts>>,
}

#[uniffi::export]
impl Wallet {
    /// Creates the wallet's key and returns its 24 recovery words (show them once).
    pub fn create_wallet(&self) -> Result<String, WattError> {
        Ok(self.client.create_wallet()?.to_string())
    }

    /// Restores from 24 recovery words; returns the address.
    pub fn restore_wallet(&self, words: String, replace: bool) -> Result<String, WattError> {
        Ok(self.client.restore_wallet(&words, replace)?.to_string())
    }

    /// The 24 recovery words, for a backup screen.
    pub fn export_words(&self) -> Result<String, WattError> {
        Ok(self.client.export_mnemonic()?.to_string())
    }

    pub fn address(&self) -> Result<Option<String>, WattError> {
        Ok(self.client.address()?.map(|a| a.to_string()))
    }

    /// Asks the nodes for the newest ledger and this account, verifies all,
    /// settles pending transactions.
    pub async fn refresh(&self) -> Result<RefreshSummary, WattError> {
        let c = self.client.clone();
        let s = on_core(async move { Ok(c.refresh().await?) }).await?;
        Ok(RefreshSummary {
            verified_ledger: s.verified_seq,
            nodes_verified: s.nodes_verified as u32,
            nodes_failed: s.nodes_failed as u32,
            settled: s.settled as u32,
        })
    }

    /// The balance proven against a verified ledger.
    pub async fn balance(&self) -> Result<ProvenBalance, WattError> {
        let c = self.client.clone();
        let (units, ledger) = on_core(async move { Ok(c.balance().await?) }).await?;
        Ok(ProvenBalance { units: units.units(), ledger })
    }

    /// Newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<HistoryItem>, WattError> {
        Ok(self.client.history(limit as usize)?.into_iter().map(Into::into).collect())
    }

    /// Signs, stores and submits a payment; returns its hash. It is
    /// re-submitted until it settles, across restarts.
    pub async fn pay(&self, to: String, amount_units: u64, fee_units: u64) -> Result<String, WattError> {
        let to = account(&to)?;
        let c = self.client.clone();
        on_core(async move { Ok(c.pay(to, Amount(amount_units), Amount(fee_units)).await?.to_hex()) }).await
    }

    /// Today's tap. A new account's first tap carries the invite its
    /// inviter made for it (`watt-invite:...`).
    pub async fn attest(&self, invite: Option<String>) -> Result<String, WattError> {
        let invite = invite.as_deref().map(invite_from_text).transpose()?;
        let c = self.client.clone();
        on_core(async move { Ok(c.attest(invite).await?.to_hex()) }).await
    }

    /// An invite for `invitee`'s first tap, valid `valid_days` days from
    /// today, as text for a QR code or a link.
    pub async fn create_invite(&self, invitee: String, valid_days: u32) -> Result<String, WattError> {
        let invitee = account(&invitee)?;
        let c = self.client.clone();
        on_core(async move { Ok(c.create_invite(invitee, valid_days).await?.to_text()) }).await
    }

    pub async fn set_security_circle(&self, members: Vec<String>) -> Result<String, WattError> {
        let members = members.iter().map(|m| account(m)).collect::<Result<Vec<_>, _>>()?;
        let c = self.client.clone();
        on_core(async move { Ok(c.set_security_circle(members).await?.to_hex()) }).await
    }

    pub async fn set_referrer(&self, referrer: String) -> Result<String, WattError> {
        let referrer = account(&referrer)?;
        let c = self.client.clone();
        on_core(async move { Ok(c.set_referrer(referrer).await?.to_hex()) }).await
    }

    /// Waits until the transaction is confirmed, failed or expired.
    pub async fn wait_settled(&self, tx_hash_hex: String, timeout_ms: u64) -> Result<TxState, WattError> {
        let hash = tx_hash(&tx_hash_hex)?;
        let c = self.client.clone();
        on_core(async move { Ok(c.wait_settled(hash, timeout_ms).await?.into()) }).await
    }

    pub async fn status(&self) -> Result<WalletStatus, WattError> {
        let c = self.client.clone();
        on_core(async move { Ok(c.status().await?.into()) }).await
    }

    /// Adds the user's own node (always asked, never replaced by the directory).
    pub fn add_node(&self, address: String, node_id: String) -> Result<(), WattError> {
        let id: NodeId = node_id
            .trim()
            .parse()
            .map_err(|e: watt_core::address::AddressError| WattError::InvalidAddress { reason: e.to_string() })?;
        Ok(self.client.add_node(&address, id)?)
    }

    pub async fn remove_node(&self, node_id: String) -> Result<(), WattError> {
        let id: NodeId = node_id
            .trim()
            .parse()
            .map_err(|e: watt_core::address::AddressError| WattError::InvalidAddress { reason: e.to_string() })?;
        let c = self.client.clone();
        on_core(async move { Ok(c.remove_node(&id).await?) }).await
    }

    /// The oldest event the app has not yet marked handled; the same one
    /// until [`Wallet::event_handled`] is called with its id, across restarts
    /// (events are kept in the wallet store, never dropped).
    pub fn next_event(&self) -> Result<Option<QueuedEvent>, WattError> {
        Ok(self.client.next_event()?.map(QueuedEvent::from))
    }

    /// [`Wallet::next_event`], waiting up to `timeout_ms` for one to arrive.
    pub async fn wait_event(&self, timeout_ms: u64) -> Result<Option<QueuedEvent>, WattError> {
        // Through a waiter that holds the wallet weakly: closing the wallet
        // never waits for this call.
        let waiter = self.client.event_waiter();
        on_core(async move { Ok(waiter.wait(timeout_ms).await?.map(QueuedEvent::from)) }).await
    }

    /// The app has handled event `id` (stored what it needed, shown it):
    /// it is removed. False if no such event was waiting.
    pub fn event_handled(&self, id: u64) -> Result<bool, WattError> {
        Ok(self.client.event_handled(id)?)
    }

    /// Refreshes every `interval_ms` in the background (while the app is open).
    pub fn start_sync(&self, interval_ms: u64) -> Result<(), WattError> {
        let _in_runtime = runtime()?.enter();
        self.client.start_sync(interval_ms);
        Ok(())
    }

    pub fn stop_sync(&self) {
        self.client.stop_sync();
    }

    pub fn net_stats(&self) -> NetStats {
        let s = self.client.net_stats();
        NetStats {
            connects: s.connects,
            requests: s.requests,
            round_trips: s.round_trips,
            bytes_received: s.bytes_received,
            bytes_sent: s.bytes_sent,
            polls: s.polls,
            pushed_headers: s.pushed_headers,
        }
    }

    /// Closes connections (app going to the background).
    pub async fn disconnect(&self) -> Result<(), WattError> {
        let c = self.client.clone();
        on_core(async move {
            c.disconnect().await;
            Ok(())
        })
        .await
    }

    /// Donates `bytes` of storage in sectors of `sector_bytes` with `layers`
    /// layers (SPEC §6 phone default: 64 MiB, 12); lowering it drops the
    /// newest sectors first.
    pub fn donate(&self, bytes: u64, sector_bytes: u64, layers: u32) -> Result<StorageState, WattError> {
        let shape = watt_core::storage::graph::SectorShape { sector_bytes, layers };
        Ok(self.client.donate(bytes, shape)?.into())
    }

    pub fn storage_status(&self) -> Result<StorageState, WattError> {
        Ok(self.client.storage_status()?.into())
    }

    /// The most urgent storage work the device allows, for at most
    /// `budget_ms` (WorkManager / BGProcessingTask call this): asks the
    /// app's [`PlatformFacts`], applies the power policy, first does what
    /// the ledger expects (PoSt before its deadline, seal proofs,
    /// pre-commits), then seals in checkpointed slices.
    pub async fn run_background(&self, budget_ms: u64) -> Result<BackgroundReport, WattError> {
        let platform = self
            .platform
            .clone()
            .ok_or_else(|| WattError::InvalidArgument { detail: "open_wallet was given no PlatformFacts".into() })?;
        let c = self.client.clone();
        on_core(async move {
            let facts: watt_core::storage::power::DeviceFacts =
                platform.current().map_err(|e| WattError::Internal { reason: format!("platform facts: {e}") })?.into();
            let r = c.run_background(&facts, budget_ms).await?;
            let p = r.sealing;
            Ok(BackgroundReport {
                decision: p.decision.into(),
                labels_done: p.labels_done,
                sectors_sealed: p.sectors_sealed,
                idle: p.idle,
                submitted: r.duties.submitted,
                deferred: r.duties.deferred,
                ledger_skipped: r.ledger_skipped,
            })
        })
        .await
    }

    /// What background storage work the device allows now: asks the app's
    /// [`PlatformFacts`] and applies the power policy.
    pub fn power_decision(
        &self,
        next_sector_bytes: u64,
        deadline_in_ms: Option<u64>,
    ) -> Result<PowerDecision, WattError> {
        let platform = self
            .platform
            .as_ref()
            .ok_or_else(|| WattError::InvalidArgument { detail: "open_wallet was given no PlatformFacts".into() })?;
        let facts = platform.current().map_err(|e| WattError::Internal { reason: format!("platform facts: {e}") })?;
        Ok(crate::platform::power_policy(facts, next_sector_bytes, deadline_in_ms))
    }
}
