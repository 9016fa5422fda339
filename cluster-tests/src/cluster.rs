//! The [`Cluster`] handle: find a cluster's nodes through Docker, read their views, wait for readiness, remove it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::future::{join_all, try_join_all};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use crate::docker::{
    Container, ContainerSpec, Docker, LABEL_CLUSTER, LABEL_FIRST_PORT, LABEL_MAKER, LABEL_NETWORKING,
    LABEL_NODE_TIMEOUT, LABEL_OWNER, LABEL_PERSIST, LABEL_PORT, LABEL_VERSION, cluster_filter,
};
use crate::networking::{Attachment, Networking, find_attachment};
use crate::node::{self, CONNECT_TIMEOUT, NodeView, RESPONSE_TIMEOUT};
use crate::ready::{self, Shape};
use crate::removal::{Removed, remove_cluster, remove_orphans};
use crate::topology::ClusterNodes;
use crate::versions::Version;
use crate::{Error, Result, bail, data, owner, wait};

/// Name of the cluster the CLI makes and finds.
pub const PLAYGROUND: &str = "playground";
/// Default cluster node timeout. Failover takes about this plus 1.3 s (failure agreement and the servers' fixed
/// 0.5-1 s election delay), so it sets how fast the cluster heals; 1 s showed no false failure with five clusters
/// being made and broken at once on a 2-core machine. `create --node-timeout` raises it for busier machines.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest node timeout accepted: failover then takes over a minute, more than any step of the harness waits.
pub const MAX_NODE_TIMEOUT: Duration = Duration::from_secs(60);
/// Port of the first node; the others follow (7001, 7002, ...), as in the Redis Cluster tutorial.
pub const FIRST_PORT: u16 = 7001;
/// Ports a pod publishes beyond its nodes', for nodes that join later (a pod cannot publish more once it runs).
pub const DEFAULT_SPARE_PORTS: usize = 3;

/// What a cluster is made of.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Cluster name: prefix of its container names and its network's name.
    pub name: String,
    /// Server version.
    pub version: &'static Version,
    /// Masters (at least 3, as Redis Cluster needs a majority of masters to fail a node over).
    pub masters: usize,
    /// Replicas per master.
    pub replicas: usize,
    /// `cluster-node-timeout`.
    pub node_timeout: Duration,
    /// Port of the first node; `None` picks a free range on the host (the tests' choice; [`FIRST_PORT`] with
    /// [`Networking::Bridge`], which publishes nothing).
    pub first_port: Option<u16>,
    /// How the nodes are networked and reached from the host.
    pub networking: Networking,
    /// Ports published beyond the nodes' own, for nodes that join later ([`Networking::Pod`] only).
    pub spare_ports: usize,
    /// Whether dropping the [`Cluster`] removes it (tests) or it is kept until `stop` (the CLI).
    pub remove_on_drop: bool,
    /// Whether nodes keep their writes on disk (AOF, `appendfsync everysec`), so a killed and restarted node
    /// comes back with them; without it a restarted node comes back empty (its `nodes.conf` is kept either way).
    pub persist: bool,
}

impl ClusterSpec {
    /// The CLI's cluster: 3 masters and 1 replica each, kept until `cargo xtask stop`.
    pub fn playground(version: &'static Version) -> Self {
        Self {
            name: PLAYGROUND.into(),
            version,
            masters: 3,
            replicas: 1,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            first_port: Some(FIRST_PORT),
            networking: Networking::Pod,
            spare_ports: DEFAULT_SPARE_PORTS,
            remove_on_drop: false,
            persist: false,
        }
    }

