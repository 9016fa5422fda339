//! `cargo xtask add-master`, `remove-master` and `rebalance`: scale the cluster out and in, even out slots.

use cluster_tests::playground as harness;
use cluster_tests::{Error, MovesReport, Result};

use crate::playground::{Interrupts, command, find, out, print_topology, say};
use crate::reshard::in_flight;

/// What moves stopped by `signal` left, `then` what became of the nodes, and how to carry on.
fn interrupted(name: &str, signal: &str, moves: &MovesReport, then: &str) -> String {
    let last = moves.moves.last().and_then(|m| Some((m, m.stopped.as_ref()?)));
    format!(
        "interrupted by {signal}: {} and stay there; {}; {} planned slot(s) did not move; no slot is left marked; \
         {then}; {} shows the map, {} evens out the slots",
        moved(moves),
        last.map_or_else(|| "no move was cut short".to_owned(), |(m, how)| in_flight(m, how)),
        moves.stopped.unwrap_or(0),
        command(name, "nodes"),
        command(name, "rebalance")
    )
}

/// Options of `cargo xtask add-master`.
#[derive(clap::Args)]
pub struct AddMasterArgs {
    /// Port of the new master (default: the lowest free published port); its replicas take the lowest free ones.
    #[arg(long)]
    port: Option<u16>,
    /// Replicas of its own.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
}

/// Options of `cargo xtask remove-master`.
#[derive(clap::Args)]
pub struct RemoveMasterArgs {
    /// Port of the master to drain and remove (its replicas go with it).
    port: u16,
}

/// Runs `add-master` on the cluster called `name`. SIGINT, SIGTERM or SIGHUP undoes it: a slot move in flight
/// ends at its next step (each slot of its batch finished or rolled back), then the new nodes go unless slots had
/// already moved onto the master.
pub async fn add_master(name: &str, args: AddMasterArgs) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let plan = harness::plan_add_master(&cluster, args.port, args.replicas).await?;
    let mut caught = None;
    let stop = async { caught = Some(interrupts.next().await) };
    let done = harness::carry_out_add_master(&cluster, &plan, stop).await;
    let Some(signal) = caught else {
        return added(&cluster, done?).await;
    };
    say(&format!("interrupted by {signal}; undoing the add-master"));
    let undone = harness::undo_add_master(&cluster, &plan).await?;
    let removed: Vec<String> = undone.removed.iter().map(u16::to_string).collect();
    let removed = format!(
        "{} slot(s) caught half-way rolled back, new node(s) removed and forgotten: {}",
        undone.rolled_back,
        if removed.is_empty() {
            "none".into()
        } else {
            removed.join(", ")
        }
    );
    let mut what = match &done {
        Ok(report) => interrupted(name, signal, &report.rebalance, &removed),
        Err(_) => format!("interrupted by {signal}; {removed}"),
    };
    if let Some(port) = undone.kept {
        what.push_str(&format!(
            "; master {port} already serves slots and stays: {} drains and removes it",
            command(name, &format!("remove-master {port}")),
        ));
    }
    Err(Error::other(what))
}

/// Says what an add-master that ran to its end did.
async fn added(cluster: &cluster_tests::Cluster, report: cluster_tests::AddMasterReport) -> Result<()> {
    let replicas: Vec<String> = report.replicas.iter().map(u16::to_string).collect();
    out!(
        "added master {} with {} replica(s) ({}); {} in {:.2} s",
        report.port,
        replicas.len(),
        if replicas.is_empty() {
            "-".into()
        } else {
            replicas.join(", ")
        },
        moved(&report.rebalance),
        report.took.as_secs_f64()
    );
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// Runs `remove-master` on the cluster called `name`. SIGINT, SIGTERM or SIGHUP during the drain ends the move in
/// flight at its next step and keeps the master; after the drain, the removal finishes.
pub async fn remove_master(name: &str, args: RemoveMasterArgs) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let mut caught = None;
    let stop = async { caught = Some(interrupts.next().await) };
    let report = cluster.remove_master_until_stopped(args.port, stop).await?;
    if let (Some(signal), Some(_)) = (caught, report.drain.stopped) {
        let then = format!("master {} and its replicas stay", args.port);
        return Err(Error::other(interrupted(name, signal, &report.drain, &then)));
    }
    out!(
        "removed master {} and its {} replica(s); {} in {:.2} s",
        report.port,
        report.replicas.len(),
        moved(&report.drain),
        report.took.as_secs_f64()
    );
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// Runs `rebalance` on the cluster called `name`. SIGINT, SIGTERM or SIGHUP ends the move in flight at its next
/// step and begins no other.
pub async fn rebalance(name: &str) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let mut caught = None;
    let stop = async { caught = Some(interrupts.next().await) };
    let report = cluster.rebalance_until_stopped(stop).await?;
    if let (Some(signal), Some(_)) = (caught, report.stopped) {
        return Err(Error::other(interrupted(name, signal, &report, "every master stays")));
    }
    for m in &report.moves {
        out!(
            "  {} -> {}: {} slots, {} keys ({:?})",
            m.from,
            m.to,
            m.slots.iter().map(|r| r.len()).sum::<usize>(),
            m.keys,
            m.method
        );
    }
    if report.moves.is_empty() {
        out!("slots are already even; nothing moved");
    } else {
        out!("rebalanced: {} in {:.2} s", moved(&report), report.took.as_secs_f64());
    }
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// "N slots and K keys moved in M moves".
fn moved(report: &MovesReport) -> String {
    format!(
        "{} slots and {} keys moved in {} move(s)",
        report.slots(),
        report.keys(),
        report.moves.len()
    )
}
