//! Clusters that speak only TLS: on client connections, replication and the cluster bus, with certificates of
//! the cluster's own CA; mutual TLS; TLS with a password.

use std::net::SocketAddr;
use std::time::Duration;

use cluster_tests::faults::checker::{CheckSpec, FaultKind};
use cluster_tests::server::data;
use cluster_tests::server::topology::Role;
use cluster_tests::{Access, Cluster, ClusterSpec, ErrorKind, FailoverKind, Networking, Result};

use crate::common::replicate_fail_over_and_join;

const REMOVE: FailoverKind = FailoverKind::RemoveMaster { force: false };
const WAIT: Duration = Duration::from_secs(10);

/// Asserts that a plain-text client gets an error (not a hang, not an answer) from every node; returns how many
/// were tried.
async fn assert_plain_text_refused(cluster: &Cluster) -> Result<usize> {
    let addrs = cluster.live_addrs().await?;
    for addr in &addrs {
        let plain = Access::default().query::<String>(*addr, &redis::cmd("PING")).await;
        let e = plain.expect_err("a TLS-only node answered plain text");
        assert_ne!(e.kind(), ErrorKind::Timeout, "{addr}: {e}");
    }
    Ok(addrs.len())
}

/// Asserts each node reports TLS on its client port, replication and bus and its plain port off, and each
/// replica's link to its master up (the master listens on nothing else); returns how many nodes said so.
async fn assert_servers_report_tls(cluster: &Cluster) -> Result<usize> {
    let views = cluster.views().await?;
    for view in &views {
        let addr = view.addr;
        for (name, want) in [
            ("port", "0".to_owned()),
            ("tls-port", addr.port().to_string()),
            ("tls-replication", "yes".into()),
            ("tls-cluster", "yes".into()),
        ] {
            let got: Vec<String> = cluster.access().command(addr, &["CONFIG", "GET", name]).await?;
            assert_eq!(got.get(1), Some(&want), "{addr}: {name}");
        }
        if view.replication.role == Role::Replica {
            assert!(view.replication.replica_synced(), "{addr}: its link is down");
        }
    }
    Ok(views.len())
}

