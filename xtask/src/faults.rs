//! The fault commands: pause, resume, kill, restart, partition, slow, heal.

use std::time::Duration;

use cluster_tests::server::topology::Role;
use cluster_tests::{Cluster, Cut, Error, FaultStart, Rejoin, Result};

use crate::playground::{Interrupts, command, find, out, print_topology};

/// Options of `cargo xtask pause`.
#[derive(clap::Args)]
pub struct PauseArgs {
    /// Node port (default: the master with the lowest port).
    #[arg(long)]
    port: Option<u16>,
    /// Resume it by itself after SECONDS (this command waits; killed with SIGKILL, it leaves it paused).
    #[arg(long = "for", value_name = "SECONDS")]
    for_seconds: Option<f64>,
}

/// Options of `cargo xtask resume`.
#[derive(clap::Args)]
pub struct ResumeArgs {
    /// Node port (default: the one paused node).
    #[arg(long)]
    port: Option<u16>,
}

/// Options of `cargo xtask kill`.
#[derive(clap::Args)]
pub struct KillArgs {
    /// Node port (default: the master with the lowest port).
    #[arg(long)]
    port: Option<u16>,
}

/// Options of `cargo xtask restart`.
#[derive(clap::Args)]
pub struct RestartArgs {
    /// Node port (default: the one stopped node).
    #[arg(long)]
    port: Option<u16>,
}

/// Options of `cargo xtask partition`.
#[derive(clap::Args)]
pub struct PartitionArgs {
    /// Cut this node off from every other node.
    #[arg(long, value_name = "PORT", conflicts_with = "split")]
    isolate: Option<u16>,
    /// With --isolate: clients on the host can still reach the node (the minority-master case).
    #[arg(long)]
    keep_clients: bool,
    /// These nodes on one side, every other node on the other.
    #[arg(long, value_name = "P,Q,...", value_delimiter = ',')]
    split: Option<Vec<u16>>,
}

/// Options of `cargo xtask slow`.
#[derive(clap::Args)]
pub struct SlowArgs {
    /// Node port (default: the master with the lowest port).
    #[arg(long)]
    port: Option<u16>,
    /// Milliseconds added to every packet the node sends and every packet sent to it.
    #[arg(long, default_value_t = 0)]
    delay: u64,
    /// Percentage of those packets dropped.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
}

/// `pause`: freezes a node; with `for_seconds`, resumes it by itself afterwards (also on SIGINT, SIGTERM or
/// SIGHUP; a SIGKILL of this process leaves it paused, for `resume` or `stop`).
pub async fn pause(name: &str, PauseArgs { port, for_seconds }: PauseArgs) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let hold = for_seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
                .ok_or_else(|| Error::refused(format!("--for {s}: give 0 < SECONDS <= 3600")))
        })
        .transpose()?;
    let fault = cluster.pause(port).await?;
    let Some(hold) = hold else {
        report_takeover(&cluster, &fault).await?;
        out!(
            "node {} stays paused; {} thaws it",
            fault.port,
            command(name, &format!("resume --port {}", fault.port))
        );
        return Ok(());
    };
    // The whole hold, the takeover's report and the rest of the time alike, gives way to a signal.
    let held = async {
        let takeover = cluster.wait_takeover(&fault, hold).await?;
        print_takeover(&fault, takeover.map(|t| (t.by, t.after)));
        tokio::time::sleep(hold.saturating_sub(fault.at.elapsed())).await;
        Ok::<_, Error>(())
    };
    // Whatever ends the hold (its time, a failed watch, a signal), the node is thawed before this returns.
    let ended = tokio::select! {
        held = held => held,
        signal = interrupts.next() => Err(Error::other(format!(
            "interrupted by {signal}; resumed node {} early",
            fault.port
        ))),
    };
    let rejoin = cluster.resume(Some(fault.port)).await?;
    print_rejoin(&rejoin);
    print_topology(&cluster.topology().await?);
    ended
}

