//! A node brought into a cluster: its container, started until its server answers, met with the others, and made
//! a replica. Creating a cluster, joining a node and adding a master all go through these.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{StreamExt, stream};

use crate::cluster::identity::Identity;
use crate::cluster::networking::{Attachment, node_addr};
use crate::engine::docker::{ContainerSpec, Docker, PrivateFile};
use crate::security::credentials::{Access, CONFIG_PATH, Secrets};
use crate::security::tls;
use crate::server::{node, settings};
use crate::spec::Networking;
use crate::wait::{Unmet, not_yet};
use crate::{Error, Result, wait};

/// The container spec of the node listening on `port`, attached to the cluster's pod or network.
pub(crate) fn node_container(
    identity: &Identity,
    port: u16,
    attachment: &Attachment,
    secrets: Option<&Secrets>,
) -> ContainerSpec {
    let labels = identity.node_labels(port);
    let tls = secrets.is_some_and(Secrets::tls);
    let node_timeout = identity.node_timeout.as_millis().to_string();
    let required = [
        ("cluster-enabled", "yes"),
        ("cluster-config-file", "nodes.conf"),
        ("cluster-node-timeout", &node_timeout),
        ("protected-mode", "no"),
        ("appendonly", if identity.persist { "yes" } else { "no" }),
    ];
    let defaults = [
        ("save", ""),
        // Written to the file before the reply, fsynced once a second: a killed process (not a lost machine)
        // loses nothing acknowledged, at a fraction of `always`'s cost.
        ("appendfsync", "everysec"),
        // A disk-based sync starts at once on every version; a diskless one waits 5 s by default, and on Redis 6.0
        // for its once-a-second replication cron even with no delay (1 s more to create and to join).
        ("repl-diskless-sync", "no"),
        // Warnings only: Valkey 8+ logs a line per slot on every node a SETSLOT reaches, and each line goes
        // through the engine's log pipe (the shim, dockerd's JSON logger), which cost 2.5 core-s of a 9 s
        // add-master here, nearly as much as the servers' own work. `loglevel notice` brings the full log back.
        ("loglevel", "warning"),
    ];
    // Arguments come after the config file and win over it: a default the settings name gives way to them.
    let set = |name: &str| identity.settings.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let args = required
        .into_iter()
        .chain(defaults.into_iter().filter(|(name, _)| !set(name)))
        .flat_map(|(name, value)| [format!("--{name}"), value.to_owned()]);
    let mut container = ContainerSpec {
        name: format!("{}-{port}", identity.name),
        // Its own uid, so that rules inside a shared network namespace can single out its traffic; group 0 reads
        // its files.
        user: Some(port.to_string()),
        args: tls::port_args(port, tls, identity.plain_port(port))
            .into_iter()
            .chain(args)
            .collect(),
        labels,
        ..Default::default()
    };
    let settings = settings::config_text(&identity.settings);
    let files = match secrets {
        Some(secrets) => secrets.node_files(&settings),
        None if !settings.is_empty() => vec![PrivateFile {
            path: CONFIG_PATH.to_owned(),
            contents: settings.into_bytes(),
        }],
        None => Vec::new(),
    };
    if !files.is_empty() {
        // The config file comes first: the server reads it, then the arguments.
        container.args.insert(0, CONFIG_PATH.to_owned());
        container.files.extend(files);
    }
    identity.image.apply(&mut container);
    attachment.attach(&mut container);
    container
}

