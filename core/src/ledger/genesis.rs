//! The genesis file (SPEC §3): network passphrase, initial validators and
//! their quorum sets, the reserve account, founding accounts and parameters.
//! Written as JSON by people and tools; pinned by the hash of its canonical
//! binary encoding, so formatting and key order do not change the network.

use crate::address::{AccountId, NodeId};
use crate::amount::Amount;
use crate::codec::{encode, BoundedVec, Wire};
use crate::crypto::{hash_tagged, Domain, Hash256, NetworkId, PublicKey};
use crate::ledger::Params;
use crate::scp::QuorumSet;
use serde::{Deserialize, Serialize};

/// Largest genesis file accepted, in bytes (text or binary).
pub const MAX_GENESIS_LEN: usize = 4 * 1024 * 1024;

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub name: String,
    pub node_id: NodeId,
    pub vrf_key: PublicKey,
    pub quorum_set: QuorumSet,
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub account: AccountId,
    pub balance: Amount,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub network_passphrase: String,
    /// Unix seconds; day 0 starts here.
    pub genesis_time: u64,
    pub protocol_version: u32,
    pub validators: BoundedVec<GenesisValidator, 1000>,
    pub reserve_account: AccountId,
    /// Founding accounts: past probation from day 0 (SPEC §5); their balances
    /// come out of the reserve.
    pub founding_accounts: BoundedVec<GenesisAccount, 100_000>,
    pub params: Params,
}

impl Wire for Genesis {
    const MAX_ENCODED_LEN: usize = MAX_GENESIS_LEN;
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis file is {len} bytes, over the {MAX_GENESIS_LEN}-byte limit")]
    TooLarge { len: usize },
    #[error("genesis file is not valid JSON for a WATT genesis: {0}")]
    Json(#[from] serde_json::Error),
    #[error("genesis is inconsistent: {0}")]
    Invalid(String),
    #[error("genesis hash is {found}, but {expected} is pinned")]
    HashMismatch { expected: Hash256, found: Hash256 },
}

impl Genesis {
    pub fn from_json(text: &[u8]) -> Result<Genesis, GenesisError> {
        if text.len() > MAX_GENESIS_LEN {
            return Err(GenesisError::TooLarge { len: text.len() });
        }
        let g: Genesis = serde_json::from_slice(text)?;
        g.validate()?;
        Ok(g)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serializes to JSON")
    }

    /// Hash of the canonical binary encoding: what nodes and phones pin.
    pub fn hash(&self) -> Hash256 {
        hash_tagged(Domain::Genesis, &encode(self))
    }

    pub fn network_id(&self) -> NetworkId {
        NetworkId::from_passphrase(&self.network_passphrase)
    }

    /// Loads and checks against a pinned hash.
    pub fn from_json_pinned(text: &[u8], expected: &Hash256) -> Result<Genesis, GenesisError> {
        let g = Genesis::from_json(text)?;
        let found = g.hash();
        if &found != expected {
            return Err(GenesisError::HashMismatch { expected: *expected, found });
        }
        Ok(g)
    }

    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.network_passphrase.is_empty() {
            return bad("network_passphrase is empty".into());
        }
        if self.validators.is_empty() {
            return bad("at least one validator is needed".into());
        }
        self.params.validate().map_err(GenesisError::Invalid)?;
        let mut ids: Vec<_> = self.validators.iter().map(|v| v.node_id).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return bad("a validator is listed twice".into());
        }
        let mut accounts: Vec<_> = self.founding_accounts.iter().map(|a| a.account).collect();
        accounts.push(self.reserve_account);
        accounts.sort();
        if accounts.windows(2).any(|w| w[0] == w[1]) {
            return bad("an account is listed twice (founding accounts and reserve must differ)".into());
        }
        // Founding balances are carved out of the reserve, so genesis mints
        // exactly the reserve (SPEC §5 invariant: minted = reserve + emissions).
        let mut founded = Amount::ZERO;
        for a in self.founding_accounts.iter() {
            founded = founded.checked_add(a.balance).map_err(|e| GenesisError::Invalid(e.to_string()))?;
        }
        if founded > self.params.reserve {
            return bad(format!("founding balances ({founded}) exceed the reserve ({})", self.params.reserve));
        }
        Ok(())
    }
}
