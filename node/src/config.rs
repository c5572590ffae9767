//! `node.toml` and `watt-node init`: keys, genesis and configs for a network.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use watt_core::address::{AccountId, NodeId};
use watt_core::amount::{Amount, UNITS_PER_WATT};
use watt_core::codec::BoundedVec;
use watt_core::crypto::vrf::VrfKeypair;
use watt_core::crypto::{Hash256, Keypair};
use watt_core::ledger::{Genesis, GenesisAccount, GenesisValidator, Params};
use watt_core::scp::QuorumSet;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerConfig {
    pub node_id: NodeId,
    pub address: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// File holding the node's `S...` secret seed (mode 0600).
    pub node_key_file: PathBuf,
    pub listen: SocketAddr,
    pub genesis: PathBuf,
    /// Hex BLAKE3 hash the genesis file must have.
    pub genesis_hash: String,
    pub data_dir: PathBuf,
    #[serde(default = "default_ledger_ms")]
    pub ledger_ms: u64,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Prometheus text endpoint (`/metrics`) and JSON status (`/status`).
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Connections one IP address may hold open (phones behind one NAT
    /// share an address; a single host cannot exhaust the node).
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Requests per second all connections from one address may make.
    #[serde(default = "default_max_requests_per_ip_per_sec")]
    pub max_requests_per_ip_per_sec: u32,
}

fn default_ledger_ms() -> u64 {
    5_000
}

pub fn default_max_connections_per_ip() -> usize {
    256
}

pub fn default_max_requests_per_ip_per_sec() -> u32 {
    2_000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid node config: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("genesis: {0}")]
    Genesis(#[from] watt_core::ledger::GenesisError),
    #[error("genesis_hash {0:?} is not 64 hex digits")]
    BadHash(String),
    #[error("node key: {0}")]
    Key(#[from] crate::keyfile::KeyFileError),
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.into(), source: e })?;
        let mut cfg: NodeConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), reason: e.to_string() })?;
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.node_key_file, &mut cfg.genesis, &mut cfg.data_dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    pub fn load_genesis(&self) -> Result<Genesis, ConfigError> {
        let bytes =
            std::fs::read(&self.genesis).map_err(|e| ConfigError::Read { path: self.genesis.clone(), source: e })?;
        let hash =
            Hash256::from_hex(&self.genesis_hash).map_err(|_| ConfigError::BadHash(self.genesis_hash.clone()))?;
        Ok(Genesis::from_json_pinned(&bytes, &hash)?)
    }

    pub fn load_key(&self) -> Result<Keypair, ConfigError> {
        let dir = self.node_key_file.parent().unwrap_or(Path::new("."));
        let file = self.node_key_file.file_name().map(PathBuf::from).ok_or_else(|| ConfigError::Parse {
            path: self.node_key_file.clone(),
            reason: "node_key_file names a directory, not a key file".into(),
        })?;
        Ok(crate::keyfile::load_from(dir, &file)?)
    }
}

/// A new network: one key, genesis and config per validator.
pub struct NewNetwork {
    pub genesis: Genesis,
    pub keys: Vec<Keypair>,
    pub configs: Vec<NodeConfig>,
}

/// Builds a network of `n` validators on `host` ports `base_port..`, each
/// trusting all (threshold n - (n-1)/3), with optional founding accounts.
pub fn new_network(
    name: &str,
    n: usize,
    host: std::net::IpAddr,
    base_port: u16,
    params: Params,
    genesis_time: u64,
    founders: &[AccountId],
) -> Result<NewNetwork, String> {
    if n == 0 || n > 1000 {
        return Err(format!("a network has 1 to 1000 validators, not {n}"));
    }
    let addrs: Vec<SocketAddr> = (0..n).map(|i| SocketAddr::new(host, base_port + i as u16)).collect();
    let admin: Vec<SocketAddr> = (0..n).map(|i| SocketAddr::new(host, base_port + 1000 + i as u16)).collect();
    new_network_at(name, &addrs, Some(&admin), params, genesis_time, founders)
}

