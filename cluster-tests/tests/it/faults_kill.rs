//! Killing a node's process and starting it again with the files it had: it rejoins under its own id.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::node::command;
use cluster_tests::server::topology::Role;
use cluster_tests::{ClusterSpec, Result};

const WAIT: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread")]
async fn killed_replicas_and_masters_rejoin_under_their_own_id_with_their_data() -> Result<()> {
    let cluster = ClusterSpec {
        persist: true,
        ..ClusterSpec::from_env()?
    }
    .start()
    .await?;
    let keys = data::keys("kill", 1000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    let acknowledged = cluster.wait_replicated(WAIT).await?;
    assert!(acknowledged.values().all(|n| *n >= 1), "{acknowledged:?}");

    // A replica: killed and restarted, it keeps its id and resyncs.
    let replica_port = cluster.first_port() + 3;
    let fault = cluster.kill(Some(replica_port)).await?;
    assert!(!fault.was_master);
    let err = cluster.kill(Some(replica_port)).await.unwrap_err().to_string();
    assert!(err.contains("exited already"), "{err}");
    let rejoin = cluster.restart(None).await?;
    assert_eq!(
        (rejoin.port, &rejoin.id, rejoin.role),
        (replica_port, &fault.id, Role::Replica)
    );
    assert_eq!(rejoin.replicates, Some(cluster.first_port()));

    // A master: its replica takes over; restarted, it keeps its id, comes back as a replica, data intact.
    let fault = cluster.kill(None).await?;
    assert!(fault.was_master);
    let takeover = cluster
        .wait_takeover(&fault, cluster.node_timeout() * 5 + Duration::from_secs(10))
        .await?
        .expect("a replica took over");
    let rejoin = cluster.restart(Some(fault.port)).await?;
    assert_eq!((&rejoin.id, rejoin.role), (&fault.id, Role::Replica), "{rejoin:?}");
    assert_eq!(rejoin.replicates, Some(takeover.by));
    let err = cluster.restart(None).await.unwrap_err().to_string();
    assert!(err.contains("nothing to restart"), "{err}");
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    // The restarted node holds its new master's shard itself.
    let addr = cluster.addr(fault.port).await?;
    let dbsize: usize = command(addr, &["DBSIZE"]).await?;
    assert!(dbsize > 250, "the restarted replica holds its shard: {dbsize} keys");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_master_without_replica_or_persistence_comes_back_empty() -> Result<()> {
    let cluster = ClusterSpec {
        replicas: 0,
        ..ClusterSpec::from_env()?
    }
    .start()
    .await?;
    let keys = data::keys("gone", 600);
    data::write(&mut cluster.client().await?, &keys).await?;
    let port = cluster.first_port();
    let addr = cluster.addr(port).await?;
    let before: usize = command(addr, &["DBSIZE"]).await?;
    assert!(before > 100, "{before}");
    let fault = cluster.kill(Some(port)).await?;
    let rejoin = cluster.restart(None).await?;
    assert_eq!(
        (&rejoin.id, rejoin.role),
        (&fault.id, Role::Master),
        "same id from nodes.conf, slots kept"
    );
    let after: usize = command(addr, &["DBSIZE"]).await?;
    assert_eq!(after, 0, "without persistence its {before} keys are gone");
    Ok(())
}