/// The port of every node as CLUSTER SLOTS gives it to clients of `addr`.
async fn slot_ports(cluster: &Cluster, addr: SocketAddr) -> Result<Vec<u16>> {
    let view = cluster.access().view(addr).await?;
    let entries = view.slots.0.iter();
    Ok(entries
        .flat_map(|e| std::iter::once(&e.master).chain(&e.replicas).map(|n| n.port))
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_clients_read_and_write_every_slot_plain_text_is_refused_and_failover_and_join_work() -> Result<()> {
    let cluster = ClusterSpec::from_env()?.tls().start().await?;
    assert_eq!(assert_plain_text_refused(&cluster).await?, 6);
    assert_eq!(assert_servers_report_tls(&cluster).await?, 6);

    // The map clients get names the TLS ports, which are the nodes' own.
    let live: Vec<u16> = cluster.live_addrs().await?.iter().map(SocketAddr::port).collect();
    let mut offered = slot_ports(&cluster, cluster.addr(cluster.first_port()).await?).await?;
    offered.sort_unstable();
    assert_eq!(offered, live);

    // A TLS cluster client follows MOVED to TLS ports across all slots; so does the image's own cli on the host.
    let keys = data::keys("tls", 2000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    data::verify_keys(&mut client, &keys).await?;
    let port = cluster.first_port().to_string();
    assert_eq!(
        cluster.host_cli(&["-c", "-p", &port, "SET", "cli", "v"]).await?.trim(),
        "OK"
    );
    assert_eq!(cluster.host_cli(&["-c", "-p", &port, "GET", "cli"]).await?.trim(), "v");
    let files = cluster.tls_files().expect("a TLS cluster keeps its client files");
    for path in [&files.ca, &files.cert, &files.key] {
        assert!(path.is_file(), "{} is missing", path.display());
    }

    // Replication and failover over TLS: every replica acknowledges, a replica takes over, a joined node syncs.
    replicate_fail_over_and_join(&cluster).await?;
    assert_eq!(assert_servers_report_tls(&cluster).await?, 6);
    assert_eq!(assert_plain_text_refused(&cluster).await?, 6);
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_a_password_refuses_a_client_without_a_certificate_or_with_a_wrong_password() -> Result<()> {
    const PASSWORD: &str = "tls-s3cret";
    let cluster = ClusterSpec::from_env()?
        .tls_client_auth()
        .password(PASSWORD)
        .start()
        .await?;
    let access = cluster.access();
    assert!(access.tls().and_then(|t| t.client_pem()).is_some());
    let addrs = cluster.live_addrs().await?;
    for addr in &addrs {
        // No certificate: the handshake fails, an I/O error rather than a reply.
        let e = access
            .without_client_certificate()
            .connect(*addr)
            .await
            .map(drop)
            .unwrap_err();
        assert_ne!(e.kind(), ErrorKind::Timeout, "{addr}: {e}");
        assert!(e.redis_error().is_none_or(|r| r.code().is_none()), "{addr}: {e}");
        // The certificate with a wrong password: the server refuses it.
        let e = access
            .as_user(None, "wrong")
            .connect(*addr)
            .await
            .map(drop)
            .unwrap_err();
        let kind = e.redis_error().map(redis::RedisError::kind);
        assert_eq!(kind, Some(redis::ErrorKind::AuthenticationFailed), "{addr}: {e}");
    }
    assert_eq!(addrs.len(), 6);
    assert_eq!(assert_plain_text_refused(&cluster).await?, 6);

    // Both: reads and writes across all slots, replicas in sync, a failover.
    let keys = data::keys("mtls", 1000);
    data::write(&mut cluster.client().await?, &keys).await?;
    cluster.wait_replicated(WAIT).await?;
    let report = cluster.failover(Some(cluster.first_port()), REMOVE).await?;
    assert!(report.new_master.is_some());
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_on_a_bridge_network_is_refused_before_anything_starts() -> Result<()> {
    let spec = ClusterSpec::from_env()?.tls().networking(Networking::Bridge);
    let e = spec.start().await.map(drop).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("pod"), "{e}");
    Ok(())
}

/// The checker on a TLS cluster with a password loses nothing through `fault`: writes count as acknowledged only
/// once `WAIT 1` confirms a replica has them.
async fn checker_loses_nothing_on_a_tls_cluster_with_a_password(fault: FaultKind) -> Result<()> {
    let cluster = ClusterSpec::from_env()?.tls().password("tls-pw").start().await?;
    let spec = CheckSpec {
        fault,
        rounds: 1,
        seconds: Duration::from_secs(4),
        seed: 5,
        wait: 1,
        writers: 4,
    };
    let report = cluster.count_lost_writes(&spec).await?;
    assert_eq!(report.rounds.len(), 1, "{fault:?}: {report:?}");
    assert!(report.rounds[0].takeover.is_some(), "{fault:?}: {report:?}");
    assert!(report.acknowledged > 100, "{fault:?}: {report:?}");
    assert_eq!(report.lost, 0, "{fault:?}: {:?}", report.lost_keys);
    Ok(())
}

/// A kill: the node is restarted over TLS, with its files.
#[tokio::test(flavor = "multi_thread")]
async fn the_checker_counts_nothing_lost_through_a_kill_on_a_tls_cluster_with_a_password() -> Result<()> {
    checker_loses_nothing_on_a_tls_cluster_with_a_password(FaultKind::Kill).await
}

/// A partition: the rules match ports, whatever the protocol.
#[tokio::test(flavor = "multi_thread")]
async fn the_checker_counts_nothing_lost_through_a_partition_on_a_tls_cluster_with_a_password() -> Result<()> {
    checker_loses_nothing_on_a_tls_cluster_with_a_password(FaultKind::Partition).await
}
