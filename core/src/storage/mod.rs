//! Storage donation (SPEC §6): the stacked graph, resumable sealing, seal
//! proofs and the sequential PoSt, and the power policy that decides what
//! background work the device allows.

pub mod graph;
pub mod power;
pub mod proof;
pub mod prover;
pub mod seal;

#[cfg(test)]
mod tests;
