//! Talking to the servers: one node's connections and commands, what its answers mean, readiness judged from
//! them, and keys written and checked over all slots.

pub mod data;
pub mod node;
pub(crate) mod ready;
pub(crate) mod settings;
pub mod topology;
