//! The Stellar Consensus Protocol (SPEC §4).

pub mod quorum;
pub mod statement;

pub use quorum::QuorumSet;
pub use statement::{Ballot, Envelope, Pledges, Statement, Value};
