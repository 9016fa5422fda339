//! `cargo xtask reshard`: move slots with their keys between masters, or hold one half-way for ASK tests.

use cluster_tests::server::topology::{SlotRange, format_ranges};
use cluster_tests::{Cluster, Error, Reshard, Result, Slots, has_atomic_migration};

use crate::playground::{Interrupts, command, find, out};

/// Options of `cargo xtask reshard`.
#[derive(clap::Args)]
pub struct Args {
    /// How many of the source's slots to move (its lowest first).
    #[arg(long, conflicts_with = "slot_range", required_unless_present_any = ["slot_range", "finish", "abort"])]
    slots: Option<usize>,
    /// Exactly these slots (`A-B` or one slot), all owned by the source.
    #[arg(long, value_name = "A-B")]
    slot_range: Option<SlotRange>,
    /// Port of the master the slots leave.
    #[arg(long, required_unless_present_any = ["finish", "abort"])]
    from: Option<u16>,
    /// Port of the master they go to.
    #[arg(long, required_unless_present_any = ["finish", "abort"])]
    to: Option<u16>,
    /// Use the classic SETSLOT / MIGRATE sequence even where the server has atomic migration.
    #[arg(long)]
    classic: bool,
    /// Stop half-way through the last slot: MIGRATING on the source, IMPORTING on the target, half its keys moved.
    #[arg(long)]
    hold: bool,
    /// Complete the held slot's migration.
    #[arg(long, conflicts_with_all = ["slots", "slot_range", "from", "to", "classic", "hold", "abort"])]
    finish: bool,
    /// Roll the held slot's migration back to its source.
    #[arg(long, conflicts_with_all = ["slots", "slot_range", "from", "to", "classic", "hold"])]
    abort: bool,
}

/// Runs `reshard` on the cluster called `name`. SIGINT, SIGTERM or SIGHUP stops a move between two server
/// commands and rolls back the slots marked half-way (the batch in flight); what had moved stays moved.
pub async fn run(name: &str, args: Args) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    if args.abort {
        let held = cluster.abort_held().await?;
        for h in &held {
            out!(
                "rolled slot {} back to {}: its {} moved keys are home again",
                h.slot,
                h.from,
                h.moved
            );
        }
        out!("{} slot(s) rolled back; none is marked in migration now", held.len());
        return Ok(());
    }
    let report = if args.finish {
        cluster.finish_held().await?
    } else {
        let slots = match (args.slots, args.slot_range) {
            (Some(n), _) => Slots::Count(n),
            (_, Some(range)) => Slots::Range(range),
            _ => return Err(Error::refused("say which slots: --slots N or --slot-range A-B")),
        };
        let (from, to) = (args.from.expect("clap requires it"), args.to.expect("clap requires it"));
        let mut reshard = Reshard::new(from, to, slots);
        reshard.classic = args.classic;
        reshard.hold = args.hold;
        let before = served_by(&cluster, from).await?;
        tokio::select! {
            report = cluster.reshard(&reshard) => report?,
            signal = interrupts.next() => {
                let atomic = !args.classic
                    && !args.hold
                    && has_atomic_migration(cluster.access(), cluster.addr(from).await?).await?;
                return Err(interrupted(&cluster, name, signal, (from, to, before), atomic).await);
            }
        }
    };
    out!(
        "moved {} slots ({}) with {} keys from {} to {} in {:.2} s ({:?})",
        report.slots.iter().map(SlotRange::len).sum::<usize>(),
        format_ranges(&report.slots),
        report.keys,
        report.from,
        report.to,
        report.took.as_secs_f64(),
        report.method
    );
    if let Some(held) = report.held {
        out!("holding {held}; `reshard --finish` or `--abort` ends it");
    }
    Ok(())
}

/// Slots the master on `port` serves, as it says itself.
async fn served_by(cluster: &Cluster, port: u16) -> Result<usize> {
    let view = cluster.access().view(cluster.addr(port).await?).await;
    Ok(view
        .ok()
        .and_then(|v| v.nodes.myself().map(|me| me.slots.iter().map(SlotRange::len).sum()))
        .unwrap_or(0))
}

/// After a signal cut a move from `from` to `to` short: rolls back the slots left marked half-way and says what
/// moved and what is left.
/// `atomic`: the server itself was moving them (`CLUSTER MIGRATESLOTS`), and carries on without the CLI.
async fn interrupted(
    cluster: &Cluster,
    name: &str,
    signal: &str,
    (from, to, before): (u16, u16, usize),
    atomic: bool,
) -> Error {
    if atomic {
        return Error::other(format!(
            "interrupted by {signal}; the server's own atomic migration from {from} to {to} carries on and \
             completes by itself; {} shows the map",
            command(name, "nodes")
        ));
    }
    let rolled = match cluster.abort_held().await {
        Ok(held) => format!("{} slot(s) caught half-way rolled back to {from}", held.len()),
        Err(e) if e.remedy() == Some(cluster_tests::Remedy::HoldSlot) => "no slot was caught half-way".to_owned(),
        Err(e) => {
            return e.context(format!(
                "interrupted by {signal}; rolling back the slots caught half-way failed; {} tries again",
                command(name, "reshard --abort")
            ));
        }
    };
    let moved = match served_by(cluster, from).await {
        Ok(after) => format!("{} slot(s) had moved from {from} to {to}", before.saturating_sub(after)),
        Err(e) => format!("what had moved is unknown ({e})"),
    };
    Error::other(format!(
        "interrupted by {signal}: {moved} and stay there; {rolled}; {} shows the map",
        command(name, "nodes")
    ))
}
