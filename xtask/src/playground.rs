//! What the playground commands share: output that survives a closed pipe, the signals that undo a half-made
//! change, the cluster found by name, and the topology table.

use cluster_tests::playground::{self as harness, Docker};
use cluster_tests::server::topology::{ClusterNodes, Role, format_ranges};
use cluster_tests::{Cluster, Error, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Prints a line to stdout and ignores a failed write: the commands that change the cluster keep SIGPIPE ignored
/// (see `main`), so a closed pipe (`cargo xtask create | head -1`) or a hung-up terminal never cuts one short
/// between two steps.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use out;

pub(crate) fn say(line: &str) {
    out!("  {line}");
}

/// SIGINT, SIGTERM and SIGHUP, caught from when this is made: each means "stop and undo what is half-made".
pub(crate) struct Interrupts([Signal; 3]);

impl Interrupts {
    pub(crate) fn catch() -> Result<Self> {
        let catch = |kind| signal(kind).map_err(|e| Error::other(format!("catching signals: {e}")));
        Ok(Self([
            catch(SignalKind::interrupt())?,
            catch(SignalKind::terminate())?,
            catch(SignalKind::hangup())?,
        ]))
    }

    /// Waits for the first of them and returns its name.
    pub(crate) async fn next(&mut self) -> &'static str {
        let [int, term, hup] = &mut self.0;
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        }
    }
}

pub(crate) async fn find(name: &str) -> Result<Cluster> {
    harness::find(&Docker::connect().await?, name).await
}

/// The node on `port`, or the first live one.
pub(crate) async fn pick(cluster: &Cluster, port: Option<u16>) -> Result<cluster_tests::Node> {
    match port {
        Some(port) => cluster.node(port).await,
        None => cluster
            .nodes()
            .await?
            .into_iter()
            .find(|n| n.addr.is_some())
            .ok_or_else(|| Error::refused("the cluster has no running node; `cargo xtask stop` clears it")),
    }
}

/// Prints one line per node: port, role, address, slots and the master it replicates.
pub(crate) fn print_topology(topology: &ClusterNodes) {
    let mut nodes: Vec<_> = topology.nodes.iter().collect();
    nodes.sort_by_key(|n| (n.port().unwrap_or(u16::MAX), n.id.clone()));
    out!(
        "  {:<6} {:<14} {:<22} {:<14} REPLICATES",
        "PORT",
        "ROLE",
        "ADDRESS",
        "SLOTS"
    );
    for n in nodes {
        let mut role = match n.role {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Unknown => "?",
        }
        .to_owned();
        if n.is_failing() {
            role.push_str(",fail");
        }
        let of = n
            .master_id
            .as_deref()
            .and_then(|id| topology.get(id))
            .and_then(|m| m.port());
        out!(
            "  {:<6} {:<14} {:<22} {:<14} {}",
            n.port().map_or("-".into(), |p| p.to_string()),
            role,
            n.addr.map_or("-".into(), |a| a.to_string()),
            format_ranges(&n.slots),
            of.map_or(String::new(), |p| p.to_string())
        );
    }
}
