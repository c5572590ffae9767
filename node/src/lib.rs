//! The desktop side of WATT: the validator (`watt-node`), the local devnet, and
//! `watt`, a phone in a terminal. Protocol logic lives in `watt-core`; this crate
//! is the shell that moves bytes and time between it and the world.

pub mod audit;
pub mod bench;
pub mod compare;
pub mod config;
pub mod devnet;
pub mod herder;
pub mod keyfile;
pub mod load;
pub mod logging;
pub mod node;
pub mod phone_day;
pub mod sim;
pub mod store;
pub mod tls;
