//! The checks every change to a cluster makes before it touches anything, each refusing with what to do instead:
//! no slot held half-way, the cluster healthy, a live master where one is needed, a running node for a fault.

use std::time::Duration;

use crate::cluster::handle::{Cluster, Node};
use crate::faults::process::{FaultStart, fault_start};
use crate::reshape::migration::held_in;
use crate::server::ready::Shape;
use crate::server::topology::{ClusterNodes, NodeEntry, Role, format_ports};
use crate::{Error, Remedy, Result, bail};

/// Refuses `what` while a slot is held half-way through a migration.
pub(crate) async fn no_slot_held(cluster: &Cluster, what: &str) -> Result<()> {
    if let Some((slot, ..)) = held_in(&cluster.views().await?) {
        return Err(Error::refused(format!(
            "slot {slot} is held half-way through a migration; finish it (`Cluster::finish_held`) or roll it \
             back (`Cluster::abort_held`) before {what}"
        ))
        .with_remedy(Remedy::FinishOrAbortHeld));
    }
    Ok(())
}

/// Refuses a change to a cluster that is not ready: a node added to a cluster that is down would wait out a
/// whole step for nothing, so this checks briefly; `refusal` says what is not done.
pub(crate) async fn healthy(cluster: &Cluster, refusal: &str) -> Result<()> {
    let within = cluster.node_timeout() * 2 + Duration::from_secs(3);
    cluster
        .wait_ready(Shape::Any, within)
        .await
        .map_err(|e| e.context(format!("the cluster is not healthy, so {refusal}")))
}

/// Refuses `what` (a change of who is in the cluster) while a node is paused: it would come back knowing nodes
/// the others had forgotten, and gossip them back once the 60 s forget ban ends.
pub(crate) async fn no_node_paused(cluster: &Cluster, what: &str) -> Result<()> {
    if let Some(node) = cluster.nodes().await?.into_iter().find(|n| n.state == "paused") {
        return Err(Error::refused(format!(
            "node {} is paused, so {what} is refused: it would miss the change and, thawed, tell the others of \
             nodes they had forgotten; thaw it first (`Cluster::resume`)",
            node.port
        ))
        .with_remedy(Remedy::Resume(node.port)));
    }
    Ok(())
}

/// The live master on `port`, or the one with the lowest port; refuses replicas and unknown ports.
pub(crate) fn live_master(topology: &ClusterNodes, port: Option<u16>) -> Result<&NodeEntry> {
    let masters = topology.live_masters();
    let list = || format_ports(&masters);
    let Some(port) = port else {
        return masters
            .iter()
            .copied()
            .find(|m| !m.slots.is_empty())
            .ok_or_else(|| match masters.len() {
                0 => Error::refused("no master of the cluster is alive"),
                _ => Error::refused(format!(
                    "no live master serves slots (masters without slots: {}); a failover moves slots, so there is \
                     nothing to fail over",
                    list()
                )),
            });
    };
    match topology.by_port(port) {
        Some(n) if n.role == Role::Master && !n.is_failing() => Ok(n),
        Some(n) if n.role == Role::Replica => {
            let of = n
                .master_id
                .as_deref()
                .and_then(|id| topology.get(id))
                .and_then(NodeEntry::port);
            bail!(
                Refused,
                "port {port} is a replica (of {}), not a master; masters: {}",
                of.map_or("?".into(), |p| p.to_string()),
                list()
            )
        }
        Some(_) => bail!(
            Refused,
            "the node on port {port} has already failed; live masters: {}",
            list()
        ),
        None => bail!(Refused, "no node listens on port {port}; masters: {}", list()),
    }
}

/// The running node a fault should hit, and what it is: `port`, or the lowest master serving slots; refuses a
/// node that is paused or stopped already (`verb` says what the fault does).
pub(crate) async fn fault_target(cluster: &Cluster, port: Option<u16>, verb: &str) -> Result<(Node, FaultStart)> {
    let port = match port {
        Some(port) => port,
        None => live_master(&cluster.topology().await?, None)?
            .port()
            .ok_or_else(|| Error::redis("the lowest master has no address"))?,
    };
    let node = match cluster.nodes().await?.into_iter().find(|n| n.port == port) {
        Some(n) if n.addr.is_some() => n,
        Some(n) => {
            let (how, remedy) = if n.state == "paused" {
                ("`Cluster::resume` thaws it", Remedy::Resume(port))
            } else {
                ("`Cluster::restart` starts it", Remedy::Restart(port))
            };
            return Err(
                Error::refused(format!("cannot {verb} node {port}: it is {} already ({how})", n.state))
                    .with_remedy(remedy),
            );
        }
        None => {
            // Says which ports there are.
            cluster.node(port).await?;
            unreachable!("node() refuses a port no container has")
        }
    };
    let topology = cluster.topology().await?;
    Ok((node, fault_start(&topology, port)?))
}
