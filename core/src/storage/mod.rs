//! Storage donation (SPEC §6). So far: the power policy that decides what
//! background work the device's state allows; sealing and proving follow.

pub mod power;
