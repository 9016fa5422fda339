//! After a failover, a joined node replicates the promoted master and can take over in turn.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::topology::Role;
use cluster_tests::{Cluster, FailoverKind, Result};

const REMOVE: FailoverKind = FailoverKind::RemoveMaster { force: false };
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn joined_node_replicates_the_promoted_master_and_takes_over_when_it_fails() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("join", 2000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    let acknowledged = cluster.wait_replicated(WAIT).await?;
    assert!(
        acknowledged.len() == 3 && acknowledged.values().all(|n| *n == 1),
        "{acknowledged:?}"
    );

    let first = cluster.first_port();
    let promoted = cluster
        .failover(Some(first), REMOVE)
        .await?
        .new_master
        .expect("a replica took over");
    let joined = cluster.join(None, None).await?;
    assert_eq!(
        joined.master, promoted,
        "the new node replicates the master left without replica"
    );
    assert_eq!(joined.port, first, "the failed master's port is reused");

    let topology = cluster.topology().await?;
    let node = topology.by_port(first).expect("the joined node is known");
    assert_eq!(node.role, Role::Replica);
    assert_eq!(node.master_id, topology.by_port(promoted).map(|m| m.id.clone()));
    let view = cluster_tests::server::node::NodeView::read(cluster.addr(first).await?).await?;
    assert!(view.replication.replica_synced(), "the joined node is synced");

    let forgotten = cluster.forget_gone().await?.forgotten;
    assert_eq!(forgotten.len(), 1, "the failed master is forgotten");
    for v in cluster.views().await? {
        assert_eq!(v.info.known_nodes(), 6, "{} knows six nodes again", v.addr);
    }

    let acknowledged = cluster.wait_replicated(WAIT).await?;
    assert_eq!(
        acknowledged.get(&promoted),
        Some(&1),
        "the joined node acknowledged: {acknowledged:?}"
    );
    let report = cluster.failover(Some(promoted), REMOVE).await?;
    assert_eq!(report.new_master, Some(first), "the joined node takes over");
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}
