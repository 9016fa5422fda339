//! Recycling a warm cluster its test is done with: its keeper resets the running servers to an empty, unclustered
//! state and forms the cluster again, instead of removing its containers and making new ones. The servers' writable
//! delay is behind them, and no container is made or removed, so a recycled cluster costs the machine a fraction
//! of a new one (measured with `cargo xtask bench`).
//!
//! A cluster is recycled only if nothing but the servers' own protocol changed it, as its keeper can tell: the
//! same containers (a node a test joined is removed first, and one whose container is gone, stopped or paused is
//! started anew on its port), each other node the same process (`run_id`), with the config and ACL users it was
//! offered with (a setting a test changed is set back), and no fault rule set in its network (the test's handle
//! says so when it releases it). Anything else, or any step that fails, and the cluster is removed as before.
//!
//! What a recycled cluster keeps of its earlier tests: its name and containers (so `docker logs` shows the earlier
//! servers' lines), the servers' uptime, and replication offsets that go on counting. Everything a test sees
//! through the servers is new: node ids, epochs, an empty keyspace, no scripts or functions, no clients, reset
//! statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

use futures_util::future::try_join_all;

use crate::cluster::handle::Cluster;
use crate::cluster::identity::{LABEL_PORT, LABEL_PRINT, cluster_filter};
use crate::cluster::warm::{self, Mark, Standing};
use crate::engine::docker::{Container, Docker};
use crate::server::node::Pool;
use crate::spec::ClusterSpec;
use crate::{Error, Result};

/// How many tests a cluster serves before it is removed and a new one made in its place: this bounds what a
/// server accumulates that no reset clears (its log, memory fragmentation, client ids).
pub(crate) const MAX_USES: usize = 10;

/// Settings that follow a node's role, which a failover changes and forming the cluster again sets anew (Redis 7+
/// shows a replica's master in them); they cannot be set in cluster mode.
const ROLE_SETTINGS: [&str; 2] = ["replicaof", "slaveof"];

/// What a warm cluster was when it was offered.
#[derive(Debug, Clone)]
pub(crate) struct Fingerprint {
    /// Its containers (nodes and holder).
    members: BTreeSet<String>,
    /// Each node, by address.
    nodes: BTreeMap<SocketAddr, NodeState>,
    /// Tests it served.
    pub(crate) uses: usize,
}

/// What one node was when offered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeState {
    /// The server process (`INFO server`'s `run_id`): a node restarted is another process.
    run_id: String,
    /// Its settings, as `CONFIG GET *` gives them.
    config: Settings,
    /// A digest of `ACL LIST`.
    acl: String,
}

/// A node's settings when offered: every value (a cluster its keeper made), or only their digest (a cluster a
/// test made for the pool: its fingerprint travels in a label of its offer, and the 7 KB of a node's values would
/// be in every listing of the markers).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settings {
    Values(BTreeMap<String, String>),
    Digest(String),
}

impl Settings {
    /// The digest of the settings, but those that follow the node's role.
    fn digest(&self) -> String {
        match self {
            Settings::Values(values) => digest(
                values
                    .iter()
                    .filter(|(key, _)| !ROLE_SETTINGS.contains(&key.as_str()))
                    .flat_map(|(key, value)| [key.as_str(), value.as_str()]),
            ),
            Settings::Digest(digest) => digest.clone(),
        }
    }
}

/// SHA-256 of `parts` (each ended by a NUL), in hex: the same in every process and build.
fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        context.update(part.as_bytes());
        context.update(&[0]);
    }
    context.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A [`Fingerprint`] as the label of an offer holds it (settings as a digest).
#[derive(serde::Serialize, serde::Deserialize)]
struct Label {
    members: BTreeSet<String>,
    /// Address, `run_id`, settings digest, ACL digest.
    nodes: Vec<(SocketAddr, String, String, String)>,
}

/// Why a cluster is not recycled, for the keeper's log.
type Refusal = String;

