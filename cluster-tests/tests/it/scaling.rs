//! Scaling out and in with the keys: add a master (with a replica) and remove it again, rebalance an uneven
//! cluster; bad input and a held slot are refused with nothing changed.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::topology::{ClusterNodes, NodeEntry, SlotRange};
use cluster_tests::{Cluster, ClusterSpec, ErrorKind, FailoverKind, Reshard, Result, Shape, Slots};

/// Port and `cluster_known_nodes` of every live node, by port.
async fn known_nodes(cluster: &Cluster) -> Result<Vec<(u16, u64)>> {
    let mut known: Vec<(u16, u64)> = cluster
        .views()
        .await?
        .iter()
        .map(|v| (v.addr.port(), v.info.known_nodes()))
        .collect();
    known.sort_unstable();
    Ok(known)
}

/// Port and slot count of every master serving slots, as the cluster sees it now.
async fn serving(cluster: &Cluster) -> Result<Vec<(u16, usize)>> {
    let topology = cluster.topology().await?;
    Ok(topology
        .live_masters()
        .into_iter()
        .filter(|m| !m.slots.is_empty())
        .map(|m| (m.port().unwrap(), m.slot_count()))
        .collect())
}

/// Checks `masters` masters serving slots, each within the even share ±1, and all 16384 slots served.
fn assert_even(masters: &[(u16, usize)], expected: usize) {
    assert_eq!(masters.len(), expected, "{masters:?}");
    let share = 16384 / expected;
    for (port, n) in masters {
        assert!(
            n.abs_diff(share) <= 1,
            "master {port} holds {n} slots, share {share}: {masters:?}"
        );
    }
    assert_eq!(masters.iter().map(|(_, n)| n).sum::<usize>(), 16384);
}

/// The live master on the highest port: of a cluster made with four masters, the fourth, which may be removed.
fn fourth_master(topology: &ClusterNodes) -> NodeEntry {
    topology
        .live_masters()
        .into_iter()
        .max_by_key(|m| m.port())
        .expect("four masters")
        .clone()
}

/// How many of `keys` fall in `owned`.
fn keys_in(keys: &[String], owned: &[SlotRange]) -> usize {
    keys.iter()
        .filter(|k| owned.iter().any(|r| r.contains(data::slot_of(k))))
        .count()
}

const SHAPE: fn(usize) -> Shape = |masters| Shape::Exact {
    masters,
    replicas_per_master: 1,
};

#[tokio::test(flavor = "multi_thread")]
async fn add_master_moves_a_share_from_each_master_onto_it_with_exactly_their_keys() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("scale", 2000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let known_before = known_nodes(&cluster).await?;
    assert_eq!(known_before.len(), 6);
    assert!(known_before.iter().all(|(_, n)| *n == 6), "{known_before:?}");

    let added = cluster.add_master(None, 1).await?;
    assert_eq!(added.replicas.len(), 1, "{added:?}");
    assert_eq!(added.rebalance.moves.len(), 3, "one share from each master: {added:?}");
    assert_eq!(added.rebalance.slots(), 4096);
    let topology = cluster.topology().await?;
    let new: &NodeEntry = topology.by_port(added.port).expect("the new master is known");
    assert_eq!(new.id, added.id);
    assert_eq!(
        added.rebalance.keys(),
        keys_in(&keys, &new.slots),
        "every key of its slots moved with them"
    );
    assert!(added.rebalance.keys() > 0);
    let replicas: Vec<u16> = topology.replicas_of(&new.id).iter().filter_map(|r| r.port()).collect();
    assert_eq!(replicas, added.replicas);
    assert_even(&serving(&cluster).await?, 4);
    cluster.wait_ready(SHAPE(4), Duration::from_secs(10)).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    let known = known_nodes(&cluster).await?;
    assert_eq!(known.len(), 8);
    assert!(known.iter().all(|(_, n)| *n == 8), "{known:?}");
    Ok(())
}

