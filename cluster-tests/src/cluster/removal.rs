//! Removing clusters: everything labelled with a cluster, in passes until nothing is left, and the clusters of
//! test processes that died without cleaning up.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::cluster::identity::{
    LABEL_CLUSTER, LABEL_LEASED_BY, LABEL_MAKER, LABEL_OWNER, LABEL_PORT, LABEL_SECRETS, cluster_filter,
};
use crate::cluster::warm::Standing;
use crate::engine::docker::{Container, Docker, Network};
use crate::engine::owner;
use crate::security::credentials::{remove_secrets, secrets_dir};
use crate::wait::{Unmet, not_yet};
use crate::{Error, Remedy, Result, wait};

/// What [`remove_cluster`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
}

/// Removes every container and network labelled with cluster `name` — only those of `owner` when given (a
/// test's cluster: another machine sharing the engine may have one of the same name) — and says how many there
/// were.
///
/// Removal is repeated until nothing of the cluster is left (a removal by another process, or a container still
/// being made, can keep the network busy for a moment); it fails only if something is still there after 30 s,
/// and then says what.
pub async fn remove_cluster(docker: &Docker, name: &str, owner: Option<&str>) -> Result<Removed> {
    let mut filters = vec![cluster_filter(name)];
    filters.extend(owner.map(|o| format!("{LABEL_OWNER}={o}")));
    let mut removed = remove_labelled(docker, &filters, &whole(name), Patience::DEFAULT, true).await?;
    if owner.is_some() {
        // A network the cluster reused (one a dead process left, see `create`) carries no owner of ours.
        for network in docker.networks(&[cluster_filter(name)]).await? {
            let owner = network.labels.get(LABEL_OWNER);
            if owner.is_none_or(|o| owner::is_gone(o)) && docker.remove_network(&network.id).await? {
                removed.networks += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes what this process made of cluster `name` when its making was cut short (a signal, a failed step), like
/// [`remove_cluster`] but sparing what another process made (a concurrent `create` that won the name): container
/// creations already sent to the engine can land after a pass found nothing, so it keeps looking for a while
/// after the first empty pass.
pub async fn remove_interrupted_cluster(docker: &Docker, name: &str) -> Result<Removed> {
    let filters = [cluster_filter(name), made_here()];
    remove_labelled(docker, &filters, &whole(name), Patience::INTERRUPTED, true).await
}

/// Removes the container this process made for cluster `name`'s node on `port` when its start was cut short,
/// watching for a while as [`remove_interrupted_cluster`] does.
pub(crate) async fn remove_interrupted_node(docker: &Docker, name: &str, port: u16) -> Result<()> {
    let filters = [cluster_filter(name), format!("{LABEL_PORT}={port}"), made_here()];
    remove_labelled(
        docker,
        &filters,
        &format!("container {name}-{port}"),
        Patience::INTERRUPTED,
        false,
    )
    .await
    .map(drop)
}

/// The label filter that selects what this process made.
fn made_here() -> String {
    format!("{LABEL_MAKER}={}", owner::this_process())
}

fn whole(cluster: &str) -> String {
    format!("every container and the network of cluster `{cluster}`")
}

/// How long [`remove_labelled`] keeps at it.
#[derive(Clone, Copy)]
struct Patience {
    /// How long passes must find nothing before the removal counts as done.
    settle: Duration,
    /// How long a network may refuse removal for endpoints while no container is left. Docker 20.10 can keep an
    /// endpoint of a removed container for good (moby/moby#42119); only restarting the daemon clears it.
    phantom: Duration,
}

impl Patience {
    /// Nothing is being made: done at the first empty pass.
    const DEFAULT: Self = Self {
        settle: Duration::ZERO,
        phantom: Duration::from_secs(5),
    };
    /// Making was cut short: container creations already sent may still land, so watch 2 s after the first empty
    /// pass.
    const INTERRUPTED: Self = Self {
        settle: Duration::from_secs(2),
        phantom: Duration::from_secs(5),
    };
    /// Best-effort clean-up that must not hold anyone up: a network refusing for endpoints is left at once.
    const QUICK: Self = Self {
        settle: Duration::ZERO,
        phantom: Duration::ZERO,
    };
}

/// Removes the containers and networks matching all `filters`, in passes, until nothing is left.
/// With `secrets`, the secrets directory each container's labels name goes too (not when one node of a cluster
/// goes: the others still need them).
async fn remove_labelled(
    docker: &Docker,
    filters: &[String],
    what: &str,
    patience: Patience,
    secrets: bool,
) -> Result<Removed> {
    /// What the passes saw: container and network ids (to say what went), since when passes find nothing,
    /// and since when only networks refusing for endpoints are left.
    #[derive(Default)]
    struct Seen {
        containers: BTreeSet<String>,
        networks: BTreeSet<String>,
        empty_since: Option<Instant>,
        only_busy_networks_since: Option<Instant>,
    }
    // The probe only borrows it (each check is a new future), so the passes share it behind a lock.
    let seen = std::sync::Mutex::new(Seen::default());
    wait::until(
        &format!("{what} to be removed"),
        patience.settle + Duration::from_secs(30),
        || {
            let seen = &seen;
            async move {
                let left = docker.containers(filters).await?;
                // Secrets go first: a removal cut short (SIGKILL) may leave a container, never a password.
                for c in left.iter().filter(|_| secrets) {
                    if let (Some(name), Some(dir)) = (c.labels.get(LABEL_CLUSTER), c.labels.get(LABEL_SECRETS)) {
                        remove_secrets(name, dir.as_ref());
                    }
                }
                let left_networks = docker.networks(filters).await?;
                let mut last = remove_containers(docker, &left, &left_networks).await;
                let mut busy = Vec::new();
                for network in &left_networks {
                    match docker.remove_network(&network.id).await {
                        Ok(true) => {}
                        Ok(false) => busy.push(network.name.as_str()),
                        Err(e) => last = Some(e),
                    }
                }
                let now = Instant::now();
                let (empty_since, busy_since) = {
                    let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    seen.containers.extend(left.iter().map(|c| c.id.clone()));
                    seen.networks.extend(left_networks.iter().map(|n| n.id.clone()));
                    let found_nothing = left.is_empty() && left_networks.is_empty();
                    seen.empty_since = if found_nothing {
                        seen.empty_since.or(Some(now))
                    } else {
                        None
                    };
                    let only_busy = left.is_empty() && !busy.is_empty() && last.is_none();
                    seen.only_busy_networks_since = if only_busy {
                        seen.only_busy_networks_since.or(Some(now))
                    } else {
                        None
                    };
                    (seen.empty_since, seen.only_busy_networks_since)
                };
                if let Some(e) = last {
                    return Err(e.into());
                }
                if let Some(since) = busy_since {
                    if since.elapsed() >= patience.phantom {
                        return Err(Unmet::GiveUp(Error::docker(format!(
                            "network {} has no container left but Docker still counts an endpoint on it (a Docker \
                             engine bug, moby/moby#42119); restarting the Docker daemon clears it, and a new cluster \
                             of the same name reuses it meanwhile",
                            busy.join(", ")
                        ))));
                    }
                    not_yet!("network {} still has endpoints", busy.join(", "));
                }
                match empty_since {
                    Some(since) if since.elapsed() >= patience.settle => Ok(()),
                    Some(_) => not_yet!("nothing left; watching for containers still being made"),
                    None => not_yet!(
                        "{} container(s) and {} network(s) still there",
                        left.len(),
                        left_networks.len()
                    ),
                }
            }
        },
    )
    .await?;
    let seen = seen.into_inner().unwrap_or_default();
    Ok(Removed {
        containers: seen.containers.len(),
        networks: seen.networks.len(),
    })
}

/// Removes `containers`, those with an endpoint on one of `networks` one at a time and the others together; returns
/// the last error. Docker 20.10 can miscount a network's endpoints and then refuse to remove the network for good
/// ("has active endpoints" with none attached, moby/moby#42119 and #43286, the latter after `docker-compose down`,
/// which removes a network's containers at once). Seen here on a bridge cluster's network in one of two full
/// matrix runs; 65 rounds of six containers removed at once did not bring it back, so that concurrent removal is
/// the trigger is the issues' suspicion, not a finding. A pod's nodes have no endpoint of their own.
async fn remove_containers(docker: &Docker, containers: &[Container], networks: &[Network]) -> Option<Error> {
    let (attached, others): (Vec<&Container>, Vec<&Container>) = containers.iter().partition(|c| {
        c.network_id
            .as_ref()
            .is_some_and(|id| networks.iter().any(|n| &n.id == id))
    });
    let one_by_one = async {
        let mut last = None;
        for c in attached {
            if let Err(e) = docker.remove_container(&c.id).await {
                last = Some(e);
            }
        }
        last
    };
    let together = join_all(others.iter().map(|c| docker.remove_container(&c.id)));
    let (last, errors) = tokio::join!(one_by_one, together);
    errors.into_iter().find_map(Result::err).or(last)
}

/// The clusters on this Docker engine, by whether anyone can still be using them (see [`census`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Clusters nobody can still be using: those of test processes that are gone, and clusters with no owner none
    /// of whose nodes runs (half-made, or stopped), whose maker is gone too.
    pub abandoned: Vec<Abandoned>,
    /// Clusters made on purpose and kept (the CLI's, and tests' kept by [`KEEP_ENV`](crate::KEEP_ENV)) with a
    /// node running: someone may be using them, so only removing them by name does.
    pub kept: Vec<String>,
    /// Clusters whose owner (or maker) still runs, or runs where this process cannot tell, by name, with why they
    /// are kept.
    pub owned: Vec<(String, String)>,
}

/// A cluster nobody can still be using.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Abandoned {
    /// Cluster name.
    pub name: String,
    /// Its owner label, if it has one (what removal matches, so a new cluster of the same name stays).
    owner: Option<String>,
}

/// Sorts every cluster of the project on this engine (containers and networks labelled [`LABEL_CLUSTER`]) into
/// abandoned, kept and owned.
pub async fn census(docker: &Docker) -> Result<Census> {
    let any = [LABEL_CLUSTER.to_owned()];
    let (containers, networks) = tokio::join!(docker.containers(&any), docker.networks(&any));
    let labels = containers?
        .into_iter()
        .map(|c| {
            let node_running = c.running && c.labels.contains_key(LABEL_PORT);
            (c.labels, node_running)
        })
        .chain(networks?.into_iter().map(|n| (n.labels, false)));
    // Per cluster and owner: whether a node of it runs, and a live maker if one is seen.
    let mut seen: std::collections::BTreeMap<(String, Option<String>), (bool, Option<String>)> = Default::default();
    for (labels, node_running) in labels {
        let Some(name) = labels.get(LABEL_CLUSTER) else {
            continue;
        };
        let entry = seen
            .entry((name.clone(), labels.get(LABEL_OWNER).cloned()))
            .or_default();
        entry.0 |= node_running;
        if let Some(maker) = labels.get(LABEL_MAKER).filter(|m| !owner::is_gone(m)) {
            entry.1 = Some(maker.clone());
        }
    }
    let pid = |process: &str| process.split('/').nth(2).unwrap_or("?").to_owned();
    let mut census = Census::default();
    for ((name, owner), (node_running, maker)) in seen {
        match (owner, maker) {
            (Some(o), _) if !owner::is_gone(&o) => census.owned.push((
                name,
                format!(
                    "its owner, process {}, is alive (or runs where this process cannot see it)",
                    pid(&o)
                ),
            )),
            (None, Some(m)) => census.owned.push((
                name,
                format!(
                    "process {} is making or changing it (or runs where this process cannot see it)",
                    pid(&m)
                ),
            )),
            (None, None) if node_running => census.kept.push(name),
            (owner, _) => census.abandoned.push(Abandoned { name, owner }),
        }
    }
    census.kept.dedup();
    Ok(census)
}

/// Removes an abandoned cluster: what carries its owner label, or, for a cluster with no owner, all of it.
pub async fn remove_abandoned(docker: &Docker, cluster: &Abandoned) -> Result<Removed> {
    let mut filters = vec![cluster_filter(&cluster.name)];
    filters.extend(cluster.owner.iter().map(|o| format!("{LABEL_OWNER}={o}")));
    remove_labelled(docker, &filters, &whole(&cluster.name), Patience::DEFAULT, true).await
}

/// Removes the clusters of test processes that are gone (a test killed by a timeout cannot clean up itself).
/// Only what carries the dead owner's label goes, so a new cluster that reuses the name (a reused pid) stays.
/// Best effort and quick: another test process may be removing the same cluster at the same moment, and a network
/// Docker cannot remove is left for a later run. Fails with what could not be listed or removed, and how to remove
/// it by hand.
pub(crate) async fn remove_orphans(docker: &Docker) -> Result<()> {
    let orphan = |labels: &HashMap<String, String>| {
        let owner = labels.get(LABEL_OWNER).filter(|owner| owner::is_gone(owner))?;
        Some((labels.get(LABEL_CLUSTER)?.clone(), owner.clone()))
    };
    // Networks too: a process killed between making the network and starting containers leaves only that.
    let any_owner = [LABEL_OWNER.to_owned()];
    let (containers, networks) = tokio::join!(docker.containers(&any_owner), docker.networks(&any_owner));
    let listing = |e: Error| e.context("listing the clusters of test processes that are gone");
    let mut orphans: BTreeSet<(String, String)> = containers
        .map_err(listing)?
        .iter()
        .filter_map(|c| orphan(&c.labels))
        .collect();
    orphans.extend(networks.map_err(listing)?.iter().filter_map(|n| orphan(&n.labels)));
    // A warm cluster whose keeper is gone is still its test's while that test runs.
    let leased = Standing::of(
        docker
            .containers(&[LABEL_LEASED_BY.to_owned()])
            .await
            .map_err(listing)?,
    );
    orphans.retain(|(name, _)| !leased.get(name).is_some_and(Standing::in_use));
    let mut failed = Vec::new();
    for (name, owner) in orphans {
        let filters = [cluster_filter(&name), format!("{LABEL_OWNER}={owner}")];
        if let Err(e) = remove_labelled(docker, &filters, &whole(&name), Patience::QUICK, true).await {
            failed.push(format!("{name} ({e})"));
        }
    }
    if !failed.is_empty() {
        return Err(Error::docker(format!(
            "could not remove the clusters of test processes that are gone: {}; `playground::remove_abandoned` \
             tries again",
            failed.join("; ")
        ))
        .with_remedy(Remedy::RemoveAbandoned));
    }
    Ok(())
}

/// The secrets directories (`<target>/cluster-tests/<name>`) whose cluster is gone: no container or network
/// carries its name. A removal or a create's clean-up cut short by SIGKILL leaves one; by name.
pub async fn orphan_secrets(docker: &Docker) -> Result<Vec<(String, PathBuf)>> {
    let root = secrets_dir("-");
    let Some(root) = root.parent() else {
        return Ok(Vec::new());
    };
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(Vec::new());
    };
    let mut orphans = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let filter = [cluster_filter(&name)];
        if docker.containers(&filter).await?.is_empty() && docker.networks(&filter).await?.is_empty() {
            orphans.push((name, entry.path()));
        }
    }
    orphans.sort();
    Ok(orphans)
}

