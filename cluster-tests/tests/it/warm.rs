//! Warm clusters: a keeper makes them ahead, a test claims one, and the keeper recycles or removes it after the
//! test. A warm cluster is as fresh as a cold one, a recycled one too, no two tests get the same one, and a test
//! killed holding one leaves nothing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_tests::server::{data, node};
use cluster_tests::{ClusterSpec, ErrorKind, Result, WarmPool};
use std::net::SocketAddr;

use crate::common::docker;

/// How long the keeper may take to make a cluster and offer it, on a loaded machine.
const OFFER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the keeper may take to recycle or remove a cluster its test is done with (it looks twice a second).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Containers labelled with cluster `name` (and `more` labels), in any state.
fn containers_with(name: &str, more: &[&str]) -> usize {
    let mut args = vec!["ps".to_owned(), "-aq".to_owned()];
    for label in std::iter::once(format!("cluster-tests.cluster={name}")).chain(more.iter().map(|l| l.to_string())) {
        args.extend(["--filter".to_owned(), format!("label={label}")]);
    }
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .lines()
        .count()
}

/// Containers labelled with cluster `name`, in any state.
fn containers_of(name: &str) -> usize {
    containers_with(name, &[])
}

/// Waits until cluster `name` is back on offer after its test (recycled: its lease and release are gone, its
/// offer and nodes stand), or fails saying what is there.
async fn until_recycled(name: &str) {
    let start = Instant::now();
    loop {
        let (leases, releases) = (
            containers_with(name, &["cluster-tests.mark=lease"]),
            containers_with(name, &["cluster-tests.mark=release"]),
        );
        let offers = containers_with(name, &["cluster-tests.mark=offer"]);
        if leases + releases == 0 && offers == 1 {
            return;
        }
        assert!(
            start.elapsed() < REMOVAL_TIMEOUT && offers == 1,
            "cluster {name} is not back on offer after {:?}: {offers} offers, {leases} leases, {releases} releases, \
             {} containers",
            start.elapsed(),
            containers_of(name)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until nothing of cluster `name` is left, or fails saying how many containers still are.
async fn until_removed(name: &str) {
    let start = Instant::now();
    while containers_of(name) > 0 {
        assert!(
            start.elapsed() < REMOVAL_TIMEOUT,
            "cluster {name} still has {} containers after {REMOVAL_TIMEOUT:?}",
            containers_of(name)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_clusters_are_fresh_and_distinct_and_recycled_fresh_after_their_tests() -> Result<()> {
    // A pool of this test's own (one spare port makes its key), so no other keeper offers or takes its clusters.
    let spec = || ClusterSpec::from_env().map(|s| s.spare_ports(1));
    let keeper = WarmPool::new(vec![spec()?]).ready(2).making(2).start().await?;
    keeper.until_offered(2, OFFER_TIMEOUT).await?;
    let (a, b) = tokio::join!(spec()?.start(), spec()?.start());
    let (a, b) = (a?, b?);
    assert!(a.warm() && b.warm(), "both were handed out warm");
    assert_ne!(a.name(), b.name(), "two claims got the same cluster");

    let mut ids = BTreeSet::new();
    let mut nodes_checked = 0;
    for cluster in [&a, &b] {
        for view in cluster.views().await? {
            // Empty, and it knows only its own six nodes: no memory of another cluster.
            let keys: i64 = node::command(view.addr, &["DBSIZE"]).await?;
            assert_eq!(keys, 0, "{} of {} holds keys", view.addr, cluster.name());
            let known = view.nodes.nodes.len();
            assert_eq!(known, 6, "{} knows {known} nodes", view.addr);
            ids.insert(view.nodes.myself().expect("itself").id.clone());
            nodes_checked += 1;
        }
        let keys = data::keys(cluster.name(), 500);
        let mut client = cluster.client().await?;
        data::write(&mut client, &keys).await?;
        data::verify_keys(&mut client, &keys).await?;
    }
    assert_eq!(nodes_checked, 12);
    assert_eq!(ids.len(), 12, "every node of both clusters has its own id");

    // What a test leaves in `a`: keys (above), a node joined, a node's container removed, a setting changed, a
    // script, and a client connected.
    let addrs: Vec<SocketAddr> = a.live_addrs().await?;
    let joined = a.join(Some(addrs[0].port()), None).await?;
    let old_ids: BTreeSet<String> = a.topology().await?.nodes.iter().map(|n| n.id.clone()).collect();
    assert_eq!(old_ids.len(), 7, "the joined node is one of the cluster's");
    let lost = addrs[5];
    docker(&["rm", "-f", &format!("{}-{}", a.name(), lost.port())]);
    let _: () = node::command(addrs[0], &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).await?;
    let sha: String = node::command(addrs[0], &["SCRIPT", "LOAD", "return 1"]).await?;
    let mut lingering = node::connect(addrs[0]).await?;

    // The test is done with `a`: its keeper recycles it while this process still runs, and it is as fresh as a
    // new one.
    let name = a.name().to_owned();
    drop(a);
    until_recycled(&name).await;
    let mut fresh_nodes = 0;
    for addr in &addrs {
        let view = node::NodeView::read(*addr).await?;
        let keys: i64 = node::command(*addr, &["DBSIZE"]).await?;
        assert_eq!(keys, 0, "{addr} of recycled {name} holds keys");
        let myself = view.nodes.myself().expect("itself").id.clone();
        assert!(!old_ids.contains(&myself), "{addr} kept its node id {myself}");
        assert_eq!(
            view.nodes.nodes.len(),
            6,
            "{addr} knows {} nodes",
            view.nodes.nodes.len()
        );
        assert!(
            view.nodes.nodes.iter().all(|n| !old_ids.contains(&n.id)),
            "{addr} remembers a node of the cluster's previous test (the joined one: {})",
            joined.id
        );
        assert!(view.info.state_ok(), "{addr} is not ready");
        fresh_nodes += 1;
    }
    assert_eq!(fresh_nodes, 6);
    let nodes_left = containers_with(&name, &["cluster-tests.port"]);
    assert_eq!(
        nodes_left, 6,
        "the node joined on port {} is not removed, or the one removed on {lost} not started anew",
        joined.port
    );
    let policy: Vec<String> = node::command(addrs[0], &["CONFIG", "GET", "maxmemory-policy"]).await?;
    assert_eq!(policy[1], "noeviction", "the setting the test changed is set back");
    let scripts: Vec<i64> = node::command(addrs[0], &["SCRIPT", "EXISTS", &sha]).await?;
    assert_eq!(scripts, [0], "the script the test loaded is gone");
    let ping: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut lingering).await;
    assert!(ping.is_err(), "the previous test's client is still connected: {ping:?}");

    // A stopped keeper leaves `b` to the test that holds it; dropping it then removes it: at once where its own
    // keeper has stopped, or soon after by the keeper that offered it (`cargo xtask test` runs one too).
    keeper.stop().await?;
    let name = b.name().to_owned();
    assert!(
        containers_of(&name) > 0,
        "the keeper removed a cluster a test still held"
    );
    drop(b);
    until_removed(&name).await;
    Ok(())
}

/// Run only by [`a_test_killed_while_holding_a_warm_cluster_leaves_nothing`], as a child process: claims a warm
/// cluster, says which, and waits to be killed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a child process of another test"]
async fn claimant_child() -> Result<()> {
    if std::env::var("CLUSTER_TESTS_CLAIMANT").is_err() {
        return Ok(());
    }
    let cluster = ClusterSpec::from_env()?.start().await?;
    println!("claimed {} warm={}", cluster.name(), cluster.warm());
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_killed_while_holding_a_warm_cluster_leaves_nothing() -> Result<()> {
    let keeper = WarmPool::new(vec![ClusterSpec::from_env()?]).ready(1).start().await?;
    keeper.until_offered(1, OFFER_TIMEOUT).await?;
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["warm::claimant_child", "--exact", "--include-ignored", "--nocapture"])
        .env("CLUSTER_TESTS_CLAIMANT", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary runs");
    let stdout = child.stdout.take().expect("piped");
    let claimed = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(std::io::Result::ok)
            .find_map(|line| line.strip_prefix("claimed ").map(str::to_owned))
    });
    let claimed = tokio::time::timeout(OFFER_TIMEOUT, claimed)
        .await
        .expect("the child claims a cluster in time")
        .expect("the reader ends")
        .expect("the child says what it claimed");
    let (name, warm) = claimed.split_once(" warm=").expect("name and warm");
    assert_eq!(warm, "true", "the child got a warm cluster");
    assert!(containers_of(name) > 0);
    child.kill().expect("SIGKILL");
    child.wait().expect("the child ends");
    until_removed(name).await;
    keeper.stop().await?;
    Ok(())
}

/// Run only by [`a_cold_cluster_of_the_pools_spec_joins_the_pool_after_its_test`], as a child process with a
/// keeper named: starts a cluster of the pool's spec (before the keeper can offer one: a make takes at least the
/// servers' 2 s writable delay), writes keys to it, says what it is, and ends (its drop releases it).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a child process of another test"]
async fn pool_child() -> Result<()> {
    if std::env::var("CLUSTER_TESTS_POOL_CHILD").is_err() {
        return Ok(());
    }
    let cluster = ClusterSpec::from_env()?.spare_ports(4).start().await?;
    let mut client = cluster.client().await?;
    data::write(&mut client, &data::keys(cluster.name(), 200)).await?;
    let addrs: Vec<String> = cluster.live_addrs().await?.iter().map(|a| a.to_string()).collect();
    let ids: Vec<String> = cluster.topology().await?.nodes.iter().map(|n| n.id.clone()).collect();
    println!(
        "started {} warm={} addrs={} ids={}",
        cluster.name(),
        cluster.warm(),
        addrs.join(","),
        ids.join(",")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_cluster_of_the_pools_spec_joins_the_pool_after_its_test() -> Result<()> {
    // A pool of this test's own (four spare ports make its key), named to the child as the keeper.
    let spec = || ClusterSpec::from_env().map(|s| s.spare_ports(4));
    let keeper = WarmPool::new(vec![spec()?]).ready(1).start().await?;
    let (var, value) = keeper.env();
    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["warm::pool_child", "--exact", "--include-ignored", "--nocapture"])
        .env("CLUSTER_TESTS_POOL_CHILD", "1")
        .env(var, value)
        .stderr(Stdio::null())
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "the child failed: {stdout}");
    let started: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("started ")).collect();
    assert_eq!(started.len(), 1, "{stdout}");
    let mut cold = 0;
    for line in started {
        let fields: Vec<&str> = line.split(' ').collect();
        let [name, warm, addrs, ids] = fields[..] else {
            panic!("unreadable: {line}")
        };
        if warm == "warm=true" {
            continue;
        }
        cold += 1;
        // Made cold by the child, which is gone: its keeper recycled it into the pool, fresh.
        until_recycled(name).await;
        let old_ids: BTreeSet<&str> = ids.trim_start_matches("ids=").split(',').collect();
        let addrs: Vec<SocketAddr> = addrs
            .trim_start_matches("addrs=")
            .split(',')
            .map(|a| a.parse().expect("an address"))
            .collect();
        assert_eq!(addrs.len(), 6, "{line}");
        for addr in &addrs {
            let view = node::NodeView::read(*addr).await?;
            let keys: i64 = node::command(*addr, &["DBSIZE"]).await?;
            assert_eq!(keys, 0, "{addr} of {name} holds its first test's keys");
            assert_eq!(
                view.nodes.nodes.len(),
                6,
                "{addr} knows {} nodes",
                view.nodes.nodes.len()
            );
            assert!(
                view.nodes.nodes.iter().all(|n| !old_ids.contains(n.id.as_str())),
                "{addr} remembers a node id of its first test"
            );
            assert!(view.info.state_ok(), "{addr} is not ready");
        }
    }
    assert_eq!(
        cold, 1,
        "the child's cluster was made before the keeper could offer one: {stdout}"
    );
    keeper.stop().await?;
    Ok(())
}

/// Claims a warm cluster of a pool of its own (`spare_ports` make its key), breaks it by `fault`, drops it, and
/// waits until its keeper has removed it rather than recycled it.
async fn removed_after(fault: &str, spare_ports: usize) -> Result<()> {
    let spec = || ClusterSpec::from_env().map(|s| s.spare_ports(spare_ports));
    let keeper = WarmPool::new(vec![spec()?]).ready(1).start().await?;
    keeper.until_offered(1, OFFER_TIMEOUT).await?;
    let cluster = spec()?.start().await?;
    assert!(cluster.warm(), "{fault}: claimed warm");
    match fault {
        "fault rules" => assert_eq!(cluster.remove_fault_rules().await?, 0, "there were none to remove"),
        _ => {
            // A replica: its restart takes no failover, and its new process is what the keeper sees.
            cluster.kill(Some(cluster.first_port() + 3)).await?;
            cluster.restart(None).await?;
        }
    }
    let name = cluster.name().to_owned();
    drop(cluster);
    until_removed(&name).await;
    keeper.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_with_fault_rules_is_removed_after_its_test_not_recycled() -> Result<()> {
    removed_after("fault rules", 2).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_with_a_restarted_node_is_removed_after_its_test_not_recycled() -> Result<()> {
    removed_after("a restarted node", 5).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_refuses_what_it_cannot_serve_and_such_specs_start_cold() -> Result<()> {
    let err = WarmPool::new(vec![ClusterSpec::from_env()?.tls()])
        .start()
        .await
        .expect_err("a TLS spec is not the pool's");
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    let err = WarmPool::new(vec![ClusterSpec::from_env()?])
        .making(0)
        .start()
        .await
        .expect_err("nothing could be made");
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");

    // With a keeper offering the default spec, a named cluster starts cold: the name is the test's.
    let keeper = WarmPool::new(vec![ClusterSpec::from_env()?]).ready(1).start().await?;
    keeper.until_offered(1, OFFER_TIMEOUT).await?;
    let named = ClusterSpec::from_env()?.name(format!("warmnamed{}", std::process::id()));
    let cluster = named.start().await?;
    assert!(!cluster.warm());
    assert_eq!(cluster.name(), format!("warmnamed{}", std::process::id()));
    drop(cluster);
    keeper.stop().await?;
    Ok(())
}
