//! Making a cluster: start the node containers (see [`crate::cluster::launch`]), meet them, assign slots, attach
//! replicas, wait until ready.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;

use crate::cluster::capacity;
use crate::cluster::handle::{Cluster, Nudge, advance_idle_masters};
use crate::cluster::identity::{Identity, LABEL_CLUSTER, LABEL_MAKER, LABEL_PRINT, cluster_filter};
use crate::cluster::launch::{meet_all, node_container, replicate, start_node};
use crate::cluster::networking::{Attachment, start_pod};
use crate::cluster::probe;
use crate::cluster::recycle::Fingerprint;
use crate::cluster::removal::{remove_interrupted_cluster, remove_orphans};
use crate::cluster::warm;
use crate::engine::docker::{Docker, Network};
use crate::engine::owner;
use crate::images::node_image::{ImageSource, NodeImage};
use crate::security::credentials::{Access, Secrets};
use crate::server::ready::Shape;
use crate::server::topology::{SLOTS, SlotRange, format_ranges};
use crate::spec::{ClusterSpec, FIRST_PORT, Lifetime, Networking};
use crate::wait::not_yet;
use crate::{Error, ErrorKind, Remedy, Result, bail, wait};

/// How long the steps of making a cluster took, each measured from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateReport {
    /// Every node container running and answering.
    pub containers_started: Duration,
    /// Every node serving all slots (`cluster_state:ok` everywhere, one agreed topology).
    pub cluster_formed: Duration,
    /// Every replica's link up and synced: the cluster is ready.
    pub replicas_synced: Duration,
}

/// The slot ranges of `masters` masters, split as `redis-cli --cluster create` splits them.
pub fn slot_ranges(masters: usize) -> Vec<SlotRange> {
    let per_node = f64::from(SLOTS) / masters as f64;
    let mut ranges = Vec::with_capacity(masters);
    let (mut first, mut cursor) = (0u16, 0f64);
    for i in 0..masters {
        let mut last = (cursor + per_node - 1.0).round() as u16;
        if last >= SLOTS || i == masters - 1 {
            last = SLOTS - 1;
        }
        ranges.push(SlotRange {
            start: first,
            end: last.max(first),
        });
        first = last + 1;
        cursor += per_node;
    }
    ranges
}

impl ClusterSpec {
    /// Makes the cluster and returns once it is ready (see [`crate::server::ready`]), building the node image first
    /// if it is missing. Clusters of test processes that died without cleaning up are removed meanwhile. Progress
    /// goes to `tracing` at info level.
    pub async fn start(self) -> Result<Cluster> {
        // Bad input and an image that cannot be had fail at once, before any wait for a place.
        self.validate()?;
        let docker = Docker::connect().await?;
        let image = NodeImage::resolve(&docker, &self.image).await?;
        // A test's cluster then waits for a place under the machine-wide cap, if one is set (see
        // `MAX_CLUSTERS_ENV`), and holds it while its handle lives.
        let place = match self.lifetime {
            Lifetime::Test => capacity::claim().await?,
            Lifetime::Kept => None,
        };
        // A warm cluster, if a keeper offers one this spec can use: ready in a fraction of a second.
        if warm::servable(&self)
            && let Some(mut cluster) = warm::claim(&docker, &self, &image).await?
        {
            cluster.hold_capacity(place);
            return Ok(cluster);
        }
        // Orphans are cleared while this cluster is being made, so a stubborn one does not hold the test up.
        let for_pool = warm::for_pool(&self);
        let (reaped, created) = tokio::join!(remove_orphans(&docker), Cluster::create_for(&docker, self, for_pool));
        if let Err(e) = reaped {
            tracing::warn!("{e}");
        }
        let mut cluster = created?.0;
        cluster.hold_capacity(place);
        Ok(cluster)
    }
}

/// Makes the cluster's pod (its first port then settled in `identity`) or bridge network.
async fn attach_cluster(docker: &Docker, identity: &mut Identity, spec: &ClusterSpec) -> Result<Attachment> {
    match spec.networking {
        Networking::Pod => start_pod(docker, identity, spec).await,
        Networking::Bridge => Ok(Attachment::Bridge {
            network: make_network(docker, identity).await?,
        }),
    }
}

