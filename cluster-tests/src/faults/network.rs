//! Faults of the network between nodes: partitions (`iptables` drops) and slow, lossy links (`tc netem` delay,
//! `iptables` random drops), made inside the cluster's own network namespaces by a short-lived container of the
//! tools image that joins them with `NET_ADMIN`; never on the host's own firewall.
//!
//! Every rule lives in the chains `CLUSTER_TESTS_OUT` and `CLUSTER_TESTS_IN` (filter and mangle tables) and every
//! queueing discipline on the root of a device, so [`Cluster::heal`] removes exactly them; removing the cluster
//! removes its namespaces and whatever is in them.
//!
//! - Pod: every node shares one namespace and talks to its peers over `lo` at 127.0.0.1. A node is told apart by
//!   its uid (= its port) for what it sends (`-m owner --uid-owner P`, OUTPUT) and by its ports (P, P+10000) for
//!   what is sent to it. A cut between nodes a and b drops, on `lo`, a's packets to b's ports and b's packets to
//!   a's ports: both directions of the bus and of replication, whoever opened the connection. Clients on the host
//!   arrive through docker-proxy on the pod's `eth0`, untouched unless cut on purpose.
//! - Bridge: each node has a namespace of its own; rules go into those of the listed side and name the other
//!   side's container addresses (the host, coming from the network's gateway, is not among them).

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;

use crate::cluster::guards;
use crate::cluster::handle::{Cluster, Node};
use crate::cluster::networking::Attachment;
use crate::engine::docker::ContainerSpec;
use crate::faults::process::{FaultStart, fault_start};
use crate::images::build;
use crate::server::topology::Role;
use crate::spec::Networking;
use crate::wait::not_yet;
use crate::{Error, ErrorKind, Result, bail, wait};

const IPT: &str = "/usr/sbin/iptables-nft";
const TC: &str = "/usr/sbin/tc";
const SS: &str = "/usr/bin/ss";
/// Makes the chains (idempotently) and hooks them into OUTPUT and INPUT of the filter and mangle tables.
const SETUP: &str = r#"set -e
I=/usr/sbin/iptables-nft
for t in filter mangle; do
  for c in OUT IN; do $I -t $t -N CLUSTER_TESTS_$c 2>/dev/null || true; done
  $I -t $t -C OUTPUT -j CLUSTER_TESTS_OUT 2>/dev/null || $I -t $t -I OUTPUT -j CLUSTER_TESTS_OUT
  $I -t $t -C INPUT -j CLUSTER_TESTS_IN 2>/dev/null || $I -t $t -I INPUT -j CLUSTER_TESTS_IN
done
"#;
/// Removes the chains and the root qdiscs of `lo` and `eth0` if there are any; prints `healed=1` if it removed
/// something, `healed=0` otherwise.
const HEAL: &str = r#"I=/usr/sbin/iptables-nft; T=/usr/sbin/tc; found=0
for t in filter mangle; do
  for c in OUT IN; do
    if $I -t $t -n -L CLUSTER_TESTS_$c >/dev/null 2>&1; then
      found=1
      while $I -t $t -D OUTPUT -j CLUSTER_TESTS_$c 2>/dev/null; do :; done
      while $I -t $t -D INPUT -j CLUSTER_TESTS_$c 2>/dev/null; do :; done
      $I -t $t -F CLUSTER_TESTS_$c && $I -t $t -X CLUSTER_TESTS_$c || exit 1
    fi
  done
done
for d in lo eth0; do
  if $T qdisc show dev $d 2>/dev/null | grep -qE 'htb|netem'; then found=1; $T qdisc del dev $d root || exit 1; fi
done
echo healed=$found
"#;
/// Exit code of a script whose `tc netem` the kernel refused.
const NO_NETEM: i64 = 4;
/// The longest a fault tools run may take.
const TOOLS_TIMEOUT: Duration = Duration::from_secs(30);

/// Which nodes a partition cuts off from the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// Node `port` alone against every other node; `keep_clients` leaves the host's clients able to reach it
    /// (the minority-master case), otherwise its client port is cut from the host too.
    Isolate {
        /// The node cut off.
        port: u16,
        /// Whether clients on the host can still reach it.
        keep_clients: bool,
    },
    /// The listed nodes on one side, every other node on the other; clients reach both.
    Split(Vec<u16>),
}

