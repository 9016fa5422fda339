//! The [`Cluster`] handle: find a cluster's nodes through Docker, read their views, wait for readiness, remove it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::future::{join_all, try_join_all};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;

use crate::cluster::capacity;
use crate::cluster::identity::{self, Identity, LABEL_CLUSTER, cluster_filter};
use crate::cluster::networking::{Attachment, find_attachment, node_addr};
use crate::cluster::removal::{Removed, remove_cluster};
use crate::cluster::warm;
use crate::engine::docker::{Container, ContainerSpec, Docker};
use crate::images::node_image::NodeImage;
use crate::images::versions::Version;
use crate::security::credentials::{Access, Secrets, TlsFiles};
use crate::server::data;
use crate::server::node::{self, CLIENT_RESPONSE_TIMEOUT, CONNECT_TIMEOUT, NodeView, RESPONSE_TIMEOUT};
use crate::server::ready::{self, Shape};
use crate::server::topology::{ClusterNodes, ReplicationInfo, Role};
use crate::spec::{ClusterSpec, KEEP_ENV, Networking, OnDrop, TESTCONTAINERS_COMMAND_ENV};
use crate::wait::not_yet;
use crate::{Error, Remedy, Result, bail, wait};

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

/// A running cluster. Its nodes are always read back from Docker, so the handle never goes stale. A test's
/// cluster is removed when its handle is dropped (see [`ClusterSpec`]); [`Cluster::remove`] removes it and says
/// what went.
#[derive(Debug)]
pub struct Cluster {
    identity: Identity,
    docker: Docker,
    /// Where nodes attach: read from Docker when the cluster is found, set when it is made.
    attachment: Attachment,
    on_drop: OnDrop,
    /// Connections to the nodes, reused by every poll, with the cluster's credentials.
    pool: node::Pool,
    /// The nodes' config and the harness's credentials, for a cluster that needs them.
    secrets: Option<Secrets>,
    /// A test's cluster's place under the machine-wide cap, released once the handle is dropped (after removal).
    capacity: Option<capacity::Slot>,
    /// For a cluster of a keeper's pool (claimed from it, or made for it by this handle's process): that
    /// keeper's process (see [`crate::cluster::warm`]).
    warm_keeper: Option<String>,
    /// Whether it was claimed warm, not made for this handle.
    claimed: bool,
    /// Whether this handle set fault rules in the cluster's network: a warm cluster is then not recycled.
    fault_rules: std::sync::atomic::AtomicBool,
}

impl Cluster {
    /// The handle of a cluster made or found: its identity, where its nodes attach, its secrets, and what
    /// dropping the handle does.
    pub(crate) fn new(
        identity: Identity,
        docker: &Docker,
        attachment: Attachment,
        secrets: Option<Secrets>,
        on_drop: OnDrop,
    ) -> Self {
        Self {
            identity,
            docker: docker.clone(),
            attachment,
            on_drop,
            pool: node::Pool::new(secrets.as_ref().map(|s| s.access.clone()).unwrap_or_default()),
            secrets,
            warm_keeper: None,
            claimed: false,
            capacity: None,
            fault_rules: Default::default(),
        }
    }

    /// What the cluster is, as its labels say.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The Docker engine it runs on.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Where its nodes attach.
    pub(crate) fn attachment(&self) -> &Attachment {
        &self.attachment
    }

    /// The connections to its nodes, with its credentials.
    pub(crate) fn pool(&self) -> &node::Pool {
        &self.pool
    }

    /// Its nodes' config and the harness's credentials, if it needs any.
    pub(crate) fn secrets(&self) -> Option<&Secrets> {
        self.secrets.as_ref()
    }

    /// Finds the running cluster called `name`, or says that none runs.
    pub(crate) async fn find(docker: &Docker, name: &str) -> Result<Self> {
        let containers = docker.containers(&[cluster_filter(name)]).await?;
        if containers.is_empty() {
            let mut running: Vec<String> = docker
                .containers(&[LABEL_CLUSTER.to_owned()])
                .await?
                .into_iter()
                .filter_map(|c| c.labels.get(LABEL_CLUSTER).cloned())
                .collect();
            running.sort();
            running.dedup();
            let message = if running.is_empty() {
                "no cluster is running".to_owned()
            } else {
                format!("no cluster named `{name}` is running (running: {})", running.join(", "))
            };
            return Err(Error::refused(message).with_remedy(Remedy::CreateCluster));
        }
        let identity = Identity::read(name, &containers)?;
        let attachment = find_attachment(docker, name, identity.networking).await?;
        let secrets = identity
            .secrets_dir
            .as_deref()
            .map(|dir| Secrets::load(name, dir))
            .transpose()?;
        // A cluster found, not made, is someone else's to remove.
        Ok(Self::new(identity, docker, attachment, secrets, OnDrop::Leave))
    }

