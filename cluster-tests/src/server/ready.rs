//! What "ready" means, checked against every live node's own view of the cluster.
//!
//! Ready: every live node answers and says `cluster_state:ok` with all 16384 slots assigned and ok; every live
//! node sees every other live node (no handshake, no failure flag, bus link connected) and they all agree on
//! each node's role, master and slots; nodes that are gone are marked failed by everyone; and every replica's
//! link to its master is up with the first sync done, which its master confirms (`state=online`); and what clients
//! discover is complete: every node's `CLUSTER SLOTS` lists every replica, and its `CLUSTER SHARDS` (where the server
//! has it) says every live node is `online` (Redis 7.0+ hides a replica, or calls it `loading`, until its
//! replication offset is non-zero).

use std::collections::BTreeSet;

use crate::server::node::NodeView;
use crate::server::topology::{NodeEntry, Role, SLOTS, format_ranges};
use crate::{Error, Result, bail};

/// The shape a ready cluster must have, beyond being consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly this many masters serving slots, each with exactly this many replicas.
    Exact {
        /// Masters serving slots.
        masters: usize,
        /// Replicas per master.
        replicas_per_master: usize,
    },
    /// Any shape (e.g. after a failover left a master without replica).
    Any,
}

/// Checks the views of all live nodes; the error names the first thing that is not ready yet.
pub fn confirm_ready(views: &[NodeView], shape: Shape) -> Result<()> {
    if views.is_empty() {
        bail!(Refused, "no live node");
    }
    let mut live = BTreeSet::new();
    for v in views {
        let me = v
            .nodes
            .myself()
            .ok_or_else(|| Error::redis(format!("{}: no `myself` line", v.addr)))?;
        live.insert(me.id.as_str());
        let info = &v.info;
        if !info.state_ok() || info.slots_assigned() != u64::from(SLOTS) || info.slots_ok() != u64::from(SLOTS) {
            bail!(
                Refused,
                "{}: cluster_state:{} with {} slots assigned, {} ok",
                v.addr,
                info.0.get("cluster_state").unwrap_or("?"),
                info.slots_assigned(),
                info.slots_ok()
            );
        }
    }
    for v in views {
        for entry in &v.nodes.nodes {
            if live.contains(entry.id.as_str()) {
                if entry.in_handshake() || entry.is_failing() {
                    bail!(
                        Refused,
                        "{} sees {} as {}",
                        v.addr,
                        describe(entry),
                        entry.flags.join(",")
                    );
                }
                if !entry.is_myself() && entry.link != crate::server::topology::LinkState::Connected {
                    bail!(Refused, "{}: bus link to {} is down", v.addr, describe(entry));
                }
            } else if !entry.in_handshake() && !entry.is_failed() && !entry.has_flag("noaddr") {
                bail!(
                    Refused,
                    "{} does not yet mark the gone node {} as failed",
                    v.addr,
                    describe(entry)
                );
            }
        }
        for id in &live {
            if v.nodes.get(id).is_none() {
                // Which node that is, and how many know it: a node known to none but itself came back under a
                // new id.
                let of = views.iter().find(|o| o.nodes.myself().is_some_and(|me| me.id == *id));
                let known_by = views.iter().filter(|o| o.nodes.get(id).is_some()).count();
                bail!(
                    Refused,
                    "{} does not know node {id} ({}, known to {known_by} of {} live nodes counting itself) yet",
                    v.addr,
                    of.map_or_else(|| "?".to_owned(), |o| o.addr.to_string()),
                    views.len()
                );
            }
        }
    }
    for owner in views {
        let me = owner.nodes.myself().expect("checked above");
        for v in views {
            let seen = v.nodes.get(&me.id).expect("checked above");
            if (seen.role, &seen.master_id, &seen.slots) != (me.role, &me.master_id, &me.slots) {
                bail!(
                    Refused,
                    "{} sees {} differently from how it sees itself: {} against {}",
                    v.addr,
                    describe(me),
                    standing(seen),
                    standing(me)
                );
            }
        }
    }
    for v in views {
        let me = v.nodes.myself().expect("checked above");
        if me.role != Role::Replica {
            continue;
        }
        if !v.replication.replica_synced() {
            bail!(
                Refused,
                "{}: replication link to its master not up and synced yet",
                v.addr
            );
        }
        let master_id = me.master_id.as_deref().unwrap_or("-");
        let master = views
            .iter()
            .find(|m| m.nodes.myself().is_some_and(|n| n.id == master_id))
            .ok_or_else(|| Error::refused(format!("{}: its master {master_id} is not a live node", v.addr)))?;
        let port = v.addr.port();
        if !master
            .replication
            .replicas
            .iter()
            .any(|r| r.port == port && r.state == "online")
        {
            bail!(
                Refused,
                "{}: master {} does not list it as an online replica yet",
                v.addr,
                master.addr
            );
        }
    }
    check_discovery(views, &live)?;
    check_shape(views, shape)
}