/// What a partition cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// The listed side.
    pub side: Vec<u16>,
    /// The other side.
    pub rest: Vec<u16>,
    /// The masters serving slots on the side without a majority of masters, with the replicas that can take over
    /// from the majority side; empty if the listed side holds the majority.
    pub minority_masters: Vec<FaultStart>,
}

/// What `heal` removed, and what the nodes became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealReport {
    /// Namespaces that held rules (1 in a pod).
    pub namespaces: usize,
    /// Time from removing the rules to the cluster being ready again.
    pub ready_after: Duration,
}

impl Cluster {
    /// Cuts the nodes of `cut` off from the others (cluster bus and replication, both directions) and returns
    /// at once; [`Cluster::wait_takeover`] and [`Cluster::wait_refuses_writes`] watch what follows.
    pub async fn partition(&self, cut: Cut) -> Result<PartitionReport> {
        let nodes = self.nodes().await?;
        let (side, cut_clients) = match &cut {
            Cut::Isolate { port, keep_clients } => (vec![*port], if *keep_clients { vec![] } else { vec![*port] }),
            Cut::Split(ports) => (ports.clone(), vec![]),
        };
        for port in &side {
            if !nodes.iter().any(|n| n.port == *port) {
                self.node(*port).await?;
            }
        }
        let rest: Vec<u16> = nodes.iter().map(|n| n.port).filter(|p| !side.contains(p)).collect();
        if side.is_empty() || rest.is_empty() {
            bail!(
                Refused,
                "a partition needs nodes on both sides (listed: {side:?}, others: {rest:?})"
            );
        }
        let topology = self.topology().await?;
        let tools = build::ensure_tools(self.docker()).await?;
        // The fault starts when its rules start going in: they take effect somewhere inside the tools container's
        // run (a few hundred ms), so a time taken after it would make the servers look faster than they are.
        let cut_at = Instant::now();
        match self.identity().networking {
            Networking::Pod => {
                // Rules first (no new connection crosses the cut from then on), then the established ones that
                // cross it are listed and killed at both ends: a rule drops a's packets to b's ports, but on a
                // connection b opened to a, a's packets go to b's ephemeral port, which no rule can name.
                let namespace = self.pod_namespace()?;
                let rules = pod_partition(&side, &rest, &cut_clients).join("\n");
                let script = format!("{SETUP}{rules}\n{SS} -tnHe state established");
                let listing = self.run_tools(&tools, &namespace, &script).await?;
                let kills: Vec<String> = crossing(&listing, &side)
                    .into_iter()
                    .map(|(local, peer)| format!("{SS} -K state established src {local} dst {peer} >/dev/null"))
                    .collect();
                if !kills.is_empty() {
                    self.run_tools(&tools, &namespace, &kills.join("\n")).await?;
                }
            }
            Networking::Bridge => {
                let ip_of = |port: u16| {
                    nodes
                        .iter()
                        .find(|n| n.port == port)
                        .and_then(|n| n.addr)
                        .map(|a| a.ip())
                };
                let others: Vec<String> = rest.iter().filter_map(|p| ip_of(*p)).map(|ip| ip.to_string()).collect();
                let runs = nodes
                    .iter()
                    .filter(|n| side.contains(&n.port) && n.addr.is_some())
                    .map(|n| {
                        let rules = bridge_partition(&others, cut_clients.contains(&n.port).then_some(n.port));
                        let script = format!("{SETUP}{}", rules.join("\n"));
                        let tools = &tools;
                        async move { self.run_tools(tools, &n.id, &script).await }
                    });
                try_join_all(runs).await?;
            }
        }
        tracing::info!(
            "fault: partitioned {} | {}{}",
            ports(&side),
            ports(&rest),
            if cut_clients.is_empty() {
                " (clients on the host reach both sides)"
            } else {
                " (and from the host's clients)"
            }
        );
        let masters = |ports: &[u16]| {
            ports
                .iter()
                .filter(|p| {
                    topology
                        .by_port(**p)
                        .is_some_and(|n| n.role == Role::Master && !n.slots.is_empty())
                })
                .count()
        };
        let total = masters(&side) + masters(&rest);
        let minority = if masters(&side) * 2 <= total { &side } else { &rest };
        let mut minority_masters = Vec::new();
        for port in minority {
            let mut fault = FaultStart {
                at: cut_at,
                ..fault_start(&topology, *port)?
            };
            if fault.was_master {
                fault.replicas.retain(|r| !minority.contains(r));
                minority_masters.push(fault);
            }
        }
        Ok(PartitionReport {
            side,
            rest,
            minority_masters,
        })
    }

