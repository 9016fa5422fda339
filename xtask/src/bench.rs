//! `cargo xtask bench`: how fast clusters are made, fail over and heal, next to the standard route.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster_tests::playground::{self as harness, BuildOutcome, Docker, ensure_built, time_cold_build};
use cluster_tests::server::data;
use cluster_tests::server::node::command;
use cluster_tests::server::topology::{InfoFields, SlotRange};
use cluster_tests::{
    Cluster, ClusterSpec, Error, FailoverKind, MigrationMethod, Networking, Reshard, Result, Slots, Version, WarmPool,
    has_atomic_migration,
};
use redis::cluster_async::ClusterConnection;

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Server version to measure.
    #[arg(long, default_value_t = crate::default_version())]
    version: String,
    /// Runs per figure (medians are over these).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Also time a cold image build (into a throwaway tag, ~5 s).
    #[arg(long)]
    cold_build: bool,
    /// Skip the test-suite wall time (it runs the whole suite once).
    #[arg(long)]
    no_suite: bool,
    /// Also measure a TLS-only cluster (pod networking), next to the plain ones: what TLS costs.
    #[arg(long, conflicts_with_all = ["scale", "reshard"])]
    tls: bool,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Measure how create scales instead: time to ready and the harness's own CPU time for clusters of 6, 12, 30,
    /// 60 and 100 nodes (masters with one replica each), once each.
    #[arg(long)]
    scale: bool,
    /// With `--scale`: draw ready time and harness CPU against the number of nodes to this SVG file.
    #[arg(long, value_name = "FILE.svg", requires = "scale")]
    plot: Option<std::path::PathBuf>,
    /// Measure resharding instead: the time to move 1,000 slots holding 100,000 keys, classic and (where the
    /// server has it) atomic, and the longest stall of a client writing into those slots meanwhile.
    #[arg(long, conflicts_with = "scale")]
    reshard: bool,
}

/// Slots `--reshard` moves (0 to this - 1, all on the first master), and keys written into each.
const RESHARD_SLOTS: u16 = 1000;
const KEYS_PER_SLOT: usize = 100;

/// Cluster sizes `--scale` measures, as masters with one replica each.
const SCALE_MASTERS: [usize; 5] = [3, 6, 15, 30, 50];

/// Figures by name, in seconds (or bytes, or a ratio): one sample per run.
type Samples = BTreeMap<String, Vec<f64>>;

/// Runs the benchmark and prints its figures.
pub async fn run(args: Args) -> Result<()> {
    let version = Version::named(&args.version)?;
    if args.runs == 0 {
        return Err(Error::refused("--runs must be at least 1"));
    }
    let docker = Docker::connect().await?;
    if args.scale {
        return scale(&docker, version, &args).await;
    }
    if args.reshard {
        return reshard(&docker, version, &args).await;
    }
    let mut samples = Samples::new();
    let log = |line: &str| {
        if !args.json {
            eprintln!("  {line}")
        }
    };

    let (tag, _, _) = ensure_built(&docker, version).await?;
    let (_, outcome, warm) = ensure_built(&docker, version).await?;
    debug_assert_eq!(outcome, BuildOutcome::Present);
    samples
        .entry("image build warm (s)".into())
        .or_default()
        .push(warm.as_secs_f64());
    samples
        .entry("image size (MB)".into())
        .or_default()
        .push(docker.image_size(&tag).await? as f64 / 1e6);
    if args.cold_build {
        log("image: cold build into a throwaway tag");
        samples
            .entry("image build cold (s)".into())
            .or_default()
            .push(time_cold_build(&docker, version).await?);
    }

    let mut node_timeout = Duration::ZERO;
    for run in 0..args.runs {
        log(&format!("run {}/{}", run + 1, args.runs));
        let mut ready = Duration::ZERO;
        let tls_too = args.tls.then_some((Networking::Pod, true));
        for (networking, tls) in [(Networking::Pod, false), (Networking::Bridge, false)]
            .into_iter()
            .chain(tls_too)
        {
            let mut spec = bench_spec(version, networking, if tls { "tls" } else { "ours" }, run);
            if tls {
                spec = spec.tls();
            }
            let (cluster, report) = harness::create(&docker, spec).await?;
            node_timeout = cluster.node_timeout();
            let tag = format!("{}{}", networking.name(), if tls { "+tls" } else { "" });
            let mut timings: Vec<(&str, Duration)> = Vec::new();
            let mut add = |name, d| timings.push((name, d));
            add("create: containers started", report.containers_started);
            add("create: cluster formed", report.cluster_formed);
            add("create: replicas synced = ready", report.replicas_synced);
            let failover = cluster
                .failover(None, FailoverKind::RemoveMaster { force: false })
                .await?;
            add(
                "failover: replica promoted",
                failover.promoted_after.unwrap_or_default(),
            );
            add("failover: cluster_state ok", failover.ready_after);
            let join = cluster.join(None, None).await?;
            add("join: new replica synced", join.ready_after);
            if networking == Networking::Pod && !tls {
                ready = report.replicas_synced;
                if run == 0 {
                    for rss in memory(&cluster).await? {
                        samples
                            .entry("memory per node at rest, RSS (MB)".into())
                            .or_default()
                            .push(rss);
                    }
                }
            }
            let removing = std::time::Instant::now();
            cluster.remove().await?;
            add("remove", removing.elapsed());
            for (name, d) in timings {
                samples
                    .entry(format!("{name} [{tag}] (s)"))
                    .or_default()
                    .push(d.as_secs_f64());
            }
        }

        let spec = bench_spec(version, Networking::Pod, "cli", run);
        let (baseline, took) = harness::create_with_cli(&docker, spec).await?;
        baseline.remove().await?;
        samples
            .entry("baseline create: <cli> --cluster create [pod] (s)".into())
            .or_default()
            .push(took.as_secs_f64());
        let ratio = ready.as_secs_f64() / took.as_secs_f64();
        samples
            .entry("create ours / baseline [pod] (ratio)".into())
            .or_default()
            .push(ratio);
    }

    log("warm: a keeper makes clusters ahead; each run claims one as a test does, then drops it");
    warm_starts(version, args.runs, &mut samples).await?;

    if !args.no_suite {
        log("suite: running the whole test suite once");
        let seconds = crate::matrix::time_suite(version)?;
        samples.entry("suite wall time (s)".into()).or_default().push(seconds);
    }

    print_samples(version, &args, node_timeout, &samples);
    Ok(())
}

