//! `cargo xtask add-master`, `remove-master` and `rebalance`: scale the cluster out and in, even out slots.

use cluster_tests::{Error, MovesReport, Result};

use crate::playground::{Interrupts, command, find, out, print_topology};

/// What to do after a scaling command on cluster `name` was interrupted midway.
fn recover(name: &str) -> String {
    format!(
        "slots may be half-way: {} shows the map, {} or {} ends a slot left in migration, then {} evens out the \
         slots (and {} removes a new master)",
        command(name, "nodes"),
        command(name, "reshard --finish"),
        command(name, "reshard --abort"),
        command(name, "rebalance"),
        command(name, "remove-master P")
    )
}

/// Runs `step` on cluster `name` until it ends or SIGINT, SIGTERM or SIGHUP comes; then it stops between two
/// server commands and says how to carry on.
async fn interruptible<T>(name: &str, step: impl Future<Output = Result<T>>) -> Result<T> {
    let mut interrupts = Interrupts::catch()?;
    tokio::select! {
        done = step => done,
        signal = interrupts.next() => Err(Error::other(format!("interrupted by {signal}; {}", recover(name)))),
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

/// Runs `add-master` on the cluster called `name`.
pub async fn add_master(name: &str, args: AddMasterArgs) -> Result<()> {
    let cluster = find(name).await?;
    let report = interruptible(name, cluster.add_master(args.port, args.replicas)).await?;
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
    let report = interruptible(name, cluster.remove_master(args.port)).await?;
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
    let report = interruptible(name, cluster.rebalance()).await?;
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
