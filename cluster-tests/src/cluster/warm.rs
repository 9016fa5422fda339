//! Warm clusters: made ahead of time by a [`Keeper`](crate::Keeper), so that a test is handed a ready cluster in a
//! fraction of a second, and removed after the test by the keeper, off the test's path.
//!
//! The state lives in Docker, as *marker* containers of the cluster (created, never started, labelled with the
//! cluster like its nodes, so whatever removes the cluster removes them too):
//! - `<name>-offer`: the keeper made the cluster, it was ready, and it is for the first test that claims it;
//! - `<name>-lease`: a test process claimed it (its id is the lease's `LABEL_LEASED_BY`). Making the lease *is* the
//!   claim: Docker makes at most one container of a name, so two processes never get the same cluster;
//! - `<name>-release`: its test is done with it (or with a cluster of its own made cold); the keeper named in
//!   `LABEL_REAPER` removes it.
//!
//! A released cluster that nothing but the servers' protocol changed is recycled by its keeper: reset, formed
//! again, and put back on offer by removing its release and lease (see [`crate::cluster::recycle`]); any other is
//! removed. Whatever removes a warm cluster takes its offer first, and a claimer looks for the offer again once its
//! lease is made, so a cluster being removed is never claimed; one being recycled has its lease until it is ready.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cluster::handle::Cluster;
use crate::cluster::identity::{
    Identity, LABEL_CLUSTER, LABEL_HOLDER, LABEL_LEASED_BY, LABEL_MAKER, LABEL_MARK, LABEL_OWNER, LABEL_POOL,
    LABEL_PORT, LABEL_REAPER, LABEL_RECYCLE, cluster_filter, pool_key,
};
use crate::cluster::removal::{Removed, remove_cluster};
use crate::engine::docker::{Container, ContainerSpec, Docker};
use crate::engine::owner;
use crate::images::node_image::NodeImage;
use crate::server::ready::Shape;
use crate::spec::{ClusterSpec, Lifetime, Networking, PlainPorts, is_generated_name, keep_switch};
use crate::{Error, Result};

/// The process of a keeper that removes test clusters for their tests, if one runs: test processes started by
/// the project's matrix runner have it. A test's cluster is then left to the keeper when the test drops it.
pub const KEEPER_ENV: &str = "CLUSTER_TESTS_KEEPER";
/// `off` makes every test start its cluster cold, even where a keeper offers warm ones.
pub const WARM_ENV: &str = "CLUSTER_TESTS_WARM";

/// How long a claimed cluster may take to show it is ready before it is given back and the next one tried: a
/// warm cluster was ready when offered, so one check normally settles it.
const CLAIM_READY_TIMEOUT: Duration = Duration::from_secs(3);

/// A marker's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mark {
    Offer,
    Lease,
    Release,
}

impl Mark {
    fn name(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Lease => "lease",
            Self::Release => "release",
        }
    }

    pub(crate) fn of(container: &Container) -> Option<Self> {
        match container.labels.get(LABEL_MARK)?.as_str() {
            "offer" => Some(Self::Offer),
            "lease" => Some(Self::Lease),
            "release" => Some(Self::Release),
            _ => None,
        }
    }
}

/// Whether the pool serves clusters of `spec`: a test's cluster of any name, with no credentials, TLS, server
/// settings, persistence, fixed port or bridge network, and no [`KEEP_ENV`](crate::KEEP_ENV) (a kept cluster is an
/// ordinary cold one), unless [`WARM_ENV`] is `off`.
pub(crate) fn servable(spec: &ClusterSpec) -> bool {
    let plain = spec.password.is_none()
        && spec.users.is_empty()
        && !spec.default_user_off
        && spec.tls.is_none()
        && spec.plain_ports == PlainPorts::Off
        && spec.server_config.is_empty()
        && !spec.debug_command
        && !spec.persist;
    spec.lifetime == Lifetime::Test
        && is_generated_name(&spec.name)
        && spec.first_port.is_none()
        && spec.networking == Networking::Pod
        && plain
        && matches!(keep_switch(), Ok(None))
        && std::env::var(WARM_ENV).as_deref() != Ok("off")
}