/// Warm starts: `ClusterSpec::start` of a test's default spec while a keeper offers clusters, and the drop that
/// follows (the keeper recycles the cluster afterwards), next to a cold start and drop of the same spec; and what
/// each test's cluster costs the machine either way (CPU time of every process, the keeper's and the engine's
/// included, from `/proc/stat`).
async fn warm_starts(version: &'static Version, runs: usize, samples: &mut Samples) -> Result<()> {
    let spec = || ClusterSpec::default().version(version);
    let keeper = WarmPool::new(vec![spec()]).ready(1).start().await?;
    let mut sample = |name: &str, d: Duration| samples.entry(name.into()).or_default().push(d.as_secs_f64());
    keeper.until_offered(1, Duration::from_secs(60)).await?;
    // The first claim leaves the pool short, so the keeper makes another; from then on the two take turns: one is
    // claimed while the other, recycled after its test, is offered again. What is measured is that steady state.
    drop(spec().start().await?);
    keeper.until_offered(2, Duration::from_secs(60)).await?;
    let busy = machine_busy();
    for _ in 0..runs {
        keeper.until_offered(2, Duration::from_secs(60)).await?;
        let started = Instant::now();
        let cluster = spec().start().await?;
        sample("test start: warm, from the keeper (s)", started.elapsed());
        let dropping = Instant::now();
        drop(cluster);
        sample("test drop: warm, recycled by the keeper after (s)", dropping.elapsed());
    }
    // The last cluster's recycling is part of its test's cost.
    keeper.until_offered(2, Duration::from_secs(60)).await?;
    let warm_cpu = busy
        .zip(machine_busy())
        .map(|(before, after)| (after - before) / runs as f64);
    let kept = keeper.stop().await?;
    if let Some(failure) = kept.failures.first() {
        return Err(Error::other(format!("the bench's keeper failed: {failure}")));
    }
    let busy = machine_busy();
    for _ in 0..runs {
        let cold = spec().name(format!("bench-cold-{}", std::process::id()));
        let started = Instant::now();
        let cluster = cold.start().await?;
        sample("test start: cold (s)", started.elapsed());
        let dropping = Instant::now();
        drop(cluster);
        sample("test drop: cold, removed by the test (s)", dropping.elapsed());
    }
    let cold_cpu = busy
        .zip(machine_busy())
        .map(|(before, after)| (after - before) / runs as f64);
    for (name, cpu) in [
        ("machine CPU per test: warm (core-s)", warm_cpu),
        ("machine CPU per test: cold (core-s)", cold_cpu),
    ] {
        samples.entry(name.into()).or_default().extend(cpu);
    }
    Ok(())
}

/// CPU time every process of this machine has used so far, in core-seconds (Linux's `/proc/stat`, in its
/// 100 Hz ticks); `None` elsewhere.
fn machine_busy() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user, nice, system, (idle, iowait,) irq, softirq
    let busy = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum::<f64>();
    Some(busy / 100.0)
}