    /// Adds `delay` to every packet the node on `port` (default: the lowest master) sends and every packet sent
    /// to its ports (`tc netem`), and drops `loss_percent` of them at random (`iptables -m statistic`).
    pub async fn slow(&self, port: Option<u16>, delay: Duration, loss_percent: f64) -> Result<FaultStart> {
        if !(0.0..=100.0).contains(&loss_percent) {
            bail!(Refused, "a loss of {loss_percent}% is not a percentage (0 to 100)");
        }
        if delay.is_zero() && loss_percent == 0.0 {
            bail!(Refused, "nothing to slow down: give a delay or a loss");
        }
        if delay > Duration::from_secs(10) {
            bail!(
                Refused,
                "a delay over 10 s ({} ms) would only look like a dead node",
                delay.as_millis()
            );
        }
        let (node, fault) = guards::fault_target(self, port, "slow down").await?;
        let tools = build::ensure_tools(self.docker()).await?;
        let (namespace, rules) = match self.identity().networking {
            Networking::Pod => (self.pod_namespace()?, pod_slow(fault.port, delay, loss_percent)),
            Networking::Bridge => (node.id.clone(), bridge_slow(delay, loss_percent)),
        };
        // The tc part first: where the kernel has no netem it exits before any chain is made, leaving nothing.
        let (tc, iptables) = rules;
        let script = format!("{}\n{SETUP}{}", tc.join("\n"), iptables.join("\n"));
        self.run_tools(&tools, &namespace, &script).await?;
        tracing::info!(
            "fault: node {} slowed: +{} ms per packet each way, {loss_percent}% lost",
            fault.port,
            delay.as_millis()
        );
        Ok(FaultStart {
            at: Instant::now(),
            ..fault
        })
    }

    /// Removes every cut and every slow link of the cluster, then waits until it is ready again. Refuses when
    /// there is nothing to heal.
    pub async fn heal(&self) -> Result<HealReport> {
        let namespaces = self.fault_namespaces().await?;
        let tools = build::ensure_tools(self.docker()).await?;
        let healed = try_join_all(namespaces.iter().map(|ns| self.run_tools(&tools, ns, HEAL))).await?;
        let count = healed.iter().filter(|out| out.contains("healed=1")).count();
        if count == 0 {
            bail!(
                Refused,
                "cluster `{}` has no partition and no slow link; nothing to heal",
                self.identity().name
            );
        }
        let start = Instant::now();
        tracing::info!("healed: every rule removed; waiting for the cluster to be ready");
        self.wait_ready(
            crate::server::ready::Shape::Any,
            self.identity().step_timeout(self.nodes().await?.len()),
        )
        .await
        .map_err(|e| e.context("after heal"))?;
        Ok(HealReport {
            namespaces: count,
            ready_after: start.elapsed(),
        })
    }

    /// Removes every fault rule, without waiting for the cluster: for clean-up (also of a cluster about to be
    /// removed). Returns how many namespaces held rules.
    pub async fn remove_fault_rules(&self) -> Result<usize> {
        let namespaces = self.fault_namespaces().await?;
        let tools = build::ensure_tools(self.docker()).await?;
        let healed = try_join_all(namespaces.iter().map(|ns| self.run_tools(&tools, ns, HEAL))).await?;
        Ok(healed.iter().filter(|out| out.contains("healed=1")).count())
    }

