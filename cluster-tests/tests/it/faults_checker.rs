//! The write checker: nothing lost with no fault, nothing WAIT-acknowledged lost through failovers, and a
//! minority partition's window counted.

use std::time::Duration;

use cluster_tests::faults::checker::{CheckSpec, FaultKind};
use cluster_tests::{Cluster, Result};

fn spec(fault: FaultKind, rounds: usize, wait: usize) -> CheckSpec {
    CheckSpec {
        fault,
        rounds,
        seconds: Duration::from_secs(4),
        seed: 11,
        wait,
        writers: 4,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_fault_nothing_is_lost_failed_or_unknown() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster.count_lost_writes(&spec(FaultKind::None, 0, 0)).await?;
    eprintln!("{} writes acknowledged in {:.1} s", report.acknowledged, report.seconds);
    assert!(report.acknowledged > 100, "{report:?}");
    assert_eq!(report.attempted, report.acknowledged, "{report:?}");
    assert_eq!(
        (report.lost, report.unexpected, report.failed, report.unknown),
        (0, 0, 0, 0)
    );
    assert!(report.longest_stall < 1.0, "{report:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_confirmed_by_wait_survive_several_failovers() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster.count_lost_writes(&spec(FaultKind::Failover, 2, 1)).await?;
    eprintln!("{report:?}");
    assert_eq!(report.rounds.len(), 2);
    assert!(report.rounds.iter().all(|r| r.takeover.is_some()), "{report:?}");
    assert!(report.acknowledged > 100, "{report:?}");
    assert_eq!(
        (report.lost, report.promise_broken),
        (0, false),
        "{:?}",
        report.lost_keys
    );
    assert!(report.longest_stall > 0.5, "a failover stalls some writes: {report:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minority_partition_loses_what_its_master_acknowledged_in_the_window() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let report = cluster.count_lost_writes(&spec(FaultKind::Partition, 1, 0)).await?;
    eprintln!("{report:?}");
    let round = &report.rounds[0];
    let takeover = round.takeover.expect("a replica took over on the majority side");
    assert!(
        report.lost > 0,
        "the minority master acknowledged writes that are gone: {report:?}"
    );
    // At most what the whole cluster acknowledged from the cut to the takeover (a third of it went to the
    // minority master), with a second of margin.
    let rate = report.acknowledged as f64 / report.seconds;
    assert!(
        (report.lost as f64) <= rate * (takeover + 1.0),
        "{} lost, more than the window holds ({rate:.0}/s over {takeover:.2} s): {report:?}",
        report.lost
    );
    assert!(!report.promise_broken, "a partition promises nothing");
    Ok(())
}
