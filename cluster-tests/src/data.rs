//! Data helpers for tests: write keys spread over the whole slot space and read them back.

use std::time::Duration;

use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;

use crate::node::RESPONSE_TIMEOUT;
use crate::{Result, bail};

/// `count` key names that spread over all slots (`{prefix}:0`, `{prefix}:1`, ...; no hash tags).
pub fn keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}:{i}")).collect()
}

/// Sets every key to a value derived from its name.
pub async fn write(conn: &mut ClusterConnection, keys: &[String]) -> Result<()> {
    for key in keys {
        let _: () = conn.set(key, value_of(key)).await?;
    }
    Ok(())
}

/// Reads every key back and fails on the first one that is missing or wrong.
pub async fn check(conn: &mut ClusterConnection, keys: &[String]) -> Result<()> {
    for key in keys {
        let got: Option<String> = conn.get(key).await?;
        if got.as_deref() != Some(value_of(key).as_str()) {
            bail!("key {key}: expected {:?}, got {got:?}", value_of(key));
        }
    }
    Ok(())
}

/// Waits (server side, up to `timeout`) until every master's writes reached at least `replicas` replicas;
/// returns the smallest count of acknowledging replicas over all masters (the `WAIT` command).
///
/// `WAIT` must run on the connection that wrote, whose response timeout ([`RESPONSE_TIMEOUT`]) bounds how long
/// the server may wait: a longer `timeout` is refused rather than cut off by the client.
pub async fn wait_replicated(conn: &mut ClusterConnection, replicas: usize, timeout: Duration) -> Result<usize> {
    let margin = Duration::from_millis(250);
    if timeout.is_zero() || timeout + margin > RESPONSE_TIMEOUT {
        bail!(
            "WAIT for {} ms (0 waits forever) cannot finish within the client's response timeout of {} ms",
            timeout.as_millis(),
            RESPONSE_TIMEOUT.as_millis()
        );
    }
    Ok(redis::cmd("WAIT")
        .arg(replicas)
        .arg(timeout.as_millis() as u64)
        .query_async(conn)
        .await?)
}

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}
