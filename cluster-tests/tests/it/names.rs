//! A cluster's name is its own: two creates at once give one cluster and a clear refusal, a network of that name
//! the cluster does not own is refused, and one it left behind is reused.

use std::process::Command;
use std::sync::{Arc, Mutex};

use cluster_tests::playground::{self, Docker};
use cluster_tests::{ClusterSpec, ErrorKind, Networking, Result};

use crate::common::docker as docker_cli;

/// Ids of the networks called exactly `name`.
fn networks_named(name: &str) -> Vec<String> {
    let filter = format!("name=^{name}$");
    docker_cli(&["network", "ls", "-q", "--no-trunc", "--filter", &filter])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A network the test made by hand, removed when dropped, also when the test fails.
struct Network(String);

impl Network {
    fn create(args: &[&str]) -> Self {
        Self(docker_cli(&[&["network", "create"], args].concat()))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Already gone when the cluster that reused it was removed.
        Command::new("docker").args(["network", "rm", &self.0]).output().ok();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_creates_at_once_make_one_cluster_and_the_loser_leaves_it_alone() -> Result<()> {
    let docker = Docker::connect().await?;
    for networking in [Networking::Pod, Networking::Bridge] {
        let spec = ClusterSpec::from_env()?.networking(networking);
        let (a, b) = tokio::join!(
            playground::create(&docker, spec.clone()),
            playground::create(&docker, spec.clone())
        );
        let (winner, loser) = match (a, b) {
            (Ok((winner, _)), Err(loser)) | (Err(loser), Ok((winner, _))) => (winner, loser),
            (Ok(_), Ok(_)) => panic!("{networking:?}: both creates of {} succeeded", spec.name),
            (Err(a), Err(b)) => panic!("{networking:?}: both creates failed: {a} / {b}"),
        };
        assert_eq!(loser.kind(), ErrorKind::NameTaken, "{networking:?}: {loser}");
        assert!(
            loser.to_string().contains("is being created or already exists"),
            "{networking:?}: {loser}"
        );
        let nodes = winner.nodes().await?;
        assert_eq!(
            nodes.len(),
            spec.node_count(),
            "{networking:?}: the winner's nodes are all there"
        );
        assert!(nodes.iter().all(|n| n.addr.is_some()), "{networking:?}: and running");
        if networking == Networking::Bridge {
            assert_eq!(networks_named(&spec.name).len(), 1, "one network");
        }
        winner.remove().await?;
    }
    Ok(())
}

/// The messages of the harness's `tracing` events, collected.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Collected {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_foreign_network_of_the_name_is_refused_and_a_leftover_one_reused() -> Result<()> {
    let engine = Docker::connect().await?;
    let spec = ClusterSpec::from_env()?.networking(Networking::Bridge);
    let foreign = Network::create(&[&spec.name]);
    let refused = playground::create(&engine, spec.clone()).await;
    drop(foreign);
    let err = refused.expect_err("a foreign network refuses create").to_string();
    assert!(err.contains("is not cluster"), "{err}");
    let label = format!("label=cluster-tests.cluster={}", spec.name);
    assert_eq!(docker_cli(&["ps", "-aq", "--filter", &label]), "", "nothing was made");

    // A network of the cluster's, with no maker alive: what Docker 20.10 can fail to remove (moby/moby#42119).
    let label = format!("cluster-tests.cluster={}", spec.name);
    let leftover = Network::create(&["--label", &label, &spec.name]);
    let log = Collected::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).finish();
    let _shown = tracing::subscriber::set_default(subscriber);
    let (cluster, _) = playground::create(&engine, spec.clone()).await?;
    assert_eq!(
        networks_named(&spec.name),
        vec![leftover.0.clone()],
        "the leftover is reused, no second network made"
    );
    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("reusing"), "and create says so: {log}");
    cluster.remove().await?;
    assert!(networks_named(&spec.name).is_empty(), "removal takes it");
    Ok(())
}