/// [`new_network`] with each validator's listen address given (the genesis
/// names them, so phones can find the nodes).
pub fn new_network_at(
    name: &str,
    addrs: &[SocketAddr],
    admin: Option<&[SocketAddr]>,
    params: Params,
    genesis_time: u64,
    founders: &[AccountId],
) -> Result<NewNetwork, String> {
    let keys: Vec<Keypair> =
        addrs.iter().map(|_| Keypair::generate().map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    let reserve = Keypair::generate().map_err(|e| e.to_string())?;
    network_from_keys(name, keys, AccountId(reserve.public()), addrs, admin, params, genesis_time, founders)
}

/// [`new_network_at`] from given validator keys and reserve account (the
/// simulator derives them from its seed).
#[allow(clippy::too_many_arguments)]
pub fn network_from_keys(
    name: &str,
    keys: Vec<Keypair>,
    reserve: AccountId,
    addrs: &[SocketAddr],
    admin: Option<&[SocketAddr]>,
    params: Params,
    genesis_time: u64,
    founders: &[AccountId],
) -> Result<NewNetwork, String> {
    let n = keys.len();
    if n == 0 || n > 1000 || addrs.len() != n {
        return Err(format!("a network has 1 to 1000 validators with an address each, not {n} and {}", addrs.len()));
    }
    let ids: Vec<NodeId> = keys.iter().map(|k| NodeId(k.public())).collect();
    let threshold = n - (n - 1) / 3;
    let qset = QuorumSet::flat(threshold as u32, ids.clone());
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| GenesisValidator {
            name: format!("validator-{i}"),
            node_id: ids[i],
            vrf_key: VrfKeypair::from_seed(k.seed().expose()).public(),
            quorum_set: qset.clone(),
            addresses: vec![addrs[i].to_string()],
        })
        .collect();
    let genesis = Genesis {
        network_passphrase: name.to_string(),
        genesis_time,
        protocol_version: 1,
        validators: BoundedVec::try_from_vec(validators).map_err(|e| e.to_string())?,
        reserve_account: reserve,
        founding_accounts: BoundedVec::try_from_vec(
            founders.iter().map(|a| GenesisAccount { account: *a, balance: Amount(1_000 * UNITS_PER_WATT) }).collect(),
        )
        .map_err(|e| format!("founding accounts: {e}"))?,
        params,
    };
    let hash = genesis.hash().to_hex();
    let configs = (0..n)
        .map(|i| NodeConfig {
            node_key_file: PathBuf::from(format!("node-{i}.key")),
            listen: addrs[i],
            genesis: PathBuf::from("genesis.json"),
            genesis_hash: hash.clone(),
            data_dir: PathBuf::from(format!("data-{i}")),
            ledger_ms: genesis.params.ledger_close_ms,
            peers: (0..n).filter(|j| *j != i).map(|j| PeerConfig { node_id: ids[j], address: addrs[j] }).collect(),
            admin: admin.and_then(|a| a.get(i).copied()),
            max_connections_per_ip: default_max_connections_per_ip(),
            max_requests_per_ip_per_sec: default_max_requests_per_ip_per_sec(),
        })
        .collect();
    Ok(NewNetwork { genesis, keys, configs })
}

/// Writes a new network into `dir`: genesis.json, node-i.key, node-i.toml.
pub fn write_network(dir: &Path, net: &NewNetwork) -> Result<Vec<PathBuf>, ConfigError> {
    let w =
        |path: PathBuf, text: String| std::fs::write(&path, text).map_err(|e| ConfigError::Write { path, source: e });
    std::fs::create_dir_all(dir).map_err(|e| ConfigError::Write { path: dir.into(), source: e })?;
    w(dir.join("genesis.json"), net.genesis.to_json())?;
    let mut out = Vec::new();
    for (i, (k, c)) in net.keys.iter().zip(&net.configs).enumerate() {
        crate::keyfile::save_as(dir, &c.node_key_file, k.seed())?;
        let path = dir.join(format!("node-{i}.toml"));
        let text = toml::to_string(c).map_err(|e| ConfigError::Parse { path: path.clone(), reason: e.to_string() })?;
        w(path.clone(), text)?;
        out.push(path);
    }
    Ok(out)
}