impl Fingerprint {
    /// Reads what the ready cluster `cluster` is now.
    pub(crate) async fn read(docker: &Docker, cluster: &Cluster) -> Result<Self> {
        let members = docker
            .containers(&[cluster_filter(cluster.name())])
            .await?
            .into_iter()
            .filter(|c| Mark::of(c).is_none())
            .map(|c| c.id)
            .collect();
        let addrs = cluster.live_addrs().await?;
        let states = try_join_all(addrs.iter().map(|addr| node_state(cluster.pool(), *addr))).await?;
        Ok(Self {
            members,
            nodes: addrs.into_iter().zip(states).collect(),
            uses: 0,
        })
    }

    /// This fingerprint as the value of an offer's [`LABEL_PRINT`] (see [`Settings`]).
    pub(crate) fn to_label(&self) -> String {
        let label = Label {
            members: self.members.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|(addr, n)| (*addr, n.run_id.clone(), n.config.digest(), n.acl.clone()))
                .collect(),
        };
        serde_json::to_string(&label).unwrap_or_default()
    }

    /// What the cluster of `standing`, made for a pool by its test, was when offered: its offer's label holds it
    /// (see [`Self::to_label`]). `None` for a cluster without one.
    pub(crate) fn of_made_for_pool(standing: &Standing) -> Option<Self> {
        let label = standing.marks.get(&Mark::Offer)?.labels.get(LABEL_PRINT)?;
        let label: Label = serde_json::from_str(label).ok()?;
        let nodes = label.nodes.into_iter().map(|(addr, run_id, config, acl)| {
            let config = Settings::Digest(config);
            (addr, NodeState { run_id, config, acl })
        });
        Some(Self {
            members: label.members,
            nodes: nodes.collect(),
            uses: 0,
        })
    }
}

/// Recycles the released warm cluster `name` of `spec`, offered with `print`: resets it, forms it again and puts
/// it back on offer; returns what it is now. `Ok(Err(why))`: it is not one to recycle (see the [module](self)
/// docs), and is to be removed (its reset may have begun).
pub(crate) async fn recycle(
    docker: &Docker,
    name: &str,
    spec: &ClusterSpec,
    print: &Fingerprint,
) -> Result<std::result::Result<Fingerprint, Refusal>> {
    let listed = docker.containers(&[cluster_filter(name)]).await?;
    let standing = Standing::of(listed).remove(name).unwrap_or_default();
    let Changes { joined, lost } = match changes(&standing, print) {
        Ok(changes) => changes,
        Err(why) => return Ok(Err(why)),
    };
    // Before any reset: a node the others still know keeps no one from forgetting it once it is gone.
    try_join_all(joined.iter().chain(&lost).map(|c| docker.remove_container(&c.id))).await?;
    let cluster = Cluster::find(docker, name).await?;
    let lost_ports: BTreeSet<u16> = lost
        .iter()
        .filter_map(|c| c.labels.get(LABEL_PORT)?.parse().ok())
        .chain(missing_ports(&standing, print))
        .collect();
    let nodes: Vec<SocketAddr> = print.nodes.keys().copied().collect();
    let pool = cluster.pool();
    // A node lost is started anew on its port, a fresh server, while the others are checked; every node is
    // checked and emptied before any is reset: a node reset while another still holds keys (or serves a client)
    // would let the old cluster reach the new one.
    let kept = nodes.iter().filter(|addr| !lost_ports.contains(&addr.port()));
    let (refusals, _) = tokio::try_join!(
        try_join_all(kept.map(|addr| restore(pool, *addr, &print.nodes[addr]))),
        try_join_all(lost_ports.iter().map(|port| cluster.start_node_on(*port))),
    )?;
    if let Some(why) = refusals.into_iter().flatten().next() {
        return Ok(Err(why));
    }
    try_join_all(nodes.iter().map(|addr| empty(pool, *addr))).await?;
    let ids = try_join_all(nodes.iter().map(|addr| reset(pool, *addr))).await?;
    let formed: Vec<(SocketAddr, String)> = nodes.into_iter().zip(ids).collect();
    cluster.reform(spec, &formed).await?;
    for (addr, _) in &formed {
        let keys: u64 = pool.query(*addr, &redis::cmd("DBSIZE")).await?;
        if keys > 0 {
            return Err(Error::other(format!("{addr} holds {keys} keys after its reset")));
        }
    }
    // What it is offered as from now on: its containers and servers now, with the settings set back.
    let mut now = Fingerprint::read(docker, &cluster).await?;
    now.uses = print.uses + 1;
    // Back on offer: the release, then the lease, by id (a claim can come as soon as the lease is gone).
    for mark in [Mark::Release, Mark::Lease] {
        if let Some(marker) = standing.marks.get(&mark) {
            docker.remove_container(&marker.id).await?;
        }
    }
    Ok(Ok(now))
}

