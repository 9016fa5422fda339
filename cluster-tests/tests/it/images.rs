//! Clusters of images given by reference: any image holding the server, found and run as ours are; and a
//! reference that is neither here nor pullable fails fast and clearly, leaving nothing behind.

use std::time::{Duration, Instant};

use std::process::Command;

use cluster_tests::playground::{self, Docker};
use cluster_tests::server::node::command;
use cluster_tests::server::topology::{InfoFields, server_version};
use cluster_tests::{ClusterSpec, FailoverKind, ImageSource, Result, Version};

use crate::common::docker as docker_cli;

/// How long a test image's cluster may take to be removed: a test's cluster goes off the test's path (its keeper
/// or a removal process takes its containers away after its handle is dropped).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// An image made for a test, removed by [`TestImage::remove`] once the clusters that use it are gone, or else
/// when dropped (a test that failed on the way).
struct TestImage {
    tag: String,
    /// Whether its removal was tried: once, by [`TestImage::remove`] or else on drop.
    tried: bool,
}

impl TestImage {
    /// Waits until no container uses the image any more, then removes it; says what still used it, or why
    /// `docker rmi` failed.
    fn try_remove(&mut self) -> std::result::Result<(), String> {
        self.tried = true;
        let start = Instant::now();
        loop {
            // Not the asserting `docker_cli`: this also runs in `drop`, maybe while the test panics.
            let listed = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("ancestor={}", self.tag)])
                .output()
                .map_err(|e| format!("docker ps: {e}"))?;
            let users = String::from_utf8_lossy(&listed.stdout).split_whitespace().count();
            if listed.status.success() && users == 0 {
                break;
            }
            if start.elapsed() > REMOVAL_TIMEOUT {
                return Err(format!(
                    "{users} container(s) still use test image {} after {REMOVAL_TIMEOUT:?} ({})",
                    self.tag,
                    String::from_utf8_lossy(&listed.stderr).trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = Command::new("docker").args(["rmi", &self.tag]).output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "docker rmi {}: {}",
                self.tag,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("docker rmi {}: {e}", self.tag)),
        }
    }

    /// Removes the image once its clusters are gone; fails the test if it cannot (a test image left behind).
    fn remove(mut self) {
        if let Err(e) = self.try_remove() {
            panic!("{e}");
        }
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        if !self.tried
            && let Err(e) = self.try_remove()
        {
            eprintln!("could not remove test image: {e}; `docker rmi {}` removes it", self.tag);
        }
    }
}

/// Derives from the matrix version's image one that hides everything the harness knew about ours: its entry point
/// is the client (not the server), its working directory is not writable by the nodes' uids, its PATH is its
/// own, and its labels no longer name the binaries. The harness must find the server on PATH, detect its version,
/// and give the nodes a data directory.
async fn derived_image(docker: &Docker, version: &Version) -> Result<TestImage> {
    let (base, _, _) = playground::ensure_built(docker, version).await?;
    let tag = format!("cluster-tests-derived:{}-{}", version.name, std::process::id());
    // A container made (not started) only to commit from; the probe label lets a killed run's clean-up find it.
    let id = docker_cli(&[
        "create",
        "--network",
        "none",
        "--label",
        "cluster-tests.probe=test",
        &base,
    ]);
    let entrypoint = format!("ENTRYPOINT [\"{}\"]", version.cli_bin);
    let changes = [
        entrypoint.as_str(),
        "CMD [\"--help\"]",
        "WORKDIR /etc",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        "LABEL cluster-tests.server-bin=\"\" cluster-tests.cli-bin=\"\" cluster-tests.image=test",
    ];
    let mut commit = vec!["commit"];
    for change in &changes {
        commit.extend(["--change", change]);
    }
    commit.extend([id.as_str(), tag.as_str()]);
    let committed = Command::new("docker").args(&commit).output();
    docker_cli(&["rm", &id]);
    assert!(
        committed.is_ok_and(|o| o.status.success()),
        "docker commit of the derived image"
    );
    Ok(TestImage { tag, tried: false })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_runs_from_an_image_given_by_reference() -> Result<()> {
    let docker = Docker::connect().await?;
    let version = Version::from_env()?;
    let derived = derived_image(&docker, version).await?;
    let cluster = ClusterSpec::from_env()?
        .image(ImageSource::Reference(derived.tag.clone()))
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
        .failover(None, FailoverKind::RemoveMaster { force: false })
        .await?;
    assert!(report.new_master.is_some(), "{report:?}");
    let views = cluster.views().await?;
    assert!(
        views.iter().all(|v| v.info.state_ok()),
        "every node ok after the failover"
    );

    // A cluster found again (as the CLI finds it) knows its image from the labels, without probing.
    let found = playground::find(&docker, cluster.name()).await?;
    assert_eq!(found.image(), cluster.image());
    drop(found);
    drop(cluster);
    derived.remove();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_had_fails_fast_and_leaves_nothing() -> Result<()> {
    for reference in [
        format!("cluster-tests-no-such-image:{}", std::process::id()),
        "Not A/valid:reference".to_owned(),
    ] {
        let spec = ClusterSpec::from_env()?.image(ImageSource::Reference(reference.clone()));
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
        assert!(
            err.contains("ImageSource::Recipe"),
            "names the local alternative: {err}"
        );
        let label = format!("label=cluster-tests.cluster={name}");
        assert_eq!(
            docker_cli(&["ps", "-aq", "--filter", &label]),
            "",
            "{reference}: containers left"
        );
        assert_eq!(
            docker_cli(&["network", "ls", "-q", "--filter", &label]),
            "",
            "{reference}: networks left"
        );
        // Probes carry their maker (`<boot>/<pid namespace>/<pid>/<start>`); other processes' may be running.
        let probes = docker_cli(&[
            "ps",
            "-a",
            "--filter",
            "label=cluster-tests.probe",
            "--format",
            "{{.Label \"cluster-tests.probe\"}}",
        ]);
        let mine = format!("/{}/", std::process::id());
        assert!(
            !probes.lines().any(|p| p.contains(&mine)),
            "{reference}: probe containers of this test left: {probes}"
        );
    }
    Ok(())
}
