//! `cargo xtask add-master`, `remove-master` and `rebalance`: scale the cluster out and in, even out slots.

use cluster_tests::playground as harness;
use cluster_tests::{Cluster, Error, MovesReport, Remedy, Result};

use crate::playground::{Interrupts, command, find, out, print_topology, say};

/// What to do after a scaling command on cluster `name` was interrupted midway.
fn recover(name: &str) -> String {
    format!(
        "what had moved stays moved: {} shows the map, {} evens out the slots",
        command(name, "nodes"),
        command(name, "rebalance")
    )
}

/// Runs `step` on `cluster` until it ends or SIGINT, SIGTERM or SIGHUP comes; then it stops between two server
/// commands, rolls back the slots caught half-way, and says how to carry on.
async fn interruptible<T>(cluster: &Cluster, step: impl Future<Output = Result<T>>) -> Result<T> {
    let mut interrupts = Interrupts::catch()?;
    let signal = tokio::select! {
        done = step => return done,
        signal = interrupts.next() => signal,
    };
    Err(Error::other(format!(
        "interrupted by {signal}; {}; {}",
        roll_back(cluster).await,
        recover(cluster.name())
    )))
}

/// Rolls back every slot left marked half-way, and says so.
async fn roll_back(cluster: &Cluster) -> String {
    match cluster.abort_held().await {
        Ok(held) => format!("{} slot(s) caught half-way rolled back", held.len()),
        Err(e) if e.remedy() == Some(Remedy::HoldSlot) => "no slot was caught half-way".to_owned(),
        Err(e) => format!("rolling back the slots caught half-way failed ({e})"),
    }
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

/// Runs `add-master` on the cluster called `name`. SIGINT, SIGTERM or SIGHUP undoes it: the new nodes go unless
/// slots had already moved onto the master.
pub async fn add_master(name: &str, args: AddMasterArgs) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let plan = harness::plan_add_master(&cluster, args.port, args.replicas).await?;
    let report = tokio::select! {
        report = harness::carry_out_add_master(&cluster, &plan) => report?,
        signal = interrupts.next() => {
            say(&format!("interrupted by {signal}; undoing the add-master"));
            let undone = harness::undo_add_master(&cluster, &plan).await?;
            let removed: Vec<String> = undone.removed.iter().map(u16::to_string).collect();
            let mut what = format!(
                "interrupted by {signal}; {} slot(s) caught half-way rolled back, new node(s) removed and \
                 forgotten: {}",
                undone.rolled_back,
                if removed.is_empty() { "none".into() } else { removed.join(", ") }
            );
            if let Some(port) = undone.kept {
                what.push_str(&format!(
                    "; master {port} already serves slots and stays: {} drains and removes it, {} evens out the \
                     slots",
                    command(name, &format!("remove-master {port}")),
                    command(name, "rebalance")
                ));
            }
            return Err(Error::other(what));
        }
    };
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

/// Runs `remove-master` on the cluster called `name`.
pub async fn remove_master(name: &str, args: RemoveMasterArgs) -> Result<()> {
    let cluster = find(name).await?;
    let report = interruptible(&cluster, cluster.remove_master(args.port)).await?;
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

/// Runs `rebalance` on the cluster called `name`.
pub async fn rebalance(name: &str) -> Result<()> {
    let cluster = find(name).await?;
    let report = interruptible(&cluster, cluster.rebalance()).await?;
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
