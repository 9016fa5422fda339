//! The keeper: a process that outlives the tests (the project's matrix runner and its keeper command, or a program of the
//! user's) and keeps warm clusters ready for them, then recycles or removes each cluster once its test is done with
//! it (see [`crate::cluster::recycle`]).
//!
//! It acts on what Docker says: a marker made ([`containers_created`](crate::engine::docker::Docker) events) wakes
//! it; process deaths make no event, so it also looks twice a second whether a lease's process is gone (a look at
//! `/proc`, no call to Docker).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cluster::handle::Cluster;
use crate::cluster::identity::{LABEL_MARK, LABEL_OWNER, LABEL_POOL, LABEL_REAPER};
use crate::cluster::recycle::{self, Fingerprint};
use crate::cluster::removal::{remove_cluster, remove_orphans};
use crate::cluster::warm::{self, KEEPER_ENV, Standing};
use crate::engine::docker::Docker;
use crate::engine::owner;
use crate::images::node_image::NodeImage;
use crate::spec::{ClusterSpec, OnDrop, unique_name};
use crate::{Error, Result};

/// How often the keeper looks whether the process of a lease is gone.
const LIVENESS_PERIOD: Duration = Duration::from_millis(500);
/// How often it removes the clusters of test processes that died without releasing them.
const ORPHAN_PERIOD: Duration = Duration::from_secs(5);
/// How long it waits after a failed make before trying that pool again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What a keeper keeps: for each spec, `ready` clusters made and offered, at most `making` being made at once.
///
/// ```no_run
/// # async fn demo() -> cluster_tests::Result<()> {
/// use std::time::Duration;
/// use cluster_tests::{ClusterSpec, WarmPool};
/// // In the process that runs the suite (or a keeper process beside `cargo nextest run`):
/// let keeper = WarmPool::new(vec![ClusterSpec::from_env()?]).ready(2).making(2).start().await?;
/// keeper.until_offered(1, Duration::from_secs(60)).await?;
/// // ... the tests run: ClusterSpec::start() claims a warm cluster ...
/// let report = keeper.stop().await?; // removes what is left: offers nobody claimed, released clusters
/// # let _ = report; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WarmPool {
    /// The specs of the clusters to keep ready; each must be one the pool serves (a test's cluster with a generated
    /// name, no credentials, TLS, server settings, persistence, fixed port or bridge network).
    pub specs: Vec<ClusterSpec>,
    /// Clusters kept ready per spec.
    pub ready: usize,
    /// Clusters made at once, over all specs: making one takes the engine's and the servers' time.
    pub making: usize,
}

impl WarmPool {
    /// Two ready clusters of each of `specs`, one made at a time.
    pub fn new(specs: Vec<ClusterSpec>) -> Self {
        Self {
            specs,
            ready: 2,
            making: 1,
        }
    }

    /// Sets how many clusters are kept ready per spec.
    pub fn ready(mut self, ready: usize) -> Self {
        self.ready = ready;
        self
    }

    /// Sets how many clusters are made at once.
    pub fn making(mut self, making: usize) -> Self {
        self.making = making;
        self
    }

    /// Starts keeping the pool, in the background of this process, until [`Keeper::stop`]. Refuses a spec the
    /// pool cannot serve, saying why.
    pub async fn start(self) -> Result<Keeper> {
        if self.making == 0 {
            return Err(Error::refused("a warm pool needs `making` of at least 1"));
        }
        let docker = Docker::connect().await?;
        let mut pools = Vec::new();
        for spec in self.specs {
            spec.validate()?;
            let image = NodeImage::resolve(&docker, &spec.image).await?;
            let key = warm::key(&spec, &image).ok_or_else(|| {
                Error::refused(format!(
                    "the warm pool serves only tests' clusters with a generated name, no credentials, TLS, server settings, \
                     persistence, fixed port or bridge network, while {} is not set; cluster `{}` is not one",
                    crate::KEEP_ENV,
                    spec.name
                ))
            })?;
            pools.push(Pool {
                key,
                spec,
                ready: self.ready,
                retry_at: None,
            });
        }
        let keys = pools.iter().map(|p| p.key.clone()).collect();
        let (stop, stopped) = oneshot::channel();
        let (control, wishes) = tokio::sync::mpsc::unbounded_channel();
        let keeping = Keeping {
            docker,
            me: owner::this_process(),
            in_flight: vec![0; pools.len()],
            pools,
            max_making: self.making,
            making: JoinSet::new(),
            being_made: BTreeSet::new(),
            retiring: JoinSet::new(),
            being_retired: BTreeSet::new(),
            prints: HashMap::new(),
            report: KeeperReport::default(),
        };
        warm::KEEPERS_HERE.fetch_add(1, Ordering::SeqCst);
        Ok(Keeper {
            docker: keeping.docker.clone(),
            keys,
            me: keeping.me.clone(),
            stop: Some(stop),
            control,
            task: Some(tokio::spawn(keeping.run(stopped, wishes))),
        })
    }
}