/// Prints `samples` as a table of median, min and max (or as JSON with `--json`).
fn print_samples(version: &Version, args: &Args, node_timeout: Duration, samples: &Samples) {
    let node_timeout_s = node_timeout.as_secs_f64();
    if args.json {
        let figures: serde_json::Map<String, serde_json::Value> = samples
            .iter()
            .map(|(name, s)| (name.to_string(), stats(s).to_json()))
            .collect();
        let out = serde_json::json!({
            "version": version.name,
            "server": version.server,
            "runs": args.runs,
            "node_timeout_s": node_timeout_s,
            "figures": figures,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    } else {
        println!(
            "\n{} ({}), {} runs, node timeout {node_timeout_s:.1} s",
            version.name, version.server, args.runs
        );
        println!("{:<50} {:>9} {:>9} {:>9}", "figure", "median", "min", "max");
        for (name, s) in samples {
            let st = stats(s);
            println!("{name:<50} {:>9.3} {:>9.3} {:>9.3}", st.median, st.min, st.max);
        }
    }
}

/// `--reshard`: one cluster; slots 0-999 filled with 100 keys each, then moved to the second master and back in
/// each run, while a client writes into them. The move out is classic; the move back uses the server's own method
/// (atomic where it has one, so both are measured on the same keys).
async fn reshard(docker: &Docker, version: &'static Version, args: &Args) -> Result<()> {
    ensure_built(docker, version).await?;
    let (cluster, _) = harness::create(docker, bench_spec(version, Networking::Pod, "reshard", 0)).await?;
    let masters = cluster.topology().await?.master_ports();
    let (a, b) = (masters[0], masters[1]);
    let tags: Vec<String> = data::key_per_slot("bench")
        .into_iter()
        .take(RESHARD_SLOTS.into())
        .collect();
    let log = |line: &str| {
        if !args.json {
            eprintln!("  {line}")
        }
    };
    log(&format!(
        "writing {} keys into slots 0-{}",
        tags.len() * KEYS_PER_SLOT,
        RESHARD_SLOTS - 1
    ));
    let mut client = cluster.client().await?;
    for tag in &tags {
        let mut mset = redis::cmd("MSET");
        for i in 0..KEYS_PER_SLOT {
            mset.arg(format!("{{{tag}}}:{i}")).arg(i);
        }
        mset.query_async::<()>(&mut client).await?;
    }
    let atomic = has_atomic_migration(cluster.access(), cluster.addr(a).await?).await?;
    let slots = Slots::Range(SlotRange {
        start: 0,
        end: RESHARD_SLOTS - 1,
    });
    let mut samples = Samples::new();
    for run in 0..args.runs {
        log(&format!("run {}/{}", run + 1, args.runs));
        for reshard in [Reshard::new(a, b, slots).classic(), Reshard::new(b, a, slots)] {
            let (method, took, stall) = timed_move(&cluster, &reshard, &tags).await?;
            let method = match method {
                MigrationMethod::Atomic => "atomic",
                MigrationMethod::Classic => "classic",
            };
            let what = format!("{RESHARD_SLOTS} slots, {}k keys", tags.len() * KEYS_PER_SLOT / 1000);
            let mut add = |name: String, d: Duration| samples.entry(name).or_default().push(d.as_secs_f64());
            add(format!("reshard {what}: {method} (s)"), took);
            add(format!("reshard longest write stall: {method} (s)"), stall);
        }
    }
    log(&format!(
        "atomic migration: {}",
        if atomic { "yes" } else { "not on this server" }
    ));
    print_samples(version, args, cluster.node_timeout(), &samples);
    cluster.remove().await?;
    Ok(())
}

/// Carries out `reshard` while a client writes into the moving slots; returns the method, the time the move
/// took, and the longest time the writer went without an acknowledged write while it ran.
async fn timed_move(
    cluster: &Cluster,
    reshard: &Reshard,
    tags: &[String],
) -> Result<(MigrationMethod, Duration, Duration)> {
    let stop = AtomicBool::new(false);
    let writer = write_loop(cluster.client().await?, tags, &stop);
    let start = Instant::now();
    let moving = async {
        let report = cluster.reshard(reshard).await;
        stop.store(true, Ordering::Relaxed);
        report
    };
    let (report, (acks, failed)) = tokio::join!(moving, writer);
    let (report, end) = (report?, Instant::now());
    let expected = tags.len() * KEYS_PER_SLOT;
    if report.keys < expected {
        return Err(Error::other(format!(
            "the move carried {} keys, fewer than the {expected} written",
            report.keys
        )));
    }
    if failed > 0 {
        return Err(Error::other(format!("{failed} writes failed during the move")));
    }
    Ok((report.method, report.took, longest_gap(start, end, &acks)))
}

/// Sets keys into the slots of `tags`, one after the other, until `stop`; returns when each write was
/// acknowledged and how many failed.
async fn write_loop(mut client: ClusterConnection, tags: &[String], stop: &AtomicBool) -> (Vec<Instant>, usize) {
    let (mut acks, mut failed) = (Vec::new(), 0);
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("{{{}}}:w{n}", tags[n % tags.len()]);
        match redis::cmd("SET").arg(&key).arg(n).query_async::<()>(&mut client).await {
            Ok(()) => acks.push(Instant::now()),
            Err(_) => failed += 1,
        }
    }
    (acks, failed)
}

/// The longest stretch between `start`, the acknowledgements and `end`.
fn longest_gap(start: Instant, end: Instant, acks: &[Instant]) -> Duration {
    let times: Vec<Instant> = std::iter::once(start)
        .chain(acks.iter().copied().filter(|t| (start..=end).contains(t)))
        .chain(std::iter::once(end))
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

/// `--scale`: one cluster of each size of [`SCALE_MASTERS`], made and removed in turn.
async fn scale(docker: &Docker, version: &'static Version, args: &Args) -> Result<()> {
    ensure_built(docker, version).await?;
    let mut rows = Vec::new();
    for masters in SCALE_MASTERS {
        let spec = bench_spec(version, Networking::Pod, "scale", masters).masters(masters);
        let (nodes, node_timeout) = (spec.node_count(), spec.effective_node_timeout());
        if !args.json {
            eprintln!("  {nodes} nodes ...");
        }
        let cpu = cpu_time();
        let (cluster, report) = harness::create(docker, spec).await?;
        let cpu = cpu_time() - cpu;
        cluster.remove().await?;
        rows.push((nodes, node_timeout, report, cpu));
    }
    if let Some(path) = &args.plot {
        let points: Vec<crate::plot::ScaleRow> = rows
            .iter()
            .map(|(nodes, _, report, cpu)| (*nodes, report.replicas_synced.as_secs_f64(), cpu.as_secs_f64()))
            .collect();
        let title = format!("create by cluster size, {} ({})", version.name, version.server);
        crate::plot::scale(&points, &title, path)?;
        eprintln!("  plot: {}", path.display());
    }
    if args.json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(nodes, timeout, report, cpu)| {
                serde_json::json!({
                    "nodes": nodes,
                    "node_timeout_s": timeout.as_secs_f64(),
                    "containers_started_s": report.containers_started.as_secs_f64(),
                    "cluster_formed_s": report.cluster_formed.as_secs_f64(),
                    "ready_s": report.replicas_synced.as_secs_f64(),
                    "harness_cpu_s": cpu.as_secs_f64(),
                })
            })
            .collect();
        let out = serde_json::json!({ "version": version.name, "scale": rows });
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(());
    }
    println!("\n{} ({}), create by cluster size", version.name, version.server);
    println!(
        "{:>6} {:>13} {:>19} {:>10} {:>9} {:>13}",
        "nodes", "node timeout", "containers started", "formed", "ready", "harness CPU"
    );
    for (nodes, timeout, report, cpu) in rows {
        println!(
            "{nodes:>6} {:>11.1} s {:>17.2} s {:>8.2} s {:>7.2} s {:>11.2} s",
            timeout.as_secs_f64(),
            report.containers_started.as_secs_f64(),
            report.cluster_formed.as_secs_f64(),
            report.replicas_synced.as_secs_f64(),
            cpu.as_secs_f64()
        );
    }
    Ok(())
}

/// User and system CPU time this process has used so far (every thread of it: the harness's own work).
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is a valid target.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A cluster of the playground's shape on a free port range (a running playground is no obstacle), owned by this
/// process so that it goes if the bench is killed.
fn bench_spec(version: &'static Version, networking: Networking, route: &str, run: usize) -> ClusterSpec {
    ClusterSpec::default()
        .name(format!(
            "bench{}-{route}{run}-{}",
            std::process::id(),
            networking.name()
        ))
        .version(version)
        .networking(networking)
}

/// Resident memory (`used_memory_rss`) of every live node, in MB.
async fn memory(cluster: &Cluster) -> Result<Vec<f64>> {
    let mut rss = Vec::new();
    for addr in cluster.live_addrs().await? {
        let info: String = command(addr, &["INFO", "memory"]).await?;
        rss.push(InfoFields::parse(&info).number("used_memory_rss").unwrap_or(0) as f64 / 1e6);
    }
    Ok(rss)
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

impl Stats {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "median": self.median, "min": self.min, "max": self.max, "n": self.n })
    }
}

fn stats(samples: &[f64]) -> Stats {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stats {
        median,
        min: s[0],
        max: s[n - 1],
        n,
    }
}