/// Makes the cluster's network and returns its id, or reuses one of the same cluster left by a process that is
/// gone (Docker could not remove it: it keeps an endpoint of a removed container, moby/moby#42119). `create` has
/// checked that no container of the cluster is left. Refuses a network of that name the cluster does not own.
///
/// Docker 20.10 makes a second network of the same name without complaint, so two `create`s at once both get
/// one: each then looks again, and all but the maker of the oldest remove theirs and give up.
async fn make_network(docker: &Docker, identity: &Identity) -> Result<String> {
    let name = &identity.name;
    let ours = |n: &Network| n.labels.get(LABEL_CLUSTER) == Some(name);
    let existing = docker.networks_named(name).await?;
    if let Some(foreign) = existing.iter().find(|n| !ours(n)) {
        bail!(
            Refused,
            "a network called {name} exists that is not cluster `{name}`'s (id {}, not labelled {LABEL_CLUSTER}={name}); \
             remove it with `docker network rm {}` or name the cluster differently",
            short(&foreign.id),
            short(&foreign.id)
        );
    }
    if let Some(left) = existing.first() {
        if left.labels.get(LABEL_MAKER).is_some_and(|m| !owner::is_gone(m)) {
            return Err(being_made(name));
        }
        tracing::info!(
            "network: reusing {name} ({}), left by an earlier run that Docker could not remove (a Docker engine bug)",
            short(&left.id)
        );
        return Ok(left.id.clone());
    }
    let id = docker.create_network(name, identity.labels()).await?;
    let oldest = docker.networks_named(name).await?.into_iter().next();
    if oldest.is_some_and(|n| n.id != id) {
        docker.remove_network(&id).await.ok();
        return Err(being_made(name));
    }
    Ok(id)
}

/// The error of a `create` that found its cluster's name taken by another.
fn being_made(name: &str) -> Error {
    Error::with_kind(
        ErrorKind::NameTaken,
        format!("cluster `{name}` is being created or already exists"),
    )
    .with_remedy(Remedy::RemoveCluster)
}

/// The first 12 characters of a Docker id, as `docker` prints it.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Gives each node a distinct config epoch, from `first` up: this spares the servers their epoch-collision round
/// (as redis-cli does). Only nodes that know no other node accept it.
///
/// Replicas get the lower epochs (1 up), masters the ones above. Valkey 9 drops as stale the message of a node it
/// knew as a master that now says it is a replica in the same shard, when the node's own epoch is above the one
/// it now announces, its master's (`nodeEpoch(sender) > sender_claimed_config_epoch` in `clusterProcessPacket`).
/// With replicas above masters, a peer could keep such a replica a master without slots for good.
async fn set_config_epochs(access: &Access, nodes: &[(SocketAddr, String)], first: usize) -> Result<()> {
    let epochs = nodes
        .iter()
        .enumerate()
        .map(|(i, (addr, _))| access.command::<()>(*addr, &["CLUSTER", "SET-CONFIG-EPOCH", &(first + i).to_string()]));
    try_join_all(epochs).await.map(drop)
}

/// Assigns `range` to the master at `addr`: one `ADDSLOTSRANGE` where supported (Redis 7+), else one `ADDSLOTS`.
async fn assign_slots(access: &Access, addr: SocketAddr, range: SlotRange) -> Result<()> {
    let (start, end) = (range.start.to_string(), range.end.to_string());
    match access
        .command::<()>(addr, &["CLUSTER", "ADDSLOTSRANGE", &start, &end])
        .await
    {
        Err(e) if e.is_unknown_command() => {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("ADDSLOTS").arg((range.start..=range.end).collect::<Vec<u16>>());
            access.query(addr, &cmd).await
        }
        other => other,
    }
}

/// Names of the clusters this process is making. What a create makes carries this process as its maker, which is
/// how a failed create spares a concurrent one of another process; two of one process could not be told apart, so
/// the second is refused at once.
static MAKING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// A name in [`MAKING`], taken out again when the create ends.
struct Making(String);

impl Making {
    fn claim(name: &str) -> Result<Self> {
        let mut making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
        if !making.insert(name.to_owned()) {
            return Err(being_made(name));
        }
        Ok(Self(name.to_owned()))
    }
}

