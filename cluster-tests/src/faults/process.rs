//! Faults of one node's process: freeze it (`pause`/`resume`) or kill it and start it again with the files it had
//! (`kill`/`restart`), and what the cluster did about it.

use std::time::{Duration, Instant};

use crate::cluster::guards;
use crate::cluster::handle::{Cluster, Node};
use crate::server::ready::Shape;
use crate::server::topology::{ClusterNodes, NodeEntry, Role};
use crate::wait::not_yet;
use crate::{Error, ErrorKind, Result, bail, wait};

/// A fault just injected into one node: who it hit and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultStart {
    /// Port of the node.
    pub port: u16,
    /// Its cluster node id.
    pub id: String,
    /// Whether it was a master serving slots.
    pub was_master: bool,
    /// Ports of its replicas (the candidates to take over), if it was a master.
    pub replicas: Vec<u16>,
    /// When the fault was injected.
    pub at: Instant,
}

/// A replica that took over a failed master's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    /// Port of the replica now master.
    pub by: u16,
    /// Time from the fault to its promotion.
    pub after: Duration,
}

/// What a node became once it came back (resumed, restarted, or its partition healed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoin {
    /// Port of the node.
    pub port: u16,
    /// The node id it has now (a restarted node keeps its id: it is in its `nodes.conf`).
    pub id: String,
    /// Its role now.
    pub role: Role,
    /// The port of the master it replicates, if it is a replica.
    pub replicates: Option<u16>,
    /// Time from bringing it back to the whole cluster being ready again.
    pub ready_after: Duration,
}

impl Cluster {
    /// Whether the nodes keep their writes on disk, so a killed node comes back with them (see
    /// [`ClusterSpec::persist`](crate::ClusterSpec)).
    pub fn persists(&self) -> bool {
        self.identity().persist
    }

    /// Freezes the process of the node on `port` (default: the master with the lowest port that serves slots)
    /// with `docker pause`: it stays in the network, its peers see it time out. [`Cluster::resume`] thaws it.
    pub async fn pause(&self, port: Option<u16>) -> Result<FaultStart> {
        let (node, fault) = guards::fault_target(self, port, "pause").await?;
        self.docker().pause(&node.id).await?;
        tracing::info!("fault: paused node {} ({})", fault.port, role_word(&fault));
        Ok(FaultStart {
            at: Instant::now(),
            ..fault
        })
    }

    /// Thaws the paused node on `port` (default: the one paused node) and waits until the cluster is ready
    /// again; says what the node became (a master whose replica took over comes back as its replica).
    pub async fn resume(&self, port: Option<u16>) -> Result<Rejoin> {
        let node = self.stopped_node(port, "paused", "resume").await?;
        self.docker().unpause(&node.id).await?;
        tracing::info!("resumed node {}", node.port);
        self.rejoin(node.port, Instant::now()).await
    }

    /// Kills the process of the node on `port` (default: the lowest master serving slots) with SIGKILL; its
    /// container stays, with its `nodes.conf` and (with [`ClusterSpec::persist`](crate::ClusterSpec)) its data.
    pub async fn kill(&self, port: Option<u16>) -> Result<FaultStart> {
        let (node, fault) = guards::fault_target(self, port, "kill").await?;
        self.docker().kill(&node.id).await?;
        tracing::info!("fault: killed node {} ({})", fault.port, role_word(&fault));
        Ok(FaultStart {
            at: Instant::now(),
            ..fault
        })
    }

    /// Starts the killed node on `port` (default: the one stopped node) again with the files it had, and waits
    /// until it answers and the cluster is ready again.
    pub async fn restart(&self, port: Option<u16>) -> Result<Rejoin> {
        let node = self.stopped_node(port, "exited", "restart").await?;
        self.docker().start(&node.id).await?;
        let start = Instant::now();
        tracing::info!("restarted node {}", node.port);
        self.rejoin(node.port, start).await
    }

