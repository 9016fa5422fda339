//! A real Redis Cluster out of Docker containers, for playing with by hand and for testing against.
//!
//! Describe a cluster with a [`ClusterSpec`] and [`start`](ClusterSpec::start) it: one container per node, the
//! cluster formed (slots, replicas) and truly ready — every node up, all 16384 slots served, every replica linked,
//! synced and offered to clients — at 127.0.0.1 on the host. The [`Cluster`] handle reads the cluster back from
//! Docker, gives clients ([`Cluster::client`], [`Cluster::client_with`], [`Cluster::initial_nodes`] for any other
//! client library), breaks it on purpose ([`Cluster::failover`]), grows it back ([`Cluster::join`]), moves slots
//! while clients write ([`Cluster::reshard`], a slot held half-way for `ASK` tests), scales it out and in
//! ([`Cluster::add_master`], [`Cluster::remove_master`], [`Cluster::rebalance`]) and removes it when dropped.
//! [`topology`] parses what the servers say, [`data`] writes and checks keys over all slots, [`node`] talks to one
//! node. Progress is reported through `tracing` (info level).
//!
//! ```no_run
//! # async fn demo() -> cluster_tests::Result<()> {
//! use redis::AsyncCommands;
//! let cluster = cluster_tests::Cluster::start_for_test().await?; // $CLUSTER_VERSION; removed again when dropped
//! let mut client = cluster.client().await?;
//! let _: () = client.set("foo", "bar").await?;
//! # Ok(()) }
//! ```
//!
//! The `cargo xtask` CLI's extras (a named playground kept between commands, images, clean-up of clusters nobody
//! owns) live in [`playground`].

pub mod checker;
mod cluster;
mod create;
pub mod data;
mod docker;
mod error;
mod faults;
mod image;
mod membership;
mod migration;
mod net_faults;
mod networking;
pub mod node;
mod node_faults;
mod node_image;
mod node_start;
mod owner;
pub mod playground;
mod ready;
mod removal;
mod scaling;
mod security;
mod spec;
mod tls;
pub mod topology;
mod versions;
mod wait;

pub use cluster::{Cluster, Node};
pub use create::CreateReport;
pub use error::{Error, ErrorKind, Result};
pub use faults::{FailoverKind, FailoverReport};
pub use membership::{ForgetReport, JoinReport};
pub use migration::{HeldSlot, MigrationMethod, Reshard, ReshardReport, Slots, has_atomic_migration};
pub use net_faults::{Cut, HealReport, PartitionReport};
pub use networking::Networking;
pub use node_faults::{FaultStart, Rejoin, Takeover};
pub use node_image::{IMAGE_ENV, ImageSource, NodeImage};
pub use ready::Shape;
pub use scaling::{AddMasterReport, MovesReport, RemoveMasterReport, SlotMove};
pub use security::{Access, AclUser, HARNESS_USER, TlsClient, TlsFiles, generate_password, parse_acl_file};
pub use spec::{
    ClusterSpec, DEFAULT_NODE_TIMEOUT, DEFAULT_SPARE_PORTS, FIRST_PORT, KEEP_ENV, Lifetime, MAX_NODE_TIMEOUT,
    MAX_NODES, NODE_TIMEOUT_PER_NODE,
};
pub use tls::ClientAuth;
pub use versions::{VERSION_ENV, Version};