/// The pool key of the clusters `spec` makes with `image`, if the pool serves it ([`servable`]): clusters of one
/// key are interchangeable.
pub(crate) fn key(spec: &ClusterSpec, image: &NodeImage) -> Option<String> {
    servable(spec).then(|| pool_key(spec, image))
}

/// Where a cluster's containers stand, from one listing.
#[derive(Debug, Default)]
pub(crate) struct Standing {
    /// Its markers, by kind.
    pub(crate) marks: BTreeMap<Mark, Container>,
    /// Its nodes and holder, running or not.
    pub(crate) members: Vec<Container>,
}

impl Standing {
    /// Every container of `containers`, by cluster.
    pub(crate) fn of(containers: Vec<Container>) -> BTreeMap<String, Self> {
        let mut clusters: BTreeMap<String, Self> = BTreeMap::new();
        for c in containers {
            let Some(name) = c.labels.get(LABEL_CLUSTER).cloned() else {
                continue;
            };
            let standing = clusters.entry(name).or_default();
            match Mark::of(&c) {
                Some(mark) => {
                    standing.marks.insert(mark, c);
                }
                None => standing.members.push(c),
            }
        }
        clusters
    }

    /// Offered by a keeper that still runs, not claimed, and every node and the holder running.
    fn claimable(&self, nodes: usize) -> bool {
        self.marks
            .get(&Mark::Offer)
            .and_then(|offer| offer.labels.get(LABEL_OWNER))
            .is_some_and(|keeper| keeper_runs(keeper))
            && self.marks.len() == 1
            && self.members.iter().all(|c| c.running)
            && self
                .members
                .iter()
                .filter(|c| c.labels.contains_key(LABEL_PORT))
                .count()
                == nodes
            && self.members.iter().any(|c| c.labels.contains_key(LABEL_HOLDER))
    }

    /// Offered in pool `key` and not claimed.
    pub(crate) fn offered_in(&self, key: &str) -> bool {
        self.marks.len() == 1
            && self
                .marks
                .get(&Mark::Offer)
                .is_some_and(|o| o.labels.get(LABEL_POOL).map(String::as_str) == Some(key))
    }

    /// Offered, not claimed, and a node or the holder no longer running.
    fn broken_offer(&self) -> bool {
        self.marks.len() == 1 && self.marks.contains_key(&Mark::Offer) && self.members.iter().any(|c| !c.running)
    }

    /// Done with: released, or leased by a process that is gone.
    pub(crate) fn finished(&self) -> bool {
        self.marks.contains_key(&Mark::Release)
            || self
                .marks
                .get(&Mark::Lease)
                .and_then(|lease| lease.labels.get(LABEL_LEASED_BY))
                .is_some_and(|by| owner::is_gone(by))
    }

    /// Leased by a process that still runs.
    pub(crate) fn in_use(&self) -> bool {
        !self.marks.contains_key(&Mark::Release)
            && self
                .marks
                .get(&Mark::Lease)
                .and_then(|lease| lease.labels.get(LABEL_LEASED_BY))
                .is_some_and(|by| !owner::is_gone(by))
    }
}

/// The marker `mark` of the cluster whose member (or identity) has `member_labels`: its labels are the member's
/// cluster labels (cluster, owner, pool, maker) and the mark; `extra` adds more.
fn marker(member_labels: &HashMap<String, String>, image: &str, mark: Mark, extra: &[(&str, String)]) -> ContainerSpec {
    let copied = [LABEL_CLUSTER, LABEL_OWNER, LABEL_POOL, LABEL_MAKER];
    let mut labels: HashMap<String, String> = copied
        .iter()
        .filter_map(|k| Some((k.to_string(), member_labels.get(*k)?.clone())))
        .collect();
    labels.insert(LABEL_MARK.to_owned(), mark.name().to_owned());
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    ContainerSpec {
        name: format!(
            "{}-{}",
            member_labels.get(LABEL_CLUSTER).map_or("", String::as_str),
            mark.name()
        ),
        image: image.to_owned(),
        // Never started: it needs no network, and its entry point never runs.
        network: "none".to_owned(),
        labels,
        ..ContainerSpec::default()
    }
}

