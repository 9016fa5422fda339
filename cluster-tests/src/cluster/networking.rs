//! How a cluster's nodes are networked, and how the host reaches them.
//!
//! - [`Networking::Pod`] (the default): one network namespace per cluster, held by a *holder* container that runs
//!   no node, sits alone on a bridge network of its own (see [`start_pod`]) and publishes the cluster's port range
//!   on the host's 127.0.0.1 (never on other interfaces). Every node joins that namespace, listens on its own host
//!   port and announces 127.0.0.1, so every address the cluster hands out (`MOVED`, `ASK`,
//!   `CLUSTER SLOTS`/`SHARDS`/`NODES`) works from the host, on any OS, and between the nodes alike. Ports are
//!   published when the pod starts, so a pod publishes spare ports for nodes that join later.
//!   The holder fences the pod: from outside it, only the host's port proxy reaches the client ports, and
//!   nothing reaches the bus ports (see [`start_holder`]). It must outlive the nodes: it is never a fault target.
//! - [`Networking::Bridge`]: a private bridge network per cluster, each node in a network namespace of its own and
//!   announced by its container address (reachable from a Linux host only). Faults that need per-node namespaces
//!   can use it.
//!
//! Nodes run as uid = their port in both, so rules inside a shared namespace can tell their traffic apart.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::cluster::identity::{
    Identity, LABEL_CLUSTER, LABEL_FENCED, LABEL_FIRST_PORT, LABEL_HOLDER, LABEL_PLAIN_PORT, LABEL_PLAIN_PUBLISHED,
    cluster_filter, plain_published_of, published_of,
};
use crate::engine::docker::{ContainerSpec, Docker, LOOPBACK};
use crate::images::build;
use crate::spec::{ClusterSpec, Networking, PlainPorts};
use crate::wait::{Unmet, not_yet};
use crate::{Error, ErrorKind, Remedy, Result, wait};

/// The address the harness dials for a running node on `port` whose container address is `ip`.
pub(crate) fn node_addr(networking: Networking, ip: Option<IpAddr>, port: u16) -> Option<SocketAddr> {
    match networking {
        Networking::Pod => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        Networking::Bridge => ip.map(|ip| SocketAddr::new(ip, port)),
    }
}

/// Where a cluster's nodes attach, once its network or pod exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attachment {
    /// The pod's holder container (by id), the host ports it publishes, and whether it is fenced (it then runs
    /// the fault tools image as root with `NET_ADMIN`).
    Pod {
        holder: String,
        published: RangeInclusive<u16>,
        fenced: bool,
    },
    /// The cluster's bridge network, by id (Docker 20.10 lets several networks share its name).
    Bridge { network: String },
}

impl Attachment {
    /// Docker's network mode of a container on this attachment: `container:<holder>` in a pod, else the bridge
    /// network's id.
    pub(crate) fn network_mode(&self) -> String {
        match self {
            Self::Pod { holder, .. } => format!("container:{holder}"),
            Self::Bridge { network } => network.clone(),
        }
    }

    /// Puts a node container on this attachment: its network mode, host name, and the server arguments that make
    /// it announce an address the others and the host can use.
    pub(crate) fn attach(&self, container: &mut ContainerSpec) {
        match self {
            Self::Pod { .. } => {
                container.network = self.network_mode();
                container.hostname = None;
                // docker-proxy reaches the pod on its bridge address, so the node listens on every interface of
                // the pod; only the holder's published ports (on the host's 127.0.0.1) lead into it.
                container
                    .args
                    .extend(["--bind", "0.0.0.0", "--cluster-announce-ip", LOOPBACK].map(String::from));
            }
            Self::Bridge { .. } => {
                container.network = self.network_mode();
                container.hostname = Some(container.name.clone());
            }
        }
    }

    /// The host ports published for nodes, if any.
    pub(crate) fn published(&self) -> Option<&RangeInclusive<u16>> {
        match self {
            Self::Pod { published, .. } => Some(published),
            Self::Bridge { .. } => None,
        }
    }
}