    /// A test's cluster: the version from `$CLUSTER_VERSION`, a name no other test process uses, removed on drop.
    pub fn for_test() -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("ct{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        Ok(Self {
            name,
            first_port: None,
            remove_on_drop: true,
            ..Self::playground(Version::from_env()?)
        })
    }

    /// Makes the cluster this spec describes (see [`Cluster::create`]), printing progress to stderr; clusters of
    /// test processes that died without cleaning up are removed meanwhile.
    pub async fn start(self) -> Result<Cluster> {
        let docker = Docker::connect().await?;
        // Orphans are cleared while this cluster is being made, so a stubborn one does not hold the test up.
        let ((), created) = tokio::join!(
            remove_orphans(&docker),
            Cluster::create(&docker, self, &|line| eprintln!("{line}"))
        );
        Ok(created?.0)
    }

    /// How long one step of making or healing the cluster may take (forming, a failover, a join): several node
    /// timeouts, plus room for a busy machine.
    pub(crate) fn step_timeout(&self) -> Duration {
        self.node_timeout * 5 + Duration::from_secs(20)
    }

    /// Total number of nodes.
    pub fn node_count(&self) -> usize {
        self.masters * (1 + self.replicas)
    }

    /// How many host ports the cluster's pod publishes: the nodes' and the spare ones.
    pub fn published_count(&self) -> usize {
        self.node_count() + self.spare_ports
    }

    /// Rejects specs the servers cannot run; the message says what would work.
    pub fn validate(&self) -> Result<()> {
        if self.masters < 3 {
            bail!(
                "a Redis Cluster needs at least 3 masters (got {}): fewer cannot elect a failover",
                self.masters
            );
        }
        if self.masters > 100 || self.replicas > 10 {
            bail!(
                "{} masters with {} replicas each is more than one machine should run",
                self.masters,
                self.replicas
            );
        }
        if self.spare_ports > 100 {
            bail!(
                "{} spare ports is more than joins need (each costs a proxy process on the host)",
                self.spare_ports
            );
        }
        if let Some(first) = self.first_port {
            let count = match self.networking {
                Networking::Pod => self.published_count(),
                Networking::Bridge => self.node_count(),
            };
            check_ports(u32::from(first), u32::from(first) + count as u32 - 1)?;
        }
        if self.node_timeout < Duration::from_millis(100) {
            bail!("a node timeout under 100 ms would fail healthy nodes");
        }
        if self.node_timeout > MAX_NODE_TIMEOUT {
            bail!(
                "a node timeout over {} ms would leave a failed master unnoticed for over a minute",
                MAX_NODE_TIMEOUT.as_millis()
            );
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("cluster name `{}` must be letters, digits, `-` or `_`", self.name);
        }
        Ok(())
    }

    /// Labels put on every container and the network this process makes for this cluster.
    pub(crate) fn labels(&self) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_CLUSTER.to_owned(), self.name.clone()),
            (LABEL_VERSION.to_owned(), self.version.name.clone()),
            (LABEL_NODE_TIMEOUT.to_owned(), self.node_timeout.as_millis().to_string()),
            (
                LABEL_FIRST_PORT.to_owned(),
                self.first_port.unwrap_or(FIRST_PORT).to_string(),
            ),
            (LABEL_NETWORKING.to_owned(), self.networking.name().to_owned()),
            (LABEL_MAKER.to_owned(), owner::this_process()),
            (LABEL_PERSIST.to_owned(), self.persist.to_string()),
        ]);
        if self.remove_on_drop {
            labels.insert(LABEL_OWNER.to_owned(), owner::this_process());
        }
        labels
    }
}

/// Refuses node ports `first..=last` outside 1024..=55535: the cluster bus listens on port + 10000.
pub(crate) fn check_ports(first: u32, last: u32) -> Result<()> {
    if first < 1024 || last > 55535 {
        let ports = if first == last {
            format!("port {first}")
        } else {
            format!("ports {first}..{last}")
        };
        bail!("{ports} must lie in 1024..55535 (the cluster bus uses port + 10000); pick another `--port-base`");
    }
    Ok(())
}

/// A node container of a cluster, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Container name.
    pub container: String,
    /// Container id.
    pub id: String,
    /// Port the server listens on.
    pub port: u16,
    /// Image it runs.
    pub image: String,
    /// Address the harness reaches it on, while running: 127.0.0.1 in a pod, the container's address on a bridge.
    pub addr: Option<SocketAddr>,
    /// Docker's state of its container: `running`, `paused`, `exited`, ...
    pub state: String,
}

/// A running cluster. Its nodes are always read back from Docker, so the handle never goes stale.
pub struct Cluster {
    pub(crate) spec: ClusterSpec,
    pub(crate) docker: Docker,
    /// Where nodes attach: read from Docker when the cluster is found, set when it is made.
    pub(crate) attachment: Attachment,
}

impl Cluster {
    /// Finds the running cluster called `name`, or says that none runs.
    pub async fn find(docker: &Docker, name: &str) -> Result<Self> {
        let containers = docker.containers(&[cluster_filter(name)]).await?;
        let Some(first) = containers.first() else {
            bail!("no cluster is running (make one with `cargo xtask create`)");
        };
        let label = |key: &str| first.labels.get(key).cloned().unwrap_or_default();
        let version = Version::named(&label(LABEL_VERSION))?;
        let node_timeout = label(LABEL_NODE_TIMEOUT)
            .parse()
            .map_or(DEFAULT_NODE_TIMEOUT, Duration::from_millis);
        let first_port = label(LABEL_FIRST_PORT).parse().unwrap_or(FIRST_PORT);
        let networking = Networking::named(&label(LABEL_NETWORKING)).unwrap_or(Networking::Bridge);
        let attachment = find_attachment(docker, name, networking).await?;
        let spec = ClusterSpec {
            name: name.to_owned(),
            version,
            // The shape a cluster was made with is not kept: after failovers and joins only the servers know it.
            masters: 0,
            replicas: 0,
            node_timeout,
            first_port: Some(first_port),
            networking,
            spare_ports: 0,
            remove_on_drop: false,
            persist: label(LABEL_PERSIST) == "true",
        };
        Ok(Self {
            spec,
            docker: docker.clone(),
            attachment,
        })
    }

