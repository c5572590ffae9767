//! The ledger (SPEC §3, §5): objects, parameters, genesis.

pub mod apply;
pub mod directory;
pub mod distribution;
pub mod genesis;
pub mod params;
pub mod pool;
pub mod smt;
pub mod state;
pub mod storage;
pub mod types;
pub mod value;

pub use apply::{ApplyError, ApplyOutcome, HeaderInputs};
pub use genesis::{Genesis, GenesisAccount, GenesisError, GenesisValidator};
pub use params::Params;
pub use state::{LedgerState, StateEntry, StateKey};
pub use types::*;