/// The way back from [`add_master_moves_a_share_from_each_master_onto_it_with_exactly_their_keys`], from a cluster
/// made with four masters (so no slot moves before the test begins).
#[tokio::test(flavor = "multi_thread")]
async fn remove_master_moves_its_slots_and_keys_back_out_and_every_node_forgets_it() -> Result<()> {
    let cluster = ClusterSpec::from_env()?.masters(4).start().await?;
    let keys = data::keys("scale", 2000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let known_before = known_nodes(&cluster).await?;
    assert_eq!(known_before.len(), 8);
    assert!(known_before.iter().all(|(_, n)| *n == 8), "{known_before:?}");
    let topology = cluster.topology().await?;
    let fourth = fourth_master(&topology);
    let fourth_port = fourth.port().expect("a published port");
    let replicas: Vec<u16> = topology
        .replicas_of(&fourth.id)
        .iter()
        .filter_map(|r| r.port())
        .collect();
    assert_eq!(replicas.len(), 1, "{topology:?}");

    let removed = cluster.remove_master(fourth_port).await?;
    assert_eq!((removed.port, &removed.replicas), (fourth_port, &replicas));
    assert_eq!(removed.drain.slots(), 4096);
    assert_eq!(
        removed.drain.keys(),
        keys_in(&keys, &fourth.slots),
        "its keys went back out"
    );
    assert!(removed.drain.keys() > 0);
    assert_even(&serving(&cluster).await?, 3);
    cluster.wait_ready(SHAPE(3), Duration::from_secs(10)).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    let gone = [fourth_port, replicas[0]];
    let staying: Vec<(u16, u64)> = known_before
        .iter()
        .filter(|(port, _)| !gone.contains(port))
        .map(|(port, _)| (*port, 6))
        .collect();
    assert_eq!(known_nodes(&cluster).await?, staying, "every node forgot both");
    assert_eq!(cluster.nodes().await?.len(), 6, "their containers are gone");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rebalance_evens_out_slots_after_an_uneven_reshard() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("rebalance", 2000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let masters: Vec<u16> = serving(&cluster).await?.iter().map(|(p, _)| *p).collect();
    cluster
        .reshard(&Reshard::new(masters[0], masters[1], Slots::Count(1000)))
        .await?;
    let uneven = serving(&cluster).await?;
    assert_eq!(uneven.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [4461, 6462, 5461]);

    let report = cluster.rebalance().await?;
    assert_eq!(report.slots(), 1000, "{report:?}");
    assert!(report.moves.iter().all(|m| m.to == masters[0]), "{report:?}");
    assert_even(&serving(&cluster).await?, 3);
    cluster.wait_ready(SHAPE(3), Duration::from_secs(10)).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    for view in cluster.views().await? {
        view.nodes.check_slot_coverage()?;
        let counts: Vec<usize> = view.nodes.live_masters().iter().map(|m| m.slot_count()).collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [5461, 5461, 5462], "{} sees {counts:?}", view.addr);
    }
    assert!(
        cluster.rebalance().await?.moves.is_empty(),
        "an even cluster moves nothing"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_scaling_input_and_a_held_slot_are_refused_with_nothing_changed() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let masters = topology.master_ports();
    let replica = topology.replicas_of(&topology.by_port(masters[0]).unwrap().id)[0]
        .port()
        .unwrap();
    let published = cluster.published_ports().expect("a pod publishes ports");
    let snapshot = || async {
        let topology = cluster.topology().await?;
        let map: Vec<(SlotRange, String)> = topology
            .slot_map()
            .into_iter()
            .map(|(r, id)| (r, id.to_owned()))
            .collect();
        Ok::<_, cluster_tests::Error>((map, known_nodes(&cluster).await?, cluster.nodes().await?.len()))
    };
    let before = snapshot().await?;

    let refusals = [
        (cluster.remove_master(replica).await.err(), "is a replica"),
        (
            cluster.remove_master(published.end() + 1).await.err(),
            "no node listens",
        ),
        (
            cluster.remove_master(masters[0]).await.err(),
            "one of the last 3 masters",
        ),
        (cluster.add_master(None, 3).await.err(), "ClusterSpec::spare_ports"),
        (
            cluster.add_master(Some(published.end() + 1), 1).await.err(),
            "is not published",
        ),
    ];
    for (err, says) in &refusals {
        let err = err.as_ref().expect("refused");
        assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(refusals.len(), 5);
    assert_eq!(snapshot().await?, before, "refusals changed nothing");

    let range = SlotRange { start: 100, end: 100 };
    let held = cluster
        .reshard(&Reshard::new(masters[0], masters[1], Slots::Range(range)).hold())
        .await?
        .held
        .expect("a slot is held");
    let while_held = [
        cluster
            .failover(None, FailoverKind::RemoveMaster { force: false })
            .await
            .err(),
        cluster.failover(Some(masters[1]), FailoverKind::Manual).await.err(),
        cluster.join(Some(masters[0]), None).await.err(),
        cluster.add_master(None, 1).await.err(),
        cluster.remove_master(masters[2]).await.err(),
        cluster.rebalance().await.err(),
    ];
    for err in &while_held {
        let err = err.as_ref().expect("refused while a slot is held").to_string();
        assert!(
            err.contains("slot 100 is held")
                && err.contains("Cluster::finish_held")
                && err.contains("Cluster::abort_held"),
            "{err}"
        );
    }
    assert_eq!(while_held.len(), 6);
    assert_eq!(
        cluster.held_migration().await?,
        Some(held),
        "the held slot is as it was"
    );
    assert_eq!(
        cluster.nodes().await?.len(),
        before.2,
        "no container was started or removed"
    );
    cluster.abort_held().await?;
    assert_eq!(snapshot().await?, before, "after the abort the cluster is as it was");
    Ok(())
}

/// With a node paused, no one joins or leaves: the paused node would miss the change and, thawed, tell the others
/// of the nodes they forgot (issue 22 item 6). Once it is thawed, the same changes go through and every node
/// knows the same nodes.
#[tokio::test(flavor = "multi_thread")]
async fn membership_changes_are_refused_while_a_node_is_paused() -> Result<()> {
    // Four masters from the start: the fourth is one that may be removed, and no slot moves to make it so.
    let cluster = ClusterSpec::from_env()?.masters(4).start().await?;
    let topology = cluster.topology().await?;
    let fourth = fourth_master(&topology).port().expect("a published port");
    let replica = topology
        .nodes
        .iter()
        .find(|n| n.master_id.is_some())
        .and_then(NodeEntry::port)
        .expect("a replica");
    cluster.pause(Some(replica)).await?;
    let refused = [
        ("remove_master", cluster.remove_master(fourth).await.map(drop)),
        ("add_master", cluster.add_master(None, 0).await.map(drop)),
        ("join", cluster.join(Some(fourth), None).await.map(drop)),
    ];
    for (what, result) in refused {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Refused, "{what}: {err}");
        assert!(
            err.to_string().contains(&format!("node {replica} is paused")),
            "{what}: {err}"
        );
        assert_eq!(err.remedy(), Some(cluster_tests::Remedy::Resume(replica)), "{what}");
    }
    cluster.resume(Some(replica)).await?;
    cluster.remove_master(fourth).await?;
    let known = known_nodes(&cluster).await?;
    assert!(known.iter().all(|(_, n)| *n == 6), "{known:?}");
    Ok(())
}
