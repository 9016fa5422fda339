//! What "ready" means, checked against every live node's own view of the cluster.
//!
//! Ready: every live node answers and says `cluster_state:ok` with all 16384 slots assigned and ok; every live
//! node sees every other live node (no handshake, no failure flag, bus link connected) and they all agree on
//! each node's role, master and slots; nodes that are gone are marked failed by everyone; and every replica's
//! link to its master is up with the first sync done, which its master confirms (`state=online`).

use std::collections::BTreeSet;

use crate::node::NodeView;
use crate::topology::{NodeEntry, Role, SLOTS};
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
pub fn check(views: &[NodeView], shape: Shape) -> Result<()> {
    if views.is_empty() {
        bail!("no live node");
    }
    let mut live = BTreeSet::new();
    for v in views {
        let me = v
            .nodes
            .myself()
            .ok_or_else(|| Error::new(format!("{}: no `myself` line", v.addr)))?;
        live.insert(me.id.as_str());
        let info = &v.info;
        if !info.state_ok() || info.slots_assigned() != u64::from(SLOTS) || info.slots_ok() != u64::from(SLOTS) {
            bail!(
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
                    bail!("{} sees {} as {}", v.addr, describe(entry), entry.flags.join(","));
                }
                if !entry.is_myself() && entry.link != crate::topology::LinkState::Connected {
                    bail!("{}: bus link to {} is down", v.addr, describe(entry));
                }
            } else if !entry.in_handshake() && !entry.is_failed() && !entry.has_flag("noaddr") {
                bail!(
                    "{} does not yet mark the gone node {} as failed",
                    v.addr,
                    describe(entry)
                );
            }
        }
        for id in &live {
            if v.nodes.get(id).is_none() {
                bail!("{} does not know node {id} yet", v.addr);
            }
        }
    }
    for owner in views {
        let me = owner.nodes.myself().expect("checked above");
        for v in views {
            let seen = v.nodes.get(&me.id).expect("checked above");
            if (seen.role, &seen.master_id, &seen.slots) != (me.role, &me.master_id, &me.slots) {
                bail!("{} sees {} differently from how it sees itself", v.addr, describe(me));
            }
        }
    }
    for v in views {
        let me = v.nodes.myself().expect("checked above");
        if me.role != Role::Replica {
            continue;
        }
        if !v.replication.replica_synced() {
            bail!("{}: replication link to its master not up and synced yet", v.addr);
        }
        let master_id = me.master_id.as_deref().unwrap_or("-");
        let master = views
            .iter()
            .find(|m| m.nodes.myself().is_some_and(|n| n.id == master_id))
            .ok_or_else(|| Error::new(format!("{}: its master {master_id} is not a live node", v.addr)))?;
        let port = v.addr.port();
        if !master
            .replication
            .replicas
            .iter()
            .any(|r| r.port == port && r.state == "online")
        {
            bail!(
                "{}: master {} does not list it as an online replica yet",
                v.addr,
                master.addr
            );
        }
    }
    check_shape(views, shape)
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
        bail!("{} masters serve slots, expected {masters}", serving.len());
    }
    for m in serving {
        let n = topology.replicas_of(&m.id).len();
        if n != replicas_per_master {
            bail!(
                "master {} has {n} replicas, expected {replicas_per_master}",
                describe(m)
            );
        }
    }
    Ok(())
}

fn describe(entry: &NodeEntry) -> String {
    match entry.addr {
        Some(addr) => format!("{addr} ({})", &entry.id[..entry.id.len().min(8)]),
        None => entry.id.clone(),
    }
}
