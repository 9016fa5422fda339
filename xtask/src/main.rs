//! `cargo xtask`: the playground CLI. Builds node images, makes a Redis Cluster out of Docker containers, breaks it
//! on purpose and heals it, runs the version matrix and the benchmark.

mod bench;
mod check;
mod connect;
mod create;
mod failover;
mod faults;
mod images;
mod inspect;
mod keeper;
mod matrix;
mod membership;
mod playground;
mod plot;
mod progress;
mod reshard;
mod scaling;
mod stop;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cluster_tests::Version;
use tracing::Level;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "A real Redis Cluster out of Docker containers: make it, break it, check it"
)]
struct Cli {
    /// The cluster to act on: `playground` unless a name is given (several can run side by side, each created
    /// with its own `--port-base`).
    #[arg(long, global = true, default_value = cluster_tests::playground::PLAYGROUND)]
    cluster: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build node images from Debian packages for this host's architecture (an unchanged recipe is not rebuilt).
    /// Runs as root or as any user in the `docker` group.
    Build(images::BuildArgs),
    /// List the node images present (version, server, size, architecture, origin); `--prune` removes those of
    /// earlier recipes.
    Images(images::ImagesArgs),
    /// Create the cluster (3 masters + 3 replicas by default) and wait until it is ready.
    Create(Box<create::Args>),
    /// Print CLUSTER INFO of a live node.
    Info(inspect::Args),
    /// Print CLUSTER NODES of a live node.
    Nodes(inspect::Args),
    /// Open `redis-cli -c` (or `valkey-cli -c`) on a node, inside the cluster's network.
    Connect(connect::Args),
    /// Remove a master's container and report which replica took over and how long it took.
    Failover(failover::Args),
    /// Add a node that replicates the master with no replica left (e.g. the promoted one).
    Join(membership::JoinArgs),
    /// Move slots with their keys from one master to another while the cluster serves traffic (atomic migration
    /// where the server has it), or hold one slot half-way for ASK tests (`--hold`, then `--finish` or `--abort`).
    Reshard(reshard::Args),
    /// Add an empty master (with replicas of its own) on spare published ports, then move slots onto it until
    /// the masters are even.
    AddMaster(scaling::AddMasterArgs),
    /// Drain a master's slots (with their keys) evenly to the others, then remove it and its replicas and have
    /// every node forget them.
    RemoveMaster(scaling::RemoveMasterArgs),
    /// Even out slots (with their keys) across the masters: those above the even share give to those below.
    Rebalance,
    /// Freeze a node's process (docker pause): it stays in the network and its peers see it time out.
    Pause(faults::PauseArgs),
    /// Thaw a paused node and report what it became.
    Resume(faults::ResumeArgs),
    /// Kill a node's process (SIGKILL); its container, nodes.conf and data files stay for `restart`.
    Kill(faults::KillArgs),
    /// Start a killed node again with the files it had, and report what it became.
    Restart(faults::RestartArgs),
    /// Cut nodes off from the others (cluster bus and replication, both directions), inside the cluster's
    /// network namespace.
    Partition(faults::PartitionArgs),
    /// Add latency (tc netem) and loss to a node's links.
    Slow(faults::SlowArgs),
    /// Remove every partition and slow link, and wait until the cluster is ready.
    Heal,
    /// Write while faults happen, then count what was lost.
    Check(check::Args),
    /// Make every live node forget the nodes whose containers are gone (CLUSTER FORGET); stopped ones stay known.
    Forget,
    /// Remove every container and network of the cluster.
    Stop(stop::StopArgs),
    /// Check that test runs left nothing behind (containers or networks of test clusters); exit 1 if they did.
    Leftovers,
    /// Run the test suite once per server version and print a version x scenario table.
    Test(matrix::Args),
    /// Keep warm clusters ready for tests run meanwhile (they claim one in a fraction of a second) and remove each
    /// after its test, until interrupted.
    Keeper(keeper::Args),
    /// Measure create, failover, join, image and suite times, and memory.
    Bench(bench::Args),
}

/// The versions of the matrix (and `all` where `with_all`), so `--help` lists them and a typo is refused.
fn version_names(with_all: bool) -> clap::builder::PossibleValuesParser {
    let names = Version::all().iter().map(|v| v.name.as_str());
    clap::builder::PossibleValuesParser::new(names.chain(with_all.then_some("all")))
}

fn default_version() -> String {
    Version::default_version().name.clone()
}

/// Resolves `name` (a version or `all`) to versions of the matrix.
fn versions(name: &str) -> cluster_tests::Result<Vec<&'static Version>> {
    if name == "all" {
        Ok(Version::all().iter().collect())
    } else {
        Ok(vec![Version::named(name)?])
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that only read die quietly on a closed pipe (`cargo xtask nodes | head -1`), as Unix tools do.
    // Those that change Docker's state keep it ignored and print through `out!`, which ignores a failed write:
    // dying between two steps would leave a half-made cluster or node.
    let changes_state = matches!(
        cli.command,
        Command::Create(_)
            | Command::Failover(_)
            | Command::Join(_)
            | Command::Forget
            | Command::Reshard(_)
            | Command::AddMaster(_)
            | Command::RemoveMaster(_)
            | Command::Rebalance
            | Command::Pause(_)
            | Command::Resume(_)
            | Command::Kill(_)
            | Command::Restart(_)
            | Command::Partition(_)
            | Command::Slow(_)
            | Command::Heal
            | Command::Check(_)
            | Command::Stop(_)
            | Command::Bench(_)
            | Command::Keeper(_)
    );
    if !changes_state {
        // SAFETY: called before any thread starts; SIG_DFL is a valid disposition for SIGPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // The bench prints its own figures; the harness's step-by-step progress would drown them.
    // So would it a JSON report.
    let quiet = matches!(&cli.command, Command::Bench(_)) || matches!(&cli.command, Command::Check(a) if a.json);
    progress::show(if quiet { Level::WARN } else { Level::INFO });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let name = &cli.cluster;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Build(args) => images::build(args).await,
            Command::Images(args) => images::images(args).await,
            Command::Create(args) => create::run(name, *args).await,
            Command::Info(args) => inspect::run(name, "INFO", args).await,
            Command::Nodes(args) => inspect::run(name, "NODES", args).await,
            Command::Connect(args) => connect::run(name, args).await,
            Command::Failover(args) => failover::run(name, args).await,
            Command::Join(args) => membership::join(name, args).await,
            Command::Forget => membership::forget(name).await,
            Command::Reshard(args) => reshard::run(name, args).await,
            Command::AddMaster(args) => scaling::add_master(name, args).await,
            Command::RemoveMaster(args) => scaling::remove_master(name, args).await,
            Command::Rebalance => scaling::rebalance(name).await,
            Command::Pause(args) => faults::pause(name, args).await,
            Command::Resume(args) => faults::resume(name, args).await,
            Command::Kill(args) => faults::kill(name, args).await,
            Command::Restart(args) => faults::restart(name, args).await,
            Command::Partition(args) => faults::partition(name, args).await,
            Command::Slow(args) => faults::slow(name, args).await,
            Command::Heal => faults::heal(name).await,
            Command::Check(args) => check::run(name, args).await,
            Command::Stop(args) => stop::stop(name, args).await,
            Command::Test(args) => matrix::run(args).await,
            Command::Keeper(args) => keeper::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Leftovers => stop::leftovers().await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = playground::hint(name, &e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