/// Offers the warm cluster `cluster` (made by this process, the keeper, or for it) to the tests; `extra` labels
/// go on the offer.
pub(crate) async fn offer(docker: &Docker, cluster: &Cluster, extra: &[(&str, String)]) -> Result<()> {
    let members = docker.containers(&[cluster_filter(cluster.name())]).await?;
    let member = members
        .iter()
        .find(|c| c.labels.contains_key(LABEL_HOLDER))
        .ok_or_else(|| Error::other(format!("warm cluster {} has no holder to offer", cluster.name())))?;
    docker
        .create(&marker(&member.labels, &cluster.image().reference, Mark::Offer, extra))
        .await
        .map(drop)
}

/// Leases the cluster of `identity`, about to be made by this process for the pool of `keeper` (see
/// [`for_pool`]), to this process, before anything of it exists: from its first container on, it is `keeper`'s
/// to remove once this process is done with it or gone, and no one else's to claim.
pub(crate) async fn lease_for_pool(docker: &Docker, identity: &Identity) -> Result<()> {
    let lease = marker(
        &identity.labels(),
        &identity.image.reference,
        Mark::Lease,
        &[(LABEL_LEASED_BY, owner::this_process())],
    );
    docker.create(&lease).await.map(drop)
}

/// The keeper to make a cold cluster of `spec` for, if any: one runs to remove the cluster after its test
/// ([`reaper`]) and the pool serves the spec. The cluster is then made like one of the keeper's own, leased to
/// its test, and once released, the keeper recycles it for its pool if it keeps one of that key, rather than
/// removing it (a cold start then adds a warm cluster to the pool instead of costing one).
pub(crate) fn for_pool(spec: &ClusterSpec) -> Option<String> {
    servable(spec).then(|| reaper(None)).flatten()
}

/// Claims a warm cluster for `spec`, if the pool serves the spec and a keeper offers one that is ready: the
/// cluster is then this process's, as if it had made it. `None`: start it cold.
pub(crate) async fn claim(docker: &Docker, spec: &ClusterSpec, image: &NodeImage) -> Result<Option<Cluster>> {
    let Some(key) = key(spec, image) else {
        return Ok(None);
    };
    let listed = docker.containers(&[format!("{LABEL_POOL}={key}")]).await?;
    let (mut offered, others): (Vec<(String, Standing)>, Vec<_>) = Standing::of(listed)
        .into_iter()
        .partition(|(_, s)| s.claimable(spec.node_count()));
    // An offer whose node stopped can never be claimed: its keeper removes it and makes another.
    for (name, standing) in others.iter().filter(|(_, s)| s.broken_offer()) {
        let keeper = standing.marks[&Mark::Offer].labels.get(LABEL_OWNER);
        if let Some(keeper) = keeper.filter(|k| keeper_runs(k)) {
            release(docker, name, &image.reference, keeper, false).await?;
        }
    }
    // Claimers that start together try the offers in different orders, so most get their first pick.
    offered.sort_by_cached_key(|(name, _)| {
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), name)
    });
    let me = owner::this_process();
    for (name, standing) in offered {
        let member = &standing.marks[&Mark::Offer];
        let lease = marker(
            &member.labels,
            &image.reference,
            Mark::Lease,
            &[(LABEL_LEASED_BY, me.clone())],
        );
        let lease_id = match docker.create(&lease).await {
            Ok(id) => id,
            Err(e) if e.kind() == crate::ErrorKind::NameTaken => continue,
            Err(e) => return Err(e),
        };
        // The offer must still stand: one taken away means the cluster is being removed.
        if docker.state(&member.id).await?.is_none() {
            docker.remove_container(&lease_id).await.ok();
            continue;
        }
        let mut cluster = Cluster::find(docker, &name).await?;
        cluster.adopt_warm(spec.on_drop(), me.clone());
        let shape = Shape::Exact {
            masters: spec.masters,
            replicas_per_master: spec.replicas,
        };
        match cluster.wait_ready(shape, CLAIM_READY_TIMEOUT).await {
            Ok(()) => {
                tracing::info!(
                    "cluster `{name}`: claimed warm ({} masters x {} replicas, {})",
                    spec.masters,
                    spec.replicas,
                    image.server
                );
                return Ok(Some(cluster));
            }
            // Given back: the handle's drop releases it to its keeper.
            Err(e) => tracing::warn!("warm cluster `{name}` was not ready, trying another: {e}"),
        }
    }
    Ok(None)
}