/// Removes the secrets of cluster `name` if it is gone (see [`orphan_secrets`]); returns the directory they were
/// in, if there were any.
pub async fn remove_orphan_secrets(docker: &Docker, name: &str) -> Result<Option<PathBuf>> {
    let orphan = orphan_secrets(docker).await?.into_iter().find(|(n, _)| n == name);
    Ok(orphan.map(|(name, dir)| {
        remove_secrets(&name, &dir);
        dir
    }))
}

/// What finished test runs left behind: everything whose owner process is gone (tests remove their clusters, so
/// nothing should be), apart from networks Docker cannot remove for a phantom endpoint (moby/moby#42119). Clusters
/// of test processes still running are theirs, not leftovers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Names of the containers left.
    pub containers: Vec<String>,
    /// Names of the networks left (each was removed when found, so a second look finds none).
    pub networks: Vec<String>,
    /// Names of the networks with no container that Docker refuses to remove: an engine bug, not a leak.
    pub phantom_networks: Vec<String>,
    /// Secrets directories whose cluster is gone (see [`orphan_secrets`]).
    pub secrets: Vec<PathBuf>,
}

impl Leftovers {
    /// Whether the runs left something behind (phantom networks aside).
    pub fn any(&self) -> bool {
        !self.containers.is_empty() || !self.networks.is_empty() || !self.secrets.is_empty()
    }
}