/// Starts a node container and waits until it answers; returns its address and node id. A container whose
/// server does not answer is removed again.
pub(crate) async fn start_node(
    docker: &Docker,
    container: ContainerSpec,
    port: u16,
    networking: Networking,
    access: &Access,
) -> Result<(SocketAddr, String)> {
    let started = docker.run(&container).await?;
    let answered = async {
        let addr = node_addr(networking, started.ip, port)
            .ok_or_else(|| Error::docker(format!("container {} has no address", container.name)))?;
        let id = wait::until(
            &format!("{} to answer", container.name),
            Duration::from_secs(20),
            || async {
                let e = match access.command::<String>(addr, &["CLUSTER", "MYID"]).await {
                    Ok(id) => return Ok(id),
                    Err(e) => e,
                };
                match docker.state(&started.id).await? {
                    Some(state) if state == "running" => Err(e.into()),
                    state => {
                        let logs = docker.log_tail(&started.id, 5).await.unwrap_or_default();
                        let why = if access.tls().is_some() && tls::lacks_tls(&logs) {
                            " (its server was built without TLS: use an image whose server has it, e.g. built with \
                             BUILD_TLS=yes, or make the cluster without TLS)"
                        } else {
                            ""
                        };
                        // The server exited: give up at once, with its last words.
                        Err(Unmet::GiveUp(Error::redis(format!(
                            "the server of {} stopped ({}) instead of answering{why}; its last words:\n{}",
                            container.name,
                            state.as_deref().unwrap_or("removed"),
                            logs.trim_end()
                        ))))
                    }
                }
            },
        )
        .await?;
        Ok((addr, id))
    };
    let result = answered.await;
    if result.is_err() {
        docker.remove_container(&started.id).await.ok();
    }
    result
}

/// Makes `replica` replicate `master` (its address and id), once the replica has learnt of that master.
///
/// A server sends a `CLUSTER MEET` once: a handshake that does not finish within the node timeout (1 s at least)
/// is dropped, which a loaded machine sees now and then, and a replica no node has met never learns of the others
/// by gossip. So while the replica does not know its master, it is asked to meet it again; while a handshake with
/// that address is under way, that is a no-op.
pub(crate) async fn replicate(
    access: &Access,
    replica: SocketAddr,
    master: (SocketAddr, &str),
    timeout: Duration,
) -> Result<()> {
    let (master_addr, master_id) = master;
    wait::until(&format!("{replica} to replicate {master_id}"), timeout, || async {
        let view = access.view(replica).await?;
        match view.nodes.get(master_id) {
            Some(m) if !m.in_handshake() => Ok(access
                .command::<()>(replica, &["CLUSTER", "REPLICATE", master_id])
                .await?),
            _ => {
                access.query::<()>(replica, &meet(master_addr)).await?;
                not_yet!("{replica} has not met its master ({master_addr}) yet")
            }
        }
    })
    .await
}

/// `CLUSTER MEET` with the node at `to`.
fn meet(to: SocketAddr) -> redis::Cmd {
    let mut meet = redis::cmd("CLUSTER");
    meet.arg("MEET").arg(to.ip().to_string()).arg(to.port());
    meet
}

/// How many nodes a new node meets directly: up to 9 nodes that is all of them, so nobody waits for gossip to learn
/// of the others; beyond, gossip spreads the rest within a few node timeouts, and the meets stay linear in the
/// number of nodes (a full mesh of 100 nodes is 4,950 meets, which a 2-core machine cannot answer in time).
const MEET_FANOUT: usize = 8;
/// How many commands of one step are in flight at once.
const IN_FLIGHT: usize = 32;

/// Has each of `new` meet the [`MEET_FANOUT`] nodes made just before it (the last of `known`, then the earlier
/// of `new`).
pub(crate) async fn meet_all(pool: &node::Pool, new: &[(SocketAddr, String)], known: &[SocketAddr]) -> Result<()> {
    let all: Vec<SocketAddr> = known.iter().copied().chain(new.iter().map(|(addr, _)| *addr)).collect();
    // Owned pairs, so the future that sends them can move to another task.
    let mut pairs: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for (j, (from, _)) in new.iter().enumerate() {
        let before = &all[..known.len() + j];
        pairs.extend(
            before[before.len().saturating_sub(MEET_FANOUT)..]
                .iter()
                .map(|to| (*from, *to)),
        );
    }
    let meets = pairs
        .into_iter()
        .map(|(from, to)| async move { pool.query::<()>(from, &meet(to)).await });
    let mut meets = stream::iter(meets).buffer_unordered(IN_FLIGHT);
    while let Some(met) = meets.next().await {
        met?;
    }
    Ok(())
}
