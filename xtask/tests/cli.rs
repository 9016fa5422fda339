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
            // Long enough for the Python interpreter to start on a loaded machine.
            "--seconds",
            "5",
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
        written.lines().count() > 0 && written.contains("\"outcome\": \"ok\""),
        "{written:.300}"
    );

    let early = check("exit 0");
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert_eq!(early.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the workload exited after"), "{stderr}");
    std::fs::remove_file(&records).ok();
    Ok(())
}

/// Runs the CLI with `args`, sends `signal` the moment its output has a line containing `moment` (or fails if it
/// ends first), and returns its output, what it printed up to the moment and after, and how long after the signal
/// it exited.
fn signal_at(args: &[&str], moment: &str, signal: i32) -> (Output, String, std::time::Duration) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the xtask binary runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("reading the CLI's output");
        seen.push_str(&line);
        if read == 0 {
            let out = child.wait_with_output().expect("the child exits");
            panic!(
                "`{}` ended before printing {moment:?}:\n{seen}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if line.contains(moment) {
            break;
        }
    }
    // SAFETY: kill(2) on the child's pid, which has not been waited for, so it is still ours.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let sent = std::time::Instant::now();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("reading the CLI's output");
    seen.push_str(&rest);
    let out = child.wait_with_output().expect("the child exits");
    (out, seen, sent.elapsed())
}

/// Ids and roles of every node as each live node sees them, sorted: equal before and after means nothing changed.
async fn membership(cluster: &cluster_tests::Cluster) -> cluster_tests::Result<Vec<String>> {
    let mut seen = Vec::new();
    for view in cluster.views().await? {
        for n in &view.nodes.nodes {
            seen.push(format!("{} sees {} {:?} {:?}", view.addr, n.id, n.role, n.slots));
        }
    }
    seen.sort();
    Ok(seen)
}