/// Lists what test runs left behind (see [`Leftovers`]); a network left with no container is removed on the way,
/// which tells a removable leftover from a phantom one.
pub async fn leftovers(docker: &Docker) -> Result<Leftovers> {
    let owned = [LABEL_OWNER.to_owned()];
    let gone = |labels: &HashMap<String, String>| labels.get(LABEL_OWNER).is_some_and(|o| owner::is_gone(o));
    let containers = docker.containers(&owned).await?.into_iter().filter(|c| gone(&c.labels));
    let mut found = Leftovers {
        containers: containers.map(|c| c.name).collect(),
        ..Leftovers::default()
    };
    for network in docker.networks(&owned).await?.into_iter().filter(|n| gone(&n.labels)) {
        let attached = docker
            .containers(&[cluster_filter(
                network.labels.get(LABEL_CLUSTER).map_or("", String::as_str),
            )])
            .await?
            .into_iter()
            .any(|c| c.network_id.as_deref() == Some(network.id.as_str()));
        if !attached && !docker.remove_network(&network.id).await? {
            found.phantom_networks.push(network.name);
        } else {
            found.networks.push(network.name);
        }
    }
    found.secrets = orphan_secrets(docker).await?.into_iter().map(|(_, dir)| dir).collect();
    Ok(found)
}