    /// Waits up to `within` for the node on `port` to say `cluster_state:fail` (it then refuses writes with
    /// CLUSTERDOWN) and returns the time since `since`; `None` if it still accepted them at the end.
    pub async fn wait_refuses_writes(&self, port: u16, since: Instant, within: Duration) -> Result<Option<Duration>> {
        let addr = self.addr(port).await?;
        let refused = wait::until(&format!("node {port} to refuse writes"), within, || async {
            let view = self.pool().view(addr).await?;
            if view.info.state_ok() {
                not_yet!("node {port} still says cluster_state:ok");
            }
            Ok(since.elapsed())
        })
        .await;
        match refused {
            Ok(after) => Ok(Some(after)),
            Err(e) if e.kind() == ErrorKind::Timeout => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The containers whose network namespaces may hold rules: the pod's holder, or every running node.
    async fn fault_namespaces(&self) -> Result<Vec<String>> {
        Ok(match self.identity().networking {
            Networking::Pod => vec![self.pod_namespace()?],
            Networking::Bridge => self
                .nodes()
                .await?
                .into_iter()
                .filter(|n| n.state == "running")
                .map(|n: Node| n.id)
                .collect(),
        })
    }

    fn pod_namespace(&self) -> Result<String> {
        match self.attachment() {
            Attachment::Pod { holder, .. } => Ok(holder.clone()),
            Attachment::Bridge { .. } => Err(Error::refused("a bridge cluster has no pod")),
        }
    }

    /// Runs `script` (busybox sh) with NET_ADMIN in the network namespace of container `namespace`; returns its
    /// output. A fenced pod's holder already runs the tools image so, there, it is an exec in the holder (tens of
    /// milliseconds); elsewhere it is a container of the tools image that joins the namespace, labelled with the
    /// cluster, so removing the cluster removes it too if this is cut short.
    async fn run_tools(&self, tools: &str, namespace: &str, script: &str) -> Result<String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static RUNS: AtomicU32 = AtomicU32::new(0);
        self.note_fault_rules();
        let (code, output) = if let Attachment::Pod {
            holder, fenced: true, ..
        } = self.attachment()
            && holder == namespace
        {
            let cmd = ["/bin/busybox", "sh", "-c", script].map(String::from);
            tokio::time::timeout(TOOLS_TIMEOUT, self.docker().exec(holder, &cmd))
                .await
                .map_err(|_| {
                    Error::timeout(format!(
                        "the fault tools in cluster `{}`'s pod did not finish within {} s",
                        self.identity().name,
                        TOOLS_TIMEOUT.as_secs()
                    ))
                })??
        } else {
            self.run_tools_container(tools, namespace, script, RUNS.fetch_add(1, Ordering::Relaxed))
                .await?
        };
        match code {
            0 => Ok(output),
            NO_NETEM => bail!(
                Refused,
                "this machine's kernel has no netem queueing discipline (sch_netem, CONFIG_NET_SCH_NETEM), so a \
                 delay cannot be added here; a loss works without it ({})",
                output.trim()
            ),
            _ => bail!(Other, "the fault tools failed ({code}): {}", output.trim()),
        }
    }

    /// Runs `script` in a new container of the tools image in `namespace`'s network namespace (run `n` of this
    /// process, for its name); returns its exit code and output.
    async fn run_tools_container(&self, tools: &str, namespace: &str, script: &str, n: u32) -> Result<(i64, String)> {
        let spec = ContainerSpec {
            name: format!("{}-tools-{}-{}", self.identity().name, std::process::id(), n),
            image: tools.to_owned(),
            network: format!("container:{namespace}"),
            user: Some("0".into()),
            entrypoint: Some(vec!["/bin/busybox".into(), "sh".into(), "-c".into()]),
            args: vec![script.to_owned()],
            labels: self.identity().labels(),
            cap_add: vec!["NET_ADMIN".into()],
            ..Default::default()
        };
        self.docker().run_to_end(&spec, TOOLS_TIMEOUT).await
    }
}

/// The established connections on 127.0.0.1 (both ends, as `(local, peer)` addresses) between a socket of a
/// node of `side` and one of another node, from `ss -tnHe state established` (which names each socket's uid;
/// nodes run as uid = port, root's sockets name none).
fn crossing(listing: &str, side: &[u16]) -> Vec<(String, String)> {
    let sockets: Vec<(&str, &str, Option<u16>)> = listing
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (local, peer) = (*words.get(2)?, *words.get(3)?);
            let uid = words.iter().find_map(|w| w.strip_prefix("uid:")?.parse().ok());
            (local.starts_with("127.0.0.1:") && peer.starts_with("127.0.0.1:")).then_some((local, peer, uid))
        })
        .collect();
    let mut kills = Vec::new();
    for (local, peer, uid) in &sockets {
        let other = sockets
            .iter()
            .find(|(l, p, _)| l == peer && p == local)
            .and_then(|s| s.2);
        if let (Some(a), Some(b)) = (uid, other)
            && side.contains(a) != side.contains(&b)
        {
            kills.push((local.to_string(), peer.to_string()));
        }
    }
    kills
}

