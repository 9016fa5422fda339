//! The one place that turns server output (`CLUSTER NODES`, `CLUSTER INFO`, `CLUSTER SLOTS`, `CLUSTER SHARDS`,
//! `CLUSTER GETSLOTMIGRATIONS`, `INFO`) into typed values, one file per command; the slot ranges and the reading
//! of RESP replies they share live here.
//!
//! Parsing is lenient: versions differ in wording (`slave` / `replica`), in the address field (Redis 7 adds
//! `,hostname`) and in the keys they print, so unknown fields are kept or skipped, never fatal.

use redis::Value;

use crate::{Error, Result};

mod info;
mod migrations;
mod nodes;
mod shards;
mod slots;

pub use info::*;
pub use migrations::*;
pub use nodes::*;
pub use shards::*;
pub use slots::*;

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// An inclusive range of hash slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
}

impl SlotRange {
    /// Number of slots in the range.
    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    /// Always false: a range holds at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `slot` lies in the range.
    pub fn contains(&self, slot: u16) -> bool {
        (self.start..=self.end).contains(&slot)
    }
}

impl std::fmt::Display for SlotRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl std::str::FromStr for SlotRange {
    type Err = Error;

    /// Parses `A-B` or `A`, within 0-16383.
    fn from_str(text: &str) -> Result<Self> {
        parse_slot_range(text).map_err(|_| {
            Error::refused(format!(
                "slot range `{text}` is not A-B (or one slot) with A <= B within 0-{}",
                SLOTS - 1
            ))
        })
    }
}

pub(super) fn parse_slot_range(field: &str) -> Result<SlotRange> {
    let bad = || Error::redis(format!("bad slot range `{field}`"));
    let (start, end) = field.split_once('-').unwrap_or((field, field));
    let start: u16 = start.parse().map_err(|_| bad())?;
    let end: u16 = end.parse().map_err(|_| bad())?;
    if start > end || end >= SLOTS {
        return Err(bad());
    }
    Ok(SlotRange { start, end })
}