/// What a released cluster's test changed of its containers, to undo before it is recycled.
struct Changes<'a> {
    /// Nodes joined since it was offered: their containers go.
    joined: Vec<&'a Container>,
    /// Nodes it was offered with that no longer run (stopped, paused): their containers go, and a new node is
    /// started on each one's port, as for one whose container is gone.
    lost: Vec<&'a Container>,
}

/// What the test of `standing`'s cluster changed of its containers since `print` was taken; or why it is not the
/// cluster `print` describes, released for recycling, if it is not. A container that is not a node cannot be had
/// back.
fn changes<'a>(standing: &'a Standing, print: &Fingerprint) -> std::result::Result<Changes<'a>, Refusal> {
    let Some(release) = standing.marks.get(&Mark::Release) else {
        return Err("its test ended without releasing it".into());
    };
    if !warm::recyclable(release) {
        return Err("its test set fault rules in its network".into());
    }
    if print.uses + 1 >= MAX_USES {
        return Err(format!("it served {MAX_USES} tests"));
    }
    let (offered, joined): (Vec<&Container>, Vec<&Container>) =
        standing.members.iter().partition(|c| print.members.contains(&c.id));
    let is_node = |c: &&Container| c.labels.contains_key(LABEL_PORT);
    if let Some(c) = joined.iter().find(|c| !is_node(c)) {
        return Err(format!("container {} was added to it and is not a node", c.name));
    }
    let lost: Vec<&Container> = offered.iter().copied().filter(|c| !c.running).collect();
    if let Some(c) = lost.iter().find(|c| !is_node(c)) {
        return Err(format!("container {} is {}", c.name, c.state));
    }
    let gone = print.members.len() - offered.len();
    if gone != missing_ports(standing, print).len() {
        return Err("a container it was offered with that is not a node is gone".into());
    }
    Ok(Changes { joined, lost })
}

/// The ports of `print`'s nodes whose container is gone from `standing`.
fn missing_ports(standing: &Standing, print: &Fingerprint) -> BTreeSet<u16> {
    let present: BTreeSet<u16> = standing
        .members
        .iter()
        .filter(|c| print.members.contains(&c.id))
        .filter_map(|c| c.labels.get(LABEL_PORT)?.parse().ok())
        .collect();
    print
        .nodes
        .keys()
        .map(SocketAddr::port)
        .filter(|p| !present.contains(p))
        .collect()
}

/// What the node at `addr` is now.
async fn node_state(pool: &Pool, addr: SocketAddr) -> Result<NodeState> {
    let info: String = pool.query(addr, redis::cmd("INFO").arg("server")).await?;
    let run_id = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("run_id:"))
        .unwrap_or_default()
        .to_owned();
    let config: HashMap<String, String> = pool.query(addr, redis::cmd("CONFIG").arg("GET").arg("*")).await?;
    let acl: Vec<String> = pool.query(addr, redis::cmd("ACL").arg("LIST")).await?;
    Ok(NodeState {
        run_id,
        config: Settings::Values(config.into_iter().collect()),
        acl: digest(acl.iter().map(String::as_str)),
    })
}

