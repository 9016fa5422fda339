//! Data helpers for tests: write keys spread over the whole slot space and read them back.

use futures_util::{StreamExt, stream};
use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;

use crate::server::topology::{SLOTS, SlotRange};
use crate::{Result, bail};

/// The hash slot of `key`, as the servers compute it (CRC16 of the key, or of its `{hash tag}`, mod 16384).
pub fn slot_of(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % SLOTS
}

/// A key named `{prefix}:{n}` whose slot lies in one of `ranges` (the first such `n`); `None` for no ranges.
pub fn key_in(ranges: &[SlotRange], prefix: &str) -> Option<String> {
    if ranges.is_empty() {
        return None;
    }
    // Every slot is hit within 200,000 names (checked by a unit test); a range holds at least one slot.
    (0..1_000_000)
        .map(|n| format!("{prefix}:{n}"))
        .find(|key| ranges.iter().any(|r| r.contains(slot_of(key))))
}

/// One key per slot, `{prefix}:{n}` names each landing in slot 0, 1, ..., 16383 in turn.
pub fn key_per_slot(prefix: &str) -> Vec<String> {
    let mut keys: Vec<Option<String>> = vec![None; usize::from(SLOTS)];
    let mut missing = keys.len();
    for n in 0.. {
        let key = format!("{prefix}:{n}");
        let slot = &mut keys[usize::from(slot_of(&key))];
        if slot.is_none() {
            *slot = Some(key);
            missing -= 1;
            if missing == 0 {
                break;
            }
        }
    }
    keys.into_iter().flatten().collect()
}

/// `count` key names that spread over all slots (`{prefix}:0`, `{prefix}:1`, ...; no hash tags).
pub fn keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}:{i}")).collect()
}

/// How many commands [`write`] and [`verify_keys`] keep in flight at once (on clones of one multiplexed connection).
const IN_FLIGHT: usize = 16;

/// Sets every key to a value derived from its name.
pub async fn write(conn: &mut ClusterConnection, keys: &[String]) -> Result<()> {
    let sets = keys.iter().map(|key| {
        let mut conn = conn.clone();
        async move { conn.set::<_, _, ()>(key, value_of(key)).await }
    });
    let mut sets = stream::iter(sets).buffer_unordered(IN_FLIGHT);
    while let Some(set) = sets.next().await {
        set?;
    }
    Ok(())
}

/// Reads every key back and fails on the first one found missing or wrong.
pub async fn verify_keys(conn: &mut ClusterConnection, keys: &[String]) -> Result<()> {
    let gets = keys.iter().map(|key| {
        let mut conn = conn.clone();
        async move { (key, conn.get::<_, Option<String>>(key).await) }
    });
    let mut gets = stream::iter(gets).buffer_unordered(IN_FLIGHT);
    while let Some((key, got)) = gets.next().await {
        let got = got?;
        if got.as_deref() != Some(value_of(key).as_str()) {
            bail!(Redis, "key {key}: expected {:?}, got {got:?}", value_of(key));
        }
    }
    Ok(())
}

/// The value [`write`] sets `key` to and [`verify_keys`] expects, for keys written some other way.
pub fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_servers() {
        // Values the servers answer to CLUSTER KEYSLOT.
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("{user1000}.following"), slot_of("user1000"));
        assert_eq!(
            slot_of("foo{}{bar}"),
            slot_of("foo{}{bar}"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(slot_of("foo{}{bar}"), 8363);
        assert_eq!(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    }

    #[test]
    fn keys_can_be_found_for_any_slot() {
        let range = SlotRange { start: 42, end: 42 };
        assert_eq!(slot_of(&key_in(&[range], "x").unwrap()), 42);
        let all = key_per_slot("k");
        assert_eq!(all.len(), usize::from(SLOTS));
        assert!(
            all.iter()
                .enumerate()
                .all(|(slot, key)| usize::from(slot_of(key)) == slot)
        );
    }
}
