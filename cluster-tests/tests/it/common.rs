//! What several scenarios share: the `docker` command line, driven as a user drives it (the harness keeps its
//! own Docker connection private), and the replicate, fail over and join sequence of `auth` and `tls`.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What `docker <args>` prints on stdout, trimmed; fails the test if docker fails.
pub fn docker(args: &[&str]) -> String {
    String::from_utf8_lossy(&run(args).stdout).trim().to_owned()
}

/// What `docker <args>` prints on stdout and stderr (`docker logs` gives a container's stderr on its own);
/// fails the test if docker fails.
pub fn docker_all_output(args: &[&str]) -> String {
    let out = run(args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until each of the 3 masters' one replica acknowledged its writes, removes the first master, and joins a
/// node, which must replicate the promoted replica; returns the join's report.
pub async fn replicate_fail_over_and_join(
    cluster: &cluster_tests::Cluster,
) -> cluster_tests::Result<cluster_tests::JoinReport> {
    let acknowledged = cluster.wait_replicated(std::time::Duration::from_secs(10)).await?;
    assert!(
        acknowledged.len() == 3 && acknowledged.values().all(|n| *n == 1),
        "{acknowledged:?}"
    );
    let remove = cluster_tests::FailoverKind::RemoveMaster { force: false };
    let report = cluster.failover(Some(cluster.first_port()), remove).await?;
    let promoted = report.new_master.expect("a replica took over");
    let joined = cluster.join(None, None).await?;
    assert_eq!(joined.master, promoted);
    Ok(joined)
}
