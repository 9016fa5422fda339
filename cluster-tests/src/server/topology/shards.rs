//! `CLUSTER SHARDS` (Redis 7.0+, Valkey): each shard's nodes with their health.

use redis::Value;

use super::{Role, field, int, items, text};
use crate::{Error, Result};

/// One node of a `CLUSTER SHARDS` shard (Redis 7.0+, Valkey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardNode {
    /// Node id.
    pub id: String,
    /// `ip` field.
    pub ip: Option<String>,
    /// `endpoint` field: the address clients are told to use.
    pub endpoint: Option<String>,
    /// Client port (`port`, or `tls-port` on a TLS-only node).
    pub port: Option<u16>,
    /// `master` or `replica`.
    pub role: Role,
    /// `online`, `loading` (a replica whose replication offset is still 0) or `fail`.
    pub health: String,
}

/// The parsed reply of `CLUSTER SHARDS`: one list of nodes per shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterShards(pub Vec<Vec<ShardNode>>);

impl ClusterShards {
    /// Parses a `CLUSTER SHARDS` reply (RESP2 flat key/value arrays or RESP3 maps); unknown fields are skipped.
    pub fn from_value(value: &Value) -> Result<Self> {
        let shards = items(value)
            .ok_or_else(|| Error::redis("CLUSTER SHARDS: not an array"))?
            .iter()
            .map(|shard| {
                let nodes = field(shard, "nodes").and_then(items).unwrap_or_default();
                nodes
                    .iter()
                    .map(|n| {
                        let get = |key: &str| field(n, key).and_then(text);
                        let port = field(n, "port").or_else(|| field(n, "tls-port")).and_then(int);
                        Some(ShardNode {
                            id: get("id")?,
                            ip: get("ip"),
                            endpoint: get("endpoint"),
                            port: port.and_then(|p| u16::try_from(p).ok()),
                            role: match get("role").as_deref() {
                                Some("master" | "primary") => Role::Master,
                                Some("replica" | "slave") => Role::Replica,
                                _ => Role::Unknown,
                            },
                            health: get("health").unwrap_or_default(),
                        })
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::redis("CLUSTER SHARDS: a node has no id"))
            })
            .collect::<Result<_>>()?;
        Ok(Self(shards))
    }

    /// Every node of every shard.
    pub fn nodes(&self) -> impl Iterator<Item = &ShardNode> {
        self.0.iter().flatten()
    }
}
