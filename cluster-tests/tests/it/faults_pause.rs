//! Pausing a master longer than the node timeout: its replica takes over, and the old master comes back as its
//! replica with no WAIT-acknowledged write lost.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::topology::Role;
use cluster_tests::{Cluster, Result};

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_master_is_replaced_and_rejoins_as_a_replica_of_its_replica() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("pause", 1000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    let acknowledged = cluster.wait_replicated(Duration::from_millis(1500)).await?;
    assert!(acknowledged.values().all(|n| *n >= 1), "{acknowledged:?}");

    let fault = cluster.pause(None).await?;
    assert_eq!(fault.port, cluster.first_port(), "the lowest master by default");
    assert!(fault.was_master && fault.replicas.len() == 1, "{fault:?}");
    let err = cluster.pause(Some(fault.port)).await.unwrap_err().to_string();
    assert!(err.contains("paused already"), "{err}");

    let takeover = cluster
        .wait_takeover(&fault, cluster.node_timeout() * 5 + Duration::from_secs(10))
        .await?
        .expect("a replica took over");
    assert_eq!(takeover.by, fault.replicas[0]);
    assert!(
        takeover.after >= cluster.node_timeout(),
        "not before the node timeout: {takeover:?}"
    );
    let rejoin = cluster.resume(None).await?;
    assert_eq!((rejoin.port, &rejoin.id), (fault.port, &fault.id));
    assert_eq!(rejoin.role, Role::Replica, "{rejoin:?}");
    assert_eq!(rejoin.replicates, Some(takeover.by));
    let err = cluster.resume(None).await.unwrap_err().to_string();
    assert!(err.contains("nothing to resume"), "{err}");

    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}
