//! Slots move with their keys while clients read and write; a slot held half-way answers `ASK`, then `MOVED`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::node::{self, command};
use cluster_tests::server::topology::SlotRange;
use cluster_tests::{Cluster, ErrorKind, MigrationMethod, Reshard, Result, Slots, has_atomic_migration};
use redis::cluster_async::ClusterConnection;

/// Keeps writing new keys until `stop`, returning them.
async fn write_until(mut client: ClusterConnection, stop: &AtomicBool) -> Result<Vec<String>> {
    let mut written = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let key = format!("live:{}", written.len());
        data::write(&mut client, std::slice::from_ref(&key)).await?;
        written.push(key);
    }
    Ok(written)
}

/// Reads `keys` back over and over until `stop` (at least once), returning the passes made.
async fn read_until(mut client: ClusterConnection, keys: &[String], stop: &AtomicBool) -> Result<usize> {
    let mut passes = 0;
    loop {
        data::verify_keys(&mut client, keys).await?;
        passes += 1;
        if stop.load(Ordering::Relaxed) {
            return Ok(passes);
        }
    }
}

/// Moves `reshard` while a client writes new keys and another reads `keys`; checks everything lands and that
/// every node agrees the target owns the moved slots.
async fn move_under_traffic(cluster: &Cluster, reshard: Reshard, keys: &[String]) -> Result<MigrationMethod> {
    let stop = AtomicBool::new(false);
    let moving = async {
        let report = cluster.reshard(&reshard).await;
        stop.store(true, Ordering::Relaxed);
        report
    };
    let (writer, reader) = (cluster.client().await?, cluster.client().await?);
    let (report, written, passes) = tokio::join!(moving, write_until(writer, &stop), read_until(reader, keys, &stop));
    let (report, written, passes) = (report?, written?, passes?);
    assert!(
        !written.is_empty() && passes >= 1,
        "{} writes, {passes} reads",
        written.len()
    );
    let moved: Vec<u16> = report.slots.iter().flat_map(|r| r.start..=r.end).collect();
    let Slots::Count(asked) = reshard.slots else {
        unreachable!()
    };
    assert_eq!(moved.len(), asked, "{report:?}");
    let before = keys.iter().filter(|k| moved.contains(&data::slot_of(k))).count();
    assert!(
        report.keys >= before && before > 0,
        "{} keys moved, {before} were there before",
        report.keys
    );

    data::verify_keys(&mut cluster.client().await?, keys).await?;
    data::verify_keys(&mut cluster.client().await?, &written).await?;
    let views = cluster.views().await?;
    assert_eq!(views.len(), 6);
    for view in &views {
        let target = view.nodes.by_port(reshard.to).unwrap();
        let source = view.nodes.by_port(reshard.from).unwrap();
        for slot in &moved {
            assert_eq!(
                view.nodes.owner_of(*slot).map(|n| &n.id),
                Some(&target.id),
                "{} slot {slot}",
                view.addr
            );
            assert!(!source.slots.iter().any(|r| r.contains(*slot)));
        }
    }
    let source = cluster.addr(reshard.from).await?;
    for slot in &moved {
        let left: usize = command(source, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).await?;
        assert_eq!(left, 0, "slot {slot} left keys on the source");
    }
    Ok(report.method)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_stay_readable_and_new_writes_land_while_slots_move() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let keys = data::keys("reshard", 3000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let ports = cluster.topology().await?.master_ports();

    let classic = Reshard::new(ports[0], ports[1], Slots::Count(500)).classic();
    assert_eq!(
        move_under_traffic(&cluster, classic, &keys).await?,
        MigrationMethod::Classic
    );
    let method = move_under_traffic(&cluster, Reshard::new(ports[1], ports[2], Slots::Count(500)), &keys).await?;
    let atomic = has_atomic_migration(cluster.access(), cluster.addr(ports[1]).await?).await?;
    let expected = if atomic {
        MigrationMethod::Atomic
    } else {
        MigrationMethod::Classic
    };
    assert_eq!(method, expected, "atomic migration is used where the server has it");
    Ok(())
}

/// A connection to `addr` that sends `ASKING` before `GET key`.
async fn get_asking(addr: std::net::SocketAddr, key: &str) -> Result<Option<String>> {
    let mut conn = node::connect(addr).await?;
    let (value,): (Option<String>,) = redis::pipe()
        .cmd("ASKING")
        .ignore()
        .cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await?;
    Ok(value)
}

/// The node's own line of its `CLUSTER NODES`.
async fn myself(addr: std::net::SocketAddr) -> Result<cluster_tests::server::topology::NodeEntry> {
    Ok(node::NodeView::read(addr).await?.nodes.myself().cloned().unwrap())
}

/// The redirect a `GET key` on `addr` answers, with its kind.
async fn redirect_of(addr: std::net::SocketAddr, key: &str) -> Option<(redis::ErrorKind, String, u16)> {
    let err = command::<Option<String>>(addr, &["GET", key]).await.err()?;
    let e = err.redis_error()?;
    let (to, slot) = e.redirect_node()?;
    Some((e.kind(), to.to_owned(), slot))
}

const ASK: redis::ErrorKind = redis::ErrorKind::Server(redis::ServerErrorKind::Ask);
const MOVED: redis::ErrorKind = redis::ErrorKind::Server(redis::ServerErrorKind::Moved);

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_held_half_way_answers_ask_and_moved_until_finished_or_rolled_back() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let masters = topology.master_ports();
    let (from, to) = (masters[0], masters[1]);
    let replica = topology.replicas_of(&topology.by_port(to).unwrap().id)[0]
        .port()
        .unwrap();
    let keys = data::keys("held", 2000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let map = slot_map(&cluster).await?;

    // Bad input is refused and changes nothing.
    let range = |start, end| Slots::Range(SlotRange { start, end });
    for bad in [
        Reshard::new(from, to, range(5000, 6000)),
        Reshard::new(from, replica, Slots::Count(1)),
        Reshard::new(from, from, Slots::Count(1)),
    ] {
        let err = cluster.reshard(&bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused, "{bad:?}: {err}");
    }
    let err = cluster.finish_held().await.unwrap_err();
    assert!(err.to_string().contains("no slot is held"), "{err}");
    let err = cluster.abort_held().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    let after = slot_map(&cluster).await?;
    assert_eq!(after, map, "refusals moved nothing");

    // Hold the slot of 20 keys sharing a hash tag.
    let tag = data::key_in(&[SlotRange { start: 100, end: 100 }], "tag").unwrap();
    let slot_keys: Vec<String> = (0..20).map(|i| format!("{{{tag}}}:{i}")).collect();
    data::write(&mut cluster.client().await?, &slot_keys).await?;
    let report = cluster.reshard(&Reshard::new(from, to, range(100, 100)).hold()).await?;
    let held = report.held.clone().expect("a slot is held");
    assert_eq!(
        (held.slot, held.from, held.to, held.moved, held.left),
        (100, from, to, 10, 10)
    );
    assert!(report.slots.is_empty(), "the held slot is not handed over: {report:?}");
    assert_eq!(cluster.held_migration().await?, Some(held));
    let (source, target) = (cluster.addr(from).await?, cluster.addr(to).await?);
    let (source_line, target_line) = (myself(source).await?, myself(target).await?);
    assert_eq!(source_line.migrating, vec![(100, target_line.id.clone())]);
    assert_eq!(target_line.importing, vec![(100, source_line.id)]);

    let mut asked = 0;
    for key in &slot_keys {
        match redirect_of(source, key).await {
            Some((kind, at, slot)) => {
                assert_eq!((kind, at, slot), (ASK, target.to_string(), 100), "{key}");
                assert_eq!(
                    redirect_of(target, key).await,
                    Some((MOVED, source.to_string(), 100)),
                    "{key} without ASKING"
                );
                assert!(get_asking(target, key).await?.is_some(), "{key} with ASKING");
                asked += 1;
            }
            None => assert!(command::<Option<String>>(source, &["GET", key]).await?.is_some()),
        }
    }
    assert_eq!(asked, 10, "the moved half answers ASK on the source");
    // One at a time: redis-rs 1.8's async cluster client sends ASKING as a request of its own on a shared
    // connection, so concurrent ASK-redirected commands can take each other's ASKING and bounce until out of retries.
    let mut client = cluster.client().await?;
    for key in &slot_keys {
        data::verify_keys(&mut client, std::slice::from_ref(key)).await?;
    }
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    cluster
        .wait_ready(cluster_tests::Shape::Any, Duration::from_secs(10))
        .await?;
    let err = cluster
        .reshard(&Reshard::new(from, to, Slots::Count(1)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("slot 100 is held"), "{err}");

    // Finish: the source now answers MOVED for every key of the slot.
    let finished = cluster.finish_held().await?;
    assert_eq!((finished.keys, finished.slots.len()), (10, 1));
    for key in &slot_keys {
        assert_eq!(
            redirect_of(source, key).await,
            Some((MOVED, target.to_string(), 100)),
            "{key}"
        );
    }
    assert!(cluster.held_migration().await?.is_none());

    // Abort: another slot held, rolled back, stays on the source with all its keys.
    let tag = data::key_in(&[SlotRange { start: 101, end: 101 }], "tag").unwrap();
    let back_keys: Vec<String> = (0..20).map(|i| format!("{{{tag}}}:{i}")).collect();
    data::write(&mut cluster.client().await?, &back_keys).await?;
    cluster.reshard(&Reshard::new(from, to, range(101, 101)).hold()).await?;
    let aborted = cluster.abort_held().await?;
    let [aborted] = aborted.as_slice() else {
        panic!("one slot was held: {aborted:?}")
    };
    assert_eq!((aborted.slot, aborted.moved), (101, 10));
    let left: usize = command(source, &["CLUSTER", "COUNTKEYSINSLOT", "101"]).await?;
    assert_eq!(left, 20, "every key is back on the source");
    for view in cluster.views().await? {
        assert_eq!(
            view.nodes.owner_of(101).and_then(|n| n.port()),
            Some(from),
            "{}",
            view.addr
        );
        let me = view.nodes.myself().unwrap();
        assert!(me.migrating.is_empty() && me.importing.is_empty(), "{}", view.addr);
    }
    data::verify_keys(&mut cluster.client().await?, &back_keys).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

/// Every served slot range with its master's id, as the cluster sees it now.
async fn slot_map(cluster: &Cluster) -> Result<Vec<(SlotRange, String)>> {
    let topology = cluster.topology().await?;
    Ok(topology
        .slot_map()
        .into_iter()
        .map(|(r, id)| (r, id.to_owned()))
        .collect())
}

/// Marks `slots` as a move from `from` to `to` cut short leaves them: `IMPORTING` on the target, `MIGRATING` on the
/// source.
async fn mark(cluster: &Cluster, slots: &[u16], (from, to): (u16, u16)) -> Result<()> {
    let topology = cluster.topology().await?;
    let id = |port| topology.by_port(port).unwrap().id.clone();
    let (source, target) = (cluster.addr(from).await?, cluster.addr(to).await?);
    for slot in slots {
        let slot = slot.to_string();
        node::command::<()>(target, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id(from)]).await?;
        node::command::<()>(source, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id(to)]).await?;
    }
    Ok(())
}

/// Slots some live node still shows `MIGRATING` or `IMPORTING`.
async fn marked(cluster: &Cluster) -> Result<Vec<u16>> {
    let mut slots: Vec<u16> = Vec::new();
    for view in cluster.views().await? {
        if let Some(me) = view.nodes.myself() {
            slots.extend(me.migrating.iter().chain(&me.importing).map(|(s, _)| *s));
        }
    }
    slots.sort_unstable();
    slots.dedup();
    Ok(slots)
}

/// A move cut short (a signal, a SIGKILL) can leave a whole batch of slots marked: one `abort_held` rolls every
/// one back, one `finish_held` hands every one over, also one the target had already taken (issue 22 item 4).
#[tokio::test(flavor = "multi_thread")]
async fn one_abort_or_one_finish_clears_every_slot_left_marked() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let masters = topology.master_ports();
    let (from, to) = (masters[0], masters[1]);
    let first = topology.by_port(from).unwrap().slots[0].start;
    let slots: Vec<u16> = (first..first + 8).collect();
    let keys: Vec<String> = slots
        .iter()
        .flat_map(|s| {
            let tag = data::key_in(&[SlotRange { start: *s, end: *s }], "marked").unwrap();
            (0..3).map(move |i| format!("{{{tag}}}:{i}"))
        })
        .collect();
    data::write(&mut cluster.client().await?, &keys).await?;

    // Five slots marked, one of them with a key already on the target: one abort clears all five.
    mark(&cluster, &slots[..5], (from, to)).await?;
    let (source, target) = (cluster.addr(from).await?, cluster.addr(to).await?);
    node::command::<()>(
        source,
        &["MIGRATE", "127.0.0.1", &to.to_string(), &keys[0], "0", "5000"],
    )
    .await?;
    assert_eq!(marked(&cluster).await?, slots[..5].to_vec());
    let count = |addr| {
        let slot = first.to_string();
        async move { node::command::<i64>(addr, &["CLUSTER", "COUNTKEYSINSLOT", &slot]).await }
    };
    eprintln!(
        "before abort: source {} target {}",
        count(source).await?,
        count(target).await?
    );
    let aborted = cluster.abort_held().await?;
    eprintln!(
        "after abort: source {} target {} {aborted:?}",
        count(source).await?,
        count(target).await?
    );
    assert_eq!(aborted.iter().map(|h| h.slot).collect::<Vec<_>>(), slots[..5].to_vec());
    assert_eq!(marked(&cluster).await?, Vec::<u16>::new(), "nothing is left marked");
    let topology = cluster.topology().await?;
    for s in &slots[..5] {
        assert_eq!(
            topology.owner_of(*s).and_then(|n| n.port()),
            Some(from),
            "slot {s} stays home"
        );
    }
    data::verify_keys(&mut cluster.client().await?, &keys).await?;

    // Three marked, the target having taken one of them already (its keys moved, its SETSLOT NODE done, the
    // source's not): one finish hands all three over.
    mark(&cluster, &slots[5..], (from, to)).await?;
    for key in &keys[15..18] {
        node::command::<()>(source, &["MIGRATE", "127.0.0.1", &to.to_string(), key, "0", "5000"]).await?;
    }
    let target_id = topology.by_port(to).unwrap().id.clone();
    let taken = slots[5].to_string();
    node::command::<()>(target, &["CLUSTER", "SETSLOT", &taken, "NODE", &target_id]).await?;
    let finished = cluster.finish_held().await?;
    // The source may already have heard it lost the taken slot, and dropped its marker (Valkey 8.0 does).
    let finished: Vec<u16> = finished.slots.iter().flat_map(|r| r.start..=r.end).collect();
    assert!(
        finished.ends_with(&slots[6..]) && slots[5..].ends_with(&finished),
        "{finished:?}"
    );
    assert_eq!(marked(&cluster).await?, Vec::<u16>::new(), "nothing is left marked");
    let topology = cluster.topology().await?;
    for s in &slots[5..] {
        assert_eq!(topology.owner_of(*s).and_then(|n| n.port()), Some(to), "slot {s} moved");
    }
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

/// A master lost for good (no replica, forced out) leaves its slots unserved: a reshard between the other two is
/// refused before anything moves, instead of moving and then timing out waiting for readiness (issue 22 item 12).
#[tokio::test(flavor = "multi_thread")]
async fn a_reshard_on_a_cluster_with_slots_unserved_is_refused_up_front() -> Result<()> {
    let cluster = cluster_tests::ClusterSpec::from_env()?.replicas(0).start().await?;
    let masters = cluster.topology().await?.master_ports();
    cluster
        .failover(
            Some(masters[0]),
            cluster_tests::FailoverKind::RemoveMaster { force: true },
        )
        .await?;
    let map = slot_map(&cluster).await?;
    let started = std::time::Instant::now();
    let err = cluster
        .reshard(&Reshard::new(masters[1], masters[2], Slots::Count(10)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not healthy, so no slot is moved"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused after {:?}",
        started.elapsed()
    );
    assert_eq!(slot_map(&cluster).await?, map, "nothing moved");
    Ok(())
}

/// A client gone while its `SETSLOT IMPORTING` waits for the target's replica (Valkey 8.0+ sets it on the master
/// only once its replicas have: the state a SIGKILL during a reshard leaves) leaves the marker on the replica alone;
/// one `abort_held` clears it. Servers that do not wait mark the master too, and the abort clears both.
#[tokio::test(flavor = "multi_thread")]
async fn a_marker_left_on_a_replica_alone_is_cleared_by_one_abort() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let masters = topology.master_ports();
    let (from, to) = (
        topology.by_port(masters[0]).unwrap(),
        topology.by_port(masters[1]).unwrap(),
    );
    let replica = topology.replicas_of(&to.id)[0]
        .port()
        .expect("a live replica has a port");
    let slot = from.slots[0].start;
    cluster.pause(Some(replica)).await?;
    let target = cluster.addr(masters[1]).await?;
    let words = ["CLUSTER", "SETSLOT", &slot.to_string(), "IMPORTING", &from.id];
    // Given up on (its connection closed) while the paused replica cannot answer; Redis answers at once.
    let _ = tokio::time::timeout(Duration::from_millis(300), node::command::<()>(target, &words)).await;
    cluster.resume(Some(replica)).await?;
    let start = std::time::Instant::now();
    while marked(&cluster).await? != [slot] {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "slot {slot} is not marked on any node 10 s after the replica resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let aborted = cluster.abort_held().await?;
    assert_eq!(aborted.iter().map(|h| h.slot).collect::<Vec<_>>(), [slot]);
    assert_eq!(marked(&cluster).await?, Vec::<u16>::new(), "nothing is left marked");
    Ok(())
}

/// A classic move of 200 slots holding keys, stopped once the target has taken the first slot of the second batch
/// (its keys moved in groups, the rest of the batch still to come): the first batch stays moved, the second is
/// split between slots finished on the target and slots rolled back to the source, as the report says; no node
/// marks a slot and every key is served (issue 22 item 4).
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_move_finishes_or_rolls_back_each_slot_of_the_batch_in_flight() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let masters = topology.master_ports();
    let (from, to) = (masters[0], masters[1]);
    let first = topology.by_port(from).unwrap().slots[0].start;
    let slots: Vec<u16> = (first..first + 200).collect();
    let keys: Vec<String> = slots
        .iter()
        .flat_map(|s| {
            let tag = data::key_in(&[SlotRange { start: *s, end: *s }], "cut").unwrap();
            (0..2).map(move |i| format!("{{{tag}}}:{i}"))
        })
        .collect();
    data::write(&mut cluster.client().await?, &keys).await?;
    let (target, second) = (cluster.addr(to).await?, slots[100]);
    // Polled until then; the move itself bounds the wait (were it over first, `stopped` would be None).
    let taken = async {
        while !myself(target)
            .await
            .is_ok_and(|me| me.slots.iter().any(|r| r.contains(second)))
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let reshard = Reshard::new(
        from,
        to,
        Slots::Range(SlotRange {
            start: first,
            end: first + 199,
        }),
    )
    .classic();
    let report = cluster.reshard_until_stopped(&reshard, taken).await?;
    let how = report.stopped.clone().expect("stopped before the last batch was over");
    let list = |r: &[SlotRange]| r.iter().flat_map(|r| r.start..=r.end).collect::<Vec<u16>>();
    let (finished, rolled) = (list(&how.finished), list(&how.rolled_back));
    assert!(finished.contains(&second) && !rolled.is_empty(), "{how:?}");
    let mut batch = [finished.clone(), rolled.clone()].concat();
    batch.sort_unstable();
    assert_eq!(batch, slots[100..], "{how:?}");
    assert_eq!(list(&report.slots), [&slots[..100], &finished[..]].concat());
    assert_eq!(how.untouched, 0);
    assert_eq!(marked(&cluster).await?, Vec::<u16>::new(), "nothing is left marked");
    let topology = cluster.topology().await?;
    for (s, owner) in finished.iter().map(|s| (s, to)).chain(rolled.iter().map(|s| (s, from))) {
        assert_eq!(topology.owner_of(*s).and_then(|n| n.port()), Some(owner), "slot {s}");
    }
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}
