//! Stopped and paused nodes are not gone: `forget` leaves them known and says so; a node on a cluster that is down
//! is refused before anything starts; a running test's cluster counts as owned.

use cluster_tests::playground;
use cluster_tests::server::topology::Role;
use cluster_tests::{Cluster, FailoverKind, Result};

use crate::common::docker;

#[tokio::test(flavor = "multi_thread")]
async fn forget_leaves_stopped_and_paused_nodes_known_and_forgets_removed_ones() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let census = playground::census(&playground::Docker::connect().await?).await?;
    assert!(
        census.owned.iter().any(|(name, _)| name == cluster.name()),
        "{census:?}"
    );
    assert!(census.abandoned.iter().all(|c| c.name != cluster.name()), "{census:?}");

    let topology = cluster.topology().await?;
    let replicas: Vec<u16> = topology
        .nodes
        .iter()
        .filter(|n| n.role == Role::Replica)
        .filter_map(|n| n.port())
        .collect();
    let (paused, stopped) = (replicas[0], replicas[1]);
    let name = |port: u16| format!("{}-{port}", cluster.name());
    docker(&["pause", &name(paused)]);
    docker(&["stop", "-t", "0", &name(stopped)]);
    let err = cluster.node(paused).await.unwrap_err().to_string();
    assert!(err.contains("is paused"), "{err}");

    let report = cluster.forget_gone().await?;
    assert!(report.forgotten.is_empty(), "{report:?}");
    let mut left: Vec<u16> = report.left_alone.iter().map(|(p, _)| *p).collect();
    left.sort_unstable();
    let mut expected = vec![paused, stopped];
    expected.sort_unstable();
    assert_eq!(left, expected, "{report:?}");

    docker(&["unpause", &name(paused)]);
    docker(&["rm", "-f", &name(stopped)]);
    let report = cluster.forget_gone().await?;
    assert_eq!(report.forgotten.len(), 1, "the removed node is forgotten: {report:?}");
    assert!(report.left_alone.is_empty(), "{report:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn join_refuses_a_cluster_that_is_down_and_starts_nothing() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let first = cluster.first_port();
    // Its replica goes first, then the master with --force: its slots have nobody, and the cluster is down.
    let topology = cluster.topology().await?;
    let master = topology.by_port(first).expect("the first node").clone();
    let replica = topology.replicas_of(&master.id)[0].port().expect("a replica port");
    docker(&["rm", "-f", &format!("{}-{replica}", cluster.name())]);
    let forced = FailoverKind::RemoveMaster { force: true };
    cluster.failover(Some(first), forced).await.ok();
    let before = cluster.nodes().await?.len();
    let err = cluster.join(None, None).await.unwrap_err().to_string();
    assert!(err.contains("not healthy"), "{err}");
    assert_eq!(cluster.nodes().await?.len(), before, "no container was started");
    Ok(())
}
