//! Changing who is in the cluster: add a node (a replica, or a master for [`Cluster::add_master`]), forget nodes
//! that are gone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::cluster::guards;
use crate::cluster::handle::{Cluster, Node};
use crate::cluster::identity::Identity;
use crate::cluster::launch::{meet_all, node_container, replicate, start_node};
use crate::cluster::removal::remove_interrupted_node;
use crate::images::node_image::NodeImage;
use crate::server::ready::Shape;
use crate::server::topology::{NodeEntry, Role, format_ports};
use crate::spec::check_ports;
use crate::{Error, Remedy, Result, bail};

/// What `join` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinReport {
    /// Port of the new node.
    pub port: u16,
    /// Its node id.
    pub id: String,
    /// Port of the master it replicates.
    pub master: u16,
    /// Time from starting its container until it was synced and the cluster ready.
    pub ready_after: Duration,
}

/// What [`Cluster::forget_gone`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForgetReport {
    /// Ids of the nodes forgotten: their containers no longer exist.
    pub forgotten: Vec<String>,
    /// Port and Docker state of the nodes left known because their containers exist but do not run.
    pub left_alone: Vec<(u16, String)>,
}

/// A join decided but not carried out yet: where the new node goes and whom it replicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinPlan {
    /// Port of the new node.
    pub port: u16,
    /// Node id of the master it will replicate.
    pub master_id: String,
    /// Port of that master.
    pub master_port: u16,
    /// Image it runs: the one the cluster already runs, even if the recipe changed since.
    image: NodeImage,
}

impl Cluster {
    /// Starts a new node and makes it a replica of the master on `replicate` (default: the live master that has
    /// no replica left, e.g. the one a failover promoted). Its port is `port`, or the lowest free one from the
    /// first node's port up (so a failed node's port is reused). Returns once it is synced and the cluster ready;
    /// says each step to `progress`. Refused while a slot is held half-way through a migration.
    pub async fn join(&self, replicate_port: Option<u16>, port: Option<u16>) -> Result<JoinReport> {
        let plan = self.plan_join(replicate_port, port).await?;
        self.carry_out_join(&plan).await
    }

    /// Decides where a new node goes and whom it replicates (see [`Cluster::join`]); refuses what cannot work,
    /// a cluster that is not ready or has a slot held included. Starts nothing.
    pub(crate) async fn plan_join(&self, replicate_port: Option<u16>, port: Option<u16>) -> Result<JoinPlan> {
        guards::no_slot_held(self, "joining a node").await?;
        guards::no_node_paused(self, "joining a node").await?;
        guards::healthy(self, "no node is joined to it").await?;
        let topology = self.topology().await?;
        let masters = topology.live_masters();
        let master: &NodeEntry = match replicate_port {
            Some(p) => guards::live_master(&topology, Some(p))?,
            None if masters.is_empty() => {
                bail!(Refused, "no master of cluster `{}` is alive to replicate", self.name())
            }
            None => masters
                .iter()
                .copied()
                .find(|m| topology.replicas_of(&m.id).is_empty())
                .ok_or_else(|| {
                    Error::refused(format!(
                        "every master already has a replica; say which master to replicate (masters: {})",
                        format_ports(&masters)
                    ))
                })?,
        };
        let nodes = self.nodes().await?;
        let port = self.new_ports(&nodes, port, 1)?[0];
        let master_port = master
            .port()
            .ok_or_else(|| Error::redis(format!("master {} has no address", master.id)))?;
        Ok(JoinPlan {
            port,
            master_id: master.id.clone(),
            master_port,
            image: self.new_node_image(&nodes)?,
        })
    }