/// What a keeper did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeeperReport {
    /// Clusters made and offered.
    pub made: usize,
    /// Clusters reset, formed again and put back on offer after their test.
    pub recycled: usize,
    /// Clusters removed (released, or left by their test).
    pub removed: usize,
    /// What failed, as it went (a make or a removal), with the error.
    pub failures: Vec<String>,
}

/// A running keeper (see [`WarmPool`]). Dropping it stops the keeping; [`Keeper::stop`] also removes what it made.
#[derive(Debug)]
pub struct Keeper {
    docker: Docker,
    /// The pool key of each spec.
    keys: Vec<String>,
    me: String,
    stop: Option<oneshot::Sender<()>>,
    /// Changes to how many clusters a pool keeps ready: a spec's index and its new count.
    control: tokio::sync::mpsc::UnboundedSender<(usize, usize)>,
    task: Option<tokio::task::JoinHandle<Result<KeeperReport>>>,
}

impl Keeper {
    /// The variable and value that tell a test process this keeper removes its clusters ([`KEEPER_ENV`]).
    pub fn env(&self) -> (&'static str, String) {
        (KEEPER_ENV, self.me.clone())
    }

    /// Waits until every spec has `count` clusters on offer (at most `timeout`): for a suite that should start
    /// warm. `count` above [`WarmPool::ready`] waits for offers of other keepers too.
    pub async fn until_offered(&self, count: usize, timeout: Duration) -> Result<()> {
        crate::wait::until(
            &format!("{count} warm cluster(s) on offer for every spec"),
            timeout,
            || async {
                let clusters = Standing::of(self.docker.containers(&[LABEL_MARK.to_owned()]).await?);
                let offered = |key: &String| clusters.values().filter(|s| s.offered_in(key)).count();
                match self.keys.iter().find(|key| offered(key) < count) {
                    Some(key) => crate::wait::not_yet!("{} offered for {key}", offered(key)),
                    None => Ok(()),
                }
            },
        )
        .await
    }

    /// A handle that sets how many clusters each pool keeps ready from now on, from any thread.
    pub fn pool_sizes(&self) -> PoolSizes {
        PoolSizes {
            control: self.control.clone(),
            specs: self.keys.len(),
        }
    }

