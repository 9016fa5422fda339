//! `CLUSTER NODES`: every node as one node sees it, with its role, link, slots and migration markers.

use std::net::SocketAddr;

use super::{SLOTS, SlotRange, parse_slot_range};
use crate::{Error, Result};

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Serves slots.
    Master,
    /// Replicates a master.
    Replica,
    /// Neither flag is set (e.g. a node still in handshake).
    Unknown,
}

/// State of the cluster-bus link as the reporting node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// The link is up.
    Connected,
    /// The link is down.
    Disconnected,
}

/// The ports of these nodes, comma-separated (nodes without address are left out).
pub fn format_ports(nodes: &[&NodeEntry]) -> String {
    nodes
        .iter()
        .filter_map(|n| n.port())
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of `CLUSTER NODES`: one node as the reporting node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// 40-character node id.
    pub id: String,
    /// Client address; `None` while unknown (`noaddr`, handshake without address).
    pub addr: Option<SocketAddr>,
    /// Announced hostname (Redis 7+), if any.
    pub hostname: Option<String>,
    /// Flags as printed (`myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, ...).
    pub flags: Vec<String>,
    /// Master or replica.
    pub role: Role,
    /// Id of the master this node replicates, for replicas.
    pub master_id: Option<String>,
    /// Configuration epoch.
    pub config_epoch: u64,
    /// State of the bus link to this node.
    pub link: LinkState,
    /// Slots served (only for masters; the migration markers go into `migrating` and `importing`).
    pub slots: Vec<SlotRange>,
    /// Slots this node is moving out, each with the id of the node they go to (`[slot->-id]`; a node prints
    /// these on its own line only).
    pub migrating: Vec<(u16, String)>,
    /// Slots this node is taking in, each with the id of the node they come from (`[slot-<-id]`; own line only).
    pub importing: Vec<(u16, String)>,
}

impl NodeEntry {
    /// Whether the line has this flag.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether this line describes the reporting node itself.
    pub fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }

    /// Whether the node is marked failing (`fail`) or suspected (`fail?`).
    pub fn is_failing(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?")
    }

    /// Whether the node is confirmed failed by the cluster (`fail`).
    pub fn is_failed(&self) -> bool {
        self.has_flag("fail")
    }

    /// Whether the node is still being met.
    pub fn in_handshake(&self) -> bool {
        self.has_flag("handshake")
    }

    /// Client port, if the address is known.
    pub fn port(&self) -> Option<u16> {
        self.addr.map(|a| a.port())
    }

    /// Number of slots served.
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(SlotRange::len).sum()
    }
}

/// The parsed output of `CLUSTER NODES`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterNodes {
    /// One entry per known node, in the order printed.
    pub nodes: Vec<NodeEntry>,
}

