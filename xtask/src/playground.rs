//! What the playground commands share: output that survives a closed pipe, the signals that undo a half-made
//! change, the cluster found by name, and the topology table.

use cluster_tests::playground::PLAYGROUND;
use cluster_tests::playground::{self as harness, Docker};
use cluster_tests::server::topology::{ClusterNodes, Role, format_ranges};
use cluster_tests::{Cluster, Error, ErrorKind, Remedy, Result};
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

/// `cargo xtask ARGS` as typed to act on cluster `name`, in backquotes: with `--cluster NAME` unless it is the
/// default, so a hint never acts on another cluster.
pub(crate) fn command(name: &str, args: &str) -> String {
    if name == PLAYGROUND {
        format!("`cargo xtask {args}`")
    } else {
        format!("`cargo xtask --cluster {name} {args}`")
    }
}

/// The CLI's advice for an error of the harness on cluster `name`, in the CLI's own commands and flags: the
/// library names its own knobs, and says by kind and [`Remedy`] what would get past the error.
pub(crate) fn hint(name: &str, e: &Error) -> Option<String> {
    let on = |args: &str| command(name, args);
    Some(match e.remedy() {
        Some(Remedy::RemoveCluster) => format!("{} removes it", on("stop")),
        Some(Remedy::RemoveAbandoned) => "`cargo xtask stop --all` tries again".to_owned(),
        Some(Remedy::CreateCluster) => format!("{} makes it", on("create")),
        Some(Remedy::Resume(port)) => format!("{} thaws it", on(&format!("resume --port {port}"))),
        Some(Remedy::Restart(port)) => format!("{} starts it", on(&format!("restart --port {port}"))),
        Some(Remedy::AddMaster) => format!("{} first", on("add-master")),
        Some(Remedy::JoinReplicaOf(port)) => format!("{} adds one", on(&format!("join --replicate {port}"))),
        Some(Remedy::RebalanceOrRemove(port)) => format!(
            "{} tries again, {} takes it out again",
            on("rebalance"),
            on(&format!("remove-master {port}"))
        ),
        Some(Remedy::Forget) => format!("{} tries again", on("forget")),
        Some(Remedy::FinishOrAbortHeld) => {
            format!(
                "{} finishes it, {} rolls it back",
                on("reshard --finish"),
                on("reshard --abort")
            )
        }
        Some(Remedy::HoldSlot) => format!("{} holds one", on("reshard --hold --from P --to Q --slots 1")),
        Some(Remedy::MoreSparePorts) => format!("make the cluster with more: {}", on("create --spare-ports N")),
        Some(Remedy::Force) => "pass --force to remove it anyway".to_owned(),
        Some(Remedy::InstallBuildTools) => {
            format!(
                "`cargo xtask build` run as root installs it itself; {} runs an image you have",
                on("create --image REF")
            )
        }
        Some(Remedy::LocalImage) => format!("{} builds one of the matrix here", on("create --version V")),
        Some(Remedy::NoImageCli) => format!("send single commands with {}", on("connect -- CMD")),
        _ if matches!(e.kind(), ErrorKind::PortTaken(_)) => {
            format!("pick another range with {}", on("create --port-base PORT"))
        }
        _ => return None,
    })
}

pub(crate) async fn find(name: &str) -> Result<Cluster> {
    harness::find(&Docker::connect().await?, name).await
}

/// The node on `port`, or the first live one that answers a `PING` (a node cut off or behind a lossy link is
/// skipped, within the connect and response timeouts).
pub(crate) async fn pick(cluster: &Cluster, port: Option<u16>) -> Result<cluster_tests::Node> {
    let stop = command(cluster.name(), "stop");
    if let Some(port) = port {
        return cluster.node(port).await;
    }
    let live: Vec<cluster_tests::Node> = cluster
        .nodes()
        .await?
        .into_iter()
        .filter(|n| n.addr.is_some())
        .collect();
    if live.is_empty() {
        return Err(Error::refused(format!(
            "the cluster has no running node; {stop} clears it"
        )));
    }
    let mut silent = Vec::new();
    for node in live {
        let addr = node.addr.expect("filtered on a running node");
        match cluster.access().command::<String>(addr, &["PING"]).await {
            Ok(_) => return Ok(node),
            Err(e) => silent.push(format!("{}: {e}", node.port)),
        }
    }
    Err(Error::timeout(format!(
        "no running node answers: {}; {} removes cuts and slow links",
        silent.join("; "),
        command(cluster.name(), "heal")
    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_a_cluster_that_is_not_the_default() {
        assert_eq!(command(PLAYGROUND, "stop"), "`cargo xtask stop`");
        assert_eq!(command("probe1", "heal"), "`cargo xtask --cluster probe1 heal`");
        let taken = Error::port_taken(7001, "port 7001 is in use");
        assert_eq!(
            hint("probe1", &taken).as_deref(),
            Some("pick another range with `cargo xtask --cluster probe1 create --port-base PORT`")
        );

        assert_eq!(hint("probe1", &Error::refused("bad input")), None);
    }
}
