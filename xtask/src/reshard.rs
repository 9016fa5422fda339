//! `cargo xtask reshard`: move slots with their keys between masters, or hold one half-way for ASK tests.

use cluster_tests::server::topology::{SlotRange, format_ranges};
use cluster_tests::{Error, Reshard, Result, Slots};

use crate::playground::{find, out};

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

/// Runs `reshard` on the cluster called `name`.
pub async fn run(name: &str, args: Args) -> Result<()> {
    let cluster = find(name).await?;
    if args.abort {
        for held in cluster.abort_held().await? {
            out!(
                "rolled slot {} back to {}: its {} moved keys are home again",
                held.slot,
                held.from,
                held.moved
            );
        }
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
        cluster.reshard(&reshard).await?
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
