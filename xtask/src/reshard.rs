//! `cargo xtask reshard`: move slots with their keys between masters, or hold one half-way for ASK tests.

use cluster_tests::server::topology::{SlotRange, format_ranges};
use cluster_tests::{Error, Reshard, ReshardReport, Result, Slots, Stopped, has_atomic_migration};

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

/// Runs `reshard` on the cluster called `name`. SIGINT, SIGTERM or SIGHUP stops a classic move at its next step:
/// each slot of the batch in flight is finished or rolled back, what had moved stays moved, and the error says which.
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
        let atomic =
            !args.classic && !args.hold && has_atomic_migration(cluster.access(), cluster.addr(from).await?).await?;
        if atomic {
            tokio::select! {
                report = cluster.reshard(&reshard) => report?,
                signal = interrupts.next() => return Err(Error::other(format!(
                    "interrupted by {signal}; the server's own atomic migration from {from} to {to} carries on and \
                     completes by itself; {} shows the map",
                    command(name, "nodes")
                ))),
            }
        } else {
            let mut caught = None;
            let stop = async { caught = Some(interrupts.next().await) };
            let report = cluster.reshard_until_stopped(&reshard, stop).await?;
            if let (Some(signal), Some(how)) = (caught, &report.stopped) {
                return Err(interrupted(name, signal, &report, how));
            }
            report
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

/// What a classic move stopped by `signal` left: what had moved, how the batch in flight ended, what was not begun.
fn interrupted(name: &str, signal: &str, report: &ReshardReport, how: &Stopped) -> Error {
    let (from, to) = (report.from, report.to);
    Error::other(format!(
        "interrupted by {signal}: {} slot(s) had moved from {from} to {to} and stay there; {}; {} slot(s) not \
         begun; no slot is left marked; {} shows the map",
        report.slots.iter().map(SlotRange::len).sum::<usize>(),
        in_flight(report, how),
        how.untouched,
        command(name, "nodes")
    ))
}

/// "of the batch in flight, A finished on TO and B rolled back to FROM (K keys moved back)", or that none was.
pub(crate) fn in_flight(report: &ReshardReport, how: &Stopped) -> String {
    if how.finished.is_empty() && how.rolled_back.is_empty() {
        return "no batch was in flight".to_owned();
    }
    let list = |r: &[SlotRange]| {
        if r.is_empty() {
            "none".to_owned()
        } else {
            format_ranges(r)
        }
    };
    format!(
        "of the batch in flight, {} finished on {} and {} rolled back to {} ({} keys moved back)",
        list(&how.finished),
        report.to,
        list(&how.rolled_back),
        report.from,
        how.keys_back
    )
}
