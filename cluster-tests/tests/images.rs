//! Clusters of images given by reference: any image holding the server, found and run as ours are; and a
//! reference that is neither here nor pullable fails fast and clearly, leaving nothing behind.

use std::time::{Duration, Instant};

use cluster_tests::docker::{ContainerSpec, Docker, LABEL_PROBE, cluster_filter};
use cluster_tests::node::command;
use cluster_tests::topology::{InfoFields, server_version};
use cluster_tests::{ClusterSpec, FailoverKind, ImageSource, Result, Version, image};

/// An image made for a test, removed when dropped (after the clusters that use it).
struct TestImage {
    tag: String,
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let tag = self.tag.clone();
        let removed = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async { Docker::connect().await?.remove_image(&tag).await })
        });
        if let Ok(Err(e)) = removed.join() {
            eprintln!("could not remove test image {}: {e}", self.tag);
        }
    }
}

/// Derives from the matrix version's image one that hides everything the harness knew about ours: its entry point
/// is the client (not the server), its working directory is not writable by the nodes' uids, its PATH is its
/// own, and its labels no longer name the binaries. The harness must find the server on PATH, detect its version,
/// and give the nodes a data directory.
async fn derived_image(docker: &Docker, version: &Version) -> Result<TestImage> {
    let (base, _, _) = image::ensure_built(docker, version, &|line| eprintln!("{line}")).await?;
    let tag = format!("cluster-tests-derived:{}-{}", version.name, std::process::id());
    let holder = ContainerSpec {
        name: format!("cluster-tests-derive-{}", std::process::id()),
        image: base,
        network: "none".into(),
        labels: [(LABEL_PROBE.to_owned(), "test".to_owned())].into(),
        ..Default::default()
    };
    let id = docker.create_container(&holder).await?;
    let entrypoint = format!("ENTRYPOINT [\"{}\"]", version.cli_bin);
    let changes = [
        entrypoint.as_str(),
        "CMD [\"--help\"]",
        "WORKDIR /etc",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        "LABEL cluster-tests.server-bin=\"\" cluster-tests.cli-bin=\"\" cluster-tests.image=test",
    ];
    let committed = docker.commit(&id, &tag, &changes).await;
    docker.remove_container(&id).await?;
    committed?;
    Ok(TestImage { tag })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_runs_from_an_image_given_by_reference() -> Result<()> {
    let docker = Docker::connect().await?;
    let version = Version::from_env()?;
    let derived = derived_image(&docker, version).await?;
    let cluster = ClusterSpec {
        image: ImageSource::Reference(derived.tag.clone()),
        ..ClusterSpec::for_test()?
    }
    .start()
    .await?;

    // Found on PATH and detected from the binary, not from a tag or a label.
    let image = cluster.image();
    assert_eq!(image.version, None);
    assert_eq!(image.server_bin, version.server_bin);
    assert_eq!(image.cli_bin.as_deref(), Some(version.cli_bin.as_str()));
    assert_eq!(
        image.server, version.server,
        "the server and version its binary reports"
    );
    let expected = version.server.split_whitespace().last().unwrap();
    for addr in cluster.live_addrs().await? {
        let info: String = command(addr, &["INFO", "server"]).await?;
        assert_eq!(server_version(&InfoFields::parse(&info)), Some(expected), "{addr}");
    }
    // The client was found too, and works from the host's network.
    let port = cluster.first_port().to_string();
    assert_eq!(cluster.host_cli(&["-p", &port, "PING"]).await?.trim(), "PONG");

    // A failover heals as with our images.
    let report = cluster
        .failover(None, FailoverKind::RemoveMaster { force: false }, &|_| {})
        .await?;
    assert!(report.new_master.is_some(), "{report:?}");
    let views = cluster.views().await?;
    assert!(
        views.iter().all(|v| v.info.state_ok()),
        "every node ok after the failover"
    );

    // A cluster found again (as the CLI finds it) knows its image from the labels, without probing.
    let found = cluster_tests::Cluster::find(&docker, cluster.name()).await?;
    assert_eq!(found.image(), cluster.image());
    drop(found);
    drop(cluster);
    drop(derived);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_had_fails_fast_and_leaves_nothing() -> Result<()> {
    let docker = Docker::connect().await?;
    for reference in [
        format!("cluster-tests-no-such-image:{}", std::process::id()),
        "Not A/valid:reference".to_owned(),
    ] {
        let spec = ClusterSpec {
            image: ImageSource::Reference(reference.clone()),
            ..ClusterSpec::for_test()?
        };
        let name = spec.name.clone();
        let start = Instant::now();
        let err = match spec.start().await {
            Ok(_) => panic!("a cluster of {reference} was made"),
            Err(e) => e.to_string(),
        };
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{reference}: took {:?}",
            start.elapsed()
        );
        assert!(
            err.contains(&format!("image {reference} is not on this machine")),
            "{err}"
        );
        assert!(err.contains("--version"), "names the local alternative: {err}");
        assert!(
            docker.containers(&[cluster_filter(&name)]).await?.is_empty(),
            "{reference}: containers left"
        );
        assert!(
            docker.networks(&[cluster_filter(&name)]).await?.is_empty(),
            "{reference}: networks left"
        );
    }
    Ok(())
}
