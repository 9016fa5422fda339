//! The write checker: writers write while a seeded schedule of faults breaks the cluster; afterwards every write
//! is read back and what the cluster lost is counted.
//!
//! Model: unique keys, one `SET` per key (`check:<run>:<writer>:<n>` = `<writer>-<n>`, `<run>` new for each
//! run, so a key an earlier run left behind never passes for one this run lost). Every acknowledgement
//! then vouches for exactly one key, so a lost acknowledged write shows directly as a missing key, and the
//! client library's own retries (it re-sends a command after a timeout or a redirect) can never turn into a
//! false anomaly: `SET` of the same value is idempotent. Appending to per-key lists would also show reordering,
//! but a retried `RPUSH` duplicates an element, which is indistinguishable from a server bug, and a rollback of
//! one list hides how many separate acknowledgements it took back; with unique keys each loss is one count.
//!
//! One file: the schedule, the writers and the judgement share the model above, and a third of it is their unit
//! tests (a workload of the user's, which reuses the schedule and the judgement, lives in `workload.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use redis::AsyncCommands;
use serde::Serialize;

use crate::cluster::handle::Cluster;
use crate::faults::failover::FailoverKind;
use crate::faults::network::Cut;
use crate::faults::process::FaultStart;
use crate::server::topology::{ClusterNodes, Role};
use crate::{Error, Result, bail};

/// The faults a check can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// No fault: the baseline.
    None,
    /// Remove a master's container; a new node joins on its port afterwards.
    Failover,
    /// Pause a master until a replica takes over, then resume it.
    Pause,
    /// Kill a master until a replica takes over, then restart it.
    Kill,
    /// Cut a master off from every node (clients still reach it) until a replica takes over, then heal.
    Partition,
    /// Slow a master's links (delay where the kernel has netem, and loss) for a few seconds, then heal.
    Slow,
    /// Each round one of failover, pause, kill, partition, picked by the seed.
    Mixed,
}

impl FaultKind {
    /// The kind called `name` (as the CLI spells it).
    pub fn named(name: &str) -> Result<Self> {
        Ok(match name {
            "none" => Self::None,
            "failover" => Self::Failover,
            "pause" => Self::Pause,
            "kill" => Self::Kill,
            "partition" => Self::Partition,
            "slow" => Self::Slow,
            "mixed" => Self::Mixed,
            other => bail!(
                Refused,
                "unknown fault `{other}`; use none, failover, pause, kill, partition, slow or mixed"
            ),
        })
    }

    /// Whether Redis Cluster promises to keep a write a replica acknowledged (`WAIT`) through this fault: a
    /// replica that has a write and is promoted keeps it. A partition's minority master and a slow link make
    /// no such promise (`WAIT` does not make the cluster strongly consistent).
    pub fn keeps_replicated_writes(self) -> bool {
        matches!(self, Self::None | Self::Failover | Self::Pause | Self::Kill)
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Failover => "failover",
            Self::Pause => "pause",
            Self::Kill => "kill",
            Self::Partition => "partition",
            Self::Slow => "slow",
            Self::Mixed => "mixed",
        }
    }
}

/// What a check runs.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// The fault of every round.
    pub fault: FaultKind,
    /// How many faults are injected, one after the other.
    pub rounds: usize,
    /// The least time the writers write (the rounds may take longer).
    pub seconds: Duration,
    /// Seed of the schedule: which master each round hits, the pauses between rounds, the kinds of `mixed`.
    pub seed: u64,
    /// With N > 0, a write counts as acknowledged only once `WAIT N` confirms it.
    pub wait: usize,
    /// Concurrent writers, each with its own cluster connection.
    pub writers: usize,
}

/// What [`Cluster::clear_faults`] undid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ClearedFaults {
    /// Namespaces whose partition and slow-link rules were removed.
    pub rules_removed: usize,
    /// Ports of the nodes thawed.
    pub resumed: Vec<u16>,
    /// Ports of the stopped nodes started again.
    pub restarted: Vec<u16>,
    /// Ports of nodes that had met no other node (a join cut short), removed.
    pub strays_removed: Vec<u16>,
}