    /// Makes this handle, of a warm cluster just claimed, the claimer's: its drop does what `on_drop` says, and
    /// `claimer` owns it from now on.
    pub(crate) fn adopt_warm(&mut self, on_drop: OnDrop, claimer: String) {
        self.on_drop = on_drop;
        self.warm_keeper = self.identity.owner.replace(claimer);
        self.claimed = true;
    }

    /// Makes this handle, of a cluster it just made for a keeper's pool (the keeper owns it), the maker's: its drop
    /// hands it to that keeper, and `maker` owns it from now on (what it adds, such as a joined node).
    pub(crate) fn hold_made_for_pool(&mut self, maker: String) {
        self.warm_keeper = self.identity.owner.replace(maker);
    }

    /// Holds `place` under the machine-wide cap for as long as the handle lives.
    pub(crate) fn hold_capacity(&mut self, place: Option<capacity::Slot>) {
        self.capacity = place;
    }

    /// Notes that fault rules are being set in the cluster's network (see [`crate::cluster::recycle`]).
    pub(crate) fn note_fault_rules(&self) {
        self.fault_rules.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets what dropping the handle does.
    pub(crate) fn set_on_drop(&mut self, on_drop: OnDrop) {
        self.on_drop = on_drop;
    }

    /// Makes a test's cluster: [`ClusterSpec::from_env`] then [`ClusterSpec::start`].
    pub async fn start_for_test() -> Result<Self> {
        ClusterSpec::from_env()?.start().await
    }

    /// Whether this cluster was handed out warm: made ahead by a keeper (see [`crate::WarmPool`]) rather than for
    /// this handle.
    pub fn warm(&self) -> bool {
        self.claimed
    }

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// The matrix version the cluster runs, if its image was built from one (not for an image by reference).
    pub fn version(&self) -> Option<&'static Version> {
        self.identity.image.version
    }

    /// The image the cluster's nodes run: its reference, binaries and server (as the server binary reports it).
    pub fn image(&self) -> &NodeImage {
        &self.identity.image
    }

    /// How the cluster's nodes are networked.
    pub fn networking(&self) -> Networking {
        self.identity.networking
    }

    /// Port of the first node (the others were made on the ports after it).
    pub fn first_port(&self) -> u16 {
        self.identity.first_port
    }

    /// The host ports published on 127.0.0.1 for nodes, spare ones included (none on a bridge network).
    pub fn published_ports(&self) -> Option<RangeInclusive<u16>> {
        self.attachment.published().cloned()
    }

    /// URLs of the live nodes (`redis://127.0.0.1:7001/`, ...; `rediss://` with TLS), the seeds any cluster client
    /// library needs.
    pub async fn initial_nodes(&self) -> Result<Vec<String>> {
        Ok(self
            .live_addrs()
            .await?
            .iter()
            .map(|a| format!("{}://{a}/", self.access().scheme()))
            .collect())
    }

    /// The credentials its nodes need (none by default), for clients of the test's own making.
    pub fn access(&self) -> &Access {
        self.pool.access()
    }

    /// Where a host client finds the CA, a client certificate and its key, if the nodes speak only TLS (e.g.
    /// `redis-cli --tls --cacert <ca> --cert <cert> --key <key> -c -p 7001`).
    pub fn tls_files(&self) -> Option<TlsFiles> {
        self.secrets.as_ref().and_then(Secrets::tls_files)
    }

    /// Copies the cluster's TLS files into `dir` under the names client test suites look for (`ca.crt`,
    /// `redis.crt`, `redis.key`, `client.crt`, `client.key`), so a suite's fixture path can point at it; returns
    /// the paths. Refused for a cluster without TLS.
    pub fn copy_tls_files(&self, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
        match self.secrets.as_ref().and_then(Secrets::certificates) {
            Some(certificates) => certificates.write_conventional(dir),
            None => Err(Error::refused(format!("cluster `{}` has no TLS", self.identity.name))),
        }
    }

    /// The plain-text port of the node on `port`, where nodes have one beside their TLS port
    /// ([`ClusterSpec::plain_ports`](crate::ClusterSpec::plain_ports)).
    pub fn plain_port(&self, port: u16) -> Option<u16> {
        self.identity.plain_port(port)
    }