fn ports(ports: &[u16]) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

/// Rules that cut every node of `side` from every node of `rest` inside a pod, and the host's clients from
/// `cut_clients`.
fn pod_partition(side: &[u16], rest: &[u16], cut_clients: &[u16]) -> Vec<String> {
    let mut rules = Vec::new();
    for a in side {
        for b in rest {
            for (from, to) in [(a, b), (b, a)] {
                rules.push(format!(
                    "{IPT} -A CLUSTER_TESTS_OUT -o lo -p tcp -m owner --uid-owner {from} -m multiport --dports {to},{} -j DROP",
                    u32::from(*to) + 10000
                ));
            }
        }
    }
    for p in cut_clients {
        rules.push(format!("{IPT} -A CLUSTER_TESTS_IN ! -i lo -p tcp --dport {p} -j DROP"));
    }
    rules
}

/// Rules, in one node's own namespace, that cut it from the addresses `others` (and from everyone on its
/// `client_port`, if given).
fn bridge_partition(others: &[String], client_port: Option<u16>) -> Vec<String> {
    let mut rules: Vec<String> = others
        .iter()
        .flat_map(|ip| {
            [
                format!("{IPT} -A CLUSTER_TESTS_OUT -d {ip} -j DROP"),
                format!("{IPT} -A CLUSTER_TESTS_IN -s {ip} -j DROP"),
            ]
        })
        .collect();
    if let Some(p) = client_port {
        rules.push(format!("{IPT} -A CLUSTER_TESTS_IN -p tcp --dport {p} -j DROP"));
    }
    rules
}

/// The `tc` commands that put a netem `delay` on the packets marked `mark` on device `dev` (root: an htb whose
/// default class passes everything else); exit [`NO_NETEM`] leaving nothing behind if the kernel lacks netem.
fn netem_delay(dev: &str, mark: Option<u16>, delay: Duration) -> Vec<String> {
    let ms = delay.as_millis();
    match mark {
        None => vec![format!(
            "{TC} qdisc add dev {dev} root netem delay {ms}ms 2>&1 || exit {NO_NETEM}"
        )],
        Some(mark) => {
            let class = format!("{mark:x}");
            vec![
                format!(
                    "created=0; {TC} qdisc show dev {dev} | grep -q 'htb 1:' || {{ {TC} qdisc add dev {dev} root \
                     handle 1: htb default 1 r2q 100000 && {TC} class add dev {dev} parent 1: classid 1:1 htb rate 10gbit; \
                     created=1; }}"
                ),
                format!("{TC} class add dev {dev} parent 1: classid 1:{class} htb rate 10gbit"),
                format!(
                    "{TC} qdisc add dev {dev} parent 1:{class} handle {class}: netem delay {ms}ms 2>&1 || {{ \
                     if [ $created = 1 ]; then {TC} qdisc del dev {dev} root; else {TC} class del dev {dev} classid \
                     1:{class}; fi; exit {NO_NETEM}; }}"
                ),
                format!(
                    "{TC} filter add dev {dev} parent 1: protocol ip prio 1 u32 match mark {mark} 0xffff flowid 1:{class}"
                ),
            ]
        }
    }
}