    /// Ports for `count` new nodes: `first` if given, then the lowest free ones from the first node's port up,
    /// within the ports the pod publishes. Refuses a port in use or not published, and too few free ones.
    pub(crate) fn new_ports(&self, nodes: &[Node], first: Option<u16>, count: usize) -> Result<Vec<u16>> {
        let used: BTreeSet<u16> = nodes.iter().map(|n| n.port).collect();
        let published = self.published_ports();
        let range = || {
            published
                .as_ref()
                .map_or(String::new(), |r| format!("127.0.0.1:{}-{}", r.start(), r.end()))
        };
        let mut ports = Vec::new();
        if let Some(p) = first {
            if used.contains(&p) {
                bail!(Refused, "port {p} is already used by a node of this cluster");
            }
            if published.as_ref().is_some_and(|r| !r.contains(&p)) {
                return Err(Error::refused(format!(
                    "port {p} is not published for this cluster (its pod publishes {}, and a running pod cannot \
                     publish more); pick a free port in that range, or make the cluster with more spare ports \
                     (`ClusterSpec::spare_ports`)",
                    range()
                ))
                .with_remedy(Remedy::MoreSparePorts));
            }
            ports.push(p);
        }
        let last = published.as_ref().map_or(u16::MAX, |r| *r.end());
        let free: Vec<u16> = (self.first_port()..=last)
            .filter(|p| !used.contains(p) && !ports.contains(p))
            .take(count.saturating_sub(ports.len()))
            .collect();
        ports.extend(free);
        if ports.len() < count {
            let free = ports.len();
            return Err(Error::refused(format!(
                "{count} new node(s) need {count} free ports, but only {free} of the ports the cluster publishes \
                 ({}) {} free; make the cluster with more spare ports (`ClusterSpec::spare_ports`)",
                range(),
                if free == 1 { "is" } else { "are" }
            ))
            .with_remedy(Remedy::MoreSparePorts));
        }
        for p in &ports {
            check_ports((*p).into(), (*p).into())?;
        }
        Ok(ports)
    }

    /// The image a new node runs: the one the cluster's running nodes run, even if the recipe changed since.
    pub(crate) fn new_node_image(&self, nodes: &[Node]) -> Result<NodeImage> {
        nodes
            .iter()
            .find(|n| n.addr.is_some())
            .map(|n| NodeImage {
                reference: n.image.clone(),
                ..self.identity().image.clone()
            })
            .ok_or_else(|| Error::refused(format!("cluster `{}` has no running node", self.name())))
    }

    /// Starts the node `plan` describes and joins it, saying each step to `progress`; on failure nothing of it is
    /// left.
    pub(crate) async fn carry_out_join(&self, plan: &JoinPlan) -> Result<JoinReport> {
        let start = Instant::now();
        let id = self
            .start_member(plan.port, &plan.image, Some((&plan.master_id, plan.master_port)))
            .await?;
        Ok(JoinReport {
            port: plan.port,
            id,
            master: plan.master_port,
            ready_after: start.elapsed(),
        })
    }

