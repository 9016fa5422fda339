//! `cargo xtask info` and `cargo xtask nodes`: what a live node says of the cluster.

use cluster_tests::Result;

use crate::playground::{find, out, pick};

/// Options of `cargo xtask info` and `cargo xtask nodes`.
#[derive(clap::Args)]
pub struct Args {
    /// Node port (default: any live node).
    #[arg(long)]
    port: Option<u16>,
}

/// `info` / `nodes`: prints `CLUSTER <what>` of a live node as the server prints it; `nodes` adds a line for a
/// slot in migration (the server marks it only on its source's and target's own lines).
pub async fn run(name: &str, what: &str, args: Args) -> Result<()> {
    let cluster = find(name).await?;
    let node = pick(&cluster, args.port).await?;
    let text: String = cluster
        .access()
        .command(node.addr.expect("picked nodes run"), &["CLUSTER", what])
        .await?;
    print!("{}", text.replace("\r\n", "\n"));
    if what == "NODES"
        && let Some(held) = cluster.held_migration().await?
    {
        out!("# held in migration: {held}");
    }
    Ok(())
}