/// SIGINT the moment `add-master` starts its node, and again once the node has met the others: the CLI removes
/// it, the others forget it, and the cluster is healthy and as it was, so the next change is not refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_add_master_leaves_the_cluster_as_it_was() -> cluster_tests::Result<()> {
    use cluster_tests::{Cluster, Shape};
    let cluster = Cluster::start_for_test().await?;
    let before = membership(&cluster).await?;
    let containers = cluster.nodes().await?.len();
    for moment in ["add-master: a master on", "meet: "] {
        let (out, printed, _) = signal_at(
            &["--cluster", cluster.name(), "add-master", "--replicas", "0"],
            moment,
            libc::SIGINT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{printed}{stderr}");
        assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
        assert!(stderr.contains("removed and forgotten"), "{stderr}");
        assert_eq!(
            cluster.nodes().await?.len(),
            containers,
            "at {moment:?}: {printed}{stderr}"
        );
        cluster
            .wait_ready(Shape::Any, std::time::Duration::from_secs(30))
            .await?;
        assert_eq!(membership(&cluster).await?, before, "at {moment:?}: {printed}{stderr}");
    }
    // Nothing is stranded: the next add-master is not refused.
    let added = xtask(&["--cluster", cluster.name(), "add-master", "--replicas", "0"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    Ok(())
}

/// SIGINT during the first move of `remove-master`'s drain: that move ends at its next step (a classic one finishes
/// or rolls back each slot of its batch in flight, an atomic one completes), no other begins, and the master stays;
/// no node (replicas included) marks a slot, every key is served, the cluster is ready.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_remove_master_keeps_the_master_and_no_slot_half_moved() -> cluster_tests::Result<()> {
    use cluster_tests::server::data;
    // Four masters from the start: the fourth may be removed, and no slot moves to make it so.
    let cluster = cluster_tests::ClusterSpec::from_env()?.masters(4).start().await?;
    let fourth = cluster
        .topology()
        .await?
        .live_masters()
        .into_iter()
        .filter_map(|m| m.port())
        .max()
        .expect("four masters");
    let keys = data::keys("drain", 5000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let port = fourth.to_string();
    let args = ["--cluster", cluster.name(), "remove-master", &port];
    // A classic move reports each 1,000 slots it moved (the first move drains 1,365): the signal lands in a batch.
    let atomic = cluster_tests::has_atomic_migration(cluster.access(), cluster.addr(fourth).await?).await?;
    let moment = if atomic { "reshard: moving" } else { " slots moved (" };
    let (out, printed, _) = signal_at(&args, moment, libc::SIGINT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{printed}{stderr}");
    assert!(stderr.contains("interrupted by SIGINT: "), "{stderr}");
    assert!(
        stderr.contains(&format!("master {port} and its replicas stay")),
        "{stderr}"
    );
    if !atomic {
        assert!(stderr.contains("of the batch in flight, "), "{stderr}");
    }
    assert!(stderr.contains("planned slot(s) did not move"), "{stderr}");
    println!("{stderr}");
    no_slot_marked_and_ready(&cluster, &stderr).await?;
    let topology = cluster.topology().await?;
    let master = topology.by_port(fourth).expect("the master stays");
    assert!(!master.slots.is_empty(), "{printed}{stderr}");
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

/// `pause --for 20` gives way to SIGINT once it has reported the takeover (a master's) or that there is none (a
/// replica's): it thaws the node at once and exits 1, long before the 20 s are up, and the node runs.
#[tokio::test(flavor = "multi_thread")]
async fn pause_for_resumes_early_on_sigint_after_the_takeover_report() -> cluster_tests::Result<()> {
    use std::time::Duration;
    let cluster = cluster_tests::Cluster::start_for_test().await?;
    let topology = cluster.topology().await?;
    let master = topology.live_masters()[0].port().expect("an address");
    let replica = topology
        .nodes
        .iter()
        .find(|n| n.master_id.is_some())
        .and_then(|n| n.port())
        .expect("a replica");
    for (port, moment) in [(replica, "serves no slots"), (master, "promoted to master")] {
        let port_arg = port.to_string();
        let args = ["--cluster", cluster.name(), "pause", "--port", &port_arg, "--for", "20"];
        let (out, printed, took) = signal_at(&args, moment, libc::SIGINT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{printed}{stderr}");
        assert!(stderr.contains("interrupted by SIGINT; resumed node"), "{stderr}");
        assert!(
            took < Duration::from_secs(5),
            "exited {took:?} after SIGINT, of a 20 s hold:\n{printed}"
        );
        println!("{moment}: exited {took:?} after SIGINT");
        let node = cluster.node(port).await?;
        assert_eq!(node.state, "running", "{printed}");
        cluster
            .wait_ready(cluster_tests::Shape::Any, Duration::from_secs(30))
            .await?;
    }
    Ok(())
}

/// SIGINT half-way through a classic `reshard` of 2,000 slots (when it reports 1,000 moved): the CLI finishes or
/// rolls back each slot of the batch in flight and says which; no node (replicas included) marks a slot, every key
/// is served, the cluster is ready (issue 22 item 4).
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_reshard_leaves_no_slot_half_moved() -> cluster_tests::Result<()> {
    use cluster_tests::server::data;
    let cluster = cluster_tests::Cluster::start_for_test().await?;
    let keys = data::keys("cut", 5000);
    data::write(&mut cluster.client().await?, &keys).await?;
    let masters = cluster.topology().await?.master_ports();
    let (from, to) = (masters[0].to_string(), masters[1].to_string());
    let args = [
        "--cluster",
        cluster.name(),
        "reshard",
        "--slots",
        "2000",
        "--classic",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let (out, printed, _) = signal_at(&args, "1000 of 2000 slots moved", libc::SIGINT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{printed}{stderr}");
    assert!(stderr.contains("interrupted by SIGINT: "), "{stderr}");
    assert!(
        stderr.contains(&format!("slot(s) had moved from {from} to {to}")),
        "{stderr}"
    );
    assert!(stderr.contains("of the batch in flight, "), "{stderr}");
    no_slot_marked_and_ready(&cluster, &stderr).await?;
    data::verify_keys(&mut cluster.client().await?, &keys).await?;
    Ok(())
}

/// SIGINT during a `check` round, once its fault is in place (the CLI printed it): the CLI undoes it, a paused
/// node is thawed and a partition's rules are removed, and the cluster is ready.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_check_leaves_no_paused_node_and_no_rule() -> cluster_tests::Result<()> {
    let cluster = cluster_tests::Cluster::start_for_test().await?;
    for (fault, moment, undone) in [
        ("pause", "fault: paused node", "thawed "),
        (
            "partition",
            "fault: partitioned",
            "removed the partition and slow-link rules",
        ),
    ] {
        let args = [
            "--cluster",
            cluster.name(),
            "check",
            "--fault",
            fault,
            "--rounds",
            "1",
            "--seconds",
            "60",
        ];
        let (out, printed, _) = signal_at(&args, moment, libc::SIGINT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{printed}{stderr}");
        assert!(stderr.contains("interrupted by SIGINT; "), "{stderr}");
        assert!(stderr.contains(undone), "{fault}: {stderr}");
        let states: Vec<String> = cluster.nodes().await?.into_iter().map(|n| n.state).collect();
        assert!(states.iter().all(|s| s == "running"), "{fault}: {states:?}");
        let err = cluster.heal().await.expect_err("no rule is left to heal");
        assert!(err.to_string().contains("nothing to heal"), "{fault}: {err}");
        cluster
            .wait_ready(cluster_tests::Shape::Any, std::time::Duration::from_secs(30))
            .await?;
    }
    Ok(())
}

/// Where the CLI keeps cluster `name`'s secrets: `<target>/cluster-tests/<name>`.
fn secrets_of(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_BIN_EXE_xtask"))
                .ancestors()
                .find(|d| d.join("CACHEDIR.TAG").is_file())
                .expect("the binary is in a cargo target directory")
                .to_owned()
        },
        std::path::PathBuf::from,
    );
    target.join("cluster-tests").join(name)
}

/// Secrets a cut-short removal left with no cluster (what a SIGKILL during `stop` leaves) are named by
/// `leftovers` and removed by `stop` (issue 22 item 8).
#[test]
fn secrets_left_without_a_cluster_are_found_and_removed() {
    let name = format!("ctorphan{}", std::process::id());
    let dir = secrets_of(&name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("access.toml"), "password = \"left\"\n").unwrap();
    let found = xtask(&["leftovers"]);
    let stderr = String::from_utf8_lossy(&found.stderr);
    assert_eq!(found.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    let stopped = xtask(&["--cluster", &name, "stop"]);
    let stdout = String::from_utf8_lossy(&stopped.stdout);
    assert!(stopped.status.success(), "{stdout}");
    assert!(stdout.contains("removed the secrets of"), "{stdout}");
    assert!(!dir.exists(), "{} is gone", dir.display());
    let again = xtask(&["leftovers"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains(&dir.display().to_string()), "{stderr}");
}

/// A secrets directory made beforehand, world-writable, with a file of someone else's: `create --password` makes it
/// private (0700, its parent too), and `stop` removes only the files the CLI wrote (issue 22 item 9).
#[test]
fn a_premade_secrets_directory_is_made_private_and_only_our_files_are_removed() {
    use std::os::unix::fs::PermissionsExt;
    let name = format!("ctprivate{}", std::process::id());
    let _stop = Stop(name.clone());
    let dir = secrets_of(&name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(dir.join("mine.txt"), "not the CLI's").unwrap();
    let version = std::env::var(cluster_tests::VERSION_ENV).unwrap_or_else(|_| "redis-7.0".into());
    let args = [
        "--cluster",
        &name,
        "create",
        "--networking",
        "bridge",
        "--password",
        "--version",
        &version,
    ];
    let created = xtask(&args);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(dir.parent().unwrap()), 0o700);
    assert!(dir.join("access.toml").is_file());
    let stopped = xtask(&["--cluster", &name, "stop"]);
    assert!(stopped.status.success());
    assert!(!dir.join("access.toml").exists() && !dir.join("node.conf").exists());
    assert_eq!(std::fs::read_to_string(dir.join("mine.txt")).unwrap(), "not the CLI's");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `check --wait 2` on a cluster with one replica per master is refused before anything runs: no write could be
/// confirmed, and a check that confirmed none must not pass (issue 22 item 10).
#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_wait_above_the_replicas() -> cluster_tests::Result<()> {
    let cluster = cluster_tests::Cluster::start_for_test().await?;
    let args = ["--cluster", cluster.name(), "check", "--wait", "2", "--fault", "none"];
    let out = xtask(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is more than the 1 live replica(s) of master"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("writes:"), "nothing ran");
    Ok(())
}

/// `create --no-default-user` with no user of one's own is refused before Docker is touched: no client could log
/// in (issue 22 item 11).
#[test]
fn no_default_user_without_a_user_is_refused() {
    let name = format!("ctnouser{}", std::process::id());
    let out = xtask(&["--cluster", &name, "create", "--no-default-user"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--no-default-user without --user or --acl"), "{stderr}");
    assert_eq!(left_of(&name), "", "nothing was made");
}

/// With the lowest node cut off from everyone, the host included, `info`, `nodes` and `connect -- ping` ask a
/// node that answers instead of timing out on it (issue 22 item 14).
#[tokio::test(flavor = "multi_thread")]
async fn any_live_node_skips_one_that_does_not_answer() -> cluster_tests::Result<()> {
    let cluster = cluster_tests::Cluster::start_for_test().await?;
    let lowest = cluster.nodes().await?[0].port;
    cluster
        .partition(cluster_tests::Cut::Isolate {
            port: lowest,
            keep_clients: false,
        })
        .await?;
    for args in [&["info"][..], &["nodes"], &["connect", "--", "ping"]] {
        let out = xtask(&[&["--cluster", cluster.name()], args].concat());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    cluster.heal().await?;
    Ok(())
}

/// `nodes` says which node shows which migration marker, as each node shows it (issue 22 item 15).
#[tokio::test(flavor = "multi_thread")]
async fn nodes_reports_the_markers_each_node_shows() -> cluster_tests::Result<()> {
    use cluster_tests::{Reshard, Slots};
    let cluster = cluster_tests::Cluster::start_for_test().await?;
    let masters = cluster.topology().await?.master_ports();
    let (from, to) = (masters[0], masters[1]);
    let held = cluster
        .reshard(&Reshard::new(from, to, Slots::Count(1)).hold())
        .await?
        .held
        .expect("a slot is held");
    let out = xtask(&["--cluster", cluster.name(), "nodes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let slot = held.slot;
    assert!(
        stdout.contains(&format!("# {from} shows slot {slot} MIGRATING to {to}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("# {to} shows slot {slot} IMPORTING from {from}")),
        "{stdout}"
    );
    cluster.abort_held().await?;
    let out = xtask(&["--cluster", cluster.name(), "nodes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(" shows slot "), "no marker is left:\n{stdout}");
    Ok(())
}

/// After an interrupted move: no node (replicas included) marks a slot MIGRATING or IMPORTING, and the cluster is
/// ready; `stderr` (the CLI's) goes into the failure.
async fn no_slot_marked_and_ready(cluster: &cluster_tests::Cluster, stderr: &str) -> cluster_tests::Result<()> {
    for view in cluster.views().await? {
        let me = view.nodes.myself().expect("a node lists itself");
        assert!(
            me.migrating.is_empty() && me.importing.is_empty(),
            "{} still marks {:?} {:?}:\n{stderr}",
            view.addr,
            me.migrating,
            me.importing
        );
    }
    cluster
        .wait_ready(cluster_tests::Shape::Any, std::time::Duration::from_secs(30))
        .await
}
