//! A real Redis Cluster out of Docker containers, for playing with by hand and for testing against.
//!
//! [`Cluster`] is the harness both the `cargo xtask` CLI and the integration tests use: it starts one container
//! per node on a private network, forms the cluster (slots, replicas), waits until it is truly ready, breaks it on
//! purpose ([`Cluster::failover`]), grows it back ([`Cluster::join`]) and removes it. Docker is the source of truth:
//! every container and network is labelled and found again by label.
//!
//! ```no_run
//! # async fn demo() -> cluster_tests::Result<()> {
//! use redis::AsyncCommands;
//! let cluster = cluster_tests::Cluster::start_for_test().await?; // removed again when dropped
//! let mut client = cluster.client().await?;
//! let _: () = client.set("foo", "bar").await?;
//! # Ok(()) }
//! ```

pub mod checker;
mod cluster;
mod create;
pub mod data;
pub mod docker;
mod error;
mod faults;
pub mod image;
mod membership;
mod net_faults;
mod networking;
pub mod node;
mod node_faults;
mod owner;
pub mod ready;
mod removal;
pub mod topology;
pub mod versions;
pub mod wait;

pub use cluster::{
    Cluster, ClusterSpec, DEFAULT_NODE_TIMEOUT, DEFAULT_SPARE_PORTS, FIRST_PORT, MAX_NODE_TIMEOUT, Node, PLAYGROUND,
};
pub use create::{CreateReport, slot_ranges};
pub use error::{Error, ErrorKind, Result};
pub use faults::{FailoverKind, FailoverReport};
pub use membership::{ForgetReport, JoinPlan, JoinReport};
pub use net_faults::{Cut, HealReport, PartitionReport};
pub use networking::Networking;
pub use node_faults::{FaultStart, Rejoin, Takeover};
pub use removal::{Abandoned, Census, Removed, census, remove_abandoned, remove_cluster, remove_interrupted_cluster};
pub use versions::Version;

/// A callback that receives one line of progress at a time (image builds, cluster creation).
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);
