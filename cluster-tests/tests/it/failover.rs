//! Removing a master's container: its replica takes over with the acknowledged data.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::node::command;
use cluster_tests::server::topology::Role;
use cluster_tests::{Cluster, ErrorKind, FailoverKind, Result};
use redis::AsyncCommands;

const REMOVE: FailoverKind = FailoverKind::RemoveMaster { force: false };
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_master_promotes_its_replica_and_keeps_acknowledged_writes() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("fo", 2000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    let acknowledged = cluster.wait_replicated(WAIT).await?;
    assert_eq!(acknowledged.len(), 3, "three masters: {acknowledged:?}");
    assert!(
        acknowledged.values().all(|n| *n == 1),
        "each master's replica acknowledged: {acknowledged:?}"
    );

    let first = cluster.first_port();
    let before = cluster.topology().await?;
    let master = before.by_port(first).expect("the first node").clone();
    let replica = before.replicas_of(&master.id)[0].port();

    let report = cluster.failover(Some(first), REMOVE).await?;
    assert_eq!(report.old_master, first);
    assert_eq!(report.new_master, replica, "the removed master's own replica took over");
    assert_eq!(report.slots, master.slots);

    let views = cluster.views().await?;
    assert_eq!(views.len(), 5);
    for v in &views {
        assert!(v.info.state_ok(), "{} is ok again", v.addr);
        let old = v.nodes.get(&master.id).expect("the old master is still known");
        assert!(
            old.is_failed() && old.role == Role::Master,
            "{} sees the old master as master,fail",
            v.addr
        );
        let new = v.nodes.by_port(replica.unwrap()).unwrap();
        assert_eq!(
            (new.role, &new.slots),
            (Role::Master, &master.slots),
            "{} sees the new master",
            v.addr
        );
    }

    // The client made before the failover refreshes its slot map instead of hanging on the removed address.
    data::verify_keys(&mut client, &keys).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    // New writes to the moved slots land on the new master: read them there directly, not through a client.
    let mut fresh = cluster.client().await?;
    let after: Vec<String> = data::keys("after", 300);
    data::write(&mut fresh, &after).await?;
    let new_addr = cluster.addr(replica.unwrap()).await?;
    let mut on_new = 0;
    for key in &after {
        let slot = data::slot_of(key);
        if master.slots.iter().any(|r| r.contains(slot)) {
            let got: Option<String> = command(new_addr, &["GET", key]).await?;
            assert!(got.is_some(), "{key} (slot {slot}) is on the new master");
            on_new += 1;
        }
    }
    assert!(on_new > 50, "{on_new} of 300 new keys fell in the moved slots");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_right_after_create_works() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster.failover(None, REMOVE).await?;
    assert!(report.new_master.is_some(), "a replica took over: {report:?}");
    let mut client = cluster.client().await?;
    let _: () = client.set("foo", "bar").await?;
    let got: String = client.get("foo").await?;
    assert_eq!(got, "bar");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_refuses_replicas_unknown_ports_and_masters_without_replica() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let first = cluster.first_port();
    let err = cluster.failover(Some(first + 3), REMOVE).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    let err = err.to_string();
    assert!(err.contains("is a replica"), "{err}");
    let unknown = first + 100;
    let err = cluster.failover(Some(unknown), REMOVE).await.unwrap_err().to_string();
    assert!(err.contains(&format!("no node listens on port {unknown}")), "{err}");

    let report = cluster.failover(Some(first), REMOVE).await?;
    let promoted = report.new_master.expect("promoted");
    let err = cluster.failover(Some(promoted), REMOVE).await.unwrap_err().to_string();
    assert!(err.contains("has no replica") && err.contains("force: true"), "{err}");
    assert_eq!(
        cluster.live_addrs().await?.len(),
        5,
        "a refused failover removes nothing"
    );

    let report = cluster
        .failover(Some(promoted), FailoverKind::RemoveMaster { force: true })
        .await?;
    assert_eq!(report.new_master, None);
    let views = cluster.views().await?;
    assert_eq!(views.len(), 4, "four nodes left");
    for v in &views {
        assert!(
            !v.info.state_ok(),
            "{}: with slots unserved the cluster is down",
            v.addr
        );
    }
    Ok(())
}
