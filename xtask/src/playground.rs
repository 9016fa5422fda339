//! The playground commands: build, images, create, info, nodes, connect, failover, join, forget, stop, leftovers.

use std::io::IsTerminal;
use std::net::SocketAddr;

use cluster_tests::playground::{
    self as harness, BuildOutcome, Docker, build_into, build_timeout, census, ensure_built, ensure_tools,
    missing_build_tools, prune_images, remove_abandoned, remove_cluster, remove_interrupted_cluster,
};

use cluster_tests::topology::{ClusterNodes, Role, format_ranges};
use cluster_tests::{Access, Cluster, ClusterSpec, Error, FailoverKind, Result, Version};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Prints a line to stdout and ignores a failed write: the commands that change the cluster keep SIGPIPE ignored
/// (see `main`), so a closed pipe (`cargo xtask create | head -1`) or a hung-up terminal never cuts one short
/// between two steps.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use out;

pub(crate) fn say(line: &str) {
    out!("  {line}");
}

/// SIGINT, SIGTERM and SIGHUP, caught from when this is made: each means "stop and undo what is half-made".
pub(crate) struct Interrupts([Signal; 3]);

impl Interrupts {
    pub(crate) fn catch() -> Result<Self> {
        let catch = |kind| signal(kind).map_err(|e| Error::new(format!("catching signals: {e}")));
        Ok(Self([
            catch(SignalKind::interrupt())?,
            catch(SignalKind::terminate())?,
            catch(SignalKind::hangup())?,
        ]))
    }

    /// Waits for the first of them and returns its name.
    pub(crate) async fn next(&mut self) -> &'static str {
        let [int, term, hup] = &mut self.0;
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        }
    }
}