/// Every node offers clients every live replica of a master that serves slots (`CLUSTER SLOTS` lists slots, so
/// a replica of an empty master, e.g. one being drained, has no place there) and calls every live node online
/// (`SHARDS`).
fn check_discovery(views: &[NodeView], live: &BTreeSet<&str>) -> Result<()> {
    let serving: BTreeSet<&str> = views
        .iter()
        .filter_map(|v| v.nodes.myself())
        .filter(|me| !me.slots.is_empty())
        .map(|me| me.id.as_str())
        .collect();
    let replicas: Vec<&str> = views
        .iter()
        .filter_map(|v| v.nodes.myself())
        .filter(|me| me.role == Role::Replica && me.master_id.as_deref().is_some_and(|m| serving.contains(m)))
        .map(|me| me.id.as_str())
        .collect();
    for v in views {
        let listed = v.slots.replica_ids();
        if let Some(id) = replicas.iter().find(|id| !listed.contains(**id)) {
            bail!(
                Refused,
                "{}: CLUSTER SLOTS does not offer replica {} to clients yet",
                v.addr,
                short(id)
            );
        }
        let Some(shards) = &v.shards else { continue };
        for id in live {
            match shards.nodes().find(|n| n.id == *id) {
                None => bail!(
                    Refused,
                    "{}: CLUSTER SHARDS does not list node {} yet",
                    v.addr,
                    short(id)
                ),
                Some(n) if n.health != "online" => {
                    bail!(
                        Refused,
                        "{}: CLUSTER SHARDS says node {} is {}",
                        v.addr,
                        short(id),
                        n.health
                    )
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn check_shape(views: &[NodeView], shape: Shape) -> Result<()> {
    let Shape::Exact {
        masters,
        replicas_per_master,
    } = shape
    else {
        return Ok(());
    };
    let topology = &views[0].nodes;
    let serving: Vec<&NodeEntry> = topology
        .live_masters()
        .into_iter()
        .filter(|m| !m.slots.is_empty())
        .collect();
    if serving.len() != masters {
        bail!(Refused, "{} masters serve slots, expected {masters}", serving.len());
    }
    for m in serving {
        let n = topology.replicas_of(&m.id).len();
        if n != replicas_per_master {
            bail!(
                Refused,
                "master {} has {n} replicas, expected {replicas_per_master}",
                describe(m)
            );
        }
    }
    Ok(())
}

/// A node's role, master and slots as an entry shows them: `master of slots [0-5460]`, `replica of 1a2b3c4d`.
fn standing(entry: &NodeEntry) -> String {
    let master = entry.master_id.as_deref().map_or("none", short);
    match entry.role {
        Role::Master => format!("master of slots [{}]", format_ranges(&entry.slots)),
        Role::Replica => format!("replica of {master}"),
        Role::Unknown => format!("neither master nor replica (master {master})"),
    }
}

fn describe(entry: &NodeEntry) -> String {
    match entry.addr {
        Some(addr) => format!("{addr} ({})", short(&entry.id)),
        None => entry.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::server::topology::{
        ClusterInfo, ClusterNodes, ClusterShards, ClusterSlots, Endpoint, ReplicationInfo, ShardNode, SlotsEntry,
    };

    /// Real `CLUSTER NODES` of healthy 3 x 1 clusters, one per wording (`slave` in Redis, Valkey's own build).
    const NODES: [&str; 2] = [
        include_str!("../../fixtures/redis-7.0.cluster-nodes.txt"),
        include_str!("../../fixtures/valkey-9.1.cluster-nodes.txt"),
    ];
    const INFO: &str = include_str!("../../fixtures/redis-7.0.cluster-info.txt");
    const EXACT: Shape = Shape::Exact {
        masters: 3,
        replicas_per_master: 1,
    };

    /// `CLUSTER NODES` as the node on line `me` prints it: the captured text with `myself` moved to that line.
    fn nodes_seen_by(text: &str, me: usize) -> String {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                let mut fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                let flags = fields[2].replace("myself,", "");
                fields[2] = if i == me { format!("myself,{flags}") } else { flags };
                fields.join(" ") + "\n"
            })
            .collect()
    }

    /// Every node's view of the healthy cluster in `text`, with `INFO replication` as synced servers print it.
    fn healthy(text: &str) -> Vec<NodeView> {
        let all = ClusterNodes::parse(text).unwrap();
        (0..all.nodes.len())
            .map(|i| {
                let nodes = ClusterNodes::parse(&nodes_seen_by(text, i)).unwrap();
                let me = nodes.myself().unwrap().clone();
                let replication = match me.role {
                    Role::Replica => "role:slave\nmaster_link_status:up\nmaster_sync_in_progress:0\n".to_owned(),
                    _ => all
                        .replicas_of(&me.id)
                        .iter()
                        .enumerate()
                        .map(|(k, r)| format!("slave{k}:ip=x,port={},state=online,offset=0,lag=0\n", r.port().unwrap()))
                        .fold("role:master\n".to_owned(), |acc, line| acc + &line),
                };
                NodeView {
                    addr: me.addr.unwrap(),
                    info: ClusterInfo::parse(INFO),
                    nodes,
                    replication: ReplicationInfo::parse(&replication),
                    slots: slots_of(&all),
                    shards: Some(shards_of(&all)),
                }
            })
            .collect()
    }

    fn endpoint(n: &NodeEntry) -> Endpoint {
        let addr = n.addr.unwrap();
        Endpoint {
            host: addr.ip().to_string(),
            port: addr.port(),
            id: Some(n.id.clone()),
        }
    }

    /// `CLUSTER SLOTS` of a cluster whose replicas all have a non-zero offset.
    fn slots_of(all: &ClusterNodes) -> ClusterSlots {
        let entries = all.live_masters().into_iter().flat_map(|m| {
            m.slots.iter().map(|range| SlotsEntry {
                range: *range,
                master: endpoint(m),
                replicas: all.replicas_of(&m.id).into_iter().map(endpoint).collect(),
            })
        });
        ClusterSlots(entries.collect())
    }

    /// `CLUSTER SHARDS` with every node online.
    fn shards_of(all: &ClusterNodes) -> ClusterShards {
        let node = |n: &NodeEntry| ShardNode {
            id: n.id.clone(),
            ip: Some(n.addr.unwrap().ip().to_string()),
            endpoint: Some(n.addr.unwrap().ip().to_string()),
            port: n.port(),
            role: n.role,
            health: "online".into(),
        };
        let shards = all.live_masters().into_iter().map(|m| {
            std::iter::once(node(m))
                .chain(all.replicas_of(&m.id).into_iter().map(node))
                .collect()
        });
        ClusterShards(shards.collect())
    }

    fn view_of(views: &mut [NodeView], port: u16) -> &mut NodeView {
        views.iter_mut().find(|v| v.addr.port() == port).unwrap()
    }

    fn not_ready(views: &[NodeView], shape: Shape) -> String {
        confirm_ready(views, shape).unwrap_err().to_string()
    }

    #[test]
    fn a_node_seen_differently_is_not_ready_and_both_sides_are_said() {
        // 7001 still sees 7004 as a master without slots, while 7004 knows it replicates 7001.
        let mut views = healthy(NODES[0]);
        let seen = view_of(&mut views, 7001)
            .nodes
            .nodes
            .iter_mut()
            .find(|n| n.port() == Some(7004))
            .unwrap();
        seen.role = Role::Master;
        seen.master_id = None;
        let err = not_ready(&views, EXACT);
        assert!(
            err.contains(":7001 sees ")
                && err.ends_with("differently from how it sees itself: master of slots [] against replica of 5bb7109e"),
            "{err}"
        );
    }

    #[test]
    fn a_replica_clients_cannot_discover_yet_is_not_ready() {
        // Redis 7.0 leaves a replica with replication offset 0 out of CLUSTER SLOTS...
        let mut views = healthy(NODES[0]);
        for entry in &mut view_of(&mut views, 7002).slots.0 {
            entry.replicas.retain(|r| r.port != 7006);
        }
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains(":7002: CLUSTER SLOTS does not offer replica"), "{err}");
        // ...and calls it `loading` in CLUSTER SHARDS.
        let mut views = healthy(NODES[1]);
        let shards = view_of(&mut views, 7003).shards.as_mut().unwrap();
        let replica = shards.0.iter_mut().flatten().find(|n| n.role == Role::Replica).unwrap();
        replica.health = "loading".into();
        let err = not_ready(&views, Shape::Any);
        assert!(
            err.contains(":7003: CLUSTER SHARDS says node") && err.ends_with("is loading"),
            "{err}"
        );
        // A server without CLUSTER SHARDS (Redis 6.0) is judged on CLUSTER SLOTS alone.
        let mut views = healthy(NODES[0]);
        views.iter_mut().for_each(|v| v.shards = None);
        confirm_ready(&views, EXACT).unwrap();
    }

    #[test]
    fn a_replica_of_a_master_without_slots_need_not_be_offered() {
        // 7001 was drained: no node lists its slots, so CLUSTER SLOTS cannot offer its replica 7004.
        let mut views = healthy(NODES[0]);
        for v in &mut views {
            v.nodes
                .nodes
                .iter_mut()
                .filter(|n| n.port() == Some(7001))
                .for_each(|n| n.slots.clear());
            v.slots.0.retain(|entry| entry.master.port != 7001);
        }
        confirm_ready(&views, Shape::Any).unwrap();
        // A replica of a master serving slots still must be.
        let entry = view_of(&mut views, 7003)
            .slots
            .0
            .iter_mut()
            .find(|e| e.master.port == 7002)
            .unwrap();
        entry.replicas.clear();
        assert!(not_ready(&views, Shape::Any).contains(":7003: CLUSTER SLOTS does not offer replica"));
    }

    #[test]
    fn a_healthy_cluster_is_ready_in_its_shape_only() {
        for text in NODES {
            let views = healthy(text);
            assert_eq!(views.len(), 6);
            confirm_ready(&views, EXACT).unwrap();
            confirm_ready(&views, Shape::Any).unwrap();
            let wrong = Shape::Exact {
                masters: 3,
                replicas_per_master: 2,
            };
            assert!(not_ready(&views, wrong).contains("expected 2"));
        }
    }

    #[test]
    fn a_node_not_yet_ok_is_named() {
        let mut views = healthy(NODES[0]);
        view_of(&mut views, 7002).info = ClusterInfo::parse(&INFO.replace("cluster_state:ok", "cluster_state:fail"));
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains(":7002: cluster_state:fail"), "{err}");
    }

    #[test]
    fn a_replica_still_syncing_or_not_yet_online_at_its_master_is_not_ready() {
        let mut views = healthy(NODES[0]);
        view_of(&mut views, 7005).replication.sync_in_progress = true;
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains(":7005: replication link to its master not up"), "{err}");

        let mut views = healthy(NODES[0]);
        view_of(&mut views, 7001).replication.replicas[0].state = "wait_bgsave".into();
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains("does not list it as an online replica"), "{err}");
    }

    #[test]
    fn nodes_must_know_each_other_and_agree() {
        // 7003 has not met 7006 yet.
        let mut views = healthy(NODES[0]);
        let line_of_7003 = NODES[0].lines().position(|l| l.contains(":7003@")).unwrap();
        let text: String = nodes_seen_by(NODES[0], line_of_7003)
            .lines()
            .filter(|l| !l.contains(":7006@"))
            .map(|l| l.to_owned() + "\n")
            .collect();
        view_of(&mut views, 7003).nodes = ClusterNodes::parse(&text).unwrap();
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains(":7003 does not know node"), "{err}");

        // 7004 suspects 7002.
        let mut views = healthy(NODES[0]);
        let v = view_of(&mut views, 7004);
        let seen = v.nodes.nodes.iter_mut().find(|n| n.port() == Some(7002)).unwrap();
        seen.flags.push("fail?".into());
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains("as master,fail?"), "{err}");
    }

    #[test]
    fn a_gone_node_must_be_marked_failed_by_everyone() {
        // 7001's container is gone: it has no view, and 7003 does not mark it failed yet.
        let mut views = healthy(NODES[0]);
        let gone: SocketAddr = view_of(&mut views, 7001).addr;
        views.retain(|v| v.addr != gone);
        let err = not_ready(&views, Shape::Any);
        assert!(err.contains("does not yet mark the gone node"), "{err}");
    }
}
