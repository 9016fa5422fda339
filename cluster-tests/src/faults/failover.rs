//! Breaking a cluster on purpose: remove a master's container, or ask a replica to take over by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::cluster::guards;
use crate::cluster::handle::Cluster;
use crate::server::ready::Shape;
use crate::server::topology::{ClusterNodes, NodeEntry, Role, SlotRange, format_ranges};
use crate::wait::not_yet;
use crate::{Error, Remedy, Result, bail, wait};

/// What happened during a failover, with times measured from the moment the fault was injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverReport {
    /// Port of the master that was removed (or demoted, for a manual failover).
    pub old_master: u16,
    /// Port of the replica that took over, if one did.
    pub new_master: Option<u16>,
    /// The slots that changed hands.
    pub slots: Vec<SlotRange>,
    /// Time until the replica said it is a master.
    pub promoted_after: Option<Duration>,
    /// Time until the cluster was ready again (or, with no replica, until the failure was agreed on).
    pub ready_after: Duration,
}

/// How a failover is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverKind {
    /// Remove the master's container at once (power loss); its replica must detect it and take over.
    RemoveMaster {
        /// Remove it even if no replica can take over its slots (the cluster then goes down).
        force: bool,
    },
    /// `CLUSTER FAILOVER` on the master's replica: a coordinated swap with no data loss.
    Manual,
}

impl Cluster {
    /// Fails the master on `port` (default: the master with the lowest port that serves slots) and waits for
    /// the outcome, saying each step to `progress`. Refused while a slot is held half-way through a migration.
    pub async fn failover(&self, port: Option<u16>, kind: FailoverKind) -> Result<FailoverReport> {
        guards::no_slot_held(self, "a failover").await?;
        let timeout = self.identity().step_timeout(self.nodes().await?.len());
        // Bad input is refused at once; then, since a replica whose first sync is not done refuses to take over,
        // the cluster must be ready before anything is broken. The plan is made again on the ready topology.
        plan(&self.topology().await?, port, kind)?;
        tracing::info!("ready: checking the cluster is healthy first");
        self.wait_ready(Shape::Any, timeout)
            .await
            .map_err(|e| e.context("the cluster is not healthy, so a failover would not be a fair test"))?;
        let (master, old_port, replicas) = plan(&self.topology().await?, port, kind)?;
        let start = Instant::now();
        match kind {
            FailoverKind::RemoveMaster { .. } => {
                let node = self.node(old_port).await?;
                self.docker().remove_container(&node.id).await?;
                if let Some(addr) = node.addr {
                    self.pool().forget(addr);
                }
                tracing::info!(
                    "fault: removed the container of master {old_port} (slots {})",
                    format_ranges(&master.slots)
                );
                if replicas.is_empty() {
                    self.wait_failure_agreed(&master.id, timeout).await?;
                    return Ok(FailoverReport {
                        old_master: old_port,
                        new_master: None,
                        slots: master.slots,
                        promoted_after: None,
                        ready_after: start.elapsed(),
                    });
                }
            }
            FailoverKind::Manual => {
                self.access()
                    .command::<()>(replicas[0], &["CLUSTER", "FAILOVER"])
                    .await?;
                tracing::info!(
                    "fault: asked replica {} to take over from {old_port}",
                    replicas[0].port()
                );
            }
        }
        let promoted = wait::until(&format!("a replica of {old_port} to be promoted"), timeout, || async {
            for addr in &replicas {
                if let Ok(view) = self.access().view(*addr).await
                    && view
                        .nodes
                        .myself()
                        .is_some_and(|me| me.role == Role::Master && !me.slots.is_empty())
                {
                    return Ok(addr.port());
                }
            }
            not_yet!("no replica of {old_port} says it is a master yet")
        })
        .await?;
        let promoted_after = start.elapsed();
        tracing::info!(
            "promoted: replica {promoted} is master ({:.2} s); waiting for every node to agree",
            promoted_after.as_secs_f64()
        );
        self.wait_ready(Shape::Any, timeout).await?;
        Ok(FailoverReport {
            old_master: old_port,
            new_master: Some(promoted),
            slots: master.slots,
            promoted_after: Some(promoted_after),
            ready_after: start.elapsed(),
        })
    }

    /// Waits until every live node marks node `id` as failed.
    async fn wait_failure_agreed(&self, id: &str, timeout: Duration) -> Result<()> {
        let roster = self.roster();
        wait::until(&format!("every node to mark {id} as failed"), timeout, || async {
            for view in roster.views().await? {
                if !view.nodes.get(id).is_some_and(NodeEntry::is_failed) {
                    not_yet!("{} does not mark it failed yet", view.addr);
                }
            }
            roster.confirm().await
        })
        .await
    }
}

/// The master to fail, its port and the addresses of its replicas; refuses what the failover cannot or should
/// not do.
fn plan(topology: &ClusterNodes, port: Option<u16>, kind: FailoverKind) -> Result<(NodeEntry, u16, Vec<SocketAddr>)> {
    let master = guards::live_master(topology, port)?.clone();
    let replicas: Vec<SocketAddr> = topology.replicas_of(&master.id).iter().filter_map(|r| r.addr).collect();
    let old_port = master
        .port()
        .ok_or_else(|| Error::redis(format!("master {} has no address", master.id)))?;
    match kind {
        FailoverKind::RemoveMaster { force: false } if replicas.is_empty() => Err(Error::refused(format!(
            "master {old_port} has no replica: its slots {} would have nobody to take them over and the cluster \
             would go down; `FailoverKind::RemoveMaster {{ force: true }}` removes it anyway",
            format_ranges(&master.slots)
        ))
        .with_remedy(Remedy::Force)),
        FailoverKind::Manual if replicas.is_empty() => {
            bail!(Refused, "master {old_port} has no replica to hand its slots to")
        }
        _ => Ok((master, old_port, replicas)),
    }
}