/// `build`: makes the images of `versions` that are missing (or, with `tag`, builds the one version into it).
/// Installs mmdebstrap first where it is missing and this is root on a Debian-family host.
pub async fn build(versions: &[&'static Version], tag: Option<&str>) -> Result<()> {
    install_build_tools()?;
    let docker = Docker::connect().await?;
    if let Some(tag) = tag {
        let [version] = versions else {
            return Err(Error::new("--tag builds one version; name it with --version"));
        };
        let start = std::time::Instant::now();
        build_into(version, tag, build_timeout()?).await?;
        let size = docker.image_size(tag).await? as f64 / 1e6;
        out!(
            "{:<11} {tag}  built in {:.1} s, {size:.1} MB",
            version.name,
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    for version in versions {
        let (tag, outcome, took) = ensure_built(&docker, version).await?;
        let size = docker.image_size(&tag).await? as f64 / 1e6;
        let what = if outcome == BuildOutcome::Built {
            "built"
        } else {
            "up to date"
        };
        out!(
            "{:<11} {tag}  {what} in {:.1} s, {size:.1} MB",
            version.name,
            took.as_secs_f64()
        );
    }
    let tools = ensure_tools(&docker).await?;
    out!(
        "{:<11} {tools}  (iptables, tc, ss for partition, slow and heal)",
        "tools"
    );
    Ok(())
}

/// Installs the missing build tools with apt when this is root on a Debian-family host (the library only reports
/// them); elsewhere the build's own error names the command. `build`, `create` and `test` call it, so on a fresh
/// machine `cargo xtask create` alone builds its image.
pub fn install_build_tools() -> Result<()> {
    let missing = missing_build_tools();
    let root = unsafe { libc::geteuid() } == 0;
    if missing.is_empty() || !root || !std::path::Path::new("/etc/debian_version").exists() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    say(&format!(
        "installing {} with apt-get (root on a Debian-family host)",
        packages.join(" ")
    ));
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .args(if args[0] == "install" { &packages[..] } else { &[] })
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(apt(&["install", "-y", "-qq"]) || (apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq"]))) {
        return Err(Error::new(format!(
            "installing {0} with apt-get failed; run `apt-get update && apt-get install -y {0}`",
            packages.join(" ")
        )));
    }
    Ok(())
}

/// `images`: lists the node images present; with `prune`, removes those of earlier recipes.
pub async fn images(prune: bool) -> Result<()> {
    let docker = Docker::connect().await?;
    if prune {
        let lines = prune_images(&docker).await?;
        if lines.is_empty() {
            out!("no image of an earlier recipe; nothing to prune");
        }
        lines.iter().for_each(|l| out!("{l}"));
        return Ok(());
    }
    let entries = harness::images(&docker).await?;
    if entries.is_empty() {
        out!("no node image here; `cargo xtask build` makes one");
        return Ok(());
    }
    out!(
        "{:<11} {:<15} {:>8} {:<6} {:<44} {}",
        "VERSION",
        "SERVER",
        "SIZE",
        "ARCH",
        "TAG",
        "ORIGIN"
    );
    for e in &entries {
        out!(
            "{:<11} {:<15} {:>6.1}MB {:<6} {:<44} {}{}",
            e.version.as_deref().unwrap_or("-"),
            if e.server.is_empty() { "-" } else { &e.server },
            e.size as f64 / 1e6,
            e.architecture,
            e.tags.first().map_or("<untagged>", String::as_str),
            e.origin,
            if e.stale {
                ", not this checkout's recipe (--prune removes it)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `create`: makes the playground cluster, or refuses if one runs. SIGINT, SIGTERM or SIGHUP removes what was made.
pub async fn create(spec: ClusterSpec) -> Result<()> {
    if spec.image.version().is_some() {
        install_build_tools()?;
    }
    let name = spec.name.clone();
    let mut interrupts = Interrupts::catch()?;
    let docker = Docker::connect().await?;
    let created = tokio::select! {
        created = harness::create(&docker, spec) => created?,
        signal = interrupts.next() => {
            // Watches for a while after the first empty pass, so a container create already in flight goes too.
            let removed = remove_interrupted_cluster(&docker, &name).await?;
            return Err(Error::new(format!(
                "interrupted by {signal}; removed what had been made ({} containers, {} network)",
                removed.containers, removed.networks
            )));
        }
    };
    let (cluster, report) = created;
    out!(
        "ready in {:.2} s (node timeout {} ms)",
        report.replicas_synced.as_secs_f64(),
        cluster.node_timeout().as_millis()
    );
    print_topology(&cluster.topology().await?);
    let tls = cluster.tls_files().map(|f| {
        format!(
            "--tls --cacert {} --cert {} --key {} ",
            f.ca.display(),
            f.cert.display(),
            f.key.display()
        )
    });
    if let Some(args) = &tls {
        out!("TLS only; a host client needs the cluster's CA and client certificate: {args}");
    }
    match cluster.published_ports() {
        Some(_) => out!(
            "next: `redis-cli {}-c -p {}` (or `cargo xtask connect`), `cargo xtask failover`, `cargo xtask stop`",
            tls.unwrap_or_default(),
            cluster.first_port()
        ),
        None => out!("next: `cargo xtask connect`, `cargo xtask failover`, `cargo xtask stop`"),
    }
    Ok(())
}

pub(crate) async fn find(name: &str) -> Result<Cluster> {
    harness::find(&Docker::connect().await?, name).await
}

/// The node on `port`, or the first live one.
async fn pick(cluster: &Cluster, port: Option<u16>) -> Result<cluster_tests::Node> {
    match port {
        Some(port) => cluster.node(port).await,
        None => cluster
            .nodes()
            .await?
            .into_iter()
            .find(|n| n.addr.is_some())
            .ok_or_else(|| Error::new("the cluster has no running node; `cargo xtask stop` clears it")),
    }
}

/// `info` / `nodes`: prints `CLUSTER <what>` of a live node as the server prints it; `nodes` adds a line for a
/// slot in migration (the server marks it only on its source's and target's own lines).
pub async fn cluster_command(name: &str, what: &str, port: Option<u16>) -> Result<()> {
    let cluster = find(name).await?;
    let node = pick(&cluster, port).await?;
    let text: String = cluster
        .access()
        .command(node.addr.expect("picked nodes run"), &["CLUSTER", what])
        .await?;
    print!("{}", text.replace("\r\n", "\n"));
    if what == "NODES"
        && let Some(held) = cluster.held_migration().await?
    {
        out!("# held in migration: {held}");
    }
    Ok(())
}

/// `connect`: an interactive `redis-cli -c` inside the node's container (so redirects reach every node), or,
/// with a command, that command sent by the harness itself, following redirects; an error reply exits 1.
pub async fn connect(name: &str, port: Option<u16>, args: &[String]) -> Result<()> {
    let cluster = find(name).await?;
    let node = pick(&cluster, port).await?;
    if !args.is_empty() {
        let reply = run_command(cluster.access(), node.addr.expect("picked nodes run"), args).await?;
        print_reply(&reply);
        return Ok(());
    }
    let sh = xshell::Shell::new().map_err(|e| Error::new(e.to_string()))?;
    // With a terminal, -t: its hang-up ends the cli. Without, -i alone: the cli ends when its stdin closes, which
    // Docker does when this client goes, however it goes, so no cli is left running in the container.
    let tty = if std::io::stdin().is_terminal() { "-it" } else { "-i" };
    let (container, cli, port) = (&node.container, cluster.image().cli()?, node.port.to_string());
    let access = cluster.access();
    let user: Vec<&str> = access.user().map(|u| vec!["--user", u]).unwrap_or_default();
    // The password goes by environment (`docker exec -e NAME` passes this process's value), never in an
    // argument that `ps` would show; valkey-cli reads VALKEYCLI_AUTH, redis-cli REDISCLI_AUTH.
    let auth: Vec<&str> = match access.password() {
        Some(_) => vec!["-e", "REDISCLI_AUTH", "-e", "VALKEYCLI_AUTH"],
        None => vec![],
    };
    let tls = harness::node_cli_tls_args(&cluster);
    let cmd = xshell::cmd!(
        sh,
        "docker exec {tty} {auth...} {container} {cli} {tls...} -c -p {port} {user...}"
    );
    let mut cmd = std::process::Command::from(cmd);
    if let Some(password) = access.password() {
        cmd.env("REDISCLI_AUTH", password).env("VALKEYCLI_AUTH", password);
    }
    // Interactive: the session needs this terminal's stdin, which xshell's own `run` would close.
    let status = cmd
        .status()
        .map_err(|e| Error::new(format!("running docker exec: {e}")))?;
    if !status.success() {
        return Err(Error::new(format!("{cli} on {container} exited with {status}")));
    }
    Ok(())
}

/// Sends `words` to the node at `addr`, following `MOVED` and `ASK` redirects as `redis-cli -c` does; a server's
/// error reply is an error.
async fn run_command(access: &Access, mut addr: SocketAddr, words: &[String]) -> Result<redis::Value> {
    const REDIRECTS: usize = 5;
    let mut cmd = redis::cmd(&words[0]);
    cmd.arg(&words[1..]);
    let mut asking = false;
    for _ in 0..=REDIRECTS {
        let mut conn = access.connect(addr).await?;
        if asking {
            // On the same connection, just before the command: the target serves a slot it imports only then.
            redis::cmd("ASKING").exec_async(&mut conn).await?;
        }
        let e = match cmd.query_async::<redis::Value>(&mut conn).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let Some(target) = e.redirect_node().and_then(|(to, _)| to.parse().ok()) else {
            return Err(e.into());
        };
        asking = e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask);
        say(&format!("-> redirected to {target}"));
        addr = target;
    }
    Err(Error::new(format!(
        "more than {REDIRECTS} redirects for {}",
        words.join(" ")
    )))
}

/// Prints a reply as `redis-cli` does when its output is not a terminal: one line per value.
fn print_reply(value: &redis::Value) {
    use redis::Value;
    match value {
        Value::Nil => out!(""),
        Value::Int(n) => out!("{n}"),
        Value::Okay => out!("OK"),
        Value::SimpleString(s) => out!("{s}"),
        Value::BulkString(bytes) => out!("{}", String::from_utf8_lossy(bytes).trim_end_matches('\n')),
        Value::VerbatimString { text, .. } => out!("{}", text.trim_end_matches('\n')),
        Value::Double(d) => out!("{d}"),
        Value::Boolean(b) => out!("{}", i32::from(*b)),
        Value::BigNumber(n) => out!("{}", String::from_utf8_lossy(n)),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(print_reply),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            print_reply(k);
            print_reply(v);
        }),
        other => out!("{other:?}"),
    }
}

/// `failover`: removes a master (or, with `manual`, swaps it with its replica) and reports the takeover.
pub async fn failover(name: &str, port: Option<u16>, force: bool, manual: bool) -> Result<()> {
    let cluster = find(name).await?;
    let kind = if manual {
        FailoverKind::Manual
    } else {
        FailoverKind::RemoveMaster { force }
    };
    // The steps (what was removed, who was promoted and when) come as the harness's progress lines.
    let report = cluster.failover(port, kind).await?;
    match report.new_master {
        Some(new) => out!(
            "replica {new} took over slots {}; cluster_state:ok on every node after {:.2} s (node timeout {} ms)",
            format_ranges(&report.slots),
            report.ready_after.as_secs_f64(),
            cluster.node_timeout().as_millis()
        ),
        _ => out!(
            "no replica could take over: the cluster marked {} failed after {:.2} s and is down",
            report.old_master,
            report.ready_after.as_secs_f64()
        ),
    }
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// `join`: adds a replica and reports when it is synced. SIGINT, SIGTERM or SIGHUP removes the node being joined.
pub async fn join(name: &str, replicate: Option<u16>, port: Option<u16>) -> Result<()> {
    let mut interrupts = Interrupts::catch()?;
    let cluster = find(name).await?;
    let plan = harness::plan_join(&cluster, replicate, port).await?;
    say(&format!(
        "joining a node on port {} as a replica of {}",
        plan.port, plan.master_port
    ));
    let report = tokio::select! {
        report = harness::carry_out_join(&cluster, &plan) => report?,
        signal = interrupts.next() => {
            harness::undo_join(&cluster, &plan).await?;
            return Err(Error::new(format!(
                "interrupted by {signal}; removed the node being joined on port {} (if others had met it, \
                 `cargo xtask forget` clears it from their tables)",
                plan.port
            )));
        }
    };
    out!(
        "node {} joined as a replica of {} and is synced ({:.2} s)",
        report.port,
        report.master,
        report.ready_after.as_secs_f64()
    );
    let topology = cluster.topology().await?;
    print_topology(&topology);
    if topology.nodes.iter().any(|n| n.is_failed()) {
        out!("failed nodes are still known to the cluster; `cargo xtask forget` removes them");
    }
    Ok(())
}

/// `forget`: every live node forgets the nodes whose containers are gone; stopped ones are left known.
pub async fn forget(name: &str) -> Result<()> {
    let cluster = find(name).await?;
    let report = cluster.forget_gone().await?;
    if report.forgotten.is_empty() {
        out!("no gone node to forget");
    } else {
        out!(
            "forgot {} gone node(s): {}",
            report.forgotten.len(),
            report.forgotten.join(", ")
        );
    }
    for (port, state) in &report.left_alone {
        out!(
            "left node {port} known: its container is {state}, not gone (remove it with `docker rm -f \
             {name}-{port}` first to have it forgotten)"
        );
    }
    Ok(())
}

/// `stop`: removes the playground's containers and network (does nothing, successfully, if there are none), and
/// mentions abandoned clusters; with `all`, removes every cluster whose owner is gone or that has none.
pub async fn stop(name: &str, all: bool) -> Result<()> {
    let docker = Docker::connect().await?;
    let census = census(&docker).await?;
    if all {
        let mut failed = None;
        for cluster in &census.abandoned {
            match remove_abandoned(&docker, cluster).await {
                Ok(removed) => out!(
                    "removed `{}`: {} containers, {} network(s)",
                    cluster.name,
                    removed.containers,
                    removed.networks
                ),
                Err(e) => failed = Some(e.context(format!("removing `{}`", cluster.name))),
            }
        }
        if census.abandoned.is_empty() {
            out!("no abandoned cluster; nothing to stop");
        }
        for (name, why) in &census.owned {
            out!("kept `{name}`: {why}");
        }
        return failed.map_or(Ok(()), Err);
    }
    let removed = remove_cluster(&docker, name, None).await?;
    match (removed.containers, removed.networks) {
        (0, 0) => out!("no cluster running; nothing to stop"),
        (0, _) => out!("no cluster running; removed the network `{name}` left behind"),
        (n, 0) => out!("stopped `{name}`: removed {n} containers"),
        (n, _) => out!("stopped `{name}`: removed {n} containers and its network"),
    }
    let others: Vec<&str> = census
        .abandoned
        .iter()
        .map(|c| c.name.as_str())
        .filter(|other| *other != name)
        .collect();
    if !others.is_empty() {
        out!(
            "left {} other abandoned cluster(s) whose maker is gone: {}; `cargo xtask stop --all` removes them",
            others.len(),
            others.join(", ")
        );
    }
    Ok(())
}

/// Prints one line per node: port, role, address, slots and the master it replicates.
pub(crate) fn print_topology(topology: &ClusterNodes) {
    let mut nodes: Vec<_> = topology.nodes.iter().collect();
    nodes.sort_by_key(|n| (n.port().unwrap_or(u16::MAX), n.id.clone()));
    out!(
        "  {:<6} {:<14} {:<22} {:<14} REPLICATES",
        "PORT",
        "ROLE",
        "ADDRESS",
        "SLOTS"
    );
    for n in nodes {
        let mut role = match n.role {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Unknown => "?",
        }
        .to_owned();
        if n.is_failing() {
            role.push_str(",fail");
        }
        let of = n
            .master_id
            .as_deref()
            .and_then(|id| topology.get(id))
            .and_then(|m| m.port());
        out!(
            "  {:<6} {:<14} {:<22} {:<14} {}",
            n.port().map_or("-".into(), |p| p.to_string()),
            role,
            n.addr.map_or("-".into(), |a| a.to_string()),
            format_ranges(&n.slots),
            of.map_or(String::new(), |p| p.to_string())
        );
    }
}

/// `leftovers`: what CI checks after the suite; the same check wherever it runs.
pub async fn leftovers() -> Result<()> {
    let found = harness::leftovers(&Docker::connect().await?).await?;
    for name in &found.phantom_networks {
        out!(
            "warning: network {name} keeps a phantom endpoint (Docker engine bug moby/moby#42119); restarting the \
             Docker daemon clears it"
        );
    }
    if found.any() {
        return Err(Error::new(format!(
            "the test run left {} container(s) ({}) and {} network(s) ({}) behind",
            found.containers.len(),
            found.containers.join(", "),
            found.networks.len(),
            found.networks.join(", ")
        )));
    }
    out!("nothing left behind");
    Ok(())
}
