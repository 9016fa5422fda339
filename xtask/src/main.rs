//! `cargo xtask`: the playground CLI. Builds node images, makes a Redis Cluster out of Docker containers, breaks it
//! on purpose and heals it, runs the version matrix and the benchmark.

mod bench;
mod check;
mod faults;
mod matrix;
mod playground;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::time::Duration;

use cluster_tests::{ClusterSpec, Networking, Version};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "A real Redis Cluster out of Docker containers: make it, break it, check it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build node images from Debian packages (an unchanged recipe is not rebuilt).
    Build {
        /// Version to build, or `all`.
        #[arg(long, default_value_t = default_version(), value_parser = version_names(true))]
        version: String,
    },
    /// Create the cluster (3 masters + 3 replicas by default) and wait until it is ready.
    Create {
        /// Server version.
        #[arg(long, default_value_t = default_version(), value_parser = version_names(false))]
        version: String,
        /// Number of masters (at least 3).
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Replicas per master.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// cluster-node-timeout in milliseconds (100 to 60000).
        #[arg(long, default_value_t = cluster_tests::DEFAULT_NODE_TIMEOUT.as_millis() as u64)]
        node_timeout: u64,
        /// Port of the first node on 127.0.0.1; the others follow.
        #[arg(long, default_value_t = cluster_tests::FIRST_PORT)]
        port_base: u16,
        /// Ports published beyond the nodes' own, for `join` (a running cluster cannot publish more).
        #[arg(long, default_value_t = cluster_tests::DEFAULT_SPARE_PORTS)]
        spare_ports: usize,
        /// `pod`: every node at 127.0.0.1:<port> on the host, as the original tool had; `bridge`: each node in its
        /// own network namespace, at its container address (reachable from a Linux host only).
        #[arg(long, default_value = "pod", value_parser = ["pod", "bridge"])]
        networking: String,
        /// Keep writes on disk (AOF, fsync every second), so a killed and restarted node has them.
        #[arg(long)]
        persist: bool,
    },
    /// Print CLUSTER INFO of a live node.
    Info {
        /// Node port (default: any live node).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Print CLUSTER NODES of a live node.
    Nodes {
        /// Node port (default: any live node).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Open `redis-cli -c` (or `valkey-cli -c`) on a node, inside the cluster's network.
    Connect {
        /// Node port (default: any live node).
        port: Option<u16>,
        /// A command to run instead of the interactive session, e.g. `-- set foo bar`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Remove a master's container and report which replica took over and how long it took.
    Failover {
        /// Port of the master to fail (default: the master with the lowest port).
        #[arg(long)]
        port: Option<u16>,
        /// Remove it even if no replica can take over (the cluster goes down).
        #[arg(long, conflicts_with = "manual")]
        force: bool,
        /// Do a coordinated CLUSTER FAILOVER on its replica instead of removing it.
        #[arg(long)]
        manual: bool,
    },
    /// Add a node that replicates the master with no replica left (e.g. the promoted one).
    Join {
        /// Port of the master to replicate.
        #[arg(long)]
        replicate: Option<u16>,
        /// Port for the new node (default: the lowest free one, e.g. the failed master's).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Freeze a node's process (docker pause): it stays in the network and its peers see it time out.
    Pause {
        /// Node port (default: the master with the lowest port).
        #[arg(long)]
        port: Option<u16>,
        /// Resume it by itself after SECONDS (this command waits; killed with SIGKILL, it leaves it paused).
        #[arg(long = "for", value_name = "SECONDS")]
        for_seconds: Option<f64>,
    },
    /// Thaw a paused node and report what it became.
    Resume {
        /// Node port (default: the one paused node).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Kill a node's process (SIGKILL); its container, nodes.conf and data files stay for `restart`.
    Kill {
        /// Node port (default: the master with the lowest port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Start a killed node again with the files it had, and report what it became.
    Restart {
        /// Node port (default: the one stopped node).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Cut nodes off from the others (cluster bus and replication, both directions), inside the cluster's
    /// network namespace.
    Partition {
        /// Cut this node off from every other node.
        #[arg(long, value_name = "PORT", conflicts_with = "split")]
        isolate: Option<u16>,
        /// With --isolate: clients on the host can still reach the node (the minority-master case).
        #[arg(long)]
        keep_clients: bool,
        /// These nodes on one side, every other node on the other.
        #[arg(long, value_name = "P,Q,...", value_delimiter = ',')]
        split: Option<Vec<u16>>,
    },
    /// Add latency (tc netem) and loss to a node's links.
    Slow {
        /// Node port (default: the master with the lowest port).
        #[arg(long)]
        port: Option<u16>,
        /// Milliseconds added to every packet the node sends and every packet sent to it.
        #[arg(long, default_value_t = 0)]
        delay: u64,
        /// Percentage of those packets dropped.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
    },
    /// Remove every partition and slow link, and wait until the cluster is ready.
    Heal,
    /// Write while faults happen, then count what was lost.
    Check(check::Args),
    /// Make every live node forget the nodes whose containers are gone (CLUSTER FORGET); stopped ones stay known.
    Forget,
    /// Remove every container and network of the cluster.
    Stop {
        /// Remove every cluster this project made that no live process owns: the playground and those of killed tests
        /// or benches (clusters of running tests are kept, and named).
        #[arg(long)]
        all: bool,
    },
    /// Run the test suite once per server version and print a version x scenario table.
    Test {
        /// Version to test, or `all`.
        #[arg(long, default_value = "all", value_parser = version_names(true))]
        version: String,
        /// Arguments passed on to `cargo nextest run`.
        #[arg(last = true)]
        nextest_args: Vec<String>,
    },
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
        Command::Create { .. }
            | Command::Failover { .. }
            | Command::Join { .. }
            | Command::Forget
            | Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Kill { .. }
            | Command::Restart { .. }
            | Command::Partition { .. }
            | Command::Slow { .. }
            | Command::Heal
            | Command::Check(_)
            | Command::Stop { .. }
            | Command::Bench(_)
    );
    if !changes_state {
        // SAFETY: called before any thread starts; SIG_DFL is a valid disposition for SIGPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Build { version } => playground::build(&versions(&version)?).await,
            Command::Create {
                version,
                masters,
                replicas,
                node_timeout,
                port_base,
                spare_ports,
                networking,
                persist,
            } => {
                let spec = ClusterSpec {
                    masters,
                    replicas,
                    node_timeout: Duration::from_millis(node_timeout),
                    first_port: Some(port_base),
                    spare_ports,
                    networking: Networking::named(&networking)?,
                    persist,
                    ..ClusterSpec::playground(Version::named(&version)?)
                };
                playground::create(spec).await
            }
            Command::Info { port } => playground::cluster_command("INFO", port).await,
            Command::Nodes { port } => playground::cluster_command("NODES", port).await,
            Command::Connect { port, command } => playground::connect(port, &command).await,
            Command::Failover { port, force, manual } => playground::failover(port, force, manual).await,
            Command::Join { replicate, port } => playground::join(replicate, port).await,
            Command::Forget => playground::forget().await,
            Command::Pause { port, for_seconds } => faults::pause(port, for_seconds).await,
            Command::Resume { port } => faults::resume(port).await,
            Command::Kill { port } => faults::kill(port).await,
            Command::Restart { port } => faults::restart(port).await,
            Command::Partition {
                isolate,
                keep_clients,
                split,
            } => faults::partition(isolate, keep_clients, split).await,
            Command::Slow { port, delay, loss } => faults::slow(port, delay, loss).await,
            Command::Heal => faults::heal().await,
            Command::Check(args) => check::run(args).await,
            Command::Stop { all } => playground::stop(all).await,
            Command::Test { version, nextest_args } => matrix::run(&versions(&version)?, &nextest_args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