/// Delay and loss for the node on `port` inside a pod, as `tc` and `iptables` commands: its own packets are
/// found by uid, those sent to it by port.
fn pod_slow(port: u16, delay: Duration, loss_percent: f64) -> (Vec<String>, Vec<String>) {
    let bus = u32::from(port) + 10000;
    let (mut tc, mut rules) = (Vec::new(), Vec::new());
    if !delay.is_zero() {
        tc.extend(netem_delay("lo", Some(port), delay));
        rules.push(format!(
            "{IPT} -t mangle -A CLUSTER_TESTS_OUT -o lo -m owner --uid-owner {port} -j MARK --set-mark {port}"
        ));
        rules.push(format!(
            "{IPT} -t mangle -A CLUSTER_TESTS_OUT -o lo -p tcp -m multiport --dports {port},{bus} -j MARK --set-mark {port}"
        ));
    }
    if loss_percent > 0.0 {
        let p = loss_percent / 100.0;
        rules.push(format!(
            "{IPT} -A CLUSTER_TESTS_OUT -m owner --uid-owner {port} -m statistic --mode random --probability {p} -j DROP"
        ));
        rules.push(format!(
            "{IPT} -A CLUSTER_TESTS_IN -p tcp -m multiport --dports {port},{bus} -m statistic --mode random --probability {p} -j DROP"
        ));
    }
    (tc, rules)
}

/// Delay and loss on a node's own namespace (bridge networking): all of its traffic.
fn bridge_slow(delay: Duration, loss_percent: f64) -> (Vec<String>, Vec<String>) {
    let (mut tc, mut rules) = (Vec::new(), Vec::new());
    if !delay.is_zero() {
        tc.extend(netem_delay("eth0", None, delay));
    }
    if loss_percent > 0.0 {
        let p = loss_percent / 100.0;
        for chain in ["OUT", "IN"] {
            rules.push(format!(
                "{IPT} -A CLUSTER_TESTS_{chain} -m statistic --mode random --probability {p} -j DROP"
            ));
        }
    }
    (tc, rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_cut_drops_both_directions_by_uid_and_port() {
        let rules = pod_partition(&[7001], &[7002, 7003], &[]);
        assert_eq!(rules.len(), 4);
        assert!(rules[0].contains("--uid-owner 7001 -m multiport --dports 7002,17002 -j DROP"));
        assert!(rules[1].contains("--uid-owner 7002 -m multiport --dports 7001,17001 -j DROP"));
        assert!(
            rules.iter().all(|r| r.contains("-o lo")),
            "host clients come in on eth0"
        );
        let cut = pod_partition(&[7001], &[7002], &[7001]);
        assert!(
            cut.last()
                .unwrap()
                .contains("CLUSTER_TESTS_IN ! -i lo -p tcp --dport 7001 -j DROP")
        );
    }

    #[test]
    fn only_connections_across_the_cut_are_killed() {
        let listing = "0 0 127.0.0.1:40001 127.0.0.1:17002 uid:7001 ino:1 sk:1\n\
                       0 0 127.0.0.1:17002 127.0.0.1:40001 uid:7002 ino:2 sk:2\n\
                       0 0 127.0.0.1:40002 127.0.0.1:17003 uid:7002 ino:3 sk:3\n\
                       0 0 127.0.0.1:17003 127.0.0.1:40002 uid:7003 ino:4 sk:4\n\
                       0 0 172.17.0.2:7001 172.17.0.1:50000 uid:7001 ino:5 sk:5\n";
        let kills = crossing(listing, &[7001]);
        assert_eq!(
            kills,
            [
                ("127.0.0.1:40001".to_owned(), "127.0.0.1:17002".to_owned()),
                ("127.0.0.1:17002".to_owned(), "127.0.0.1:40001".to_owned())
            ]
        );
    }

    #[test]
    fn slow_links_mark_a_pod_node_both_ways_and_drop_at_random() {
        let (tc, iptables) = pod_slow(7001, Duration::from_millis(50), 10.0);
        let rules = format!("{}\n{}", tc.join("\n"), iptables.join("\n"));
        assert!(rules.contains("netem delay 50ms"));
        assert!(rules.contains("match mark 7001 0xffff flowid 1:1b59"));
        assert!(rules.contains("--uid-owner 7001 -j MARK --set-mark 7001"));
        assert!(rules.contains("--dports 7001,17001 -j MARK --set-mark 7001"));
        assert!(rules.contains("--probability 0.1 -j DROP"));
        assert!(pod_slow(7001, Duration::ZERO, 10.0).0.is_empty(), "no delay, no tc");
    }
}
