//! `cargo xtask`: the playground CLI. Builds node images, makes a Redis Cluster out of Docker containers, breaks it
//! on purpose and heals it, runs the version matrix and the benchmark.

mod bench;
mod check;
mod faults;
mod matrix;
mod playground;
mod progress;
mod reshard;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::time::Duration;

use cluster_tests::{
    AclUser, ClientAuth, ClusterSpec, ImageSource, Networking, Version, generate_password, parse_acl_file,
};
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
    Build {
        /// Version to build, or `all`.
        #[arg(long, default_value_t = default_version(), value_parser = version_names(true))]
        version: String,
        /// Build the version's recipe into this tag instead, even if its image exists (one version only).
        #[arg(long)]
        tag: Option<String>,
    },
    /// List the node images present (version, server, size, architecture, origin); `--prune` removes those of
    /// earlier recipes.
    Images {
        /// Remove the images built from recipes that are no longer current.
        #[arg(long)]
        prune: bool,
    },
    /// Create the cluster (3 masters + 3 replicas by default) and wait until it is ready.
    Create {
        /// Server version (an image built here from Debian packages).
        #[arg(long, default_value_t = default_version(), value_parser = version_names(false))]
        version: String,
        /// Run any image holding redis-server or valkey-server instead (e.g. `redis:7.4`, `valkey/valkey:8.1`, a
        /// local tag); pulled if missing, where the Docker engine can reach a registry.
        #[arg(long, conflicts_with = "version", value_name = "REF")]
        image: Option<String>,
        /// Number of masters (at least 3).
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Replicas per master.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// cluster-node-timeout in milliseconds (default: 1000, or 50 per node for clusters over 20 nodes).
        #[arg(long)]
        node_timeout: Option<u64>,
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
        /// `requirepass` and `masterauth` on every node; with no value, one is generated and printed once. Later
        /// commands find it in a 0600 file under target/cluster-tests/<cluster>/.
        #[arg(long, value_name = "SECRET", num_args = 0..=1, default_missing_value = "")]
        password: Option<String>,
        /// An ACL user loaded on every node, `NAME:PASSWORD:RULES` (e.g. `reader:pw:~* +@read`); repeatable.
        #[arg(long = "user", value_name = "NAME:PASS:RULES")]
        users: Vec<String>,
        /// An ACL file of `user NAME on >PASSWORD RULES...` lines, loaded on every node.
        #[arg(long, value_name = "FILE")]
        acl: Option<std::path::PathBuf>,
        /// Turn the `default` user off: every client must name a user.
        #[arg(long)]
        no_default_user: bool,
        /// TLS only, on client connections, replication and the cluster bus, with certificates of the cluster's
        /// own CA; the CA and a client certificate are written under target/cluster-tests/<cluster>/ and printed.
        #[arg(long)]
        tls: bool,
        /// Mutual TLS: `--tls`, and clients must present a certificate of the cluster's CA.
        #[arg(long)]
        tls_client_auth: bool,
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
    /// Move slots with their keys from one master to another while the cluster serves traffic (atomic migration
    /// where the server has it), or hold one slot half-way for ASK tests (`--hold`, then `--finish` or `--abort`).
    Reshard(reshard::Args),
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
    /// Check that test runs left nothing behind (containers or networks of test clusters); exit 1 if they did.
    Leftovers,
    /// Run the test suite once per server version and print a version x scenario table.
    Test {
        /// Version to test, or `all`.
        #[arg(long, default_value = "all", value_parser = version_names(true))]
        version: String,
        /// `debian`: the images built here (the default, needs no registry); `upstream`: each version's official
        /// image named in images/versions.toml (pulled; needs a registry).
        #[arg(long, default_value = "debian", value_parser = ["debian", "upstream"])]
        images: String,
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
            | Command::Reshard(_)
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
            Command::Build { version, tag } => playground::build(&versions(&version)?, tag.as_deref()).await,
            Command::Images { prune } => playground::images(prune).await,
            Command::Create {
                version,
                image,
                masters,
                replicas,
                node_timeout,
                port_base,
                spare_ports,
                networking,
                password,
                users,
                acl,
                no_default_user,
                tls,
                tls_client_auth,
                persist,
            } => {
                let mut users = users
                    .iter()
                    .map(|u| AclUser::parse(u))
                    .collect::<cluster_tests::Result<Vec<_>>>()?;
                if let Some(file) = acl {
                    let text = std::fs::read_to_string(&file)
                        .map_err(|e| cluster_tests::Error::new(format!("reading {}: {e}", file.display())))?;
                    users.extend(parse_acl_file(&text).map_err(|e| e.context(file.display()))?);
                }
                let generated = password.as_deref() == Some("");
                let password = password.map(|p| if p.is_empty() { generate_password() } else { p });
                if generated {
                    // The one time it is shown; later commands read it from the cluster's file.
                    println!("password: {}", password.as_deref().unwrap_or_default());
                }
                let spec = ClusterSpec {
                    password,
                    users,
                    default_user_off: no_default_user,
                    tls: match (tls, tls_client_auth) {
                        (_, true) => Some(ClientAuth::Required),
                        (true, false) => Some(ClientAuth::None),
                        (false, false) => None,
                    },
                    masters,
                    replicas,
                    node_timeout: node_timeout.map(Duration::from_millis),
                    first_port: Some(port_base),
                    spare_ports,
                    networking: Networking::named(&networking)?,
                    persist,
                    ..cluster_tests::playground::spec(match image {
                        Some(reference) => ImageSource::Reference(reference),
                        None => ImageSource::Recipe(Version::named(&version)?),
                    })
                    .name(name.clone())
                };
                playground::create(spec).await
            }
            Command::Info { port } => playground::cluster_command(name, "INFO", port).await,
            Command::Nodes { port } => playground::cluster_command(name, "NODES", port).await,
            Command::Connect { port, command } => playground::connect(name, port, &command).await,
            Command::Failover { port, force, manual } => playground::failover(name, port, force, manual).await,
            Command::Join { replicate, port } => playground::join(name, replicate, port).await,
            Command::Forget => playground::forget(name).await,
            Command::Reshard(args) => reshard::run(name, args).await,
            Command::Pause { port, for_seconds } => faults::pause(name, port, for_seconds).await,
            Command::Resume { port } => faults::resume(name, port).await,
            Command::Kill { port } => faults::kill(name, port).await,
            Command::Restart { port } => faults::restart(name, port).await,
            Command::Partition {
                isolate,
                keep_clients,
                split,
            } => faults::partition(name, isolate, keep_clients, split).await,
            Command::Slow { port, delay, loss } => faults::slow(name, port, delay, loss).await,
            Command::Heal => faults::heal(name).await,
            Command::Check(args) => check::run(name, args).await,
            Command::Stop { all } => playground::stop(name, all).await,
            Command::Test {
                version,
                images,
                nextest_args,
            } => matrix::run(&versions(&version)?, images == "upstream", &nextest_args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Leftovers => playground::leftovers().await,
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
