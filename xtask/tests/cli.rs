//! The CLI as a user runs it: help and usage errors without Docker, then commands on real clusters.

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
    use cluster_tests::Cluster;
    use cluster_tests::server::{data, node};
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

/// A TLS cluster made by the harness is found by the CLI with its certificates: `info`, `connect -- <command>`
/// (the harness's TLS client) and an interactive `connect` (the node's own cli, given the node's certificate).
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_works_on_a_tls_cluster() -> cluster_tests::Result<()> {
    let cluster = cluster_tests::ClusterSpec::from_env()?.tls().start().await?;
    let on = |args: &[&str]| xtask(&[&["--cluster", cluster.name()], args].concat());
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();

    let info = on(&["info"]);
    assert!(text(&info).contains("cluster_state:ok"), "{info:?}");
    let set = on(&["connect", "--", "set", "foo", "bar"]);
    assert_eq!(text(&set).lines().last(), Some("OK"), "{set:?}");

    let mut session = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--cluster", cluster.name(), "connect"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the xtask binary runs");
    std::io::Write::write_all(&mut session.stdin.take().expect("piped"), b"get foo\n").expect("stdin takes it");
    let got = session.wait_with_output().expect("connect ends when its stdin closes");
    assert!(got.status.success(), "{got:?}");
    assert_eq!(text(&got).lines().last(), Some("bar"), "{got:?}");
    Ok(())
}

/// Ids of what Docker holds of cluster `name` (containers, then networks), via its command line.
fn left_of(name: &str) -> String {
    let label = format!("label=cluster-tests.cluster={name}");
    let ids = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().expect("docker runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    ids(&["ps", "-aq", "--filter", &label]) + &ids(&["network", "ls", "-q", "--filter", &label])
}

/// Stops cluster `name` through the CLI when dropped, so a failing test leaves nothing either.
struct Stop(String);

impl Drop for Stop {
    fn drop(&mut self) {
        xtask(&["--cluster", &self.0, "stop"]);
    }
}

/// SIGTERM (what `timeout`, a closed CI job and service managers send) in the middle of `create`: the CLI removes
/// what it had made, watching for containers still on their way, and exits non-zero.
#[test]
fn sigterm_during_create_removes_what_was_made() {
    let name = format!("ctsigterm{}", std::process::id());
    let _stop = Stop(name.clone());
    let version = std::env::var(cluster_tests::VERSION_ENV).unwrap_or_else(|_| "redis-7.0".into());
    // Bridge networking publishes no host port, so this cluster cannot collide with the tests' port ranges.
    let args = [
        "--cluster",
        &name,
        "create",
        "--networking",
        "bridge",
        "--version",
        &version,
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the xtask binary runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while left_of(&name).is_empty() {
        assert!(std::time::Instant::now() < deadline, "create made nothing in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the child's pid, which has not been waited for, so it is still ours.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().expect("the child exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(left_of(&name), "", "nothing of the cluster is left");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(left_of(&name), "", "and nothing lands afterwards");
}

/// A cluster made on purpose with `create` is someone's: `stop` of another cluster neither calls it abandoned
/// nor suggests removing it, and the census `stop --all` acts on keeps it (`stop --all` itself is not run here:
/// it would remove other runs' leftovers on a shared engine).
#[tokio::test(flavor = "multi_thread")]
async fn stop_keeps_a_cluster_made_on_purpose_and_stop_all_would_too() {
    let name = format!("ctkept{}", std::process::id());
    let _stop = Stop(name.clone());
    let version = std::env::var(cluster_tests::VERSION_ENV).unwrap_or_else(|_| "redis-7.0".into());
    // Bridge networking publishes no host port, so this cluster cannot collide with the tests' port ranges.
    let made = xtask(&[
        "--cluster",
        &name,
        "create",
        "--networking",
        "bridge",
        "--version",
        &version,
    ]);
    assert!(made.status.success(), "{made:?}");
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();

    let other = xtask(&["--cluster", &format!("{name}x"), "stop"]);
    let said = text(&other);
    assert!(other.status.success(), "{other:?}");
    assert!(!said.contains(&name), "{said}");

    use cluster_tests::playground::{Docker, census};
    let census = census(&Docker::connect().await.unwrap()).await.unwrap();
    assert!(census.kept.contains(&name), "{census:?}");
    assert!(census.abandoned.iter().all(|c| c.name != name), "{census:?}");
    assert!(!left_of(&name).is_empty());
}

/// Server settings the harness relies on are refused by `create` with the reason, before anything is made.
#[test]
fn create_refuses_a_setting_the_harness_relies_on_and_tls_files_without_tls() {
    let name = format!("ctrefused{}", std::process::id());
    let refused = xtask(&["--cluster", &name, "create", "--config", "cluster-enabled=no"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("`cluster-enabled` is refused"), "{err}");
    let refused = xtask(&["--cluster", &name, "create", "--config", "maxmemory"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("NAME=VALUE"),
        "{refused:?}"
    );
    let refused = xtask(&["--cluster", &name, "create", "--tls-dir", "/tmp/x"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--tls-dir needs --tls"),
        "{refused:?}"
    );
    assert_eq!(left_of(&name), "");
}

/// `check --workload` on a cluster with a password and mutual TLS: the redis-py example finds the seeds, the
/// password and the certificate files in its environment and writes its records to `--workload-output`; a
/// workload that exits at once fails the check with exit 1 and says so.
#[tokio::test(flavor = "multi_thread")]
async fn check_runs_a_workload_on_a_tls_cluster_with_a_password() -> cluster_tests::Result<()> {
    let spec = cluster_tests::ClusterSpec::from_env()?;
    let cluster = spec.password("s3cret-pw").tls_client_auth().start().await?;
    let records = std::env::temp_dir().join(format!("check-records-{}.jsonl", std::process::id()));
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../cluster-tests/examples/workload.py");
    let check = |workload: &str| {
        let args = [
            "--fault",
            "none",
            "--seconds",
            "2",
            "--workload",
            workload,
            "--workload-output",
        ];
        xtask(
            &[
                &["--cluster", cluster.name(), "check"],
                &args[..],
                &[records.to_str().expect("utf-8")],
            ]
            .concat(),
        )
    };
    let ok = check(&format!("python3 {example}"));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("lost: 0 acknowledged"), "{stdout}");
    let written = std::fs::read_to_string(&records).expect("the workload wrote its records");
    assert!(
        written.lines().count() > 50 && written.contains("\"outcome\": \"ok\""),
        "{written:.300}"
    );

    let early = check("exit 0");
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert_eq!(early.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the workload exited after"), "{stderr}");
    std::fs::remove_file(&records).ok();
    Ok(())
}