/// Keepers running in this process (a stopped keeper's process may run on, removing nothing more).
pub(crate) static KEEPERS_HERE: AtomicUsize = AtomicUsize::new(0);

/// Whether the keeper of process `keeper` is running.
fn keeper_runs(keeper: &str) -> bool {
    match keeper == owner::this_process() {
        true => KEEPERS_HERE.load(Ordering::SeqCst) > 0,
        false => !owner::is_gone(keeper),
    }
}

/// The keeper that would remove a test's cluster for it: the one that offered it (`warm_keeper`) or the one
/// [`KEEPER_ENV`] names, while it runs.
pub(crate) fn reaper(warm_keeper: Option<&str>) -> Option<String> {
    let named = std::env::var(KEEPER_ENV).ok().filter(|k| !k.is_empty());
    warm_keeper.map(str::to_owned).or(named).filter(|k| keeper_runs(k))
}

/// Hands cluster `name` to `reaper`, by its release marker: to recycle if `recyclable` (no fault rule was set
/// in its network), else to remove.
pub(crate) async fn release(docker: &Docker, name: &str, image: &str, reaper: &str, recyclable: bool) -> Result<()> {
    let members = docker.containers(&[cluster_filter(name)]).await?;
    let Some(member) = members.iter().find(|c| Mark::of(c).is_none()) else {
        return Ok(()); // nothing left to remove
    };
    match docker
        .create(&marker(
            &member.labels,
            image,
            Mark::Release,
            &[
                (LABEL_REAPER, reaper.to_owned()),
                (LABEL_RECYCLE, recyclable.to_string()),
            ],
        ))
        .await
    {
        // Released already (a second handle of the cluster, or a claimer that gave it back).
        Err(e) if e.kind() == crate::ErrorKind::NameTaken => Ok(()),
        other => other.map(drop),
    }
}

/// Whether the test that released a cluster by `release` left it to be recycled.
pub(crate) fn recyclable(release: &Container) -> bool {
    release.labels.get(LABEL_RECYCLE).map(String::as_str) == Some("true")
}

/// Removes a warm cluster, its offer first (see the [module](self) docs), and says what went. A cluster still
/// on offer is first leased to this process, so that no claimant can take it while it goes; one a live test
/// leased meanwhile (its lease came first) is left to that test, and nothing is removed.
pub(crate) async fn remove_warm(docker: &Docker, name: &str) -> Result<Removed> {
    if !take_off_offer(docker, name).await? {
        tracing::debug!("warm cluster `{name}` was claimed before it could be removed; it is its test's");
        return Ok(Removed::default());
    }
    docker
        .remove_container(&format!("{name}-{}", Mark::Offer.name()))
        .await?;
    remove_cluster(docker, name, None).await
}

