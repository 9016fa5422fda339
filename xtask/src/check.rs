//! `check`: write while faults happen, then count what was lost.

use std::time::Duration;

use cluster_tests::faults::checker::{CheckReport, CheckSpec, FaultKind};
use cluster_tests::faults::workload::Workload;
use cluster_tests::{Cluster, Error, Result};

use crate::playground::{Interrupts, command, find, out};

/// Arguments of `cargo xtask check`.
#[derive(clap::Args)]
pub struct Args {
    /// The fault of every round.
    #[arg(long, default_value = "failover", value_parser = ["none", "failover", "pause", "kill", "partition", "slow", "mixed"])]
    fault: String,
    /// How many faults, one after the other.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The least time the writers write, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seed of the schedule (which masters, when, which faults for `mixed`): the same seed repeats a run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Count a write as acknowledged only once `WAIT N` confirms N replicas have it.
    #[arg(long, default_value_t = 0)]
    wait: usize,
    /// Concurrent writers, each with its own cluster connection.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Run this command line (`sh -c CMD`) as the writer instead: your own client, in any language, reporting
    /// one JSON line per write (docs/check-your-client.md).
    #[arg(long, value_name = "CMD")]
    workload: Option<String>,
    /// The file the workload writes its records to (it is told so in $CHECK_OUTPUT); else its stdout.
    #[arg(long, value_name = "FILE", requires = "workload")]
    workload_output: Option<std::path::PathBuf>,
    /// Draw the run's timeline to this SVG file: writes per 100 ms by outcome, the faults' windows, takeovers,
    /// lost writes, and the latency of acknowledged writes.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs the check on the playground; fails (exit 1) when a WAIT-confirmed write is lost under a fault that
/// promises to keep it. SIGINT, SIGTERM or SIGHUP stops it and undoes the fault of the round under way.
pub async fn run(name: &str, args: Args) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let seconds = Duration::try_from_secs_f64(args.seconds)
        .ok()
        .filter(|d| *d <= Duration::from_secs(3600))
        .ok_or_else(|| Error::refused(format!("--seconds {}: give 0 to 3600", args.seconds)))?;
    let spec = CheckSpec {
        fault: FaultKind::named(&args.fault)?,
        rounds: args.rounds,
        seconds,
        seed: args.seed,
        wait: args.wait,
        writers: args.writers,
    };
    let cluster = find(name).await?;
    let report = match &args.workload {
        Some(line) => {
            let workload = Workload {
                output: args.workload_output.clone(),
                ..Workload::shell(line)
            };
            tokio::select! {
                report = cluster.check_workload(&spec, &workload) => report?,
                signal = interrupts.next() => return Err(interrupted(&cluster, signal).await),
            }
        }
        None => tokio::select! {
            report = cluster.count_lost_writes(&spec) => report?,
            signal = interrupts.next() => return Err(interrupted(&cluster, signal).await),
        },
    };
    if let Some(path) = &args.plot {
        let writer = args.workload.as_deref().unwrap_or("the checker's own writers");
        let title = format!(
            "{} on {}: {} x{}, wait {}, seed {}",
            writer,
            cluster.version().map_or("?", |v| v.name.as_str()),
            args.fault,
            args.rounds,
            args.wait,
            args.seed
        );
        crate::plot::timeline(&report, &title, path)?;
        if !args.json {
            out!("plot: {}", path.display());
        }
    }
    if args.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Error::other(e.to_string()))?
        );
    } else {
        print(&report);
    }
    if report.acknowledged == 0 {
        return Err(Error::other(format!(
            "no write was acknowledged{}, so the check proved nothing",
            if report.wait > 0 {
                format!(" (confirmed by WAIT {})", report.wait)
            } else {
                String::new()
            }
        )));
    }
    if report.promise_broken {
        return Err(Error::other(format!(
            "{} write(s) confirmed by WAIT {} were lost under `{}`, which Redis Cluster promises to survive: {}",
            report.lost,
            report.wait,
            args.fault,
            report.lost_keys.join(", ")
        )));
    }
    Ok(())
}

/// After a signal cut a check short: undoes its faults and says what was undone, or what is left and how.
async fn interrupted(cluster: &Cluster, signal: &str) -> Error {
    let name = cluster.name();
    match cluster.clear_faults().await {
        Ok(cleared) => {
            let ports = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
            let mut undone = Vec::new();
            if cleared.rules_removed > 0 {
                undone.push("removed the partition and slow-link rules".to_owned());
            }
            if !cleared.resumed.is_empty() {
                undone.push(format!("thawed {}", ports(&cleared.resumed)));
            }
            if !cleared.restarted.is_empty() {
                undone.push(format!("restarted {}", ports(&cleared.restarted)));
            }
            if !cleared.strays_removed.is_empty() {
                undone.push(format!("removed the half-joined {}", ports(&cleared.strays_removed)));
            }
            if undone.is_empty() {
                undone.push("no fault was in place".to_owned());
            }
            Error::other(format!(
                "interrupted by {signal}; {}; the cluster is ready (a master a failover round removed stays \
                 removed: {} re-adds a node, {} clears it from the tables)",
                undone.join(", "),
                command(name, "join"),
                command(name, "forget")
            ))
        }
        Err(e) => e.context(format!(
            "interrupted by {signal}; undoing its fault failed: {} removes a cut, {} and {} bring nodes back",
            command(name, "heal"),
            command(name, "resume --port P"),
            command(name, "restart --port P")
        )),
    }
}

fn print(r: &CheckReport) {
    out!(
        "writes: {} attempted, {} acknowledged{}, {} failed, {} unknown in {:.1} s",
        r.attempted,
        r.acknowledged,
        if r.wait > 0 {
            format!(" (WAIT {})", r.wait)
        } else {
            String::new()
        },
        r.failed,
        r.unknown,
        r.seconds
    );
    out!(
        "lost: {} acknowledged write(s) missing or wrong {:?}",
        r.lost,
        r.lost_keys
    );
    out!("unexpected: {} failed or unknown write(s) present anyway", r.unexpected);
    if let Some(w) = &r.workload {
        out!(
            "not vouched for: {} malformed line(s), {} key(s) reported with two values, {} key(s) outside the run's prefix{}",
            w.malformed,
            w.conflicting,
            w.foreign,
            if w.examples.is_empty() {
                String::new()
            } else {
                format!(" (e.g. {})", w.examples.join("; "))
            }
        );
    }
    out!("longest stall: {:.2} s with no acknowledged write", r.longest_stall);
    for (i, round) in r.rounds.iter().enumerate() {
        out!(
            "round {}: {:?} of {} at {:.1} s: takeover {}, recovered after {:.2} s",
            i + 1,
            round.fault,
            round.port,
            round.at,
            round.takeover.map_or("none".into(), |t| format!("after {t:.2} s")),
            round.recovered
        );
    }
}