    /// Waits up to `within` for a replica of the node `fault` hit to be promoted; `None` if none was.
    pub async fn wait_takeover(&self, fault: &FaultStart, within: Duration) -> Result<Option<Takeover>> {
        if !fault.was_master || fault.replicas.is_empty() {
            return Ok(None);
        }
        let roster = self.roster();
        let promoted = wait::until(
            &format!("a replica of {} to be promoted", fault.port),
            within,
            || async {
                for &port in &fault.replicas {
                    let Some(addr) = roster.addr(port).await? else { continue };
                    if let Ok(view) = self.pool().view(addr).await
                        && view
                            .nodes
                            .myself()
                            .is_some_and(|me| me.role == Role::Master && !me.slots.is_empty())
                    {
                        return Ok(port);
                    }
                }
                not_yet!("no replica of {} is master yet", fault.port)
            },
        )
        .await;
        match promoted {
            Ok(by) => Ok(Some(Takeover {
                by,
                after: fault.at.elapsed(),
            })),
            Err(e) if e.kind() == ErrorKind::Timeout => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for the node on `port` to answer and the cluster to be ready, and reads what the node is now.
    pub(crate) async fn rejoin(&self, port: u16, start: Instant) -> Result<Rejoin> {
        let timeout = self.identity().step_timeout(self.nodes().await?.len());
        let roster = self.roster();
        let addr = wait::until(&format!("node {port} to answer"), timeout, || async {
            let Some(addr) = roster.addr(port).await? else {
                not_yet!("node {port} is not running")
            };
            match self.pool().view(addr).await {
                Ok(_) => Ok(addr),
                // What Docker says of its container goes into the timeout error (a full matrix once saw a resumed
                // node answer nothing for 26.5 s while Docker listed it running).
                Err(e) => match self.nodes().await?.into_iter().find(|n| n.port == port) {
                    Some(node) => not_yet!("{e} (Docker: its container is {})", node.state),
                    None => not_yet!("{e} (Docker: its container is gone)"),
                },
            }
        })
        .await?;
        self.wait_ready(Shape::Any, timeout)
            .await
            .map_err(|e| e.context(format!("after node {port} came back")))?;
        let view = self.pool().view(addr).await?;
        let me = view
            .nodes
            .myself()
            .ok_or_else(|| Error::redis(format!("node {port} does not list itself")))?;
        Ok(Rejoin {
            port,
            id: me.id.clone(),
            role: me.role,
            replicates: me
                .master_id
                .as_deref()
                .and_then(|id| view.nodes.get(id))
                .and_then(NodeEntry::port),
            ready_after: start.elapsed(),
        })
    }

    /// The node in Docker state `state` on `port`, or the only one in that state.
    async fn stopped_node(&self, port: Option<u16>, state: &str, verb: &str) -> Result<Node> {
        let nodes = self.nodes().await?;
        let matching: Vec<&Node> = nodes
            .iter()
            .filter(|n| n.state == state && port.is_none_or(|p| p == n.port))
            .collect();
        match (matching.as_slice(), port) {
            ([one], _) => Ok((*one).clone()),
            ([], Some(p)) => match nodes.iter().find(|n| n.port == p) {
                Some(n) => bail!(Refused, "cannot {verb} node {p}: it is {}, not {state}", n.state),
                None => {
                    self.node(p).await?;
                    unreachable!("node() refuses a port no container has")
                }
            },
            ([], None) => bail!(
                Refused,
                "no node of cluster `{}` is {state}; nothing to {verb}",
                self.identity().name
            ),
            (many, _) => bail!(
                Refused,
                "{} nodes are {state} ({}); say which port",
                many.len(),
                many.iter().map(|n| n.port.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// What a fault on the node at `port` hits, read from `topology` before it is injected.
pub(crate) fn fault_start(topology: &ClusterNodes, port: u16) -> Result<FaultStart> {
    let entry = topology
        .by_port(port)
        .ok_or_else(|| Error::refused(format!("node {port} is not in the cluster's table")))?;
    let was_master = entry.role == Role::Master && !entry.slots.is_empty();
    let replicas = if was_master {
        topology
            .replicas_of(&entry.id)
            .iter()
            .filter(|r| !r.is_failing())
            .filter_map(|r| r.port())
            .collect()
    } else {
        Vec::new()
    };
    Ok(FaultStart {
        port,
        id: entry.id.clone(),
        was_master,
        replicas,
        at: Instant::now(),
    })
}

fn role_word(fault: &FaultStart) -> String {
    match (fault.was_master, fault.replicas.as_slice()) {
        (false, _) => "a replica or a master without slots".into(),
        (true, []) => "a master with no replica".into(),
        (true, replicas) => format!(
            "a master; replicas {}",
            replicas.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}