impl ClearedFaults {
    /// Whether there was nothing to undo.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One fault of the schedule and how the cluster got over it.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// The fault.
    pub fault: FaultKind,
    /// The master it hit.
    pub port: u16,
    /// Seconds from the start of the run to the fault.
    pub at: f64,
    /// Seconds from the fault to a replica's promotion, if one was promoted.
    pub takeover: Option<f64>,
    /// Seconds from the fault to the cluster being ready again after it was undone.
    pub recovered: f64,
}

/// What a check found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The fault of the run.
    pub fault: FaultKind,
    /// The seed.
    pub seed: u64,
    /// `WAIT` replicas per write (0: none).
    pub wait: usize,
    /// Writes attempted.
    pub attempted: usize,
    /// Writes acknowledged (and, with `wait`, confirmed by `WAIT`).
    pub acknowledged: usize,
    /// Writes that got an error reply.
    pub failed: usize,
    /// Writes whose fate the writer could not know: timed out, connection lost, or not confirmed by `WAIT`.
    pub unknown: usize,
    /// Acknowledged writes missing or wrong at the end.
    pub lost: usize,
    /// Up to 10 of the lost keys.
    pub lost_keys: Vec<String>,
    /// Failed or unknown writes present at the end (allowed, counted).
    pub unexpected: usize,
    /// Longest stretch, in seconds, with no acknowledged write, from the first write sent.
    pub longest_stall: f64,
    /// Seconds the writers wrote.
    pub seconds: f64,
    /// The faults, in order.
    pub rounds: Vec<RoundReport>,
    /// Whether an acknowledged write was lost although the fault promises to keep it (see
    /// [`FaultKind::keeps_replicated_writes`]; only with `wait`).
    pub promise_broken: bool,
    /// Writes per 100 ms by outcome, latencies, and when the lost ones were acknowledged.
    pub timeline: crate::faults::timeline::Timeline,
    /// What the checker could not vouch for in a workload's records (`None` for its own writers).
    pub workload: Option<crate::faults::workload::WorkloadFindings>,
}

/// What a writer learnt of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Acknowledged,
    Failed,
    Unknown,
}

/// One write and its outcome, the checker's own or a workload's.
pub(crate) struct Write {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) outcome: Outcome,
    /// When it was sent, since the start.
    pub(crate) sent: Duration,
    /// When the answer came, since the start.
    pub(crate) done: Duration,
}

/// How long one write (and its `WAIT`) may take before its outcome is unknown.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `WAIT` waits for replicas, server side.
pub(crate) const WAIT_MS: u64 = 500;
/// The pause of a writer after each acknowledged write.
const WRITE_GAP: Duration = Duration::from_millis(2);

