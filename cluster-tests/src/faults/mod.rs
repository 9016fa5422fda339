//! Breaking a cluster on purpose: failovers, process faults (pause, kill), network faults (partition, slow), and
//! the checker that counts what a fault cost.

pub mod checker;
pub(crate) mod failover;
pub(crate) mod network;
pub(crate) mod process;
pub mod timeline;
pub mod workload;
