//! The CLI's help and usage errors, without Docker.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

#[test]
fn create_help_lists_the_versions_and_usage_says_cargo_xtask() {
    let out = xtask(&["create", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("Usage: cargo xtask create"), "{help}");
    for version in ["redis-6.0", "redis-7.0", "valkey-9.1"] {
        assert!(help.contains(version), "{version} missing from:\n{help}");
    }
}

#[test]
fn a_usage_error_exits_2_before_touching_docker() {
    let out = xtask(&["create", "--version", "redis-1.0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("possible values"), "{err}");
}

/// `connect -- <command>` on a real cluster: the command follows redirects like `redis-cli -c`, and an error reply
/// exits 1 so scripts can tell.
#[tokio::test(flavor = "multi_thread")]
async fn connect_runs_one_command_follows_redirects_and_exits_1_on_an_error_reply() -> cluster_tests::Result<()> {
    use cluster_tests::{Cluster, data, node};
    let cluster = Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let owner = topology
        .owner_of(data::slot_of("foo"))
        .and_then(|m| m.port())
        .expect("foo's slot is served");
    let other = topology
        .live_masters()
        .iter()
        .filter_map(|m| m.port())
        .find(|p| *p != owner)
        .expect("3 masters");
    let other = other.to_string();
    let connect =
        |command: &[&str]| xtask(&[&["--cluster", cluster.name(), "connect", &other, "--"], command].concat());

    let set = connect(&["set", "foo", "bar"]);
    let stdout = String::from_utf8_lossy(&set.stdout);
    assert!(
        set.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert!(
        stdout.contains(&format!("-> redirected to 127.0.0.1:{owner}")),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("OK"), "{stdout}");
    let on_owner: String = node::command(cluster.addr(owner).await?, &["GET", "foo"]).await?;
    assert_eq!(on_owner, "bar", "the write landed on the slot's owner");

    let get = connect(&["get", "foo"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).lines().last(), Some("bar"));

    let bad = connect(&["nosuchcommand"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "an error reply exits 1: {stderr}");
    assert!(stderr.contains("unknown command"), "{stderr}");
    Ok(())
}
