//! Clusters that need credentials: a password on every node, ACL users with limited rights, `default` off.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::server::node::command;
use cluster_tests::server::topology::Role;
use cluster_tests::{Access, AclUser, Cluster, ClusterSpec, ErrorKind, FailoverKind, Result};

use crate::common::{docker_all_output, replicate_fail_over_and_join};

const REMOVE: FailoverKind = FailoverKind::RemoveMaster { force: false };
const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "s3cret-Pw!#";

/// The server's error code of a failed command (`NOAUTH`, `NOPERM`, ...).
fn code(e: &cluster_tests::Error) -> Option<&str> {
    e.redis_error()?.code()
}

/// Asserts that no container of the cluster shows `secret` in `docker inspect` (command line, labels,
/// environment) or in its log; returns how many containers were looked at.
async fn assert_secret_hidden(cluster: &Cluster, secret: &str) -> Result<usize> {
    let ids = docker_all_output(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=cluster-tests.cluster={}", cluster.name()),
    ]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    for id in &ids {
        assert!(
            !docker_all_output(&["inspect", id]).contains(secret),
            "{id}: docker inspect shows the secret"
        );
        assert!(
            !docker_all_output(&["logs", id]).contains(secret),
            "{id}: its log shows the secret"
        );
    }
    Ok(ids.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_is_needed_on_every_node_and_survives_failover_and_join() -> Result<()> {
    let cluster = ClusterSpec::from_env()?.password(PASSWORD).start().await?;
    // Without it, every node answers NOAUTH (not a hang).
    let addrs = cluster.live_addrs().await?;
    assert_eq!(addrs.len(), 6);
    for addr in &addrs {
        let e = command::<Option<String>>(*addr, &["GET", "k"]).await.unwrap_err();
        assert_eq!(code(&e), Some("NOAUTH"), "{addr}: {e}");
        let wrong = Access::new(None, "wrong").connect(*addr).await.map(drop).unwrap_err();
        let kind = wrong.redis_error().map(redis::RedisError::kind);
        assert_eq!(kind, Some(redis::ErrorKind::AuthenticationFailed), "{addr}: {wrong}");
    }
    // With it, reads and writes over all slots.
    let keys = data::keys("pw", 2000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    data::verify_keys(&mut client, &keys).await?;
    assert_eq!(cluster.access().password(), Some(PASSWORD));

    // Replication authenticates (masterauth): every replica acknowledges, a failover and a join work.
    let joined = replicate_fail_over_and_join(&cluster).await?;
    let view = cluster.access().view(cluster.addr(joined.port).await?).await?;
    assert!(
        view.replication.replica_synced(),
        "the joined node synced with its master"
    );
    data::verify_keys(&mut cluster.client().await?, &keys).await?;

    // Seven containers (holder and the six nodes, the removed master gone, the joined one there) never show it.
    assert_eq!(assert_secret_hidden(&cluster, PASSWORD).await?, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_user_reads_and_cannot_write_on_every_master_also_after_a_failover() -> Result<()> {
    let reader = AclUser::new("reader", "r3ader", "~* +@read +@connection +cluster");
    let cluster = ClusterSpec::from_env()?.user(reader).default_user_off().start().await?;
    assert_eq!(cluster.access().user(), Some(cluster_tests::HARNESS_USER));
    let keys = data::keys("acl", 1000);
    data::write(&mut cluster.client().await?, &keys).await?;

    let as_reader = Access::new(Some("reader"), "r3ader");
    let check_masters = || async {
        let topology = cluster.topology().await?;
        let masters = topology.live_masters();
        for master in &masters {
            let addr = master.addr.expect("a live master has an address");
            let key = data::key_in(&master.slots, "acl").expect("a master serves slots");
            let _: Option<String> = as_reader.command(addr, &["GET", &key]).await?;
            let e = as_reader.command::<()>(addr, &["SET", &key, "x"]).await.unwrap_err();
            assert_eq!(code(&e), Some("NOPERM"), "{addr}: {e}");
            // `default` is off: a client that names no user is refused.
            let e = command::<Option<String>>(addr, &["GET", &key]).await.unwrap_err();
            assert_eq!(code(&e), Some("NOAUTH"), "{addr}: {e}");
        }
        Ok::<_, cluster_tests::Error>(masters.len())
    };
    assert_eq!(check_masters().await?, 3);

    // Replication runs as the harness's user: a failover works, and the promoted master has the same users.
    cluster.wait_replicated(WAIT).await?;
    let report = cluster.failover(Some(cluster.first_port()), REMOVE).await?;
    assert!(report.new_master.is_some());
    assert_eq!(check_masters().await?, 3);
    let joined = cluster.join(None, None).await?;
    let addr = cluster.addr(joined.port).await?;
    let role: String = as_reader.command(addr, &["PING"]).await?;
    assert_eq!(role, "PONG", "a joined node has the users too");
    let topology = cluster.topology().await?;
    assert_eq!(topology.by_port(joined.port).map(|n| n.role), Some(Role::Replica));
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_a_server_config_cannot_hold_are_refused_before_anything_starts() -> Result<()> {
    for spec in [
        ClusterSpec::from_env()?.password("two words"),
        ClusterSpec::from_env()?.password("quo\"te"),
        ClusterSpec::from_env()?.user(AclUser::new("r", "p w", "~* +@read")),
        ClusterSpec::from_env()?.user(AclUser::new("cluster-tests", "pw", "+@all")),
    ] {
        let e = spec.start().await.map(drop).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    }
    // Rules the server does not parse: it refuses to start, and says why.
    let bad = ClusterSpec::from_env()?.user(AclUser::new("r", "pw", "+nosuchcommand"));
    let e = bad.start().await.map(drop).unwrap_err().to_string();
    assert!(e.contains("last words") && e.to_lowercase().contains("user"), "{e}");
    Ok(())
}
