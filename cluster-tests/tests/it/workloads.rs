//! Any client library under the checker: the two example workloads (redis-py and redis-rs) lose nothing without
//! a fault and nothing `WAIT` confirmed through a failover and a pause, lose what a minority master acknowledged
//! in its window, and a workload that lies, exits at once, never exits or prints garbage is caught, with the
//! cluster left healthy.

use std::path::PathBuf;
use std::time::Duration;

use cluster_tests::faults::checker::{CheckReport, CheckSpec, FaultKind};
use cluster_tests::faults::workload::Workload;
use cluster_tests::{Cluster, ErrorKind, Result, Shape};

fn spec(fault: FaultKind, wait: usize) -> CheckSpec {
    CheckSpec {
        fault,
        rounds: usize::from(fault != FaultKind::None),
        seconds: Duration::from_secs(4),
        seed: 5,
        wait,
        writers: 1,
    }
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The redis-py example; redis-py must be installed (`.ci/run` does it).
fn python() -> Workload {
    let check = std::process::Command::new("python3")
        .args(["-c", "import redis"])
        .output();
    assert!(
        check.is_ok_and(|o| o.status.success()),
        "the Python example needs python3 with redis-py: `python3 -m pip install redis`"
    );
    Workload::new("python3", [examples().join("workload.py").display().to_string()])
}

/// The redis-rs example, which cargo builds beside the test binaries (`target/debug/examples/workload`).
fn rust() -> Workload {
    let exe = std::env::current_exe().expect("the test's own path");
    let example = exe
        .ancestors()
        .map(|dir| dir.join("examples").join("workload"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no examples/workload above {}: `cargo build --example workload`",
                exe.display()
            )
        });
    Workload::new(example.display().to_string(), Vec::<String>::new())
}

fn assert_nothing_lost(report: &CheckReport) {
    eprintln!("{report:?}");
    assert!(report.acknowledged > 0, "{report:?}");
    let findings = report.workload.as_ref().expect("a workload's findings");
    assert_eq!(
        (findings.malformed, findings.conflicting, findings.foreign),
        (0, 0, 0),
        "{findings:?}"
    );
    assert_eq!(
        (report.lost, report.promise_broken),
        (0, false),
        "{:?}",
        report.lost_keys
    );
}

async fn no_fault_then_pause(workload: Workload) -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster.check_workload(&spec(FaultKind::None, 0), &workload).await?;
    assert_nothing_lost(&report);
    assert_eq!(report.attempted, report.acknowledged, "{report:?}");
    let report = cluster.check_workload(&spec(FaultKind::Pause, 1), &workload).await?;
    assert_nothing_lost(&report);
    assert!(report.rounds[0].takeover.is_some(), "{report:?}");
    Ok(())
}

async fn failover(workload: Workload) -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster.check_workload(&spec(FaultKind::Failover, 1), &workload).await?;
    assert_nothing_lost(&report);
    assert!(report.rounds[0].takeover.is_some(), "{report:?}");
    Ok(())
}