    /// Stops making clusters, removes the ones still offered and every released one, and says what it did.
    /// Clusters still leased by running processes are left to them.
    pub async fn stop(mut self) -> Result<KeeperReport> {
        if let Some(stop) = self.stop.take() {
            warm::KEEPERS_HERE.fetch_sub(1, Ordering::SeqCst);
            stop.send(()).ok();
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| Error::other(format!("the keeper failed: {e}")))?,
            None => Ok(KeeperReport::default()),
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if self.stop.take().is_some() {
            warm::KEEPERS_HERE.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Sets how many clusters a running [`Keeper`] keeps ready per spec: a suite that runs its specs one after another
/// keeps clusters ready only for the one it runs (an idle cluster still costs the machine its servers' gossip).
#[derive(Debug, Clone)]
pub struct PoolSizes {
    control: tokio::sync::mpsc::UnboundedSender<(usize, usize)>,
    specs: usize,
}

impl PoolSizes {
    /// Keeps `ready` clusters ready for spec `spec` (its index in [`WarmPool::specs`]); at 0 the pool's clusters on
    /// offer are removed, and released ones are removed rather than recycled.
    pub fn set_ready(&self, spec: usize, ready: usize) -> Result<()> {
        if spec >= self.specs {
            return Err(Error::refused(format!(
                "the keeper has {} specs; there is no spec {spec}",
                self.specs
            )));
        }
        self.control
            .send((spec, ready))
            .map_err(|_| Error::other("the keeper has stopped"))
    }
}

/// One spec's pool.
struct Pool {
    key: String,
    spec: ClusterSpec,
    /// Clusters kept ready.
    ready: usize,
    /// After a failed make: when to try again.
    retry_at: Option<tokio::time::Instant>,
}

/// The keeper's state, owned by its task.
struct Keeping {
    docker: Docker,
    me: String,
    pools: Vec<Pool>,
    max_making: usize,
    /// Makes under way, each yielding its pool's index, the cluster's name and what came of it.
    making: JoinSet<(usize, String, Result<Fingerprint>)>,
    /// The names of the clusters being made: one is offered before its make is joined, so its test can be done
    /// with it before this keeper knows what it was when offered.
    being_made: BTreeSet<String>,
    /// Makes and recycles under way, per pool.
    in_flight: Vec<usize>,
    /// Clusters done with, being recycled or removed: each yields its name, the pool it is recycled for, and what
    /// came of it.
    retiring: JoinSet<(String, Option<usize>, Retired)>,
    being_retired: BTreeSet<String>,
    /// What the clusters this keeper offered were when offered, and their pool, by name: the ones it may recycle.
    prints: HashMap<String, (usize, Fingerprint)>,
    report: KeeperReport,
}

impl Keeping {
    async fn run(
        mut self,
        mut stopped: oneshot::Receiver<()>,
        mut wishes: tokio::sync::mpsc::UnboundedReceiver<(usize, usize)>,
    ) -> Result<KeeperReport> {
        let mut marks = self.docker.containers_created(LABEL_MARK).boxed();
        let mut liveness = tokio::time::interval(LIVENESS_PERIOD);
        let mut orphans = tokio::time::interval(ORPHAN_PERIOD);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                Some((i, ready)) = wishes.recv() => self.pools[i].ready = ready,
                event = marks.next() => if event.is_none() {
                    // The engine closed the stream: the liveness look still finds what was released.
                    marks = futures_util::stream::pending().boxed();
                },
                Some(made) = self.making.join_next() => self.made(made),
                Some(retired) = self.retiring.join_next() => self.retired(retired),
                _ = liveness.tick() => {}
                _ = orphans.tick() => if let Err(e) = remove_orphans(&self.docker).await {
                    tracing::warn!("keeper: {e}");
                },
            }
            if let Err(e) = self.tend().await {
                tracing::warn!("keeper: {e}");
            }
        }
        self.finish().await
    }

    /// One look at the clusters: recycles or removes the finished ones, makes what the pools lack.
    async fn tend(&mut self) -> Result<()> {
        let clusters = Standing::of(self.docker.containers(&[LABEL_MARK.to_owned()]).await?);
        let offered: Vec<usize> = (self.pools.iter())
            .map(|p| clusters.values().filter(|s| s.offered_in(&p.key)).count())
            .collect();
        for (name, standing) in &clusters {
            let pool = standing.marks.values().find_map(|m| m.labels.get(LABEL_POOL));
            // A pool kept at 0 ready recycles nothing and gives up its offers.
            let closed = self.pools.iter().any(|p| p.ready == 0 && Some(&p.key) == pool);
            let done_with = standing.finished() || (closed && pool.is_some_and(|key| standing.offered_in(key)));
            let retirable = done_with && self.reaps(standing) && !self.being_made.contains(name);
            if retirable && self.being_retired.insert(name.clone()) {
                let (docker, name) = (self.docker.clone(), name.clone());
                // Only a cluster this keeper offered (or a test made for it), still of one of its pools, is
                // recycled.
                let made_for_pool = || {
                    let i = self.pools.iter().position(|p| Some(&p.key) == pool)?;
                    Some((i, Fingerprint::of_made_for_pool(standing)?))
                };
                let recycling = self
                    .prints
                    .remove(&name)
                    .or_else(made_for_pool)
                    .filter(|(i, _)| !closed && pool == Some(&self.pools[*i].key));
                let recycling = recycling.map(|(i, print)| {
                    self.in_flight[i] += 1;
                    (i, print, self.pools[i].spec.clone())
                });
                let retiring = async move {
                    let pool = recycling.as_ref().map(|(i, ..)| *i);
                    let retired = retire(&docker, &name, recycling).await;
                    (name, pool, retired)
                };
                self.retiring.spawn(retiring.instrument(tracing::info_span!("keeper")));
            }
        }
        let now = tokio::time::Instant::now();
        for (i, pool) in self.pools.iter().enumerate() {
            if pool.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            let mut wanted = pool.ready.saturating_sub(offered[i] + self.in_flight[i]);
            while wanted > 0 && self.making.len() < self.max_making {
                wanted -= 1;
                self.in_flight[i] += 1;
                let (docker, spec) = (self.docker.clone(), pool.spec.clone().name(unique_name()));
                self.being_made.insert(spec.name.clone());
                // Its progress goes in the span `keeper`, which a reader of the tests' output may leave out.
                let making = async move { (i, spec.name.clone(), make(&docker, spec).await) };
                self.making.spawn(making.instrument(tracing::info_span!("keeper")));
            }
        }
        Ok(())
    }

    /// Whether this keeper removes `standing`'s cluster: it made it, or a test released it to this keeper.
    fn reaps(&self, standing: &Standing) -> bool {
        standing
            .marks
            .values()
            .any(|m| m.labels.get(LABEL_OWNER) == Some(&self.me) || m.labels.get(LABEL_REAPER) == Some(&self.me))
    }

    fn made(&mut self, made: std::result::Result<(usize, String, Result<Fingerprint>), tokio::task::JoinError>) {
        if let Ok((i, name, _)) = &made {
            self.in_flight[*i] -= 1;
            self.being_made.remove(name);
        }
        match made {
            Ok((i, name, Ok(print))) => {
                self.report.made += 1;
                self.prints.insert(name.clone(), (i, print));
                tracing::debug!("keeper: offered `{name}`");
            }
            Ok((i, _, Err(e))) => {
                let failure = format!("making a warm cluster of {}: {e}", self.pools[i].key);
                tracing::warn!("keeper: {failure}");
                self.report.failures.push(failure);
                self.pools[i].retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
            }
            Err(e) => self.report.failures.push(format!("a make failed: {e}")),
        }
    }

    fn retired(&mut self, retired: std::result::Result<(String, Option<usize>, Retired), tokio::task::JoinError>) {
        match retired {
            Ok((name, pool, outcome)) => {
                self.being_retired.remove(&name);
                if let Some(i) = pool {
                    self.in_flight[i] -= 1;
                }
                match (outcome, pool) {
                    (Retired::Recycled(print), Some(i)) => {
                        self.report.recycled += 1;
                        self.prints.insert(name, (i, print));
                    }
                    (Retired::Recycled(_), None) | (Retired::Removed, _) => self.report.removed += 1,
                    (Retired::Failed(e), _) => self.report.failures.push(format!("removing `{name}`: {e}")),
                }
            }
            Err(e) => self.report.failures.push(format!("a removal failed: {e}")),
        }
    }

    /// At stop: lets the makes and removals under way end, then removes every cluster of this keeper that no
    /// running process holds.
    async fn finish(mut self) -> Result<KeeperReport> {
        while let Some(made) = self.making.join_next().await {
            self.made(made);
        }
        while let Some(retired) = self.retiring.join_next().await {
            self.retired(retired);
        }
        // Tests killed at the end of the run (a signal to the whole run reaches them too) leave their clusters.
        if let Err(e) = remove_orphans(&self.docker).await {
            self.report.failures.push(e.to_string());
        }
        let mine = [format!("{LABEL_OWNER}={}", self.me)];
        let clusters = Standing::of(self.docker.containers(&mine).await?);
        let released = Standing::of(self.docker.containers(&[format!("{LABEL_REAPER}={}", self.me)]).await?);
        let names: BTreeSet<String> = clusters
            .iter()
            .chain(&released)
            .filter(|(_, s)| !s.in_use())
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            match warm::remove_warm(&self.docker, &name).await {
                Ok(_) => self.report.removed += 1,
                Err(e) => self.report.failures.push(format!("removing `{name}`: {e}")),
            }
        }
        Ok(self.report)
    }
}