    /// The server settings every node runs with, as the server accepted them (see
    /// [`ClusterSpec::server_config`](crate::ClusterSpec::server_config)).
    pub fn server_settings(&self) -> &[(String, String)] {
        &self.identity.settings
    }

    /// The node timeout the cluster runs with.
    pub fn node_timeout(&self) -> Duration {
        self.identity.node_timeout
    }

    /// The cluster's node containers, sorted by port.
    pub async fn nodes(&self) -> Result<Vec<Node>> {
        let mut nodes: Vec<Node> = self
            .docker
            .containers(&[cluster_filter(&self.identity.name)])
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
                Refused,
                "the node of cluster `{}` on port {port} is {} and does not answer (`docker {}` brings it back)",
                self.identity.name,
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
                    Refused,
                    "no node of cluster `{}` listens on port {port}; live ports: {}",
                    self.identity.name,
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
        join_all(self.live_addrs().await?.into_iter().map(|addr| self.pool.view(addr)))
            .await
            .into_iter()
            .collect()
    }

    /// A roster of this cluster's running nodes for the probes of one wait (see [`Roster`]).
    pub(crate) fn roster(&self) -> Roster<'_> {
        Roster {
            cluster: self,
            listed: tokio::sync::Mutex::new(None),
        }
    }

    /// The topology as the first live node that answers sees it.
    pub async fn topology(&self) -> Result<ClusterNodes> {
        let mut last = Error::refused(format!("cluster `{}` has no live node", self.identity.name));
        for addr in self.live_addrs().await? {
            match self.access().view(addr).await {
                Ok(view) => return Ok(view.nodes),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Waits until the cluster is ready (see [`server::ready`](crate::server::ready)) and has `shape`.
    ///
    /// A replica whose replication offset is still 0 is hidden from clients by Redis 7.0+ until its master's
    /// next replication ping (10 s by default); meanwhile its master gets a write that leaves nothing behind
    /// ([`Nudge::WriteAndDelete`]), which moves the offset at once.
    pub async fn wait_ready(&self, shape: Shape, timeout: Duration) -> Result<()> {
        let roster = self.roster();
        wait::until("the cluster to be ready", timeout, || async {
            let views = roster.views().await?;
            if views.is_empty() {
                let nodes = self.nodes().await?;
                let states: Vec<String> = nodes.iter().map(|n| format!("{} {}", n.port, n.state)).collect();
                not_yet!(
                    "no node of cluster `{}` runs; Docker lists {}",
                    self.identity.name,
                    if states.is_empty() {
                        "none".to_owned()
                    } else {
                        states.join(", ")
                    }
                );
            }
            let verdict = ready::confirm_ready(&views, shape);
            if verdict.is_err() {
                advance_idle_masters(self.access(), &views, Nudge::WriteAndDelete).await?;
            }
            verdict?;
            roster.confirm().await?;
            Ok(())
        })
        .await
    }

    /// Waits until every live master's replicas have acknowledged all it had written when the call began (each
    /// replica's offset, as its master lists it in `INFO replication`, reaches the master's offset), and returns
    /// the port of each master serving slots with the number of its replicas that did. Replicas acknowledge once
    /// a second, so this takes up to about a second on a quiet cluster.
    pub async fn wait_replicated(&self, timeout: Duration) -> Result<BTreeMap<u16, usize>> {
        let masters: Vec<(SocketAddr, u64)> = self
            .views()
            .await?
            .into_iter()
            .filter(|v| {
                v.nodes
                    .myself()
                    .is_some_and(|me| me.role == Role::Master && !me.slots.is_empty())
            })
            .map(|v| (v.addr, v.replication.offset))
            .collect();
        wait::until("every master's replicas to acknowledge its writes", timeout, || async {
            let mut acknowledged = BTreeMap::new();
            for (addr, offset) in &masters {
                let info: String = self.access().command(*addr, &["INFO", "replication"]).await?;
                let links = ReplicationInfo::parse(&info).replicas;
                let behind = links.iter().filter(|r| r.offset < *offset).count();
                if links.is_empty() || behind > 0 {
                    not_yet!("{addr}: {behind} of {} replicas behind offset {offset}", links.len());
                }
                acknowledged.insert(addr.port(), links.len());
            }
            Ok(acknowledged)
        })
        .await
    }

    /// A cluster client (the `redis` crate's) connected to the live nodes, with connect and response timeouts and
    /// 8 retries (enough to ride out a failover).
    pub async fn client(&self) -> Result<ClusterConnection> {
        self.client_with(|builder| builder.retries(8)).await
    }

    /// A cluster client made by `configure` from a builder seeded with the live nodes, whose connect and response
    /// timeouts are set; e.g. `cluster.client_with(|b| b.retries(0))` to test a retry policy of your own.
    pub async fn client_with(
        &self,
        configure: impl FnOnce(ClusterClientBuilder) -> ClusterClientBuilder,
    ) -> Result<ClusterConnection> {
        let mut builder = ClusterClient::builder(self.initial_nodes().await?)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(CLIENT_RESPONSE_TIMEOUT);
        let access = self.access();
        if let Some(user) = access.user() {
            builder = builder.username(user);
        }
        if let Some(password) = access.password() {
            builder = builder.password(password);
        }
        if let Some(tls) = access.tls() {
            builder = builder.certs(tls.redis_certificates());
        }
        Ok(configure(builder).build()?.get_async_connection().await?)
    }

    /// `request`, a testcontainers container of your own, put on this cluster's network: there it reaches every
    /// node at the address [`Cluster::live_addrs`] gives (in a pod, 127.0.0.1 and the node's port, inside the
    /// pod's namespace, which the pod's firewall lets through; on a bridge network, the node's address there).
    /// In a pod it can expose no ports and set no host name (Docker refuses both in another container's
    /// namespace); nothing is published for it. This replaces the request's host config modifier. The container
    /// stays yours: testcontainers removes it when its handle is dropped; drop it before the cluster.
    pub fn on_network<I: testcontainers::Image>(
        &self,
        request: impl Into<testcontainers::ContainerRequest<I>>,
    ) -> testcontainers::ContainerRequest<I> {
        use testcontainers::ImageExt;
        let mode = self.attachment.network_mode();
        let pod = matches!(self.attachment, Attachment::Pod { .. });
        request.into().with_host_config_modifier(move |host| {
            host.network_mode = Some(mode.clone());
            if pod {
                host.publish_all_ports = Some(false);
                host.port_bindings = None;
            }
        })
    }

    /// Runs the node image's command-line client (`redis-cli` or `valkey-cli`) with `args` on the host's network,
    /// as a program on the host would (Linux; on Docker Desktop the "host" network is the VM's). Returns its
    /// output, or an error with it if the client exits non-zero. On a TLS cluster it is given the cluster's CA and
    /// client certificate (`--tls --cacert ... --cert ... --key ...` come first).
    pub async fn host_cli(&self, args: &[&str]) -> Result<String> {
        static CLI_RUNS: AtomicU32 = AtomicU32::new(0);
        /// The uid the client runs as (with group 0, which reads its TLS files).
        const CLI_UID: u32 = 65534;
        let image = self.nodes().await?.into_iter().next().map(|n| n.image);
        let image = image.ok_or_else(|| Error::refused(format!("cluster `{}` has no node", self.identity.name)))?;
        let cli = self.identity.image.cli()?.to_owned();
        let (files, tls_args) = self.access().cli_tls();
        let spec = ContainerSpec {
            name: format!(
                "{}-cli-{}",
                self.identity.name,
                CLI_RUNS.fetch_add(1, Ordering::Relaxed)
            ),
            image,
            network: "host".into(),
            entrypoint: Some(vec![cli.clone()]),
            args: tls_args.iter().chain(args).map(|a| a.to_string()).collect(),
            labels: self.identity.labels(),
            user: Some(CLI_UID.to_string()),
            files,
            ..Default::default()
        };
        let (code, output) = self.docker.run_to_end(&spec, RESPONSE_TIMEOUT * 5).await?;
        if code != 0 {
            bail!(Redis, "{cli} {} exited with {code}: {output}", args.join(" "));
        }
        Ok(output)
    }

    /// Removes every container and network of this cluster (only its owner's, for a test's cluster) and says
    /// what went; the handle is used up, so dropping it removes nothing more.
    pub async fn remove(mut self) -> Result<Removed> {
        self.on_drop = OnDrop::Leave;
        match self.warm_keeper {
            Some(_) => warm::remove_warm(&self.docker, &self.identity.name).await,
            None => remove_cluster(&self.docker, &self.identity.name, self.identity.owner.as_deref()).await,
        }
    }

    /// How to remove this cluster by hand, for messages.
    fn removal_hint(&self) -> String {
        format!(
            "`playground::remove_cluster` by name (`remove_abandoned` once this process is gone, unless it was \
             kept), or `docker rm -f $(docker ps -aq --filter label={LABEL_CLUSTER}={})`",
            self.identity.name
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let keep = match self.on_drop {
            OnDrop::Leave => return,
            OnDrop::Keep => true,
            OnDrop::KeepOnPanic => std::thread::panicking(),
            OnDrop::Remove => false,
        };
        let name = self.identity.name.clone();
        if keep {
            eprintln!(
                "cluster-tests: kept cluster {name} ({KEEP_ENV} or {TESTCONTAINERS_COMMAND_ENV}=keep){}; remove it with {}",
                self.published_ports()
                    .map_or(String::new(), |r| format!(" at 127.0.0.1:{}-{}", r.start(), r.end())),
                self.removal_hint()
            );
            return;
        }
        let owner = self.identity.owner.clone();
        let warm = self.warm_keeper.is_some();
        // A keeper that runs removes the cluster after the test, off its path; the test only says it is done.
        let reaper = warm::reaper(self.warm_keeper.as_deref());
        let image = self.identity.image.reference.clone();
        let recyclable = !self.fault_rules.load(std::sync::atomic::Ordering::Relaxed);
        // A fresh runtime on its own thread: drop may run inside (or outside) the test's runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let docker = Docker::connect().await?;
                match (reaper, warm) {
                    (Some(reaper), _) => warm::release(&docker, &name, &image, &reaper, recyclable).await,
                    (None, true) => warm::remove_warm(&docker, &name).await.map(drop),
                    (None, false) => remove_cluster(&docker, &name, owner.as_deref()).await.map(drop),
                }
            })?;
            Ok::<_, Error>(())
        });
        let failed = match cleanup.join() {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the clean-up panicked".to_owned(),
        };
        eprintln!(
            "cluster-tests: could not remove cluster {}: {failed}; remove it with {}",
            self.identity.name,
            self.removal_hint()
        );
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
pub(crate) async fn advance_idle_masters(access: &Access, views: &[NodeView], nudge: Nudge) -> Result<()> {
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
        Some(access.query_pipe(v.addr, pipe))
    });
    try_join_all(writes).await.map(drop)
}

