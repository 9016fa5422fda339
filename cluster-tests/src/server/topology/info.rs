//! `INFO` and `CLUSTER INFO`: `key:value` lines, the cluster state and the replication links.

use std::collections::BTreeMap;

use super::Role;

/// Parsed `key:value` lines, as printed by `CLUSTER INFO` and `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoFields(BTreeMap<String, String>);

impl InfoFields {
    /// Parses `key:value` lines; section headers (`# Replication`) and blank lines are skipped.
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The value of `key`, if printed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The value of `key` as a number, if printed and numeric.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// All fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The server's version from `INFO server`: Valkey's own `valkey_version` (its `redis_version` says 7.2.4, the
/// Redis version it is compatible with), else `redis_version`.
pub fn server_version(info_server: &InfoFields) -> Option<&str> {
    info_server
        .get("valkey_version")
        .or_else(|| info_server.get("redis_version"))
}

/// The parsed output of `CLUSTER INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterInfo(pub InfoFields);

impl ClusterInfo {
    /// Parses `CLUSTER INFO` output.
    pub fn parse(text: &str) -> Self {
        Self(InfoFields::parse(text))
    }

    /// Whether `cluster_state:ok`.
    pub fn state_ok(&self) -> bool {
        self.0.get("cluster_state") == Some("ok")
    }

    /// `cluster_slots_assigned`.
    pub fn slots_assigned(&self) -> u64 {
        self.0.number("cluster_slots_assigned").unwrap_or(0)
    }

    /// `cluster_slots_ok`.
    pub fn slots_ok(&self) -> u64 {
        self.0.number("cluster_slots_ok").unwrap_or(0)
    }

    /// `cluster_known_nodes`.
    pub fn known_nodes(&self) -> u64 {
        self.0.number("cluster_known_nodes").unwrap_or(0)
    }

    /// `cluster_size`: the number of masters serving slots.
    pub fn size(&self) -> u64 {
        self.0.number("cluster_size").unwrap_or(0)
    }
}

/// One replica as its master lists it in `INFO replication` (`slave0:ip=...,port=...,state=online,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLink {
    /// Replica's client port.
    pub port: u16,
    /// Replication state (`online` once synced; `wait_bgsave`, `send_bulk` before).
    pub state: String,
    /// Replication offset the replica acknowledged.
    pub offset: u64,
}

/// The parsed output of `INFO replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationInfo {
    /// Master or replica.
    pub role: Role,
    /// For replicas: whether `master_link_status:up`.
    pub link_up: bool,
    /// For replicas: whether a full sync is in progress.
    pub sync_in_progress: bool,
    /// The node's replication offset (`master_repl_offset`).
    pub offset: u64,
    /// For masters: the replicas connected to it.
    pub replicas: Vec<ReplicaLink>,
}

impl ReplicationInfo {
    /// Parses `INFO replication` output; Redis prints `slave0:`, newer servers may print `replica0:`.
    pub fn parse(text: &str) -> Self {
        let fields = InfoFields::parse(text);
        let role = match fields.get("role") {
            Some("master") => Role::Master,
            Some("slave" | "replica") => Role::Replica,
            _ => Role::Unknown,
        };
        let replicas = fields
            .iter()
            .filter(|(k, _)| {
                let digits = k.trim_start_matches("slave").trim_start_matches("replica");
                digits.len() < k.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            })
            .filter_map(|(_, v)| {
                let kv: BTreeMap<&str, &str> = v.split(',').filter_map(|p| p.split_once('=')).collect();
                Some(ReplicaLink {
                    port: kv.get("port")?.parse().ok()?,
                    state: kv.get("state")?.to_string(),
                    offset: kv.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
                })
            })
            .collect();
        Self {
            role,
            link_up: fields.get("master_link_status") == Some("up"),
            sync_in_progress: fields.get("master_sync_in_progress") == Some("1"),
            offset: fields.number("master_repl_offset").unwrap_or(0),
            replicas,
        }
    }

    /// For replicas: whether the link to the master is up and the first sync is done.
    pub fn replica_synced(&self) -> bool {
        self.role == Role::Replica && self.link_up && !self.sync_in_progress
    }
}