    /// Starts a node on `port` running `image`, has it meet the others and, given `master` (id and port), replicate
    /// it; returns its id once the cluster is ready. On failure nothing of it is left: the container goes and the
    /// others forget it.
    pub(crate) async fn start_member(
        &self,
        port: u16,
        image: &NodeImage,
        master: Option<(&str, u16)>,
    ) -> Result<String> {
        let identity = Identity {
            image: image.clone(),
            ..self.identity().clone()
        };
        let container = node_container(&identity, port, self.attachment(), self.secrets());
        let name = container.name.clone();
        let start = Instant::now();
        let timeout = self.identity().step_timeout(self.nodes().await?.len() + 1);
        let fail = |e: Error| e.context(format!("joining a node on port {port}"));
        // A node that never answers is removed by start_node itself.
        let (addr, id) = start_node(self.docker(), container, port, self.networking(), self.access())
            .await
            .map_err(fail)?;
        tracing::info!("node: {name} answers as {id} ({:.2} s)", start.elapsed().as_secs_f64());
        // A connection left open to a node that had this port before (a removed master) leads nowhere.
        self.pool().forget(addr);
        let joined = async {
            let others: Vec<SocketAddr> = self.live_addrs().await?.into_iter().filter(|a| *a != addr).collect();
            meet_all(self.pool(), &[(addr, id.clone())], &others).await?;
            tracing::info!("meet: {port} met the {} other live nodes", others.len());
            if let Some((master_id, master_port)) = master {
                let master_addr = others
                    .iter()
                    .copied()
                    .find(|a| a.port() == master_port)
                    .ok_or_else(|| {
                        Error::refused(format!(
                            "the master on port {master_port} is not a live node of the cluster"
                        ))
                    })?;
                replicate(self.access(), addr, (master_addr, master_id), timeout).await?;
                tracing::info!("replica: {port} replicates {master_port}; waiting for its sync");
            }
            self.wait_ready(Shape::Any, timeout).await
        };
        if let Err(e) = joined.await {
            // Nothing half-made stays: the container goes, and the others forget the new node.
            let undone = match self.docker().remove_container(&name).await {
                Ok(()) => self.forget(&[id.as_str()]).await.err().map(|e| {
                    let left =
                        format!("the other nodes could not all forget it ({e}); `Cluster::forget_gone` tries again");
                    (left, Some(Remedy::Forget))
                }),
                Err(e) => Some((
                    format!("its container could not be removed ({e}); `docker rm -f {name}` removes it"),
                    None,
                )),
            };
            return Err(match undone {
                Some((left, Some(remedy))) => fail(e).context(left).with_remedy(remedy),
                Some((left, None)) => fail(e).context(left),
                None => fail(e),
            });
        }
        Ok(id)
    }

    /// Undoes a join cut short (Ctrl-C): removes the planned node's container, also one whose creation was still
    /// on its way to the engine. Other nodes that had met it mark it failed; [`Cluster::forget_gone`] clears it.
    pub(crate) async fn undo_join(&self, plan: &JoinPlan) -> Result<()> {
        remove_interrupted_node(self.docker(), self.name(), plan.port).await
    }

    /// Makes every live node forget the nodes whose containers are gone (`CLUSTER FORGET` on each live node,
    /// all at once so gossip cannot bring them back). A node whose container still exists but does not run
    /// (stopped, paused) is left known: it can come back, and the servers refuse a forgotten id for 60 s.
    pub async fn forget_gone(&self) -> Result<ForgetReport> {
        let (views, containers) = (self.views().await?, self.nodes().await?);
        let live: BTreeSet<&str> = views
            .iter()
            .filter_map(|v| v.nodes.myself())
            .map(|n| n.id.as_str())
            .collect();
        let mut report = ForgetReport::default();
        let unknown: BTreeMap<&str, &NodeEntry> = views
            .iter()
            .flat_map(|v| v.nodes.nodes.iter())
            .filter(|n| !live.contains(n.id.as_str()))
            .map(|n| (n.id.as_str(), n))
            .collect();
        for node in unknown.into_values() {
            // A running container on its port is another node that took the port over (a join).
            let container = containers.iter().find(|c| Some(c.port) == node.port());
            match container {
                Some(c) if c.addr.is_none() => report.left_alone.push((c.port, c.state.clone())),
                _ => report.forgotten.push(node.id.clone()),
            }
        }
        report.left_alone.dedup();
        let ids: Vec<&str> = report.forgotten.iter().map(String::as_str).collect();
        self.forget(&ids).await?;
        Ok(report)
    }

    /// `CLUSTER FORGET` of each of `ids` on every live node that knows it, all at once.
    pub(crate) async fn forget(&self, ids: &[&str]) -> Result<()> {
        let views = self.views().await?;
        let forgets = views.iter().flat_map(|v| {
            let known = &v.nodes;
            ids.iter()
                .filter(|id| known.get(id).is_some())
                // A replica cannot forget its own master (and a node still someone's master is not gone).
                .filter(move |id| {
                    known
                        .myself()
                        .is_none_or(|me| me.role != Role::Replica || me.master_id.as_deref() != Some(**id))
                })
                .map(move |id| self.access().command::<()>(v.addr, &["CLUSTER", "FORGET", id]))
        });
        join_all(forgets).await.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(())
    }
}
