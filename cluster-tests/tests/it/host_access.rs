//! The cluster at 127.0.0.1 from the host: every address it hands out is a loopback one, through failover and
//! join, so a client that can reach nothing but 127.0.0.1 (Docker Desktop's case) can use all of it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::node::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT, command};
use cluster_tests::server::topology::{Role, SlotRange};
use cluster_tests::{Cluster, ClusterSpec, FailoverKind, Networking, Result};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A cluster client that is given one seed, `127.0.0.1:<port>`, and learns everything else from the cluster.
async fn client_from(port: u16) -> Result<ClusterConnection> {
    let client = ClusterClient::builder(vec![format!("redis://127.0.0.1:{port}/")])
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .build()?;
    Ok(client.get_async_connection().await?)
}

/// Checks every address every live node hands out: `CLUSTER NODES`, `SLOTS`, `SHARDS`, a `MOVED` from each master
/// and an `ASK` during a migration. Returns how many addresses were checked.
async fn assert_every_address_is_loopback(cluster: &Cluster) -> Result<usize> {
    let published = cluster.published_ports().expect("a pod publishes ports");
    let in_range = |host: &str, port: u16| host == "127.0.0.1" && published.contains(&port);
    let mut checked = 0;
    let views = cluster.views().await?;
    for v in &views {
        assert_eq!(v.addr.ip(), LOOPBACK, "the harness reaches {} on loopback", v.addr);
        for n in v.nodes.nodes.iter().filter(|n| !n.is_failed()) {
            let addr = n.addr.expect("a live node has an address");
            assert!(
                in_range(&addr.ip().to_string(), addr.port()),
                "{} CLUSTER NODES: {addr}",
                v.addr
            );
            checked += 1;
        }
        for e in v.slots.endpoints() {
            assert!(
                in_range(&e.host, e.port),
                "{} CLUSTER SLOTS: {}:{}",
                v.addr,
                e.host,
                e.port
            );
            checked += 1;
        }
        if let Some(shards) = &v.shards {
            for n in shards.nodes().filter(|n| n.health != "fail") {
                for host in [&n.ip, &n.endpoint] {
                    assert_eq!(host.as_deref(), Some("127.0.0.1"), "{} CLUSTER SHARDS: {n:?}", v.addr);
                    checked += 1;
                }
            }
        }
    }
    let topology = &views[0].nodes;
    let masters = topology.live_masters();
    for (i, m) in masters.iter().enumerate() {
        // A key of the next master's, asked of this one: MOVED to the owner, by a loopback address.
        let owner = masters[(i + 1) % masters.len()];
        let key = data::key_in(&owner.slots, "moved").expect("masters serve slots");
        let err = command::<()>(m.addr.unwrap(), &["SET", &key, "x"]).await.unwrap_err();
        let redirect = err
            .redis_error()
            .and_then(|e| e.redirect_node())
            .map(|(a, _)| a.to_owned());
        assert_eq!(
            redirect,
            Some(owner.addr.unwrap().to_string()),
            "MOVED from {:?}: {err}",
            m.addr
        );
        checked += 1;
    }
    // A slot caught mid-migration: the source answers ASK with the target's loopback address.
    let (source, target) = (masters[0], masters[1]);
    let slot = source.slots[0].start.to_string();
    let (src, dst) = (source.addr.unwrap(), target.addr.unwrap());
    command::<()>(dst, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source.id]).await?;
    command::<()>(src, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target.id]).await?;
    let one_slot = SlotRange {
        start: source.slots[0].start,
        end: source.slots[0].start,
    };
    let key = data::key_in(&[one_slot], "ask").expect("every slot has keys");
    let asked = command::<Option<String>>(src, &["GET", &key]).await;
    for addr in [src, dst] {
        command::<()>(addr, &["CLUSTER", "SETSLOT", &slot, "STABLE"]).await?;
    }
    let err = asked.expect_err("a missing key of a migrating slot is asked for elsewhere");
    let e = err.redis_error().expect("a server error");
    assert_eq!(e.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::Ask), "{err}");
    assert_eq!(
        e.redirect_node().map(|(a, _)| a.to_owned()),
        Some(dst.to_string()),
        "{err}"
    );
    Ok(checked + 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_given_one_loopback_port_serves_every_slot_through_failover_and_join() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    assert_eq!(cluster.networking(), Networking::Pod);
    let first = cluster.first_port();
    let checked = assert_every_address_is_loopback(&cluster).await?;
    assert!(checked >= 6 * 6 * 2, "{checked} addresses checked");

    // One key in each of the 16384 slots, through a client seeded with 127.0.0.1:<first port> only.
    let keys = data::key_per_slot("host");
    assert_eq!(keys.len(), 16384);
    let mut client = client_from(first).await?;
    data::write(&mut client, &keys).await?;
    data::verify_keys(&mut client_from(first + 1).await?, &keys).await?;
    let acknowledged = cluster.wait_replicated(Duration::from_secs(10)).await?;
    assert!(
        acknowledged.len() == 3 && acknowledged.values().all(|n| *n == 1),
        "{acknowledged:?}"
    );

    let report = cluster
        .failover(Some(first), FailoverKind::RemoveMaster { force: false })
        .await?;
    let promoted = report.new_master.expect("a replica took over");
    assert_every_address_is_loopback(&cluster).await?;
    let topology = cluster.topology().await?;
    let new_master = topology.by_port(promoted).expect("the promoted node is known");
    assert_eq!(
        (new_master.role, new_master.addr.map(|a| a.ip())),
        (Role::Master, Some(LOOPBACK))
    );
    data::verify_keys(&mut client, &keys).await?;
    data::verify_keys(&mut client_from(promoted).await?, &keys).await?;

    let joined = cluster.join(None, None).await?;
    assert_eq!(
        joined.port, first,
        "the failed master's port, published since create, is reused"
    );
    cluster.forget_gone().await?;
    assert_every_address_is_loopback(&cluster).await?;
    let node = cluster
        .topology()
        .await?
        .by_port(joined.port)
        .cloned()
        .expect("the joined node is known");
    assert_eq!((node.role, node.addr.map(|a| a.ip())), (Role::Replica, Some(LOOPBACK)));
    data::verify_keys(&mut client_from(joined.port).await?, &keys).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_outside_the_published_ports_is_refused_with_the_range() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let published = cluster.published_ports().expect("a pod publishes ports");
    let beyond = published.end() + 1;
    let primary = cluster.first_port();
    let err = cluster.join(Some(primary), Some(beyond)).await.unwrap_err().to_string();
    let range = format!("127.0.0.1:{}-{}", published.start(), published.end());
    assert!(
        err.contains(&format!("port {beyond} is not published")) && err.contains(&range),
        "{err}"
    );
    assert_eq!(cluster.nodes().await?.len(), 6, "a refused join starts nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_side_by_side_never_see_each_other() -> Result<()> {
    let (a, b) = tokio::join!(Cluster::start_for_test(), Cluster::start_for_test());
    let (a, b) = (a?, b?);
    let (ra, rb) = (a.published_ports().unwrap(), b.published_ports().unwrap());
    assert!(
        ra.end() < rb.start() || rb.end() < ra.start(),
        "{ra:?} and {rb:?} do not overlap"
    );
    for (cluster, range) in [(&a, &ra), (&b, &rb)] {
        let views = cluster.views().await?;
        assert_eq!(views.len(), 6);
        for v in views {
            assert_eq!(v.nodes.nodes.len(), 6, "{} knows its own six nodes only", v.addr);
            for n in &v.nodes.nodes {
                assert!(range.contains(&n.port().unwrap()), "{} knows {:?}", v.addr, n.addr);
            }
        }
    }
    let _: () = redis::AsyncCommands::set(&mut a.client().await?, "side", "a").await?;
    let got: Option<String> = redis::AsyncCommands::get(&mut b.client().await?, "side").await?;
    assert_eq!(got, None, "a write to one cluster is not in the other");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_cli_follows_redirects_as_in_the_tutorial() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let owner = topology.owner_of(data::slot_of("foo")).and_then(|m| m.port()).unwrap();
    let others: Vec<u16> = topology
        .live_masters()
        .iter()
        .filter_map(|m| m.port())
        .filter(|p| *p != owner)
        .collect();
    assert_eq!(others.len(), 2);
    let (set_port, get_port) = (others[0].to_string(), others[1].to_string());
    let set = cluster.host_cli(&["-c", "-p", &set_port, "set", "foo", "bar"]).await?;
    assert_eq!(
        set.trim(),
        "OK",
        "set through {set_port}, which does not own foo's slot"
    );
    let got = cluster.host_cli(&["-c", "-p", &get_port, "get", "foo"]).await?;
    assert_eq!(got.trim(), "bar", "read through {get_port}");
    let on_owner: String = command(cluster.addr(owner).await?, &["GET", "foo"]).await?;
    assert_eq!(on_owner, "bar", "the value lives on {owner}, the slot's owner");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_networking_gives_each_node_a_namespace_and_address_of_its_own() -> Result<()> {
    let cluster = ClusterSpec {
        networking: Networking::Bridge,
        ..ClusterSpec::from_env()?
    }
    .start()
    .await?;
    assert_eq!(cluster.published_ports(), None, "nothing is published on the host");
    let addrs = cluster.live_addrs().await?;
    let ips: std::collections::BTreeSet<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
    assert_eq!(ips.len(), 6, "six nodes, six container addresses: {addrs:?}");
    assert!(!ips.contains(&LOOPBACK));
    let report = cluster
        .failover(None, FailoverKind::RemoveMaster { force: false })
        .await?;
    assert!(report.new_master.is_some(), "{report:?}");
    let keys = data::keys("bridge", 500);
    data::write(&mut cluster.client().await?, &keys).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

/// A testcontainers user's own container (a `GenericImage` of the node image running the server's CLI), started
/// in the same test and put on the cluster's network with `Cluster::on_network`, writes through the cluster
/// (following a redirect where the slot is elsewhere); the harness reads the value back. Both networkings.
#[tokio::test(flavor = "multi_thread")]
async fn a_testcontainers_container_of_the_users_own_reaches_the_cluster() -> Result<()> {
    use cluster_tests::testcontainers::core::WaitFor;
    use cluster_tests::testcontainers::core::wait::ExitWaitStrategy;
    use cluster_tests::testcontainers::runners::AsyncRunner;
    use cluster_tests::testcontainers::{GenericImage, ImageExt};
    for networking in [Networking::Pod, Networking::Bridge] {
        let cluster = ClusterSpec {
            networking,
            ..ClusterSpec::from_env()?
        }
        .start()
        .await?;
        let seed = cluster.live_addrs().await?[0];
        let key = format!("from-my-container-{}", networking.name());
        let (name, tag) = cluster.image().reference.rsplit_once(':').expect("a tagged node image");
        let cli = GenericImage::new(name, tag)
            .with_entrypoint(cluster.image().cli()?)
            .with_wait_for(WaitFor::exit(ExitWaitStrategy::new().with_exit_code(0)));
        let args = [
            "-c",
            "-h",
            &seed.ip().to_string(),
            "-p",
            &seed.port().to_string(),
            "SET",
            &key,
            "yes",
        ];
        let request = cluster.on_network(cli.with_cmd(args).with_startup_timeout(Duration::from_secs(30)));
        let mine = request
            .start()
            .await
            .expect("my container starts, runs its client and exits 0");
        let said = String::from_utf8_lossy(&mine.stdout_to_vec().await.expect("its output")).into_owned();
        assert_eq!(
            said.trim(),
            "OK",
            "{networking:?}: the CLI in my container, seeded with {seed}"
        );
        mine.rm().await.expect("my container is removed");
        let got: Option<String> = redis::AsyncCommands::get(&mut cluster.client().await?, &key).await?;
        assert_eq!(
            got.as_deref(),
            Some("yes"),
            "{networking:?}: the harness reads what my container wrote"
        );
    }
    Ok(())
}