fn to_node(c: Container) -> Option<Node> {
    let port = identity::node_port(&c.labels)?;
    let addr = node_addr(identity::networking_of(&c.labels).ok()?, c.ip, port).filter(|_| c.running);
    Some(Node {
        container: c.name,
        id: c.id,
        port,
        image: c.image,
        addr,
        state: c.state,
    })
}

/// How long a wait's probes use one listing of the running nodes.
const RELIST: Duration = Duration::from_secs(1);

/// The running nodes of a cluster as the probes of one wait see them: listed from Docker at most once per
/// [`RELIST`]. A wait probes every 25 ms or so, and each listing makes the engine read every container of the
/// machine, time it should spend starting other tests' containers. A probe that finds what it waits for asks for
/// a fresh listing with [`Roster::confirm`], so a node that started or stopped meanwhile is never missed.
pub(crate) struct Roster<'c> {
    cluster: &'c Cluster,
    listed: tokio::sync::Mutex<Option<(std::time::Instant, Vec<SocketAddr>)>>,
}

impl Roster<'_> {
    /// The running nodes' addresses, sorted by port.
    pub(crate) async fn addrs(&self) -> Result<Vec<SocketAddr>> {
        let mut listed = self.listed.lock().await;
        if let Some((at, addrs)) = &*listed
            && at.elapsed() < RELIST
        {
            return Ok(addrs.clone());
        }
        let addrs = self.cluster.live_addrs().await?;
        *listed = Some((std::time::Instant::now(), addrs.clone()));
        Ok(addrs)
    }

    /// The address of the running node on `port`, if it runs.
    pub(crate) async fn addr(&self, port: u16) -> Result<Option<SocketAddr>> {
        Ok(self.addrs().await?.into_iter().find(|a| a.port() == port))
    }

    /// What every running node says of the cluster.
    pub(crate) async fn views(&self) -> Result<Vec<NodeView>> {
        join_all(self.addrs().await?.into_iter().map(|addr| self.cluster.pool.view(addr)))
            .await
            .into_iter()
            .collect()
    }

    /// Lists the running nodes again; keeps waiting if they are not the ones the last probe saw.
    pub(crate) async fn confirm(&self) -> wait::Probe<()> {
        let mut listed = self.listed.lock().await;
        let fresh = self.cluster.live_addrs().await?;
        let seen = listed.as_ref().map(|(_, addrs)| addrs.clone()).unwrap_or_default();
        *listed = Some((std::time::Instant::now(), fresh.clone()));
        if fresh != seen {
            not_yet!(
                "the running nodes changed: {} then, {} now",
                ports(&seen),
                ports(&fresh)
            );
        }
        Ok(())
    }
}

/// Ports of `addrs`, for a message.
fn ports(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(|a| a.port().to_string()).collect::<Vec<_>>().join(",")
}
