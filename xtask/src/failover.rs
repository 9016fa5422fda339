//! `cargo xtask failover`: a master removed (or swapped with its replica), and the takeover reported.

use cluster_tests::server::topology::format_ranges;
use cluster_tests::{FailoverKind, Result};

use crate::playground::{find, out, print_topology};

/// Options of `cargo xtask failover`.
#[derive(clap::Args)]
pub struct Args {
    /// Port of the master to fail (default: the master with the lowest port).
    #[arg(long)]
    port: Option<u16>,
    /// Remove it even if no replica can take over (the cluster goes down).
    #[arg(long, conflicts_with = "manual")]
    force: bool,
    /// Do a coordinated CLUSTER FAILOVER on its replica instead of removing it.
    #[arg(long)]
    manual: bool,
}

/// `failover`: removes a master (or, with `manual`, swaps it with its replica) and reports the takeover.
pub async fn run(name: &str, args: Args) -> Result<()> {
    let cluster = find(name).await?;
    let kind = if args.manual {
        FailoverKind::Manual
    } else {
        FailoverKind::RemoveMaster { force: args.force }
    };
    // The steps (what was removed, who was promoted and when) come as the harness's progress lines.
    let report = cluster.failover(args.port, kind).await?;
    match report.new_master {
        Some(new) => out!(
            "replica {new} took over slots {}; cluster_state:ok on every node after {:.2} s (node timeout {} ms)",
            format_ranges(&report.slots),
            report.ready_after.as_secs_f64(),
            cluster.node_timeout().as_millis()
        ),
        _ => out!(
            "no replica could take over: the cluster marked {} failed after {:.2} s and is down",
            report.old_master,
            report.ready_after.as_secs_f64()
        ),
    }
    print_topology(&cluster.topology().await?);
    Ok(())
}
