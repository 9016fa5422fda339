//! `create` gives a ready cluster of the asked shape, as a user checks it by hand.

use std::collections::BTreeSet;

use cluster_tests::server::topology::{Role, SLOTS};
use cluster_tests::{Cluster, Result, Version};

#[tokio::test(flavor = "multi_thread")]
async fn create_gives_a_ready_cluster_of_three_masters_with_one_replica_each() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let views = cluster.views().await?;
    assert_eq!(views.len(), 6, "six live nodes");
    for v in &views {
        assert!(v.info.state_ok(), "{}: {:?}", v.addr, v.info);
        assert_eq!(v.info.slots_assigned(), u64::from(SLOTS), "{}", v.addr);
        assert_eq!(v.info.slots_ok(), u64::from(SLOTS), "{}", v.addr);
        assert_eq!(v.info.known_nodes(), 6, "{}", v.addr);
        assert_eq!(v.info.size(), 3, "{}", v.addr);
    }
    let topology = &views[0].nodes;
    topology.check_slot_coverage()?;
    let masters = topology.live_masters();
    assert_eq!(masters.len(), 3);
    for m in &masters {
        assert!(!m.slots.is_empty(), "master {:?} serves slots", m.addr);
        assert_eq!(
            topology.replicas_of(&m.id).len(),
            1,
            "master {:?} has one replica",
            m.addr
        );
    }
    // Replica j follows master j (7004 -> 7001, 7005 -> 7002, 7006 -> 7003 from 7001), each a different master.
    let replicas: Vec<_> = topology.nodes.iter().filter(|n| n.role == Role::Replica).collect();
    assert_eq!(replicas.len(), 3);
    let mut followed = BTreeSet::new();
    for r in replicas {
        let master = r.master_id.as_deref().and_then(|id| topology.get(id));
        let master_port = master.filter(|m| m.role == Role::Master).and_then(|m| m.port());
        assert_eq!(
            master_port.map(|p| p + 3),
            r.port(),
            "replica {:?} follows the master three ports below it",
            r.port()
        );
        followed.insert(master_port);
    }
    assert_eq!(followed.len(), 3, "every replica follows a different master");
    let replica_views: Vec<_> = views.iter().filter(|v| v.replication.role == Role::Replica).collect();
    assert_eq!(replica_views.len(), 3, "three nodes say they are replicas");
    for v in replica_views {
        assert!(v.replication.replica_synced(), "{} is synced", v.addr);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_run_the_server_version_of_the_matrix() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    // The matrix's version, also when the suite runs an upstream image of it (`$CLUSTER_IMAGE`); an image given
    // alone must run what its binary said it is.
    let matrix = cluster
        .version()
        .map(Ok)
        .or_else(|| std::env::var_os(cluster_tests::VERSION_ENV).map(|_| Version::from_env()));
    let server = match matrix {
        Some(version) => version?.server.clone(),
        None => cluster.image().server.clone(),
    };
    let expected = server.split_whitespace().last().expect("server has a version number");
    for addr in cluster.live_addrs().await? {
        let info: String = cluster_tests::server::node::command(addr, &["INFO", "server"]).await?;
        let fields = cluster_tests::server::topology::InfoFields::parse(&info);
        let reported = cluster_tests::server::topology::server_version(&fields).unwrap_or_default();
        assert_eq!(reported, expected, "{addr} runs {server}");
    }
    Ok(())
}

/// Run only by [`testcontainers_keep_keeps_a_tests_cluster_and_says_how_to_remove_it`], as a child process: makes
/// a test's cluster, says which, and drops it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a child process of another test"]
async fn kept_child() -> Result<()> {
    if std::env::var("CLUSTER_TESTS_KEPT_CHILD").is_err() {
        return Ok(());
    }
    let cluster = cluster_tests::ClusterSpec::from_env()?.start().await?;
    println!("made {}", cluster.name());
    Ok(())
}

/// `TESTCONTAINERS_COMMAND=keep`, as testcontainers users set it: a test's cluster outlives the test, which says
/// how to remove it; it is removed by name afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn testcontainers_keep_keeps_a_tests_cluster_and_says_how_to_remove_it() -> Result<()> {
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["create::kept_child", "--exact", "--include-ignored", "--nocapture"])
        .env("CLUSTER_TESTS_KEPT_CHILD", "1")
        .env(cluster_tests::TESTCONTAINERS_COMMAND_ENV, "keep")
        .env_remove(cluster_tests::KEEP_ENV)
        .output()
        .expect("the test binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "the child passes: {stdout}{stderr}");
    let name = stdout
        .lines()
        .find_map(|l| l.strip_prefix("made "))
        .unwrap_or_else(|| panic!("the child names its cluster: {stdout}"));
    let docker = cluster_tests::playground::Docker::connect().await?;
    let running = crate::common::docker(&["ps", "-q", "--filter", &format!("label=cluster-tests.cluster={name}")]);
    let kept = running.lines().count();
    let removed = cluster_tests::playground::remove_cluster(&docker, name, None).await?;
    assert_eq!(
        kept, 7,
        "six nodes and the pod's holder still run after the test: {stderr}"
    );
    assert!(
        stderr.contains(&format!("kept cluster {name}")) && stderr.contains("remove it with"),
        "the test says it kept the cluster and how to remove it: {stderr}"
    );
    assert!(removed.containers >= 7, "{removed:?}");
    Ok(())
}