/// Makes sure no other process can claim warm cluster `name` any more: its lease is made for this process if it
/// has none. `false`: another process that still runs holds the lease and has not released the cluster (it
/// claimed it first), so the cluster is that process's.
async fn take_off_offer(docker: &Docker, name: &str) -> Result<bool> {
    let members = docker.containers(&[cluster_filter(name)]).await?;
    let Some(offer) = members.iter().find(|c| Mark::of(c) == Some(Mark::Offer)) else {
        return Ok(true); // off offer already: nobody can claim it
    };
    let me = owner::this_process();
    let lease = marker(
        &offer.labels,
        &offer.image,
        Mark::Lease,
        &[(LABEL_LEASED_BY, me.clone())],
    );
    match docker.create(&lease).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == crate::ErrorKind::NameTaken => {
            let standing = Standing::of(docker.containers(&[cluster_filter(name)]).await?);
            let held_by_another = standing.get(name).is_some_and(|s| {
                s.in_use()
                    && s.marks
                        .get(&Mark::Lease)
                        .and_then(|l| l.labels.get(LABEL_LEASED_BY))
                        .is_some_and(|by| *by != me)
            });
            Ok(!held_by_another)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A container of cluster `c` with these labels (and running or not).
    fn container(c: &str, running: bool, labels: &[(&str, &str)]) -> Container {
        let mut all: HashMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        all.insert(LABEL_CLUSTER.to_owned(), c.to_owned());
        Container {
            id: format!("{c}-{}", all.len()),
            name: c.to_owned(),
            image: "img".to_owned(),
            ip: None,
            network_id: None,
            running,
            state: if running { "running" } else { "exited" }.to_owned(),
            labels: all,
        }
    }

    /// A warm cluster `c` of 6 nodes and a holder, offered by this process's keeper, with `more` containers.
    fn warm(c: &str, more: Vec<Container>) -> Standing {
        let me = owner::this_process();
        let mut all = vec![container(c, true, &[(LABEL_HOLDER, "yes")])];
        all.extend((0..6).map(|p| container(c, true, &[(LABEL_PORT, &p.to_string())])));
        all.push(container(
            c,
            false,
            &[(LABEL_MARK, "offer"), (LABEL_OWNER, &me), (LABEL_POOL, "k")],
        ));
        all.extend(more);
        Standing::of(all).remove(c).expect("one cluster")
    }

    #[test]
    fn an_offer_is_claimable_once_and_finished_when_released_or_its_claimer_is_gone() {
        // The only test that counts a keeper in this process.
        let running = KeeperHere::start();
        let offered = warm("a", vec![]);
        assert!(offered.claimable(6) && offered.offered_in("k") && !offered.finished() && !offered.in_use());
        assert!(!offered.claimable(8), "another shape");
        assert!(!offered.offered_in("other"));

        let me = owner::this_process();
        let leased = warm(
            "b",
            vec![container("b", false, &[(LABEL_MARK, "lease"), (LABEL_LEASED_BY, &me)])],
        );
        assert!(!leased.claimable(6) && !leased.offered_in("k"), "claimed once only");
        assert!(leased.in_use() && !leased.finished(), "its claimer runs");

        let gone = format!("{}/1", me.rsplit_once('/').expect("owner value").0);
        let orphan = warm(
            "c",
            vec![container(
                "c",
                false,
                &[(LABEL_MARK, "lease"), (LABEL_LEASED_BY, &gone)],
            )],
        );
        assert!(orphan.finished() && !orphan.in_use(), "its claimer is gone");

        let released = warm("d", vec![container("d", false, &[(LABEL_MARK, "release")])]);
        assert!(released.finished() && !released.claimable(6));

        let mut broken = warm("e", vec![]);
        broken.members[1].running = false;
        assert!(!broken.claimable(6) && broken.broken_offer());
        assert!(!offered.broken_offer());

        drop(running);
        assert!(!offered.claimable(6), "the offer of a keeper that stopped");
    }

    #[test]
    fn generated_names_are_told_from_chosen_ones() {
        let generated = crate::spec::unique_name();
        assert!(is_generated_name(&generated), "{generated}");
        for chosen in [
            "playground",
            "ct",
            "ctxx",
            "ct1234567x1",
            "ct1234567gx1",
            "ct12345678x",
            "ct12345678y1",
        ] {
            assert!(!is_generated_name(chosen), "{chosen}");
        }
    }

    /// Counts as a keeper running in this process while it lives.
    struct KeeperHere;

    impl KeeperHere {
        fn start() -> Self {
            KEEPERS_HERE.fetch_add(1, Ordering::SeqCst);
            Self
        }
    }

    impl Drop for KeeperHere {
        fn drop(&mut self) {
            KEEPERS_HERE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
