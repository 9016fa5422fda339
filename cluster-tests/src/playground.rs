//! What the `cargo xtask` CLI and its bench need beyond a test's view of a cluster: a connection to the Docker
//! engine, a cluster found or made by name and kept between commands, node images, the standard route for
//! comparison, a join and an add-master in two steps (so Ctrl-C can undo them), and clean-up of clusters nobody owns.

use std::time::Duration;

pub use crate::cluster::removal::{
    Abandoned, Census, Leftovers, Removed, census, leftovers, orphan_secrets, remove_abandoned, remove_cluster,
    remove_interrupted_cluster, remove_orphan_secrets,
};
pub use crate::engine::docker::Docker;
pub use crate::images::build::{
    BuildOutcome, ImageEntry, build_into, build_timeout, ensure_built, ensure_tools, list as images,
    missing_build_tools, prune as prune_images, time_cold_build, tools_tag,
};
pub use crate::reshape::membership::JoinPlan;
pub use crate::reshape::scaling::{AddMasterPlan, UndoneAdd};
use crate::{
    AddMasterReport, Cluster, ClusterSpec, CreateReport, FIRST_PORT, ImageSource, JoinReport, Lifetime, Result,
};

/// Name of the cluster the CLI makes and finds.
pub const PLAYGROUND: &str = "playground";

/// The CLI's cluster: 3 masters with one replica each, on 127.0.0.1:7001 and up, kept until `cargo xtask stop`.
pub fn spec(image: impl Into<ImageSource>) -> ClusterSpec {
    ClusterSpec::default()
        .name(PLAYGROUND)
        .image(image)
        .first_port(FIRST_PORT)
        .lifetime(Lifetime::Kept)
}

/// Finds the running cluster called `name`, or says that none runs. Dropping the handle removes nothing.
pub async fn find(docker: &Docker, name: &str) -> Result<Cluster> {
    Cluster::find(docker, name).await
}

/// Makes the cluster `spec` describes and says how long each step took (see [`ClusterSpec::start`]).
pub async fn create(docker: &Docker, spec: ClusterSpec) -> Result<(Cluster, CreateReport)> {
    Cluster::create(docker, spec).await
}

/// Makes the same cluster the standard way, `redis-cli --cluster create` (or `valkey-cli`) run inside it, up to
/// the same readiness; returns the time taken.
pub async fn create_with_cli(docker: &Docker, spec: ClusterSpec) -> Result<(Cluster, Duration)> {
    Cluster::create_with_cli(docker, spec).await
}

/// Decides where a new node goes and whom it replicates (see [`Cluster::join`]); starts nothing.
pub async fn plan_join(cluster: &Cluster, replicate: Option<u16>, port: Option<u16>) -> Result<JoinPlan> {
    cluster.plan_join(replicate, port).await
}

/// Starts the node `plan` describes and joins it; on failure nothing of it is left.
pub async fn carry_out_join(cluster: &Cluster, plan: &JoinPlan) -> Result<JoinReport> {
    cluster.carry_out_join(plan).await
}

/// Undoes a join cut short (a signal): removes the planned node's container, also one still being created.
pub async fn undo_join(cluster: &Cluster, plan: &JoinPlan) -> Result<()> {
    cluster.undo_join(plan).await
}

/// Decides the ports of a new master and its replicas (see [`Cluster::add_master`]); starts nothing.
pub async fn plan_add_master(cluster: &Cluster, port: Option<u16>, replicas: usize) -> Result<AddMasterPlan> {
    cluster.plan_add_master(port, replicas).await
}

/// Starts the master `plan` describes, moves slots onto it, then starts its replicas. Once `stop` completes, a node
/// being started is dropped (an error), a rebalance ends its move in flight at the next step and no replica starts.
pub async fn carry_out_add_master(
    cluster: &Cluster,
    plan: &AddMasterPlan,
    stop: impl Future<Output = ()>,
) -> Result<AddMasterReport> {
    cluster.carry_out_add_master(plan, stop).await
}

/// Undoes an add-master cut short (a signal): slots marked half-way are rolled back, and every planned node
/// that serves no slot goes and is forgotten; a new master already serving slots stays (see the report).
pub async fn undo_add_master(cluster: &Cluster, plan: &AddMasterPlan) -> Result<UndoneAdd> {
    cluster.undo_add_master(plan).await
}

/// The arguments a command-line client run in one of `cluster`'s node containers needs beyond the port: its TLS
/// files, on a TLS cluster (the node's own certificate serves as the client's).
pub fn node_cli_tls_args(cluster: &Cluster) -> &'static [&'static str] {
    cluster.secrets().map_or(&[], |s| s.cli_args())
}