    /// Creates a cluster for a test, per [`ClusterSpec::for_test`], building the node image first if needed.
    ///
    /// Clusters of test processes that died without cleaning up (killed by a timeout, say) are removed meanwhile.
    pub async fn start_for_test() -> Result<Self> {
        ClusterSpec::for_test()?.start().await
    }

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Server version the cluster runs.
    pub fn version(&self) -> &'static Version {
        self.spec.version
    }

    /// How the cluster's nodes are networked.
    pub fn networking(&self) -> Networking {
        self.spec.networking
    }

    /// Port of the first node (the others were made on the ports after it).
    pub fn first_port(&self) -> u16 {
        self.spec.first_port.unwrap_or(FIRST_PORT)
    }

    /// The host ports published on 127.0.0.1 for nodes, spare ones included (none on a bridge network).
    pub fn published_ports(&self) -> Option<RangeInclusive<u16>> {
        self.attachment.published().cloned()
    }

    /// URLs of the live nodes (`redis://127.0.0.1:7001/`, ...), the seeds any cluster client library needs.
    pub async fn initial_nodes(&self) -> Result<Vec<String>> {
        Ok(self
            .live_addrs()
            .await?
            .iter()
            .map(|a| format!("redis://{a}/"))
            .collect())
    }

    /// The node timeout the cluster runs with.
    pub fn node_timeout(&self) -> Duration {
        self.spec.node_timeout
    }

    /// The Docker connection the cluster uses.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The cluster's node containers, sorted by port.
    pub async fn nodes(&self) -> Result<Vec<Node>> {
        let mut nodes: Vec<Node> = self
            .docker
            .containers(&[cluster_filter(&self.spec.name)])
            .await?
            .into_iter()
            .filter_map(to_node)
            .collect();
        nodes.sort_by_key(|n| n.port);
        Ok(nodes)
    }

    /// Addresses of the running nodes, sorted by port.
    pub async fn live_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(self.nodes().await?.into_iter().filter_map(|n| n.addr).collect())
    }

    /// The running node listening on `port`, or an error that lists the ports there are.
    pub async fn node(&self, port: u16) -> Result<Node> {
        let nodes = self.nodes().await?;
        match nodes.iter().find(|n| n.port == port) {
            Some(node) if node.addr.is_some() => Ok(node.clone()),
            Some(node) => bail!(
                "the node of cluster `{}` on port {port} is {} and does not answer (`docker {}` brings it back)",
                self.spec.name,
                node.state,
                if node.state == "paused" {
                    format!("unpause {}", node.container)
                } else {
                    format!("start {}", node.container)
                }
            ),
            None => {
                let ports: Vec<String> = nodes
                    .iter()
                    .filter(|n| n.addr.is_some())
                    .map(|n| n.port.to_string())
                    .collect();
                bail!(
                    "no node of cluster `{}` listens on port {port}; live ports: {}",
                    self.spec.name,
                    ports.join(", ")
                )
            }
        }
    }

    /// Address of the node on `port`.
    pub async fn addr(&self, port: u16) -> Result<SocketAddr> {
        Ok(self.node(port).await?.addr.expect("node() returns running nodes"))
    }

    /// Every live node's view (`CLUSTER INFO`, `CLUSTER NODES`, `INFO replication`), read concurrently.
    pub async fn views(&self) -> Result<Vec<NodeView>> {
        join_all(self.live_addrs().await?.into_iter().map(NodeView::read))
            .await
            .into_iter()
            .collect()
    }

    /// The topology as the first live node that answers sees it.
    pub async fn topology(&self) -> Result<ClusterNodes> {
        let mut last = Error::new(format!("cluster `{}` has no live node", self.spec.name));
        for addr in self.live_addrs().await? {
            match NodeView::read(addr).await {
                Ok(view) => return Ok(view.nodes),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Waits until the cluster is ready (see [`ready`](crate::ready)) and has `shape`.
    ///
    /// A replica whose replication offset is still 0 is hidden from clients by Redis 7.0+ until its master's
    /// next replication ping (10 s by default); meanwhile its master gets a write that leaves nothing behind
    /// ([`Nudge::WriteAndDelete`]), which moves the offset at once.
    pub async fn wait_ready(&self, shape: Shape, timeout: Duration) -> Result<()> {
        wait::until("the cluster to be ready", timeout, || async {
            let views = self.views().await?;
            let verdict = ready::check(&views, shape);
            if verdict.is_err() {
                advance_idle_masters(&views, Nudge::WriteAndDelete).await?;
            }
            verdict
        })
        .await
    }

    /// A cluster client (the `redis` crate's) connected to the live nodes, with connect and response timeouts.
    pub async fn client(&self) -> Result<ClusterConnection> {
        let client = ClusterClient::builder(self.initial_nodes().await?)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(8)
            .build()?;
        Ok(client.get_async_connection().await?)
    }

    /// Runs the node image's command-line client (`redis-cli` or `valkey-cli`) with `args` on the host's network,
    /// as a program on the host would (Linux; on Docker Desktop the "host" network is the VM's). Returns its
    /// output, or an error with it if the client exits non-zero.
    pub async fn host_cli(&self, args: &[&str]) -> Result<String> {
        static CLI_RUNS: AtomicU32 = AtomicU32::new(0);
        let image = self.nodes().await?.into_iter().next().map(|n| n.image);
        let image = image.ok_or_else(|| Error::new(format!("cluster `{}` has no node", self.spec.name)))?;
        let cli = self.spec.version.cli_bin.clone();
        let spec = ContainerSpec {
            name: format!("{}-cli-{}", self.spec.name, CLI_RUNS.fetch_add(1, Ordering::Relaxed)),
            image,
            network: "host".into(),
            entrypoint: Some(vec![cli.clone()]),
            args: args.iter().map(|a| a.to_string()).collect(),
            labels: self.spec.labels(),
            ..Default::default()
        };
        let (code, output) = self.docker.run_to_end(&spec, RESPONSE_TIMEOUT * 5).await?;
        if code != 0 {
            bail!("{cli} {} exited with {code}: {output}", args.join(" "));
        }
        Ok(output)
    }

    /// Removes every container and the network of this cluster; safe to call when they are already gone.
    pub async fn remove(&self) -> Result<Removed> {
        remove_cluster(&self.docker, &self.spec.name).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.spec.remove_on_drop {
            return;
        }
        let name = self.spec.name.clone();
        // A fresh runtime on its own thread: drop may run inside (or outside) the test's runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let docker = Docker::connect().await?;
                remove_cluster(&docker, &name).await
            })?;
            Ok::<_, Error>(())
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cluster-tests: could not remove cluster {}: {e}", self.spec.name),
            Err(_) => eprintln!("cluster-tests: cleanup of cluster {} panicked", self.spec.name),
        }
    }
}

