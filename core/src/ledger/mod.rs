//! The ledger (SPEC §3, §5): objects, parameters, genesis.

pub mod genesis;
pub mod params;
pub mod types;

pub use genesis::{Genesis, GenesisAccount, GenesisError, GenesisValidator};
pub use params::Params;
pub use types::*;