impl Drop for Making {
    fn drop(&mut self) {
        MAKING.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

/// Removes what a failed create made and returns its error, saying also what could not be removed and how.
async fn undo_create(docker: &Docker, spec: &ClusterSpec, error: Error) -> Error {
    match remove_interrupted_cluster(docker, &spec.name).await {
        Ok(_) => error,
        Err(e) => {
            // A test's remains are an orphan once its process ends; a kept cluster's are removed by name, as
            // nothing tells its remains from a cluster in use.
            let (how, remedy) = match spec.owned() {
                true => ("`playground::remove_abandoned`", Remedy::RemoveAbandoned),
                false => ("`playground::remove_cluster`", Remedy::RemoveCluster),
            };
            error
                .context(format!(
                    "cluster `{}` could not be made, and what was made could not all be removed ({e}; {how} tries \
                     again)",
                    spec.name
                ))
                .with_remedy(remedy)
        }
    }
}

impl Cluster {
    /// Creates the cluster `spec` describes and returns once it is ready, printing progress as it goes.
    ///
    /// Refuses if a cluster of that name exists or is being made (then with [`ErrorKind::NameTaken`]); builds
    /// the node image if it is missing. On any failure everything this call made is removed, and nothing else.
    pub(crate) async fn create(docker: &Docker, spec: ClusterSpec) -> Result<(Self, CreateReport)> {
        Self::create_for(docker, spec, None).await
    }

    /// [`Self::create`], for the pool of the keeper `for_pool` if given (see [`warm::for_pool`]): the cluster is
    /// then the keeper's, leased to this process from before its first container until its handle is dropped,
    /// and offered (with what it is, for the keeper to recycle it by) once ready.
    pub(crate) async fn create_for(
        docker: &Docker,
        spec: ClusterSpec,
        for_pool: Option<String>,
    ) -> Result<(Self, CreateReport)> {
        spec.validate()?;
        let _making = Making::claim(&spec.name)?;
        let existing = docker.containers(&[cluster_filter(&spec.name)]).await?;
        if !existing.is_empty() {
            let running = existing.iter().filter(|c| c.running).count();
            return Err(Error::with_kind(
                ErrorKind::NameTaken,
                format!(
                    "cluster `{}` already exists: {} containers, {running} of them running{}",
                    spec.name,
                    existing.len(),
                    if running < existing.len() {
                        " (a cluster stopped or left half-made)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        tracing::info!(
            "creating cluster `{}`: {} masters x {} replicas, {}",
            spec.name,
            spec.masters,
            spec.replicas,
            match &spec.image {
                ImageSource::Recipe(v) => v.server.clone(),
                ImageSource::Reference(r) => format!("image {r}"),
            }
        );
        let image = NodeImage::resolve(docker, &spec.image).await?;
        if spec.image.version().is_none() {
            tracing::info!(
                "image: {} runs {} ({}{})",
                image.reference,
                image.server,
                image.server_bin,
                if image.fresh_data_dir {
                    ", data in a tmpfs at /data"
                } else {
                    ""
                }
            );
        }
        let secrets = spec.secrets()?;
        let settings = probe::accepted_settings(docker, &spec, &image, secrets.as_ref()).await?;
        let start = Instant::now();
        let made = async {
            let mut cluster = Self::attach(docker, &spec, &image, secrets, settings, for_pool.as_deref()).await?;
            let report = cluster.form(&spec, start).await?;
            if for_pool.is_some() {
                let print = Fingerprint::read(docker, &cluster).await?;
                warm::offer(docker, &cluster, &[(LABEL_PRINT, print.to_label())]).await?;
                cluster.hold_made_for_pool(owner::this_process());
            }
            Ok::<_, Error>((cluster, report))
        };
        match made.await {
            Ok(made) => Ok(made),
            // The holder's (or a node's) container name is taken: another create got there first.
            Err(e) if e.kind() == ErrorKind::NameTaken => Err(undo_create(docker, &spec, being_made(&spec.name)).await),
            Err(e) => Err(undo_create(docker, &spec, e).await),
        }
    }

    /// Makes the pod or network of the cluster `spec` describes, and the handle of the cluster to be, with its
    /// `secrets` and the server `settings` its nodes run with: its identity is made here, once.
    async fn attach(
        docker: &Docker,
        spec: &ClusterSpec,
        image: &NodeImage,
        secrets: Option<Secrets>,
        settings: Vec<(String, String)>,
        for_pool: Option<&str>,
    ) -> Result<Self> {
        let mut identity = Identity::new(spec, spec.first_port.unwrap_or(FIRST_PORT), image.clone());
        identity.settings = settings;
        if let Some(keeper) = for_pool {
            identity.owner = Some(keeper.to_owned());
            warm::lease_for_pool(docker, &identity).await?;
        }
        let attachment = attach_cluster(docker, &mut identity, spec).await?;
        // Written once the pod or network is made: the name is then this cluster's.
        if let Some(secrets) = &secrets {
            secrets.save()?;
        }
        Ok(Cluster::new(identity, docker, attachment, secrets, spec.on_drop()))
    }

    /// Starts the node containers of positions `nodes` (0 is the first port) of `total`; returns addresses and ids.
    async fn start_nodes(&self, nodes: std::ops::Range<usize>, total: usize) -> Result<Vec<(SocketAddr, String)>> {
        let started = std::sync::atomic::AtomicUsize::new(nodes.start);
        let ports = nodes.map(|i| self.first_port() + i as u16);
        try_join_all(ports.map(|port| {
            let started = &started;
            async move {
                let node = self.start_node_on(port).await?;
                let done = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                crate::progress::progress!("containers started", done, total);
                Ok::<_, crate::Error>(node)
            }
        }))
        .await
    }

    /// Starts the container of the node listening on `port` (a new one, where a recycled cluster lost one); returns
    /// its address and id.
    pub(crate) async fn start_node_on(&self, port: u16) -> Result<(SocketAddr, String)> {
        let container = node_container(self.identity(), port, self.attachment(), self.secrets());
        let node = start_node(
            self.docker(),
            container,
            port,
            self.identity().networking,
            self.access(),
        )
        .await?;
        // A connection left open to a node that had this port before leads nowhere.
        self.pool().forget(node.0);
        Ok(node)
    }

    /// The standard route, for comparison: starts the same containers and runs `redis-cli --cluster create`
    /// (or `valkey-cli`) inside the cluster's network, then waits for the same readiness. Returns the time taken.
    pub(crate) async fn create_with_cli(docker: &Docker, spec: ClusterSpec) -> Result<(Self, Duration)> {
        spec.validate()?;
        let image = NodeImage::resolve(docker, &spec.image).await?;
        let cli = image.cli()?.to_owned();
        let secrets = spec.secrets()?;
        let settings = probe::accepted_settings(docker, &spec, &image, secrets.as_ref()).await?;
        let start = Instant::now();
        let result = async {
            let cluster = Self::attach(docker, &spec, &image, secrets, settings, None).await?;
            let nodes = cluster.start_nodes(0..spec.node_count(), spec.node_count()).await?;
            let mut cmd = vec![cli.clone()];
            let tls_args = cluster.secrets().map_or(&[][..], |s| s.cli_args());
            cmd.extend(tls_args.iter().map(|a| a.to_string()));
            cmd.extend(["--cluster".into(), "create".into()]);
            cmd.extend(nodes.iter().map(|(addr, _)| addr.to_string()));
            cmd.extend([
                "--cluster-replicas".into(),
                spec.replicas.to_string(),
                "--cluster-yes".into(),
            ]);
            let first = format!("{}-{}", spec.name, cluster.first_port());
            let step_timeout = cluster.identity().step_timeout(spec.node_count());
            // The tool can loop on "Waiting for the cluster to join"; its wait has the same deadline as ours.
            let (code, output) = tokio::time::timeout(step_timeout, docker.exec(&first, &cmd))
                .await
                .map_err(|_| Error::timeout(format!("{cli} --cluster create did not finish in time")))??;
            if code != 0 {
                bail!(Redis, "{cli} --cluster create failed ({code}): {output}");
            }
            let shape = Shape::Exact {
                masters: spec.masters,
                replicas_per_master: spec.replicas,
            };
            cluster.wait_ready(shape, step_timeout).await?;
            Ok(cluster)
        }
        .await;
        match result {
            Ok(cluster) => Ok((cluster, start.elapsed())),
            Err(e) => Err(undo_create(docker, &spec, e).await),
        }
    }

    /// Starts the nodes and forms the cluster on the pod or network made already; times count from `start`.
    async fn form(&self, spec: &ClusterSpec, start: Instant) -> Result<CreateReport> {
        // Masters first: a master says cluster_state:ok no sooner than 2 s after it starts (the servers'
        // CLUSTER_WRITABLE_DELAY), so their clocks run while the replicas' containers are being made.
        let masters = self.start_nodes(0..spec.masters, spec.node_count()).await?;
        let (replicas, ()) = tokio::try_join!(
            self.start_nodes(spec.masters..spec.node_count(), spec.node_count()),
            self.form_masters(spec, &masters)
        )?;
        let containers_started = start.elapsed();
        tracing::info!(
            "containers: {} nodes of {} up ({}) ({:.2} s)",
            masters.len() + replicas.len(),
            self.identity().image.server,
            match self.attachment().published() {
                Some(ports) => format!("at 127.0.0.1, ports {}-{} published", ports.start(), ports.end()),
                None => format!("on network {}", spec.name),
            },
            containers_started.as_secs_f64()
        );
        let (cluster_formed, replicas_synced) = self.form_replicas(spec, &masters, &replicas, start).await?;
        Ok(CreateReport {
            containers_started,
            cluster_formed,
            replicas_synced,
        })
    }

    /// Forms the cluster `spec` describes again from running nodes that know no other node and hold nothing (a
    /// warm cluster reset for its next test, see [`crate::cluster::recycle`]): `nodes` in port order, with their
    /// ids, the first `spec.masters` of them masters as when the cluster was made.
    pub(crate) async fn reform(&self, spec: &ClusterSpec, nodes: &[(SocketAddr, String)]) -> Result<()> {
        let (masters, replicas) = nodes.split_at(spec.masters.min(nodes.len()));
        self.form_masters(spec, masters).await?;
        self.form_replicas(spec, masters, replicas, Instant::now())
            .await
            .map(drop)
    }

    /// Gives the masters their config epochs (above every replica's, see [`set_config_epochs`]) and slots, and
    /// meets them with each other.
    async fn form_masters(&self, spec: &ClusterSpec, masters: &[(SocketAddr, String)]) -> Result<()> {
        let ranges = slot_ranges(masters.len());
        set_config_epochs(self.access(), masters, spec.node_count() - spec.masters + 1).await?;
        try_join_all(
            masters
                .iter()
                .zip(&ranges)
                .map(|((addr, _), range)| assign_slots(self.access(), *addr, *range)),
        )
        .await?;
        meet_all(self.pool(), masters, &[]).await
    }

    /// Meets the replicas with the cluster of `masters`, attaches each to its master and waits until the cluster
    /// is ready; says when every node served all slots and when it was ready, measured from `start`.
    async fn form_replicas(
        &self,
        spec: &ClusterSpec,
        masters: &[(SocketAddr, String)],
        replicas: &[(SocketAddr, String)],
        start: Instant,
    ) -> Result<(Duration, Duration)> {
        let step_timeout = self.identity().step_timeout(spec.node_count());
        set_config_epochs(self.access(), replicas, 1).await?;
        let master_addrs: Vec<SocketAddr> = masters.iter().map(|(addr, _)| *addr).collect();
        meet_all(self.pool(), replicas, &master_addrs).await?;
        tracing::info!(
            "slots: {} assigned to {} masters ({}); all nodes met",
            SLOTS,
            spec.masters,
            format_ranges(&slot_ranges(spec.masters))
        );

        // Replica j follows master j % masters: every master gets the same number of replicas, each its own.
        let master_of = |j: usize| &masters[j % spec.masters];
        let attach = replicas.iter().enumerate().map(|(j, (addr, _))| {
            let (master_addr, master_id) = master_of(j);
            replicate(self.access(), *addr, (*master_addr, master_id), step_timeout)
        });
        try_join_all(attach).await?;
        let pairs: Vec<String> = replicas
            .iter()
            .enumerate()
            .map(|(j, (r, _))| format!("{}->{}", r.port(), master_of(j).0.port()))
            .collect();
        tracing::info!("replicas: {}", pairs.join(", "));

        let roster = self.roster();
        wait::until("every node to serve all slots", step_timeout, || async {
            let views = roster.views().await?;
            // Replicas sync within the masters' writable delay: let clients discover them meanwhile. The masters
            // hold nothing yet (made a moment ago, or emptied for the cluster's next test).
            advance_idle_masters(self.access(), &views, Nudge::FlushEmpty).await?;
            match views
                .iter()
                .find(|v| !v.info.state_ok() || v.info.slots_ok() != u64::from(SLOTS))
            {
                Some(v) => not_yet!(
                    "{}: cluster_state:{}",
                    v.addr,
                    v.info.0.get("cluster_state").unwrap_or("?")
                ),
                None => roster.confirm().await,
            }
        })
        .await?;
        let cluster_formed = start.elapsed();
        tracing::info!(
            "cluster: state ok on every node ({:.2} s)",
            cluster_formed.as_secs_f64()
        );

        let shape = Shape::Exact {
            masters: spec.masters,
            replicas_per_master: spec.replicas,
        };
        self.wait_ready(shape, step_timeout).await?;
        let replicas_synced = start.elapsed();
        tracing::info!(
            "sync: every replica linked and synced; cluster ready ({:.2} s)",
            replicas_synced.as_secs_f64()
        );
        Ok((cluster_formed, replicas_synced))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_match_redis_cli_and_cover_all_slots() {
        let r = slot_ranges(3);
        assert_eq!(
            r,
            vec![
                SlotRange { start: 0, end: 5460 },
                SlotRange {
                    start: 5461,
                    end: 10922
                },
                SlotRange {
                    start: 10923,
                    end: 16383
                }
            ]
        );
        for masters in 3..=12 {
            let r = slot_ranges(masters);
            assert_eq!(r.len(), masters);
            assert_eq!(r[0].start, 0);
            assert_eq!(r[masters - 1].end, SLOTS - 1);
            assert!(r.windows(2).all(|w| w[1].start == w[0].end + 1), "{r:?}");
        }
    }
}