/// Slot ranges as the servers print them, comma-separated: `0-5460,5462`.
pub fn format_ranges(ranges: &[SlotRange]) -> String {
    ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// The elements of an array-like reply.
pub(super) fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// A reply that is text (bulk, simple or verbatim string).
pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// The value under `key` in a RESP3 map or a RESP2 flat `[key, value, ...]` array.
pub(super) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(key))
            .map(|(_, v)| v),
        Value::Array(flat) => flat
            .chunks_exact(2)
            .find(|pair| text(&pair[0]).as_deref() == Some(key))
            .map(|pair| &pair[1]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Real outputs of the servers of the matrix, captured from clusters the CLI made (`playground`).

    use super::*;

    /// The captured outputs of one version.
    struct Outputs {
        version: &'static str,
        nodes: &'static str,
        nodes_after_failover: &'static str,
        nodes_after_join: &'static str,
        info: &'static str,
        replication_master: &'static str,
        replication_replica: &'static str,
        server: &'static str,
    }

    macro_rules! outputs {
        ($v:literal) => {
            Outputs {
                version: $v,
                nodes: include_str!(concat!("../../../fixtures/", $v, ".cluster-nodes.txt")),
                nodes_after_failover: include_str!(concat!(
                    "../../../fixtures/",
                    $v,
                    ".cluster-nodes-after-failover.txt"
                )),
                nodes_after_join: include_str!(concat!("../../../fixtures/", $v, ".cluster-nodes-after-join.txt")),
                info: include_str!(concat!("../../../fixtures/", $v, ".cluster-info.txt")),
                replication_master: include_str!(concat!("../../../fixtures/", $v, ".info-replication-master.txt")),
                replication_replica: include_str!(concat!("../../../fixtures/", $v, ".info-replication-replica.txt")),
                server: include_str!(concat!("../../../fixtures/", $v, ".info-server.txt")),
            }
        };
    }

    fn all() -> [Outputs; 6] {
        [
            outputs!("redis-6.0"),
            outputs!("redis-7.0"),
            outputs!("redis-8.0"),
            outputs!("valkey-8.0"),
            outputs!("valkey-8.1"),
            outputs!("valkey-9.1"),
        ]
    }

    #[test]
    fn cluster_nodes_of_a_new_cluster_parse_into_three_masters_with_one_replica_each() {
        for o in all() {
            let nodes = ClusterNodes::parse(o.nodes).unwrap();
            assert_eq!(nodes.nodes.len(), 6, "{}", o.version);
            assert!(nodes.myself().is_some(), "{}", o.version);
            let masters = nodes.live_masters();
            assert_eq!(masters.len(), 3, "{}", o.version);
            for m in masters {
                assert_eq!(
                    nodes.replicas_of(&m.id).len(),
                    1,
                    "{}: `slave` means replica",
                    o.version
                );
                assert!(m.addr.is_some() && m.link == LinkState::Connected, "{}", o.version);
            }
            nodes.check_slot_coverage().unwrap();
            assert_eq!(
                nodes.owner_of(12182).and_then(NodeEntry::port),
                Some(7003),
                "{}",
                o.version
            );
        }
    }

    #[test]
    fn a_failed_master_is_flagged_and_serves_no_slots() {
        for o in all() {
            let nodes = ClusterNodes::parse(o.nodes_after_failover).unwrap();
            let old = nodes.by_port(7001).unwrap();
            assert!(
                old.is_failed() && old.role == Role::Master && old.slots.is_empty(),
                "{}",
                o.version
            );
            let new = nodes.by_port(7004).unwrap();
            assert_eq!((new.role, new.slot_count()), (Role::Master, 5461), "{}", o.version);
            assert_eq!(nodes.live_masters().len(), 3, "{}", o.version);
            nodes.check_slot_coverage().unwrap();
        }
    }

    #[test]
    fn a_node_joined_on_a_failed_nodes_port_is_told_apart_from_it() {
        for o in all() {
            let nodes = ClusterNodes::parse(o.nodes_after_join).unwrap();
            let gone: Vec<_> = nodes.nodes.iter().filter(|n| n.is_failed()).collect();
            assert_eq!(gone.len(), 1, "{}", o.version);
            // Mostly `:0@0 master,fail,noaddr`; the valkey-8.1 capture shows it still at the reused address.
            assert!(
                (gone[0].has_flag("noaddr") && gone[0].addr.is_none()) || gone[0].port() == Some(7001),
                "{}: {:?}",
                o.version,
                gone[0]
            );
            let joined = nodes.by_port(7001).unwrap();
            assert!(!joined.is_failing(), "{}: by_port prefers the live node", o.version);
            assert_eq!(joined.role, Role::Replica, "{}", o.version);
            assert_eq!(
                joined.master_id.as_deref(),
                nodes.by_port(7004).map(|m| m.id.as_str()),
                "{}",
                o.version
            );
        }
    }

    #[test]
    fn cluster_info_of_every_version_reads_the_same_fields() {
        for o in all() {
            let info = ClusterInfo::parse(o.info);
            assert!(info.state_ok(), "{}", o.version);
            assert_eq!(
                (info.slots_assigned(), info.slots_ok()),
                (16384, 16384),
                "{}",
                o.version
            );
            assert_eq!((info.known_nodes(), info.size()), (6, 3), "{}", o.version);
        }
    }

    #[test]
    fn info_replication_shows_synced_replicas_on_both_sides() {
        for o in all() {
            let master = ReplicationInfo::parse(o.replication_master);
            assert_eq!(master.role, Role::Master, "{}", o.version);
            assert_eq!(master.replicas.len(), 1, "{}", o.version);
            assert_eq!(
                (master.replicas[0].port, master.replicas[0].state.as_str()),
                (7004, "online"),
                "{}",
                o.version
            );
            let replica = ReplicationInfo::parse(o.replication_replica);
            assert!(
                replica.replica_synced(),
                "{}: role:slave, link up, no sync in progress",
                o.version
            );
            assert!(!master.replica_synced());
        }
    }

    #[test]
    fn valkey_reports_its_own_version_not_the_redis_compatibility_one() {
        let versions: Vec<_> = all()
            .iter()
            .map(|o| server_version(&InfoFields::parse(o.server)).unwrap().to_owned())
            .collect();
        assert_eq!(versions, ["6.0.16", "7.0.15", "8.0.2", "8.0.1", "8.1.1", "9.1.2"]);
    }

    #[test]
    fn newer_wording_and_address_forms_parse_too() {
        // Redis 7 may append `,hostname`; some servers say `replica`; IPv6; migrating-slot markers.
        let text = "\
            aaaa 10.0.0.1:7001@17001,node-1 myself,master - 0 0 1 connected 0-100 [101->-bbbb]\n\
            bbbb [fd00::2]:7002@17002, replica aaaa 0 0 1 connected\n\
            cccc :7003@17003 handshake - 0 0 0 disconnected\n";
        let nodes = ClusterNodes::parse(text).unwrap();
        assert_eq!(nodes.nodes[0].hostname.as_deref(), Some("node-1"));
        assert_eq!(nodes.nodes[0].slots, vec![SlotRange { start: 0, end: 100 }]);
        assert_eq!(nodes.nodes[0].migrating, vec![(101, "bbbb".to_owned())]);
        assert_eq!(nodes.nodes[1].role, Role::Replica);
        assert_eq!(nodes.nodes[1].addr, Some("[fd00::2]:7002".parse().unwrap()));
        assert!(nodes.nodes[2].in_handshake() && nodes.nodes[2].addr.is_none());
        let replication = ReplicationInfo::parse("role:master\nreplica0:ip=10.0.0.2,port=7004,state=online,offset=5\n");
        assert_eq!(replication.replicas[0].port, 7004);
    }

    #[test]
    fn slot_ranges_outside_the_slot_space_are_refused() {
        assert_eq!("0-16383".parse::<SlotRange>().unwrap().len(), 16384);
        assert_eq!("7".parse::<SlotRange>().unwrap(), SlotRange { start: 7, end: 7 });
        for bad in ["16384", "10-5", "0-16384", "-1", "a-b", ""] {
            let err = bad.parse::<SlotRange>().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Refused, "{bad}");
            assert!(err.to_string().contains("within 0-16383"), "{err}");
        }
    }

    #[test]
    fn slot_migrations_of_valkey_9_parse() {
        // As Valkey 9.1 answers over RESP2, trimmed to the fields read.
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = |name: &str, state: &str| {
            Value::Array(
                [
                    "name",
                    name,
                    "operation",
                    "EXPORT",
                    "slot_ranges",
                    "7629-7629",
                    "state",
                    state,
                    "message",
                    "",
                ]
                .map(bulk)
                .to_vec(),
            )
        };
        let reply = Value::Array(vec![entry("ff3a", "success"), entry("0b1c", "snapshotting")]);
        let list = SlotMigration::list_from_value(&reply).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].name.as_str(), list[0].operation.as_str()), ("ff3a", "EXPORT"));
        assert!(list[0].ended() && !list[1].ended());
    }

    #[test]
    fn slots_in_migration_are_read_from_both_markers() {
        let text = "aaaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-200 [100->-bbbb] [16383-<-cccc]";
        let me = ClusterNodes::parse(text).unwrap().nodes.remove(0);
        assert_eq!(me.slot_count(), 201, "a slot moving out is still served");
        assert_eq!(me.migrating, vec![(100, "bbbb".to_owned())]);
        assert_eq!(me.importing, vec![(16383, "cccc".to_owned())]);
        assert!(ClusterNodes::parse("aaaa 127.0.0.1:7001@17001 master - 0 0 1 connected [5=bbbb]").is_err());
        assert!(ClusterNodes::parse("aaaa 127.0.0.1:7001@17001 master - 0 0 1 connected [16384->-b]").is_err());
    }

    #[test]
    fn bad_slot_ranges_are_errors_not_panics() {
        assert!(ClusterNodes::parse("aaaa 10.0.0.1:7001@17001 master - 0 0 1 connected 16384").is_err());
        assert!(ClusterNodes::parse("aaaa 10.0.0.1:7001@17001 master - 0 0 1 connected 9-3").is_err());
        assert!(ClusterNodes::parse("aaaa too short").is_err());
    }
}