impl ClusterNodes {
    /// Parses `CLUSTER NODES` output.
    pub fn parse(text: &str) -> Result<Self> {
        let nodes = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| parse_node_line(line).map_err(|e| e.context(format!("CLUSTER NODES line `{line}`"))))
            .collect::<Result<_>>()?;
        Ok(Self { nodes })
    }

    /// The reporting node's own entry.
    pub fn myself(&self) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.is_myself())
    }

    /// The entry with this node id.
    pub fn get(&self, id: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The entry with this client port. A live entry wins over a failed one: a joined node may reuse a failed
    /// node's address, and the failed node's entry can keep that address for a while (seen on Valkey 8.1).
    pub fn by_port(&self, port: u16) -> Option<&NodeEntry> {
        self.nodes
            .iter()
            .filter(|n| n.port() == Some(port))
            .min_by_key(|n| n.is_failing())
    }

    /// Masters with an address that are not marked failed nor suspected (`fail?`), sorted by port.
    pub fn live_masters(&self) -> Vec<&NodeEntry> {
        let mut masters: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.role == Role::Master && !n.is_failing() && n.addr.is_some())
            .collect();
        masters.sort_by_key(|n| n.port());
        masters
    }

    /// Ports of the [live masters](Self::live_masters), sorted.
    pub fn master_ports(&self) -> Vec<u16> {
        self.live_masters().iter().filter_map(|m| m.port()).collect()
    }

    /// Replicas of the master with this id that are not marked failed nor suspected (`fail?`), sorted by port.
    pub fn replicas_of(&self, master_id: &str) -> Vec<&NodeEntry> {
        let mut replicas: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.role == Role::Replica && n.master_id.as_deref() == Some(master_id) && !n.is_failing())
            .collect();
        replicas.sort_by_key(|n| n.port());
        replicas
    }

    /// The master serving `slot`, if any.
    pub fn owner_of(&self, slot: u16) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.slots.iter().any(|r| r.contains(slot)))
    }

    /// Every served slot range with the id of its master, sorted by start.
    pub fn slot_map(&self) -> Vec<(SlotRange, &str)> {
        let mut map: Vec<_> = self
            .nodes
            .iter()
            .flat_map(|n| n.slots.iter().map(move |r| (*r, n.id.as_str())))
            .collect();
        map.sort();
        map
    }

    /// Checks that the served ranges cover 0..=16383 exactly once; says what is missing or doubled if not.
    pub fn check_slot_coverage(&self) -> Result<()> {
        let mut next = 0u32;
        for (range, id) in self.slot_map() {
            let start = u32::from(range.start);
            if start < next {
                return Err(Error::refused(format!(
                    "slot range {range} of {id} overlaps an earlier range"
                )));
            }
            if start > next {
                return Err(Error::refused(format!("slots {next}-{} are not served", start - 1)));
            }
            next = u32::from(range.end) + 1;
        }
        if next != u32::from(SLOTS) {
            return Err(Error::refused(format!("slots {next}-{} are not served", SLOTS - 1)));
        }
        Ok(())
    }
}

fn parse_node_line(line: &str) -> Result<NodeEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return Err(Error::redis(format!(
            "expected at least 8 fields, got {}",
            fields.len()
        )));
    }
    let (addr, hostname) = parse_address(fields[1]);
    let flags: Vec<String> = fields[2]
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let has = |f: &str| flags.iter().any(|x| x == f);
    let role = if has("master") {
        Role::Master
    } else if has("slave") || has("replica") {
        Role::Replica
    } else {
        Role::Unknown
    };
    let master_id = match fields[3] {
        "-" | "" => None,
        id => Some(id.to_owned()),
    };
    let config_epoch = fields[6]
        .parse()
        .map_err(|_| Error::redis(format!("bad config epoch `{}`", fields[6])))?;
    let link = if fields[7] == "connected" {
        LinkState::Connected
    } else {
        LinkState::Disconnected
    };
    let slots = fields[8..]
        .iter()
        .filter(|f| !f.starts_with('['))
        .map(|f| parse_slot_range(f))
        .collect::<Result<_>>()?;
    let (mut migrating, mut importing) = (Vec::new(), Vec::new());
    for marker in fields[8..].iter().filter(|f| f.starts_with('[')) {
        let bad = || Error::redis(format!("bad migration marker `{marker}`"));
        let inner = marker.trim_start_matches('[').trim_end_matches(']');
        let (list, slot, peer) = if let Some((slot, peer)) = inner.split_once("->-") {
            (&mut migrating, slot, peer)
        } else if let Some((slot, peer)) = inner.split_once("-<-") {
            (&mut importing, slot, peer)
        } else {
            return Err(bad());
        };
        let slot: u16 = slot.parse().ok().filter(|s| *s < SLOTS).ok_or_else(bad)?;
        list.push((slot, peer.to_owned()));
    }
    Ok(NodeEntry {
        id: fields[0].to_owned(),
        addr,
        hostname,
        flags,
        role,
        master_id,
        config_epoch,
        link,
        slots,
        migrating,
        importing,
    })
}

/// Parses `ip:port@cport[,hostname]`; IPv6 addresses contain colons, so the port is after the last one.
fn parse_address(field: &str) -> (Option<SocketAddr>, Option<String>) {
    let (addr, hostname) = match field.split_once(',') {
        Some((a, h)) => (a, (!h.is_empty()).then(|| h.to_owned())),
        None => (field, None),
    };
    let client = addr.split('@').next().unwrap_or_default();
    let parsed = client.rsplit_once(':').and_then(|(ip, port)| {
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok()?;
        if port == 0 || ip.is_empty() {
            return None;
        }
        Some(SocketAddr::new(ip.parse().ok()?, port))
    });
    (parsed, hostname)
}