/// Makes a warm cluster of `spec` and offers it; returns what it was when offered. What a failed make made is
/// removed.
async fn make(docker: &Docker, spec: ClusterSpec) -> Result<Fingerprint> {
    let (mut cluster, _) = Cluster::create(docker, spec).await?;
    // The cluster is the pool's now, not this handle's.
    cluster.set_on_drop(OnDrop::Leave);
    let name = cluster.name().to_owned();
    let offered = async {
        let print = Fingerprint::read(docker, &cluster).await?;
        warm::offer(docker, &cluster, &[]).await?;
        Ok(print)
    };
    match offered.await {
        Ok(print) => Ok(print),
        Err(e) => {
            remove_cluster(docker, &name, None).await.ok();
            Err(e)
        }
    }
}

/// What became of a cluster its test was done with.
enum Retired {
    /// Back on offer; what it is now.
    Recycled(Fingerprint),
    Removed,
    Failed(Error),
}

/// Recycles cluster `name` for its pool (`recycling`: the pool, what the cluster was when offered, the pool's
/// spec) if it is one to recycle, else removes it.
async fn retire(docker: &Docker, name: &str, recycling: Option<(usize, Fingerprint, ClusterSpec)>) -> Retired {
    if let Some((_, print, spec)) = recycling {
        let start = std::time::Instant::now();
        match recycle::recycle(docker, name, &spec, &print).await {
            Ok(Ok(print)) => {
                tracing::debug!(
                    "keeper: recycled `{name}` in {:.2} s ({} tests served)",
                    start.elapsed().as_secs_f64(),
                    print.uses
                );
                return Retired::Recycled(print);
            }
            Ok(Err(why)) => tracing::debug!("keeper: removing `{name}` rather than recycling it: {why}"),
            Err(e) => tracing::warn!("keeper: recycling `{name}` failed, so it is removed: {e}"),
        }
    }
    match warm::remove_warm(docker, name).await {
        Ok(_) => Retired::Removed,
        Err(e) => Retired::Failed(e),
    }
}