/// The band free port ranges are drawn from: the node ports and their cluster bus ports (port + 10000) below
/// Linux's ephemeral range (32768-60999), so that no outgoing connection, the host's or one a node makes in its
/// namespace, holds a port a node is about to listen on (a bus port in that range once made a node of a full
/// matrix run exit with "Address already in use"), and above the ports people usually run servers on.
const FREE_BAND: RangeInclusive<u16> = 12000..=22767;
/// How many random ranges are tried before giving up on finding a free one.
const FREE_TRIES: usize = 20;

/// Makes the pod of the cluster `identity` names, publishing the ports `spec` needs: from its first port on, or
/// on a free range when it has none, and its plain-text ports if any. Settles the identity's first port (and
/// plain-text first port) and returns the pod's attachment.
pub(crate) async fn start_pod(docker: &Docker, identity: &mut Identity, spec: &ClusterSpec) -> Result<Attachment> {
    let network = pod_network(docker, identity).await?;
    let started = start_pod_on(docker, identity, spec, network.as_deref().unwrap_or(DEFAULT_BRIDGE)).await;
    if let (Err(_), Some(id)) = (&started, &network) {
        docker.remove_network(id).await.ok();
    }
    started
}

/// Docker's default bridge network, where a pod goes when Docker has no address pool left for one of its own.
const DEFAULT_BRIDGE: &str = "bridge";