/// Ends the connections a test left to the node at `addr`, and sets back each setting that differs from
/// `offered` (where only their digest was kept, none may differ); says why the node cannot be recycled if it
/// cannot.
async fn restore(pool: &Pool, addr: SocketAddr, offered: &NodeState) -> Result<Option<Refusal>> {
    end_test_clients(pool, addr).await?;
    // A `CLIENT PAUSE` a test left (6.2 and later can end it; before, its timeout ends it).
    match pool.query::<()>(addr, redis::cmd("CLIENT").arg("UNPAUSE")).await {
        Err(e) if !e.is_unknown_command() => return Err(e),
        _ => {}
    }
    let now = node_state(pool, addr).await?;
    if now.run_id != offered.run_id {
        return Ok(Some(format!("{addr} is another server process than the one offered")));
    }
    if now.acl != offered.acl {
        return Ok(Some(format!("{addr}'s ACL users changed")));
    }
    let (Settings::Values(now), Settings::Values(offered)) = (&now.config, &offered.config) else {
        return Ok((now.config.digest() != offered.config.digest())
            .then(|| format!("{addr}'s settings changed, and its test, which made it, kept no values to set back")));
    };
    for (key, value) in offered {
        if now.get(key) == Some(value) || ROLE_SETTINGS.contains(&key.as_str()) {
            continue;
        }
        let set = redis::cmd("CONFIG").arg("SET").arg(key).arg(value).clone();
        if let Err(e) = pool.query::<()>(addr, &set).await {
            return Ok(Some(format!("{addr}: setting {key} back failed: {e}")));
        }
    }
    if let Some(key) = now.keys().find(|k| !offered.contains_key(*k)) {
        return Ok(Some(format!("{addr} has a setting it was not offered with: {key}")));
    }
    Ok(None)
}

/// Ends every client connection to the node at `addr` but the harness's own and the other nodes' `MIGRATE`
/// connections: a node keeps those open for later moves (10 s), and one ended here would make its next `MIGRATE`
/// wait out its timeout on a dead socket. They are told by their last command, `RESTORE-ASKING`.
async fn end_test_clients(pool: &Pool, addr: SocketAddr) -> Result<()> {
    let own: u64 = pool.query(addr, redis::cmd("CLIENT").arg("ID")).await?;
    let listed: String = pool
        .query(addr, redis::cmd("CLIENT").arg(&["LIST", "TYPE", "normal"]))
        .await?;
    for line in listed.lines() {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
        };
        let (Some(id), Some(cmd)) = (field("id"), field("cmd")) else {
            continue;
        };
        if id == own.to_string() || cmd.eq_ignore_ascii_case("restore-asking") {
            continue;
        }
        match pool
            .query::<u64>(addr, redis::cmd("CLIENT").arg(&["KILL", "ID", id]))
            .await
        {
            // Gone by itself meanwhile.
            Err(e) if e.to_string().contains("No such client") => {}
            other => other.map(drop)?,
        }
    }
    let kill = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub", "SKIPME", "yes"])
        .clone();
    pool.query::<u64>(addr, &kill).await.map(drop)
}

/// Empties the node at `addr` of its keys if it is a master (a replica's go at its reset).
async fn empty(pool: &Pool, addr: SocketAddr) -> Result<()> {
    let role: String = pool.query(addr, redis::cmd("INFO").arg("replication")).await?;
    if role.lines().any(|l| l.trim() == "role:master") {
        pool.query::<()>(addr, &redis::cmd("FLUSHALL")).await?;
    }
    Ok(())
}

/// `CLUSTER RESET HARD` on the node at `addr`: it forgets every other node, its epochs and its slots, and takes a
/// new id, which it returns (a replica also becomes an empty master). Then, a master of nothing, it drops the
/// scripts and functions a test loaded, and its statistics, slow log and latency samples.
async fn reset(pool: &Pool, addr: SocketAddr) -> Result<String> {
    pool.query::<()>(addr, redis::cmd("CLUSTER").arg(&["RESET", "HARD"]))
        .await?;
    pool.query::<()>(addr, redis::cmd("SCRIPT").arg("FLUSH")).await?;
    match pool.query::<()>(addr, redis::cmd("FUNCTION").arg("FLUSH")).await {
        Err(e) if !e.is_unknown_command() => return Err(e),
        _ => {}
    }
    pool.query::<()>(addr, redis::cmd("CONFIG").arg("RESETSTAT")).await?;
    pool.query::<()>(addr, redis::cmd("SLOWLOG").arg("RESET")).await?;
    pool.query::<u64>(addr, redis::cmd("LATENCY").arg("RESET")).await?;
    pool.query(addr, redis::cmd("CLUSTER").arg("MYID")).await
}
