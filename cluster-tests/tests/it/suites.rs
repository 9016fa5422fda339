//! What a client library's own test suite needs of a cluster: server settings on every node (joined ones too),
//! DEBUG from host clients, TLS beside plain text with optional client certificates, and neighbouring clusters.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cluster_tests::server::data;
use cluster_tests::server::topology::Role;
use cluster_tests::{Access, ClusterSpec, ErrorKind, PlainPorts, Result, playground};

use crate::common::docker;

/// What `CONFIG GET name` says on the node at `addr`.
async fn config(access: &Access, addr: SocketAddr, name: &str) -> Result<String> {
    let got: Vec<String> = access.command(addr, &["CONFIG", "GET", name]).await?;
    Ok(got.get(1).cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_and_debug_are_in_force_on_every_node_and_on_a_joined_one() -> Result<()> {
    let cluster = ClusterSpec::from_env()?
        .debug_command()
        .server_config("maxmemory", "64mb")
        .server_config_fragment("# a suite's fragment\nmaxmemory-policy allkeys-lru\nnotify-keyspace-events KEA\n")?
        .start()
        .await?;
    let joined = cluster.join(Some(cluster.first_port()), None).await?;
    let addrs = cluster.live_addrs().await?;
    assert_eq!(addrs.len(), 7);
    assert!(addrs.iter().any(|a| a.port() == joined.port));
    for addr in &addrs {
        // A host client, arriving through the port proxy: DEBUG is allowed to it.
        let slept: String = Access::default().command(*addr, &["DEBUG", "SLEEP", "0"]).await?;
        assert_eq!(slept, "OK", "{addr}");
        assert_eq!(
            config(cluster.access(), *addr, "maxmemory").await?,
            "67108864",
            "{addr}"
        );
        assert_eq!(
            config(cluster.access(), *addr, "maxmemory-policy").await?,
            "allkeys-lru",
            "{addr}"
        );
        let events = config(cluster.access(), *addr, "notify-keyspace-events").await?;
        assert_eq!(
            events.chars().collect::<std::collections::BTreeSet<_>>().len(),
            events.len(),
            "{events}"
        );
        assert!(events.contains('K') && events.contains('E'), "{addr}: {events}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_setting_fails_before_anything_starts_and_names_it() -> Result<()> {
    // The server's own refusal, from a probe that is gone again.
    let spec = ClusterSpec::from_env()?.server_config("maxmemory-policy", "bogus-policy");
    let name = spec.name.clone();
    let e = spec.start().await.map(drop).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("maxmemory-policy") && text.contains("bogus-policy"),
        "{e}"
    );
    let left = docker(&["ps", "-aq", "--filter", &format!("label=cluster-tests.cluster={name}")]);
    assert_eq!(left, "", "the refused cluster left containers");

    // The harness's own refusals, with the reason, before Docker is asked anything.
    for (setting, says) in [
        ("port", "port"),
        ("cluster-announce-ip", "announce"),
        ("dir", "nodes.conf"),
    ] {
        let e = ClusterSpec::from_env()?
            .server_config(setting, "1")
            .start()
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
        assert!(e.to_string().contains(setting) && e.to_string().contains(says), "{e}");
    }
    Ok(())
}

/// The port of every node as CLUSTER SLOTS gives it to the client `access` at `addr`.
async fn slot_ports(access: &Access, addr: SocketAddr) -> Result<Vec<u16>> {
    let view = access.view(addr).await?;
    let mut ports: Vec<u16> = view
        .slots
        .0
        .iter()
        .flat_map(|e| std::iter::once(&e.master).chain(&e.replicas).map(|n| n.port))
        .collect();
    ports.sort_unstable();
    Ok(ports)
}

/// The port a `GET key` sent to `addr` by `access` is redirected to.
async fn moved_to(access: &Access, addr: SocketAddr, key: &str) -> Result<u16> {
    let e = access
        .query::<Option<String>>(addr, redis::cmd("GET").arg(key))
        .await
        .unwrap_err();
    let to = e
        .redis_error()
        .and_then(|r| r.redirect_node())
        .map(|(to, _)| to.to_owned());
    let to = to.unwrap_or_else(|| panic!("{addr}: no redirect for {key}: {e}"));
    Ok(to.rsplit(':').next().and_then(|p| p.parse().ok()).expect("host:port"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_plain_ports_serve_every_slot_each_client_gets_ports_of_its_kind_where_the_server_does_that()
-> Result<()> {
    let cluster = ClusterSpec::from_env()?
        .tls_client_auth_optional()
        .plain_ports(PlainPorts::Beside)
        .start()
        .await?;
    let tls = cluster.access().clone();
    let plain = Access::default();
    let plain_addr = |addr: SocketAddr| {
        let port = cluster.plain_port(addr.port()).expect("every node has a plain port");
        SocketAddr::new(addr.ip(), port)
    };
    let views = cluster.views().await?;
    let masters: Vec<_> = views.iter().filter(|v| v.replication.role == Role::Master).collect();
    assert_eq!(masters.len(), 3);

    // Optional client certificates: a TLS client with one and one without are both served; plain text too.
    for view in &views {
        for access in [&tls, &tls.without_client_certificate()] {
            let pong: String = access.command(view.addr, &["PING"]).await?;
            assert_eq!(pong, "PONG", "{}", view.addr);
        }
        let pong: String = plain.command(plain_addr(view.addr), &["PING"]).await?;
        assert_eq!(pong, "PONG", "{}", plain_addr(view.addr));
    }

    // Every slot is served on the plain port of its master: one key per slot written there, read back over TLS.
    let owners = &views[0].nodes;
    let mut by_master: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for key in data::key_per_slot("both") {
        let owner = owners
            .owner_of(data::slot_of(&key))
            .and_then(|n| n.port())
            .expect("every slot is served");
        by_master.entry(owner).or_default().push(key);
    }
    for (port, keys) in &by_master {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.set(key, data::value_of(key)).ignore();
        }
        plain
            .query_pipe(plain_addr(SocketAddr::from(([127, 0, 0, 1], *port))), pipe)
            .await?;
    }
    assert_eq!(by_master.values().map(Vec::len).sum::<usize>(), 16384);
    data::verify_keys(&mut cluster.client().await?, &data::key_per_slot("both")).await?;

    // Which ports each kind of client is handed: its own kind where the server knows both ports of every node
    // (CLUSTER SHARDS lists `port` beside `tls-port`: Redis 7.0+, Valkey), else the TLS ports (Redis 6.0).
    let tls_ports: Vec<u16> = {
        let mut ports: Vec<u16> = views.iter().map(|v| v.addr.port()).collect();
        ports.sort_unstable();
        ports
    };
    let plain_ports: Vec<u16> = tls_ports.iter().map(|p| cluster.plain_port(*p).unwrap()).collect();
    let own_kind = views[0]
        .shards
        .as_ref()
        .is_some_and(|s| s.nodes().all(|n| n.port.is_some_and(|p| plain_ports.contains(&p))));
    eprintln!("plain-text clients get plain-text ports: {own_kind}");
    let (first, second) = (masters[0].addr, masters[1].addr);
    let key = data::key_in(&masters[1].nodes.myself().unwrap().slots, "moved").unwrap();
    assert_eq!(slot_ports(&tls, first).await?, tls_ports);
    assert_eq!(moved_to(&tls, first, &key).await?, second.port());
    let (plain_slots, plain_moved) = if own_kind {
        (plain_ports.clone(), plain_addr(second).port())
    } else {
        (tls_ports.clone(), second.port())
    };
    assert_eq!(slot_ports(&plain, plain_addr(first)).await?, plain_slots);
    assert_eq!(moved_to(&plain, plain_addr(first), &key).await?, plain_moved);
    if own_kind {
        // A plain-text cluster client then finds its way across all slots on plain ports alone.
        let mut client = redis::cluster::ClusterClient::builder(vec![format!("redis://{}", plain_addr(first))])
            .connection_timeout(std::time::Duration::from_secs(2))
            .response_timeout(std::time::Duration::from_secs(2))
            .build()?
            .get_async_connection()
            .await?;
        data::verify_keys(&mut client, &data::key_per_slot("both")).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_files_are_copied_under_the_names_client_suites_look_for() -> Result<()> {
    let cluster = ClusterSpec::from_env()?.tls().start().await?;
    let dir = std::env::temp_dir().join(format!("{}-tls", cluster.name()));
    let written = cluster.copy_tls_files(&dir)?;
    let names: Vec<&str> = written.iter().filter_map(|p| p.file_name()?.to_str()).collect();
    assert_eq!(names, ["ca.crt", "redis.crt", "redis.key", "client.crt", "client.key"]);
    let tls = cluster.access().tls().expect("a TLS cluster");
    assert_eq!(std::fs::read_to_string(dir.join("ca.crt")).unwrap(), tls.ca_pem());
    assert_eq!(
        std::fs::read_to_string(dir.join("client.crt")).unwrap(),
        tls.client_pem().unwrap().0
    );
    for key in ["redis.key", "client.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_beside_another_with_no_spare_ports_works_and_a_clash_names_the_other() -> Result<()> {
    // Another process's cluster (a keeper's warm one, another test's) may take the range right after the first
    // between the two starts: then both are made again elsewhere, a bounded number of times.
    const TRIES: usize = 5;
    let mut tries = 0;
    let (first, second) = loop {
        tries += 1;
        let first = ClusterSpec::from_env()?.spare_ports(0).start().await?;
        let after = first.first_port() + 6;
        // Inside the first one's range: refused, naming it and its range.
        let e = ClusterSpec::from_env()?
            .first_port(first.first_port() + 3)
            .spare_ports(0)
            .start()
            .await
            .map(drop)
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::PortTaken(_)), "{e}");
        let range = format!("{}-{}", first.first_port(), after - 1);
        assert!(
            e.to_string().contains(first.name()) && e.to_string().contains(&range),
            "{e}"
        );
        // Right after it: both serve.
        match ClusterSpec::from_env()?.first_port(after).spare_ports(0).start().await {
            Ok(second) => break (first, second),
            Err(e) if matches!(e.kind(), ErrorKind::PortTaken(_)) && !e.to_string().contains(first.name()) => {
                assert!(tries < TRIES, "the range after the first was taken {tries} times: {e}");
            }
            Err(e) => return Err(e),
        }
    };
    for cluster in [&first, &second] {
        let keys = data::keys("beside", 200);
        let mut client = cluster.client().await?;
        data::write(&mut client, &keys).await?;
        data::verify_keys(&mut client, &keys).await?;
    }
    let census = playground::census(&playground::Docker::connect().await?).await?;
    assert!(
        census
            .abandoned
            .iter()
            .all(|c| c.name != first.name() && c.name != second.name())
    );
    Ok(())
}
