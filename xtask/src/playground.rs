//! The playground commands: build, create, info, nodes, connect, failover, join, forget, stop.

use std::io::IsTerminal;

use cluster_tests::docker::Docker;
use cluster_tests::image::{self, BuildOutcome};
use cluster_tests::node::command;
use cluster_tests::topology::{ClusterNodes, Role, format_ranges};
use cluster_tests::{Cluster, ClusterSpec, Error, FailoverKind, PLAYGROUND, Result, Version};

fn say(line: &str) {
    println!("  {line}");
}

/// `build`: makes the images of `versions` that are missing.
pub async fn build(versions: &[&'static Version]) -> Result<()> {
    let docker = Docker::connect().await?;
    for version in versions {
        let (tag, outcome, took) = image::ensure_built(&docker, version, &say).await?;
        let size = docker.image_size(&tag).await? as f64 / 1e6;
        let what = if outcome == BuildOutcome::Built {
            "built"
        } else {
            "up to date"
        };
        println!(
            "{:<11} {tag}  {what} in {:.1} s, {size:.1} MB",
            version.name,
            took.as_secs_f64()
        );
    }
    Ok(())
}

/// `create`: makes the playground cluster, or refuses if one runs. Ctrl-C removes what was made.
pub async fn create(spec: ClusterSpec) -> Result<()> {
    let docker = Docker::connect().await?;
    let created = tokio::select! {
        created = Cluster::create(&docker, spec, &say) => created?,
        _ = tokio::signal::ctrl_c() => {
            // Watches for a while after the first empty pass, so a container create already in flight goes too.
            let removed = cluster_tests::remove_interrupted_cluster(&docker, PLAYGROUND).await?;
            return Err(Error::new(format!(
                "interrupted; removed what had been made ({} containers, {} network)",
                removed.containers, removed.networks
            )));
        }
    };
    let (cluster, report) = created;
    println!(
        "ready in {:.2} s (node timeout {} ms)",
        report.replicas_synced.as_secs_f64(),
        cluster.node_timeout().as_millis()
    );
    print_topology(&cluster.topology().await?);
    match cluster.published_ports() {
        Some(_) => println!(
            "next: `redis-cli -c -p {}` (or `cargo xtask connect`), `cargo xtask failover`, `cargo xtask stop`",
            cluster.first_port()
        ),
        None => println!("next: `cargo xtask connect`, `cargo xtask failover`, `cargo xtask stop`"),
    }
    Ok(())
}

async fn playground() -> Result<Cluster> {
    Cluster::find(&Docker::connect().await?, PLAYGROUND).await
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

/// `info` / `nodes`: prints `CLUSTER <what>` of a live node as the server prints it.
pub async fn cluster_command(what: &str, port: Option<u16>) -> Result<()> {
    let cluster = playground().await?;
    let node = pick(&cluster, port).await?;
    let text: String = command(node.addr.expect("picked nodes run"), &["CLUSTER", what]).await?;
    print!("{}", text.replace("\r\n", "\n"));
    Ok(())
}

/// `connect`: an interactive `redis-cli -c` inside the node's container (so redirects reach every node).
pub async fn connect(port: Option<u16>, args: &[String]) -> Result<()> {
    let cluster = playground().await?;
    let node = pick(&cluster, port).await?;
    let sh = xshell::Shell::new().map_err(|e| Error::new(e.to_string()))?;
    let tty = if std::io::stdin().is_terminal() { "-it" } else { "-i" };
    let (container, cli, port) = (&node.container, &cluster.version().cli_bin, node.port.to_string());
    let cmd = xshell::cmd!(sh, "docker exec {tty} {container} {cli} -c -p {port} {args...}");
    // Interactive: the session needs this terminal's stdin, which xshell's own `run` would close.
    let status = std::process::Command::from(cmd)
        .status()
        .map_err(|e| Error::new(format!("running docker exec: {e}")))?;
    if !status.success() {
        return Err(Error::new(format!("{cli} on {container} exited with {status}")));
    }
    Ok(())
}

/// `failover`: removes a master (or, with `manual`, swaps it with its replica) and reports the takeover.
pub async fn failover(port: Option<u16>, force: bool, manual: bool) -> Result<()> {
    let cluster = playground().await?;
    let kind = if manual {
        FailoverKind::Manual
    } else {
        FailoverKind::RemoveMaster { force }
    };
    let report = cluster.failover(port, kind).await?;
    let verb = if manual {
        "handing over"
    } else {
        "removed the container of"
    };
    println!(
        "{verb} master {} (slots {})",
        report.old_master,
        format_ranges(&report.slots)
    );
    match (report.new_master, report.promoted_after) {
        (Some(new), Some(after)) => {
            println!("replica {new} promoted to master after {:.2} s", after.as_secs_f64());
            println!(
                "cluster_state:ok on every node after {:.2} s (node timeout {} ms)",
                report.ready_after.as_secs_f64(),
                cluster.node_timeout().as_millis()
            );
        }
        _ => println!(
            "no replica could take over: the cluster marked {} failed after {:.2} s and is down",
            report.old_master,
            report.ready_after.as_secs_f64()
        ),
    }
    print_topology(&cluster.topology().await?);
    Ok(())
}

/// `join`: adds a replica and reports when it is synced. Ctrl-C removes the node being joined.
pub async fn join(replicate: Option<u16>, port: Option<u16>) -> Result<()> {
    let cluster = playground().await?;
    let plan = cluster.plan_join(replicate, port).await?;
    let report = tokio::select! {
        report = cluster.carry_out_join(&plan) => report?,
        _ = tokio::signal::ctrl_c() => {
            cluster.undo_join(&plan).await?;
            return Err(Error::new(format!(
                "interrupted; removed the node being joined on port {} (if others had met it, \
                 `cargo xtask forget` clears it from their tables)",
                plan.port
            )));
        }
    };
    println!(
        "node {} joined as a replica of {} and is synced ({:.2} s)",
        report.port,
        report.master,
        report.ready_after.as_secs_f64()
    );
    let topology = cluster.topology().await?;
    print_topology(&topology);
    if topology.nodes.iter().any(|n| n.is_failed()) {
        println!("failed nodes are still known to the cluster; `cargo xtask forget` removes them");
    }
    Ok(())
}

/// `forget`: every live node forgets the nodes that are gone.
pub async fn forget() -> Result<()> {
    let cluster = playground().await?;
    let gone = cluster.forget_gone().await?;
    if gone.is_empty() {
        println!("no gone node to forget");
    } else {
        println!("forgot {} gone node(s): {}", gone.len(), gone.join(", "));
    }
    Ok(())
}

/// `stop`: removes the playground's containers and network; does nothing (successfully) if there are none.
pub async fn stop() -> Result<()> {
    let docker = Docker::connect().await?;
    let removed = cluster_tests::remove_cluster(&docker, PLAYGROUND).await?;
    match (removed.containers, removed.networks) {
        (0, 0) => println!("no cluster running; nothing to stop"),
        (0, _) => println!("no cluster running; removed the network `{PLAYGROUND}` left behind"),
        (n, _) => println!("stopped `{PLAYGROUND}`: removed {n} containers and its network"),
    }
    Ok(())
}

/// Prints one line per node: port, role, address, slots and the master it replicates.
fn print_topology(topology: &ClusterNodes) {
    let mut nodes: Vec<_> = topology.nodes.iter().collect();
    nodes.sort_by_key(|n| (n.port().unwrap_or(u16::MAX), n.id.clone()));
    println!(
        "  {:<6} {:<14} {:<22} {:<14} REPLICATES",
        "PORT", "ROLE", "ADDRESS", "SLOTS"
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
        println!(
            "  {:<6} {:<14} {:<22} {:<14} {}",
            n.port().map_or("-".into(), |p| p.to_string()),
            role,
            n.addr.map_or("-".into(), |a| a.to_string()),
            format_ranges(&n.slots),
            of.map_or(String::new(), |p| p.to_string())
        );
    }
}
