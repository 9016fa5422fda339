//! `CLUSTER FAILOVER` on a replica swaps it with its master, losing nothing.

use cluster_tests::server::data;
use cluster_tests::server::topology::Role;
use cluster_tests::{Cluster, FailoverKind, Result};

#[tokio::test(flavor = "multi_thread")]
async fn manual_failover_swaps_master_and_replica_without_data_loss() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("manual", 2000);
    data::write(&mut cluster.client().await?, &keys).await?;

    let before = cluster.topology().await?;
    let second = cluster.first_port() + 1;
    let master = before.by_port(second).expect("the second node").clone();
    let replica = before.replicas_of(&master.id)[0].port();

    let report = cluster.failover(Some(second), FailoverKind::Manual).await?;
    assert_eq!(report.new_master, replica);

    let after = cluster.topology().await?;
    let old = after.by_port(second).unwrap();
    let new = after.by_port(replica.unwrap()).unwrap();
    assert_eq!((new.role, &new.slots), (Role::Master, &master.slots));
    assert_eq!(old.role, Role::Replica);
    assert_eq!(
        old.master_id.as_deref(),
        Some(new.id.as_str()),
        "the old master now replicates the new one"
    );
    assert_eq!(cluster.live_addrs().await?.len(), 6, "nothing was removed");
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}
