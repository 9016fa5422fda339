//! `cargo xtask join` and `cargo xtask forget`: a node added as a replica, and gone nodes forgotten.

use cluster_tests::playground as harness;
use cluster_tests::{Error, Result};

use crate::playground::{Interrupts, command, find, out, print_topology, say};

/// Options of `cargo xtask join`.
#[derive(clap::Args)]
pub struct JoinArgs {
    /// Port of the master to replicate.
    #[arg(long)]
    replicate: Option<u16>,
    /// Port for the new node (default: the lowest free one, e.g. the failed master's).
    #[arg(long)]
    port: Option<u16>,
}

/// `join`: adds a replica and reports when it is synced. SIGINT, SIGTERM or SIGHUP removes the node being joined.
pub async fn join(name: &str, args: JoinArgs) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let plan = harness::plan_join(&cluster, args.replicate, args.port).await?;
    say(&format!(
        "joining a node on port {} as a replica of {}",
        plan.port, plan.master_port
    ));
    let report = tokio::select! {
        report = harness::carry_out_join(&cluster, &plan) => report?,
        signal = interrupts.next() => {
            harness::undo_join(&cluster, &plan).await?;
            return Err(Error::other(format!(
                "interrupted by {signal}; removed the node being joined on port {} (if others had met it, \
                 {} clears it from their tables)",
                plan.port,
                command(name, "forget")
            )));
        }
    };
    out!(
        "node {} joined as a replica of {} and is synced ({:.2} s)",
        report.port,
        report.master,
        report.ready_after.as_secs_f64()
    );
    let topology = cluster.topology().await?;
    print_topology(&topology);
    if topology.nodes.iter().any(|n| n.is_failed()) {
        out!(
            "failed nodes are still known to the cluster; {} removes them",
            command(name, "forget")
        );
    }
    Ok(())
}

/// `forget`: every live node forgets the nodes whose containers are gone; stopped ones are left known.
pub async fn forget(name: &str) -> Result<()> {
    let cluster = find(name).await?;
    let report = cluster.forget_gone().await?;
    if report.forgotten.is_empty() {
        out!("no gone node to forget");
    } else {
        out!(
            "forgot {} gone node(s): {}",
            report.forgotten.len(),
            report.forgotten.join(", ")
        );
    }
    for (port, state) in &report.left_alone {
        out!(
            "left node {port} known: its container is {state}, not gone (remove it with `docker rm -f \
             {name}-{port}` first to have it forgotten)"
        );
    }
    Ok(())
}