/// `resume`: thaws a paused node and reports what it became.
pub async fn resume(name: &str, ResumeArgs { port }: ResumeArgs) -> Result<()> {
    let cluster = find(name).await?;
    let rejoin = cluster.resume(port).await?;
    print_rejoin(&rejoin);
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// `kill`: SIGKILLs a node's process (its container and files stay) and reports a takeover.
pub async fn kill(name: &str, KillArgs { port }: KillArgs) -> Result<()> {
    let cluster = find(name).await?;
    let fault = cluster.kill(port).await?;
    report_takeover(&cluster, &fault).await?;
    out!(
        "node {} is stopped; {} starts it with the files it had{}",
        fault.port,
        command(name, &format!("restart --port {}", fault.port)),
        if cluster.persists() {
            " (its data too: persistence is on)"
        } else {
            " (but no data: the cluster was made without --persist)"
        }
    );
    Ok(())
}

/// `restart`: starts a killed node again and reports what it became.
pub async fn restart(name: &str, RestartArgs { port }: RestartArgs) -> Result<()> {
    let cluster = find(name).await?;
    let rejoin = cluster.restart(port).await?;
    print_rejoin(&rejoin);
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// `partition`: cuts nodes off and reports what the minority master and the majority did.
pub async fn partition(
    name: &str,
    PartitionArgs {
        isolate,
        keep_clients,
        split,
    }: PartitionArgs,
) -> Result<()> {
    let cut = match (isolate, split) {
        (Some(port), None) => Cut::Isolate { port, keep_clients },
        (None, Some(ports)) if !keep_clients => Cut::Split(ports),
        (None, Some(_)) => {
            return Err(Error::refused(
                "--keep-clients goes with --isolate (a split keeps clients)",
            ));
        }
        _ => return Err(Error::refused("give either --isolate PORT or --split P,Q,...")),
    };
    let cluster = find(name).await?;
    let report = cluster.partition(cut).await?;
    let within = cluster.node_timeout() * 5 + Duration::from_secs(10);
    for fault in &report.minority_masters {
        if keep_clients {
            match cluster.wait_refuses_writes(fault.port, fault.at, within).await? {
                Some(after) => out!(
                    "minority master {} refuses writes (CLUSTERDOWN) after {:.2} s (node timeout {} ms)",
                    fault.port,
                    after.as_secs_f64(),
                    cluster.node_timeout().as_millis()
                ),
                None => out!("minority master {} still accepts writes", fault.port),
            }
        }
        print_takeover(
            fault,
            cluster.wait_takeover(fault, within).await?.map(|t| (t.by, t.after)),
        );
    }
    out!("{} removes the cut", command(name, "heal"));
    Ok(())
}

/// `slow`: adds delay and loss to a node's links.
pub async fn slow(name: &str, SlowArgs { port, delay, loss }: SlowArgs) -> Result<()> {
    let cluster = find(name).await?;
    let fault = cluster.slow(port, Duration::from_millis(delay), loss).await?;
    out!(
        "node {} slowed: +{delay} ms, {loss}% loss; {} removes it",
        fault.port,
        command(name, "heal")
    );
    Ok(())
}

/// `heal`: removes every cut and slow link and reports when the cluster is ready again.
pub async fn heal(name: &str) -> Result<()> {
    let cluster = find(name).await?;
    let report = cluster.heal().await?;
    out!(
        "healed; cluster_state:ok on every node {:.2} s later",
        report.ready_after.as_secs_f64()
    );
    print_topology(&cluster.topology().await?);
    Ok(())
}

async fn report_takeover(cluster: &Cluster, fault: &FaultStart) -> Result<()> {
    let within = cluster.node_timeout() * 5 + Duration::from_secs(10);
    let takeover = cluster.wait_takeover(fault, within).await?;
    print_takeover(fault, takeover.map(|t| (t.by, t.after)));
    Ok(())
}

fn print_takeover(fault: &FaultStart, takeover: Option<(u16, Duration)>) {
    match (fault.was_master, fault.replicas.is_empty(), takeover) {
        (false, _, _) => out!("node {} serves no slots: no takeover to wait for", fault.port),
        (true, true, _) => out!("master {} has no replica to take over: its slots are down", fault.port),
        (true, false, Some((by, after))) => out!(
            "replica {by} promoted to master {:.2} s after the fault on {}",
            after.as_secs_f64(),
            fault.port
        ),
        (true, false, None) => out!("no replica of {} was promoted", fault.port),
    }
}

fn print_rejoin(rejoin: &Rejoin) {
    let what = match (rejoin.role, rejoin.replicates) {
        (Role::Master, _) => "a master".to_owned(),
        (Role::Replica, Some(master)) => format!("a replica of {master}"),
        _ => "a replica".to_owned(),
    };
    out!(
        "node {} is back as {what} (id {}), cluster ready {:.2} s later",
        rejoin.port,
        &rejoin.id[..rejoin.id.len().min(12)],
        rejoin.ready_after.as_secs_f64()
    );
}
