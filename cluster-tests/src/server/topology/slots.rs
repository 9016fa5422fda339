//! `CLUSTER SLOTS`: the slot map as clients are given it.

use std::collections::BTreeSet;

use redis::Value;

use super::{SlotRange, int, items, text};
use crate::{Error, Result};

/// A node as `CLUSTER SLOTS` names it to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The address clients are told to use (an IP, or a host name where the server prefers those).
    pub host: String,
    /// Client port.
    pub port: u16,
    /// Node id (every server of the matrix gives it).
    pub id: Option<String>,
}

/// One slot range of `CLUSTER SLOTS`: who serves it, and the replicas a client may read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotsEntry {
    /// The slots.
    pub range: SlotRange,
    /// Their master.
    pub master: Endpoint,
    /// The replicas the server offers clients (Redis 7.0+ leaves out a replica whose replication offset is 0).
    pub replicas: Vec<Endpoint>,
}

/// The parsed reply of `CLUSTER SLOTS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSlots(pub Vec<SlotsEntry>);

impl ClusterSlots {
    /// Parses a `CLUSTER SLOTS` reply; fields servers add after the id (Redis 7's metadata map) are skipped.
    pub fn from_value(value: &Value) -> Result<Self> {
        let bad = |what: &str| Error::redis(format!("CLUSTER SLOTS: {what}"));
        let entries = items(value).ok_or_else(|| bad("not an array"))?;
        let endpoint = |v: &Value| -> Option<Endpoint> {
            let fields = items(v)?;
            Some(Endpoint {
                host: text(fields.first()?)?,
                port: u16::try_from(int(fields.get(1)?)?).ok()?,
                id: fields.get(2).and_then(text),
            })
        };
        let parsed = entries
            .iter()
            .map(|entry| {
                let fields = items(entry)?;
                let start = u16::try_from(int(fields.first()?)?).ok()?;
                let end = u16::try_from(int(fields.get(1)?)?).ok()?;
                let mut nodes = fields[2..].iter().map(endpoint);
                Some(SlotsEntry {
                    range: SlotRange { start, end },
                    master: nodes.next()??,
                    replicas: nodes.collect::<Option<_>>()?,
                })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("an entry is not [start, end, master, replicas...]"))?;
        Ok(Self(parsed))
    }

    /// Ids of every replica listed, for any range.
    pub fn replica_ids(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .flat_map(|e| e.replicas.iter().filter_map(|r| r.id.as_deref()))
            .collect()
    }

    /// Every address handed to clients, masters and replicas.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.0
            .iter()
            .flat_map(|e| std::iter::once(&e.master).chain(&e.replicas))
    }
}