/// How [`advance_idle_masters`] moves a master's replication offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nudge {
    /// `FLUSHALL`: keyless, so allowed while the cluster is still down, and always replicated; only for masters
    /// known to hold nothing (a cluster being made).
    FlushEmpty,
    /// `MULTI`, `SET`, `DEL`, `EXEC` of a key of the master's own: needs the cluster up, leaves nothing behind.
    WriteAndDelete,
}

/// Moves the replication offset of each master that has a synced replica at offset 0 (see [`Cluster::wait_ready`]).
pub(crate) async fn advance_idle_masters(views: &[NodeView], nudge: Nudge) -> Result<()> {
    let idle = views
        .iter()
        .filter(|v| v.replication.replica_synced() && v.replication.offset == 0);
    let masters: BTreeSet<&str> = idle.filter_map(|v| v.nodes.myself()?.master_id.as_deref()).collect();
    let writes = views.iter().filter_map(|v| {
        let me = v.nodes.myself().filter(|me| masters.contains(me.id.as_str()))?;
        let mut pipe = redis::pipe();
        match nudge {
            Nudge::FlushEmpty => pipe.cmd("FLUSHALL").ignore(),
            Nudge::WriteAndDelete => {
                let key = data::key_in(&me.slots, "cluster-tests:offset")?;
                pipe.atomic().set(&key, "").ignore().del(&key).ignore()
            }
        };
        Some(node::query_pipe(v.addr, pipe))
    });
    try_join_all(writes).await.map(drop)
}

fn to_node(c: Container) -> Option<Node> {
    let port = c.labels.get(LABEL_PORT)?.parse().ok()?;
    let networking = c
        .labels
        .get(LABEL_NETWORKING)
        .map_or(Ok(Networking::Bridge), |n| Networking::named(n));
    let addr = networking.ok()?.node_addr(c.ip, port).filter(|_| c.running);
    Some(Node {
        container: c.name,
        id: c.id,
        port,
        image: c.image,
        addr,
        state: c.state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_timeouts_are_bounded() {
        let spec = |ms| ClusterSpec {
            node_timeout: Duration::from_millis(ms),
            ..ClusterSpec::playground(Version::default_version())
        };
        assert!(spec(1000).validate().is_ok());
        assert!(spec(60_000).validate().is_ok());
        let err = spec(u64::MAX).validate().unwrap_err().to_string();
        assert!(err.contains("60000 ms"), "{err}");
    }
}