/// Makes the pod's own bridge network (labelled as the cluster, named `<cluster>-pod-<random>`, as Docker since API
/// 1.44 refuses a second network of a name) and returns its id; `None`, with a warning, when Docker has no
/// address pool left for it.
///
/// A network of its own, rather than the default bridge every pod shared: Docker 20.10 before 20.10.27 can
/// deadlock its network controller for good when one container leaves a network while another's endpoint on the
/// same network is being deleted (moby/libnetwork#2679), and the matrix removes hundreds of pods; a pod alone on
/// its network has no other container to race. It also keeps other containers off the pod's network.
async fn pod_network(docker: &Docker, identity: &Identity) -> Result<Option<String>> {
    let mut labels = identity.labels();
    // Ports are settled once the holder publishes them.
    labels.remove(LABEL_FIRST_PORT);
    labels.remove(LABEL_PLAIN_PORT);
    let suffix = random() as u32;
    let name = format!("{}-pod-{suffix:08x}", identity.name);
    match docker.create_network(&name, labels).await {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.to_string().contains("address pool") => {
            tracing::warn!(
                "pod: Docker has no address pool left for cluster `{}`'s own network ({e}), so its pod goes on the \
                 default bridge, shared with every other container; `docker network prune` frees unused networks",
                identity.name
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`start_pod`] on `network` (an id, or the default bridge's name).
async fn start_pod_on(
    docker: &Docker,
    identity: &mut Identity,
    spec: &ClusterSpec,
    network: &str,
) -> Result<Attachment> {
    let span = spec.published_count() as u16;
    let plain_span = spec.plain_published() as u16;
    // The plain-text range of a pod whose TLS range begins at `first`.
    let plain_of = |first: u16| match spec.plain_ports {
        PlainPorts::Off => None,
        PlainPorts::Beside => Some(first + span),
        PlainPorts::At(plain) => Some(plain),
    };
    let ranges = |first: u16| {
        let plain = plain_of(first).map(|p| p..=p + plain_span - 1);
        (first..=first + span - 1, plain)
    };
    if let Some(first) = spec.first_port {
        let (range, plain) = ranges(first);
        for range in std::iter::once(&range).chain(&plain) {
            if let Some(port) = taken_port(range.clone()) {
                return Err(port_in_use(docker, port, &identity.name, range).await);
            }
        }
        identity.first_port = first;
        identity.plain_first_port = plain_of(first);
        return match start_holder(docker, identity, network, range.clone(), plain.clone()).await {
            Err(e) => match e.kind() {
                ErrorKind::PortTaken(port) => {
                    let range = plain.filter(|p| p.contains(&port)).unwrap_or(range);
                    Err(port_in_use(docker, port, &identity.name, &range).await)
                }
                _ => Err(e),
            },
            ok => ok,
        };
    }
    let mut last = Error::other("no free range was tried");
    let whole = span + plain_span;
    for _ in 0..FREE_TRIES {
        let first = random_in(*FREE_BAND.start(), FREE_BAND.end() - whole);
        let range = first..=first + whole - 1;
        if let Some(port) = taken_port(range.clone()) {
            last = Error::port_taken(
                port,
                format!("port {port} of 127.0.0.1:{}-{} is in use", range.start(), range.end()),
            );
            continue;
        }
        // Another process may take a port between the check and Docker's bind: then try another range.
        let (range, plain) = ranges(first);
        identity.first_port = first;
        identity.plain_first_port = plain_of(first);
        match start_holder(docker, identity, network, range, plain).await {
            Err(e) if matches!(e.kind(), ErrorKind::PortTaken(_)) => last = e,
            other => return other,
        }
    }
    Err(last.context(format!(
        "no free range of {whole} ports found on 127.0.0.1 in {FREE_TRIES} tries between {} and {}",
        FREE_BAND.start(),
        FREE_BAND.end()
    )))
}

/// The error of a port of `range` that cluster `name` needs but something holds: the cluster of ours that
/// publishes it, with its range, or another program or container.
async fn port_in_use(docker: &Docker, port: u16, name: &str, range: &RangeInclusive<u16>) -> Error {
    let holders = docker.containers(&[LABEL_HOLDER.to_owned()]).await.unwrap_or_default();
    let ours = holders.iter().find_map(|holder| {
        let other = holder.labels.get(LABEL_CLUSTER)?;
        let published = published_of(&holder.labels)
            .into_iter()
            .chain(plain_published_of(&holder.labels));
        published
            .into_iter()
            .find(|r| r.contains(&port))
            .map(|r| (other.clone(), r))
    });
    let by = match ours {
        Some((other, r)) => format!(
            "is published by cluster `{other}` (ports {}-{}; `ClusterSpec::spare_ports` sets how many it keeps for \
             joins)",
            r.start(),
            r.end()
        ),
        None => "is already in use by another program or container".to_owned(),
    };
    Error::with_kind(
        ErrorKind::PortTaken(port),
        format!(
            "port {port} on 127.0.0.1 {by}, and cluster `{name}` needs ports {} to {}; free it, or pick another \
             range (`ClusterSpec::first_port`)",
            range.start(),
            range.end()
        ),
    )
}

/// Starts the holder publishing `range` (and `plain`, plain-text ports beside TLS ones). It runs the fault tools
/// image as root with `NET_ADMIN`: it fences the pod ([`firewall`]), says so, and sleeps; the nodes start once the
/// fence is up. Where the tools image cannot be had (no Debian build tools here), the holder is a node image's
/// server with no TCP port and the pod goes unfenced, with a warning.
async fn start_holder(
    docker: &Docker,
    identity: &Identity,
    network: &str,
    range: RangeInclusive<u16>,
    plain: Option<RangeInclusive<u16>>,
) -> Result<Attachment> {
    let mut labels = identity.holder_labels(*range.start(), *range.end());
    if let Some(plain) = &plain {
        labels.insert(
            LABEL_PLAIN_PUBLISHED.to_owned(),
            format!("{}-{}", plain.start(), plain.end()),
        );
    }
    let mut holder = ContainerSpec {
        name: format!("{}-pod", identity.name),
        network: network.to_owned(),
        published: range.clone().chain(plain.clone().into_iter().flatten()).collect(),
        labels,
        ..Default::default()
    };
    let fenced = match build::ensure_tools(docker).await {
        Ok(tools) => {
            holder.image = tools;
            holder.user = Some("0".into());
            holder.cap_add = vec!["NET_ADMIN".into()];
            holder.entrypoint = Some(vec!["/bin/busybox".into(), "sh".into(), "-c".into()]);
            holder.args = vec![firewall(&range, plain.as_ref())];
            // Read back by `Identity::read` when the cluster has no node yet.
            holder.labels.extend(identity.image.labels());
            holder.labels.insert(LABEL_FENCED.to_owned(), "yes".to_owned());
            true
        }
        Err(e) => {
            let exposed = if network == DEFAULT_BRIDGE {
                "every container on Docker's default bridge"
            } else {
                "any container connected to its network"
            };
            tracing::warn!(
                "pod: the fault tools image is not available ({e}), so cluster `{}`'s pod has no firewall: \
                 {exposed} can reach its nodes' client and bus ports",
                identity.name
            );
            holder.args = [
                "--port",
                "0",
                "--unixsocket",
                // Relative: in the data directory, which every node image has writable (/tmp may not exist).
                "holder.sock",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(String::from)
            .to_vec();
            identity.image.apply(&mut holder);
            false
        }
    };
    let started = docker.run(&holder).await?;
    if fenced && let Err(e) = wait_fenced(docker, &started.id).await {
        docker.remove_container(&started.id).await.ok();
        return Err(e.context(format!("fencing cluster `{}`'s pod", identity.name)));
    }
    tracing::info!(
        "pod: ports 127.0.0.1:{}-{} published for cluster `{}`{}{}",
        range.start(),
        range.end(),
        identity.name,
        plain.map_or_else(String::new, |p| format!(
            " (TLS), and {}-{} for plain-text clients",
            p.start(),
            p.end()
        )),
        if fenced { ", reachable from the host only" } else { "" }
    );
    Ok(Attachment::Pod {
        holder: started.id,
        published: range,
        fenced,
    })
}

/// What the holder prints once its rules are in.
const FENCED: &str = "pod-fenced";

/// What the holder prints when its iptables has no TTL match, so its fence is Docker's network isolation too.
const NO_TTL_MATCH: &str = "pod-no-ttl-match";

/// The holder's script: inside the pod's network namespace, the client ports (`range`, and `plain`) accept only loopback (the
/// nodes, the fault tools, a cli run in a node) and the pod's gateway (where Docker's port proxy on the host's
/// 127.0.0.1 comes from); every other packet from outside the pod is dropped, so the bus ports (client + 10000)
/// take loopback only. Then it sleeps, holding the namespace. Its chain is not one `heal` removes.
///
/// From the gateway, only packets the host sent itself are taken (TTL 64 or more): a container on another
/// network that Docker routes here is masqueraded to the gateway's address too, and only its TTL, one hop lower
/// (63), tells it apart. Docker's network isolation drops such packets on the host, but Docker 20.10 removes and
/// re-inserts the FORWARD chain's jump to that isolation on every network it creates (`EnsureJumpRule`), and in
/// that gap a container on the default bridge opened a pod's client ports (a full run's pod fence test). Where
/// iptables has no TTL match, the gateway's packets are all taken, and the harness warns ([`NO_TTL_MATCH`]).
fn firewall(range: &RangeInclusive<u16>, plain: Option<&RangeInclusive<u16>>) -> String {
    let client = |r: &RangeInclusive<u16>| {
        let accept = format!(
            "$I -A CLUSTER_TESTS_POD -p tcp -s \"$gw\" --dport {}:{}",
            r.start(),
            r.end()
        );
        format!("{accept} -m ttl --ttl-gt 63 -j ACCEPT 2>/dev/null || {{ echo {NO_TTL_MATCH}; {accept} -j ACCEPT; }}\n")
    };
    format!(
        r#"set -e
I=/usr/sbin/iptables-nft
gw=$(/bin/busybox ip route | /bin/busybox awk '/^default/ {{print $3}}')
[ -n "$gw" ] || {{ echo "the pod has no default route"; exit 1; }}
$I -N CLUSTER_TESTS_POD
$I -A CLUSTER_TESTS_POD -i lo -j ACCEPT
{}{}$I -A CLUSTER_TESTS_POD -j DROP
$I -I INPUT -j CLUSTER_TESTS_POD
echo {FENCED}
exec /bin/busybox sleep 2147483647
"#,
        client(range),
        plain.map(client).unwrap_or_default()
    )
}

/// Waits until the holder `id` says its rules are in; gives up at once if it exited.
async fn wait_fenced(docker: &Docker, id: &str) -> Result<()> {
    wait::until("the pod's firewall to be up", Duration::from_secs(20), || async {
        let log = docker.log_tail(id, 20).await?;
        if log.contains(FENCED) {
            if log.contains(NO_TTL_MATCH) {
                tracing::warn!(
                    "pod: iptables in the fault tools image has no TTL match, so the pod's client ports take \
                     whatever Docker routes to them from its gateway: fenced from other containers only as long as \
                     Docker's network isolation is in place"
                );
            }
            return Ok(());
        }
        match docker.state(id).await? {
            Some(state) if state == "running" => not_yet!("the holder has not printed {FENCED} yet"),
            state => Err(Unmet::GiveUp(Error::other(format!(
                "the holder is {} before its rules were in: {}",
                state.as_deref().unwrap_or("gone"),
                log.trim()
            )))),
        }
    })
    .await
}

/// The attachment of an existing cluster `name`, read back from Docker: its pod's holder, or its bridge network.
pub(crate) async fn find_attachment(docker: &Docker, name: &str, networking: Networking) -> Result<Attachment> {
    match networking {
        Networking::Bridge => {
            // The network a node is on; a cluster made before networks were told apart by id may have several.
            let containers = docker.containers(&[cluster_filter(name)]).await?;
            let network = match containers.iter().find_map(|c| c.network_id.clone()) {
                Some(id) => id,
                None => docker
                    .networks(&[cluster_filter(name)])
                    .await?
                    .into_iter()
                    .next()
                    .map(|n| n.id)
                    .ok_or_else(|| {
                        Error::refused(format!("cluster `{name}` has no network")).with_remedy(Remedy::RemoveCluster)
                    })?,
            };
            Ok(Attachment::Bridge { network })
        }
        Networking::Pod => {
            let filters = [cluster_filter(name), LABEL_HOLDER.to_owned()];
            let holder = docker.containers(&filters).await?.into_iter().find(|c| c.running);
            let holder = holder.ok_or_else(|| {
                Error::refused(format!(
                    "the container holding cluster `{name}`'s network ({name}-pod) is not running, so no node can \
                     be reached or added"
                ))
                .with_remedy(Remedy::RemoveCluster)
            })?;
            let published = published_of(&holder.labels);
            let published =
                published.ok_or_else(|| Error::refused(format!("{} has no published range", holder.name)))?;
            Ok(Attachment::Pod {
                fenced: holder.labels.contains_key(LABEL_FENCED),
                holder: holder.id,
                published,
            })
        }
    }
}

/// The first port of `range` that something on this host holds on 127.0.0.1.
fn taken_port(range: RangeInclusive<u16>) -> Option<u16> {
    range.into_iter().find(|p| TcpListener::bind((LOOPBACK, *p)).is_err())
}

/// A random number in `low..=high` (std's randomly keyed hasher is random enough to spread clusters).
fn random_in(low: u16, high: u16) -> u16 {
    let span = u64::from(high - low) + 1;
    low + (random() % span) as u16
}

/// A random number, from std's randomly keyed hasher.
fn random() -> u64 {
    RandomState::new().hash_one(std::time::Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ports_stay_in_the_band() {
        for _ in 0..1000 {
            let p = random_in(20000, 20010);
            assert!((20000..=20010).contains(&p), "{p}");
        }
    }

    #[test]
    fn a_port_held_on_loopback_is_found() {
        let held = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        assert_eq!(taken_port(port..=port), Some(port));
        drop(held);
    }
}
