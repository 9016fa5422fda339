//! A real Redis Cluster out of Docker containers, for playing with by hand and for testing against.
//!
//! Describe a cluster with a [`ClusterSpec`] and [`start`](ClusterSpec::start) it: one container per node, the
//! cluster formed (slots, replicas) and truly ready — every node up, all 16384 slots served, every replica linked,
//! synced and offered to clients — at 127.0.0.1 on the host. The [`Cluster`] handle reads the cluster back from
//! Docker, gives clients ([`Cluster::client`], [`Cluster::client_with`], [`Cluster::initial_nodes`] for any other
//! client library), breaks it on purpose ([`Cluster::failover`]), grows it back ([`Cluster::join`]), moves slots
//! while clients write ([`Cluster::reshard`], a slot held half-way for `ASK` tests), scales it out and in
//! ([`Cluster::add_master`], [`Cluster::remove_master`], [`Cluster::rebalance`]) and removes it when dropped.
//! [`server::topology`] parses what the servers say, [`server::data`] writes and checks keys over all slots, [`server::node`] talks to one
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
//! The CLI's extras (a named playground kept between commands, images, clean-up of clusters nobody
//! owns) live in [`playground`].

mod cluster;
mod engine;
mod error;
pub mod faults;
mod images;
pub mod playground;
pub mod progress;
mod reshape;
mod security;
pub mod server;
mod spec;
mod wait;

/// The client library the harness speaks (its clients and errors are redis-rs types).
pub use redis;
/// The testcontainers the harness starts its containers with: use it for containers of your own (see
/// [`Cluster::on_network`]).
pub use testcontainers;

pub use cluster::capacity::MAX_CLUSTERS_ENV;
pub use cluster::create::CreateReport;
pub use cluster::handle::{Cluster, Node};
pub use cluster::keeper::{Keeper, KeeperReport, PoolSizes, WarmPool};
pub use cluster::warm::{KEEPER_ENV, WARM_ENV};
pub(crate) use error::bail;
pub use error::{Error, ErrorKind, Remedy, Result};
pub use faults::failover::{FailoverKind, FailoverReport};
pub use faults::network::{Cut, HealReport, PartitionReport};
pub use faults::process::{FaultStart, Rejoin, Takeover};
pub use images::node_image::{IMAGE_ENV, ImageSource, NodeImage};
pub use images::versions::{VERSION_ENV, Version};
pub use reshape::membership::{ForgetReport, JoinReport};
pub use reshape::migration::{HeldSlot, MigrationMethod, Reshard, ReshardReport, Slots, Stopped, has_atomic_migration};
pub use reshape::scaling::{AddMasterReport, MovesReport, RemoveMasterReport, SlotMove};
pub use security::credentials::{
    Access, AclUser, HARNESS_USER, TlsClient, TlsFiles, generate_password, parse_acl_file,
};
pub use security::tls::ClientAuth;
pub use server::ready::Shape;
pub use spec::{
    ClusterSpec, DEFAULT_NODE_TIMEOUT, DEFAULT_SPARE_PORTS, FIRST_PORT, KEEP_ENV, Lifetime, MAX_NODE_TIMEOUT,
    MAX_NODES, NODE_TIMEOUT_PER_NODE, Networking, PlainPorts, TESTCONTAINERS_COMMAND_ENV,
};
