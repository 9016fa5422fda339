//! `cargo xtask info` and `cargo xtask nodes`: what a live node says of the cluster.

use cluster_tests::{Cluster, Result};

use crate::playground::{find, out, pick};

/// Options of `cargo xtask info` and `cargo xtask nodes`.
#[derive(clap::Args)]
pub struct Args {
    /// Node port (default: any live node).
    #[arg(long)]
    port: Option<u16>,
}

/// `info` / `nodes`: prints `CLUSTER <what>` of a live node as the server prints it; `nodes` adds a line for each
/// migration marker a node shows (the server prints them only on the marking node's own line).
pub async fn run(name: &str, what: &str, args: Args) -> Result<()> {
    let cluster = find(name).await?;
    let node = pick(&cluster, args.port).await?;
    let text: String = cluster
        .access()
        .command(node.addr.expect("picked nodes run"), &["CLUSTER", what])
        .await?;
    print!("{}", text.replace("\r\n", "\n"));
    if what == "NODES" {
        print_markers(&cluster).await?;
    }
    Ok(())
}

/// One line per migration marker, as the node holding it shows it on its own line (each node is asked; one that
/// does not answer is named, not guessed for).
async fn print_markers(cluster: &Cluster) -> Result<()> {
    for addr in cluster.live_addrs().await? {
        let view = match cluster.access().view(addr).await {
            Ok(view) => view,
            Err(e) => {
                out!(
                    "# {} did not answer, its migration markers are unknown: {e}",
                    addr.port()
                );
                continue;
            }
        };
        let Some(me) = view.nodes.myself() else { continue };
        let port_of = |id: &str| {
            view.nodes
                .get(id)
                .and_then(|n| n.port())
                .map_or_else(|| id.to_owned(), |p| p.to_string())
        };
        for (slot, to) in &me.migrating {
            out!("# {} shows slot {slot} MIGRATING to {}", addr.port(), port_of(to));
        }
        for (slot, from) in &me.importing {
            out!("# {} shows slot {slot} IMPORTING from {}", addr.port(), port_of(from));
        }
    }
    Ok(())
}
