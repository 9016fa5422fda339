//! `CLUSTER GETSLOTMIGRATIONS` (Valkey 9.0+): atomic slot migrations, running or recently ended.

use redis::Value;

use super::{field, items, text};
use crate::{Error, Result};

/// One entry of `CLUSTER GETSLOTMIGRATIONS` (Valkey 9.0+): an atomic slot migration, running or recently ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMigration {
    /// Its name, unique per migration.
    pub name: String,
    /// `EXPORT` on the source, `IMPORT` on the target.
    pub operation: String,
    /// `success` once done, `failed` or `canceled` if it ended otherwise; anything else while it runs.
    pub state: String,
    /// The server's message (why it failed).
    pub message: String,
}

impl SlotMigration {
    /// Parses a `CLUSTER GETSLOTMIGRATIONS` reply (RESP2 flat key/value arrays or RESP3 maps).
    pub fn list_from_value(value: &Value) -> Result<Vec<Self>> {
        let entries = items(value).ok_or_else(|| Error::redis("CLUSTER GETSLOTMIGRATIONS: not an array"))?;
        entries
            .iter()
            .map(|e| {
                let get = |key: &str| field(e, key).and_then(text).unwrap_or_default();
                let name = field(e, "name")
                    .and_then(text)
                    .ok_or_else(|| Error::redis("CLUSTER GETSLOTMIGRATIONS: an entry has no name"))?;
                Ok(Self {
                    name,
                    operation: get("operation"),
                    state: get("state"),
                    message: get("message"),
                })
            })
            .collect()
    }

    /// Whether it has ended, well or not.
    pub fn ended(&self) -> bool {
        matches!(self.state.as_str(), "success" | "failed" | "canceled" | "cancelled")
    }
}