/// splitmix64: a tiny, well-mixed PRNG, so a seed repeats a schedule exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Cluster {
    /// Runs the check `spec` describes: writers write, the faults happen one after the other, every fault is
    /// undone, and once the cluster is ready everything written is read back.
    pub async fn count_lost_writes(&self, spec: &CheckSpec) -> Result<CheckReport> {
        if spec.writers == 0 || spec.writers > 64 {
            bail!(Refused, "`CheckSpec::writers` must be 1 to 64 (got {})", spec.writers);
        }
        if spec.wait > 0 {
            check_wait(&self.topology().await?, spec.wait)?;
        }
        self.check_can_run(spec).await?;
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let run = run_id();
        let mut writers = Vec::new();
        for w in 0..spec.writers {
            let conn = self.client().await?;
            let (stop, wait) = (stop.clone(), spec.wait);
            writers.push(tokio::spawn(write_until(conn, w, run.clone(), wait, start, stop)));
        }
        let schedule = self.run_schedule(spec, start, &AtomicBool::new(false)).await;
        let left = spec.seconds.saturating_sub(start.elapsed()).max(Duration::from_secs(1));
        tokio::time::sleep(left).await;
        stop.store(true, Ordering::Relaxed);
        let mut writes = Vec::new();
        for writer in writers {
            writes.extend(
                writer
                    .await
                    .map_err(|e| Error::other(format!("a writer panicked: {e}")))?,
            );
        }
        let seconds = start.elapsed().as_secs_f64();
        let rounds = schedule?;
        self.judge(spec, &writes, rounds, seconds).await
    }

    /// Refuses a check the cluster cannot run, and waits until it is ready to start.
    pub(crate) async fn check_can_run(&self, spec: &CheckSpec) -> Result<()> {
        if spec.wait > 0 && self.topology().await?.nodes.iter().all(|n| n.role != Role::Replica) {
            bail!(
                Refused,
                "`CheckSpec::wait` {} needs replicas, and the cluster has none",
                spec.wait
            );
        }
        self.wait_ready(
            crate::server::ready::Shape::Any,
            self.identity().step_timeout(self.nodes().await?.len()),
        )
        .await
    }

    /// Once the faults are over: waits until the cluster is ready, reads every key back and tallies.
    pub(crate) async fn judge(
        &self,
        spec: &CheckSpec,
        writes: &[Write],
        rounds: Vec<RoundReport>,
        seconds: f64,
    ) -> Result<CheckReport> {
        tracing::info!("check: faults over; waiting for the cluster to be ready, then reading every key back");
        self.wait_ready(
            crate::server::ready::Shape::Any,
            self.identity().step_timeout(self.nodes().await?.len()),
        )
        .await?;
        let present = self.read_back(writes).await?;
        Ok(tally(spec, writes, &present, rounds, seconds))
    }

    /// Injects the faults of `spec`'s schedule one after the other, each undone before the next; stops before
    /// the next round once `abort` is set.
    pub(crate) async fn run_schedule(
        &self,
        spec: &CheckSpec,
        start: Instant,
        abort: &AtomicBool,
    ) -> Result<Vec<RoundReport>> {
        let mut rng = SplitMix(spec.seed);
        let mut rounds = Vec::new();
        if spec.fault == FaultKind::None {
            return Ok(rounds);
        }
        for round in 0..spec.rounds {
            tokio::time::sleep(Duration::from_millis(1000 + rng.below(1000) as u64)).await;
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let fault = match spec.fault {
                FaultKind::Mixed => [
                    FaultKind::Failover,
                    FaultKind::Pause,
                    FaultKind::Kill,
                    FaultKind::Partition,
                ][rng.below(4)],
                other => other,
            };
            let topology = self.topology().await?;
            let mut candidates: Vec<u16> = topology
                .live_masters()
                .iter()
                .filter(|m| !m.slots.is_empty() && !topology.replicas_of(&m.id).is_empty())
                .filter_map(|m| m.port())
                .collect();
            candidates.sort_unstable();
            if candidates.is_empty() {
                bail!(
                    Refused,
                    "round {}: no master has a replica left to take over",
                    round + 1
                );
            }
            let port = candidates[rng.below(candidates.len())];
            let at = start.elapsed().as_secs_f64();
            tracing::info!(
                "check: round {} of {}: {} of master {port} at {at:.1} s",
                round + 1,
                spec.rounds,
                fault.name()
            );
            crate::progress::progress!("check rounds", round, spec.rounds);
            let (takeover, recovered) = self.one_fault(fault, port).await?;
            crate::progress::progress!("check rounds", round + 1, spec.rounds);
            tracing::info!(
                "check: round {}: {}recovered after {recovered:.2} s",
                round + 1,
                takeover.map_or(String::new(), |t| format!("replica took over after {t:.2} s; "))
            );
            rounds.push(RoundReport {
                fault,
                port,
                at,
                takeover,
                recovered,
            });
        }
        Ok(rounds)
    }

    /// Injects one fault into master `port`, undoes it, and returns the takeover and recovery times.
    async fn one_fault(&self, fault: FaultKind, port: u16) -> Result<(Option<f64>, f64)> {
        let within = self.identity().step_timeout(self.nodes().await?.len());
        let secs = |d: Duration| d.as_secs_f64();
        match fault {
            FaultKind::Failover => {
                let report = self
                    .failover(Some(port), FailoverKind::RemoveMaster { force: false })
                    .await?;
                let plan = self.plan_join(None, Some(port)).await?;
                self.carry_out_join(&plan).await?;
                self.forget_gone().await?;
                Ok((report.promoted_after.map(secs), secs(report.ready_after)))
            }
            FaultKind::Pause | FaultKind::Kill => {
                let started = if fault == FaultKind::Pause {
                    self.pause(Some(port)).await?
                } else {
                    self.kill(Some(port)).await?
                };
                let takeover = self.wait_takeover(&started, within).await?;
                if fault == FaultKind::Pause {
                    self.resume(Some(port)).await?;
                } else {
                    self.restart(Some(port)).await?;
                }
                Ok((takeover.map(|t| secs(t.after)), secs(started.at.elapsed())))
            }
            FaultKind::Partition => {
                let report = self
                    .partition(Cut::Isolate {
                        port,
                        keep_clients: true,
                    })
                    .await?;
                let started: &FaultStart = report
                    .minority_masters
                    .first()
                    .ok_or_else(|| Error::refused(format!("isolating {port} left no master in the minority")))?;
                let takeover = self.wait_takeover(started, within).await?;
                self.heal().await?;
                Ok((takeover.map(|t| secs(t.after)), secs(started.at.elapsed())))
            }
            FaultKind::Slow => {
                let started = match self.slow(Some(port), Duration::from_millis(100), 10.0).await {
                    Ok(started) => started,
                    Err(e) if e.to_string().contains("netem") => {
                        tracing::info!(
                            "check: no netem in this kernel; the slow round drops 20% of the packets instead"
                        );
                        self.slow(Some(port), Duration::ZERO, 20.0).await?
                    }
                    Err(e) => return Err(e),
                };
                tokio::time::sleep(Duration::from_secs(3)).await;
                self.heal().await?;
                Ok((None, secs(started.at.elapsed())))
            }
            FaultKind::None | FaultKind::Mixed => unreachable!("the schedule picks a concrete fault"),
        }
    }

    /// Undoes what a check cut short (a signal) leaves of its faults: removes every partition and slow link,
    /// removes a node a join cut short had started that met no other node, thaws every paused node and starts
    /// every stopped one; then waits until the cluster is ready. A master a failover round removed stays
    /// removed (its replica took over).
    pub async fn clear_faults(&self) -> Result<ClearedFaults> {
        let mut cleared = ClearedFaults {
            rules_removed: self.remove_fault_rules().await?,
            ..ClearedFaults::default()
        };
        let views = self.views().await?;
        if views.len() > 1 {
            for view in views.iter().filter(|v| v.info.known_nodes() == 1) {
                let node = self.node(view.addr.port()).await?;
                self.docker().remove_container(&node.id).await?;
                self.pool().forget(view.addr);
                cleared.strays_removed.push(node.port);
            }
        }
        for node in self.nodes().await? {
            match node.state.as_str() {
                "paused" => {
                    self.docker().unpause(&node.id).await?;
                    cleared.resumed.push(node.port);
                }
                "exited" => {
                    self.docker().start(&node.id).await?;
                    cleared.restarted.push(node.port);
                }
                _ => {}
            }
        }
        if !cleared.is_empty() {
            tracing::info!("check: faults undone; waiting for the cluster to be ready");
        }
        let timeout = self.identity().step_timeout(self.nodes().await?.len());
        self.wait_ready(crate::server::ready::Shape::Any, timeout).await?;
        Ok(cleared)
    }

    /// The value of every written key now, read through a fresh cluster client (`None`: missing).
    async fn read_back(&self, writes: &[Write]) -> Result<Vec<Option<String>>> {
        let conn = self.client().await?;
        let reads = writes.iter().map(|w| {
            let mut conn = conn.clone();
            async move {
                let mut last = None;
                for _ in 0..5 {
                    match conn.get::<_, Option<String>>(&w.key).await {
                        Ok(value) => return Ok(value),
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(Error::from(last.expect("five tries")).context(format!("reading {} back", w.key)))
            }
        });
        stream::iter(reads)
            .buffered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }
}

/// Refuses `WAIT wait` when a master serving slots has fewer live replicas: none of its writes could be confirmed,
/// and the check would pass having checked nothing.
fn check_wait(topology: &ClusterNodes, wait: usize) -> Result<()> {
    let fewest = topology
        .live_masters()
        .into_iter()
        .filter(|m| !m.slots.is_empty())
        .map(|m| {
            let replicas = topology
                .replicas_of(&m.id)
                .into_iter()
                .filter(|r| !r.is_failing())
                .count();
            (replicas, m.port().unwrap_or(0))
        })
        .min();
    match fewest {
        Some((replicas, port)) if replicas < wait => bail!(
            Refused,
            "`CheckSpec::wait` {wait} is more than the {replicas} live replica(s) of master {port}: `WAIT {wait}` \
             could confirm none of its writes"
        ),
        _ => Ok(()),
    }
}

/// A name no other run uses: the clock's nanoseconds and this process.
pub(crate) fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

/// One writer: unique keys, one after the other, until `stop`.
async fn write_until(
    mut conn: redis::cluster_async::ClusterConnection,
    writer: usize,
    run: String,
    wait: usize,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Write> {
    let mut writes = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("check:{run}:{writer}:{n}");
        let value = format!("{writer}-{n}");
        let sent = start.elapsed();
        let outcome = if wait == 0 {
            let set = conn.set::<_, _, ()>(&key, &value);
            classify(tokio::time::timeout(WRITE_TIMEOUT, set).await.map(|r| r.map(|()| true)))
        } else {
            // SET and WAIT in one pipeline go to the key's master on one connection, as WAIT must.
            let mut pipe = redis::pipe();
            pipe.set(&key, &value).ignore().cmd("WAIT").arg(wait).arg(WAIT_MS);
            let confirmed = pipe.query_async::<(usize,)>(&mut conn);
            classify(
                tokio::time::timeout(WRITE_TIMEOUT, confirmed)
                    .await
                    .map(|r| r.map(|(replicas,)| replicas >= wait)),
            )
        };
        writes.push(Write {
            key,
            value,
            outcome,
            sent,
            done: start.elapsed(),
        });
        // Do not spin on a down cluster; and pace the writes, so that a writer does not take a core of a small
        // machine from the servers whose faults it measures (unpaced: 4,500 writes a second; paced: hundreds).
        let gap = if outcome == Outcome::Acknowledged {
            WRITE_GAP
        } else {
            Duration::from_millis(20)
        };
        tokio::time::sleep(gap).await;
    }
    writes
}

/// A write's outcome: acknowledged (and confirmed), refused by an error reply, or unknown.
fn classify(answer: std::result::Result<redis::RedisResult<bool>, tokio::time::error::Elapsed>) -> Outcome {
    match answer {
        Ok(Ok(true)) => Outcome::Acknowledged,
        // Applied on the master, but not confirmed by enough replicas: it may survive or not.
        Ok(Ok(false)) | Err(_) => Outcome::Unknown,
        Ok(Err(e)) if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() => Outcome::Unknown,
        Ok(Err(_)) => Outcome::Failed,
    }
}

pub(crate) fn tally(
    spec: &CheckSpec,
    writes: &[Write],
    present: &[Option<String>],
    rounds: Vec<RoundReport>,
    seconds: f64,
) -> CheckReport {
    let count = |o: Outcome| writes.iter().filter(|w| w.outcome == o).count();
    let mut lost_keys = Vec::new();
    let (mut lost, mut unexpected) = (0, 0);
    let mut lost_at = vec![false; writes.len()];
    for (i, (w, got)) in writes.iter().zip(present).enumerate() {
        let kept = got.as_deref() == Some(w.value.as_str());
        match w.outcome {
            Outcome::Acknowledged if !kept => {
                lost += 1;
                lost_at[i] = true;
                if lost_keys.len() < 10 {
                    lost_keys.push(w.key.clone());
                }
            }
            Outcome::Failed | Outcome::Unknown if got.is_some() => unexpected += 1,
            _ => {}
        }
    }
    let mut acks: Vec<f64> = writes
        .iter()
        .filter(|w| w.outcome == Outcome::Acknowledged)
        .map(|w| w.done.as_secs_f64())
        .collect();
    acks.sort_by(f64::total_cmp);
    // From the first write on: a workload's own start-up (an interpreter, its imports) is no stall.
    let first = writes.iter().map(|w| w.sent.as_secs_f64()).fold(seconds, f64::min);
    let mut edges = vec![first.min(acks.first().copied().unwrap_or(seconds))];
    edges.extend(acks);
    edges.push(seconds);
    let longest_stall = edges.windows(2).map(|p| p[1] - p[0]).fold(0.0, f64::max);
    let promised = spec.wait > 0
        && rounds.iter().all(|r| r.fault.keeps_replicated_writes())
        && spec.fault.keeps_replicated_writes();
    CheckReport {
        fault: spec.fault,
        seed: spec.seed,
        wait: spec.wait,
        attempted: writes.len(),
        acknowledged: count(Outcome::Acknowledged),
        failed: count(Outcome::Failed),
        unknown: count(Outcome::Unknown),
        lost,
        lost_keys,
        unexpected,
        longest_stall,
        seconds,
        rounds,
        promise_broken: promised && lost > 0,
        timeline: crate::faults::timeline::Timeline::of(writes, &lost_at, seconds),
        workload: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_above_the_replicas_of_a_master_is_refused() {
        let nodes = ClusterNodes::parse(include_str!("../../fixtures/redis-7.0.cluster-nodes.txt")).unwrap();
        check_wait(&nodes, 1).unwrap();
        let err = check_wait(&nodes, 2).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Refused);
        assert!(
            err.to_string().contains("more than the 1 live replica(s) of master"),
            "{err}"
        );
    }

    #[test]
    fn a_seed_repeats_its_schedule() {
        let draw = |seed| {
            let mut rng = SplitMix(seed);
            (0..5).map(|_| rng.below(100)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn lost_unexpected_and_the_longest_stall_are_counted() {
        let write = |key: &str, outcome, done| Write {
            key: key.into(),
            value: "v".into(),
            outcome,
            sent: Duration::from_secs_f64(done - 0.1),
            done: Duration::from_secs_f64(done),
        };
        let writes = [
            write("a", Outcome::Acknowledged, 1.0),
            write("b", Outcome::Acknowledged, 4.0),
            write("c", Outcome::Failed, 2.0),
            write("d", Outcome::Unknown, 3.0),
        ];
        let present = [Some("v".into()), None, None, Some("v".into())];
        let spec = CheckSpec {
            fault: FaultKind::Pause,
            rounds: 1,
            seconds: Duration::from_secs(5),
            seed: 1,
            wait: 1,
            writers: 1,
        };
        let report = tally(&spec, &writes, &present, vec![], 5.0);
        assert_eq!(
            (report.attempted, report.acknowledged, report.failed, report.unknown),
            (4, 2, 1, 1)
        );
        assert_eq!((report.lost, report.unexpected), (1, 1));
        assert_eq!(report.lost_keys, ["b"]);
        assert!((report.longest_stall - 3.0).abs() < 1e-9);
        assert!(report.promise_broken, "a pause with WAIT promises to keep it");
    }
}