/// Without `WAIT`, the minority master's acknowledgements from the cut until it notices are lost: some, and
/// every one of them acknowledged between the cut and the takeover (a second of margin).
async fn minority_partition(workload: Workload) -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster
        .check_workload(&spec(FaultKind::Partition, 0), &workload)
        .await?;
    eprintln!("{report:?}");
    let round = &report.rounds[0];
    let takeover = round.takeover.expect("a replica took over on the majority side");
    assert!(
        report.lost > 0,
        "the minority master acknowledged writes that are gone: {report:?}"
    );
    assert_eq!(report.timeline.lost.len(), report.lost);
    for at in &report.timeline.lost {
        assert!(
            round.at - 0.1 <= *at && *at <= round.at + takeover + 1.0,
            "a write acknowledged at {at:.2} s was lost, outside the window {:.2}..{:.2} s",
            round.at,
            round.at + takeover
        );
    }
    assert!(!report.promise_broken, "a partition promises nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn python_loses_nothing_without_a_fault_or_through_a_pause_with_wait() -> Result<()> {
    no_fault_then_pause(python()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn python_loses_nothing_wait_confirmed_through_a_failover() -> Result<()> {
    failover(python()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn python_loses_what_a_minority_master_acknowledged() -> Result<()> {
    minority_partition(python()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_loses_nothing_without_a_fault_or_through_a_pause_with_wait() -> Result<()> {
    no_fault_then_pause(rust()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_loses_nothing_wait_confirmed_through_a_failover() -> Result<()> {
    failover(rust()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_loses_what_a_minority_master_acknowledged() -> Result<()> {
    minority_partition(rust()).await
}

/// The pid of the workload's shell, which each bad workload writes to `pid` first.
fn gone(pid: &std::path::Path) {
    let pid = std::fs::read_to_string(pid).expect("the workload wrote its pid");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    assert!(
        matches!(state, None | Some('Z')),
        "the workload {} still runs: {stat}",
        pid.trim()
    );
}

/// Runs each of `cases` (a shell line, where `{pid}` is a file for its pid, the kind of error it gets, and what the
/// error says) under a pause, and checks the cluster is left ready with no node paused after each; returns how many
/// ran.
async fn broken_workloads_get_their_error(cluster: &Cluster, cases: &[(&str, ErrorKind, &str)]) -> Result<usize> {
    let dir = std::env::temp_dir().join(format!("workloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let pid = dir.join("pid");
    let clean = || async {
        cluster.wait_ready(Shape::Any, Duration::from_secs(5)).await?;
        let paused: Vec<_> = cluster
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.state != "running")
            .collect();
        assert!(paused.is_empty(), "{paused:?}");
        Result::<()>::Ok(())
    };

    let pause = spec(FaultKind::Pause, 0);
    let mut ran = 0;
    for (line, kind, says) in cases.iter().copied() {
        let line = line.replace("{pid}", &pid.display().to_string());
        let error = cluster
            .check_workload(&pause, &Workload::shell(&line))
            .await
            .expect_err(&line);
        assert_eq!(error.kind(), kind, "{line}: {error}");
        assert!(error.to_string().contains(says), "{line}: {error}");
        gone(&pid);
        clean().await?;
        ran += 1;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(ran)
}

/// A lying workload is caught; one that exits at once (here: during a fault) gets its error, and the cluster is
/// left ready with no node paused.
#[tokio::test(flavor = "multi_thread")]
async fn a_lying_workload_or_one_that_exits_during_a_fault_is_caught_and_leaves_the_cluster_clean() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    // The redis-py example, and then a record of a key it never wrote, acknowledged.
    let liar = format!(
        "trap : TERM; python3 {}; echo \"{{\\\"key\\\": \\\"${{CHECK_KEY_PREFIX}}never\\\", \\\"value\\\": \\\"1\\\", \
         \\\"outcome\\\": \\\"ok\\\", \\\"end\\\": $(date +%s.%N)}}\"",
        examples().join("workload.py").display()
    );
    python();
    let report = cluster
        .check_workload(&spec(FaultKind::None, 0), &Workload::shell(&liar))
        .await?;
    eprintln!("{report:?}");
    assert_eq!(report.lost, 1, "{report:?}");
    assert!(report.lost_keys[0].ends_with(":never"), "{report:?}");

    let cases = [
        // Exits while the first fault is under way.
        (
            "echo $$ > {pid}; echo started; sleep 2.5; exit 3",
            ErrorKind::Refused,
            "exited after",
        ),
    ];
    assert_eq!(broken_workloads_get_their_error(&cluster, &cases).await?, 1);
    Ok(())
}

/// A workload that never exits, or prints no record, gets its error, and the cluster is left ready with no node
/// paused.
#[tokio::test(flavor = "multi_thread")]
async fn a_workload_that_never_exits_or_reports_no_write_gets_its_error_and_leaves_the_cluster_clean() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let cases = [
        (
            "echo $$ > {pid}; trap '' TERM; echo started; while :; do sleep 0.2; done",
            ErrorKind::Timeout,
            "did not exit within 5 s of SIGTERM",
        ),
        (
            "echo $$ > {pid}; trap 'exit 0' TERM; while :; do echo hello; sleep 0.1; done",
            ErrorKind::Refused,
            "reported no write",
        ),
    ];
    assert_eq!(broken_workloads_get_their_error(&cluster, &cases).await?, 2);
    Ok(())
}
