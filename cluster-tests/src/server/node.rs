//! Talking to one node, always with connect and response timeouts (a removed container's address never answers),
//! and with the cluster's credentials: [`Access`] is how to reach a cluster's nodes, the free functions reach a
//! node that needs none.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};

use crate::security::credentials::Access;
use crate::server::topology::{ClusterInfo, ClusterNodes, ClusterShards, ClusterSlots, ReplicationInfo};
use crate::{Error, ErrorKind, Result};

/// How long a TCP connect to a node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a node may take to answer a command the harness sends it (a readiness probe, a `SETSLOT` that waits
/// for the node's replicas, a `MIGRATE` of a hundred keys): a loaded 2-core machine took over 2 s for some.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(5000);
/// How long a node may take to answer a command of a cluster client the harness hands out
/// ([`Cluster::client`](crate::Cluster::client)): short, so that a test's write to a paused master comes back as a
/// timeout it can count while the failover is still to come.
pub const CLIENT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(2000);

impl Access {
    /// Opens a connection to the node at `addr`, authenticated.
    pub async fn connect(&self, addr: SocketAddr) -> Result<MultiplexedConnection> {
        let info = redis::IntoConnectionInfo::into_connection_info(format!("{}://{addr}/", self.scheme()))?
            .set_redis_settings(self.redis_settings());
        let client = match self.tls() {
            Some(tls) => redis::Client::build_with_tls(info, tls.redis_certificates())?,
            None => redis::Client::open(info)?,
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| Error::from(e).context(addr))
    }

    /// Runs one command on the node at `addr`.
    pub async fn query<T: FromRedisValue>(&self, addr: SocketAddr, cmd: &redis::Cmd) -> Result<T> {
        let mut conn = self.connect(addr).await?;
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| Error::from(e).context(about(addr, cmd)))
    }

    /// Runs a pipeline (or transaction) on the node at `addr`, ignoring its replies.
    pub async fn query_pipe(&self, addr: SocketAddr, pipe: redis::Pipeline) -> Result<()> {
        let mut conn = self.connect(addr).await?;
        pipe.exec_async(&mut conn)
            .await
            .map_err(|e| Error::from(e).context(addr))
    }

    /// Runs a command given as words, e.g. `["CLUSTER", "MEET", ip, port]` (the words are copied at once).
    pub fn command<T: FromRedisValue>(
        &self,
        addr: SocketAddr,
        words: &[&str],
    ) -> impl Future<Output = Result<T>> + use<T> {
        let mut cmd = redis::cmd(words[0]);
        cmd.arg(&words[1..]);
        let access = self.clone();
        async move { access.query(addr, &cmd).await }
    }

    /// [`NodeView::read`] with these credentials.
    pub async fn view(&self, addr: SocketAddr) -> Result<NodeView> {
        NodeView::read_on(addr, &mut self.connect(addr).await?).await
    }
}

/// `addr` and the name of `cmd` (`CLUSTER SETSLOT`, `MIGRATE`), for an error of it: a timeout then says what went
/// unanswered.
fn about(addr: SocketAddr, cmd: &redis::Cmd) -> String {
    let words: Vec<String> = cmd
        .args_iter()
        .take(2)
        .filter_map(|arg| match arg {
            redis::Arg::Simple(bytes) => Some(String::from_utf8_lossy(bytes).to_uppercase()),
            _ => None,
        })
        .collect();
    match words.as_slice() {
        [first, sub] if SUBCOMMANDED.contains(&first.as_str()) => format!("{addr} ({first} {sub})"),
        [first, ..] => format!("{addr} ({first})"),
        [] => addr.to_string(),
    }
}

/// Commands whose second word names what they do.
const SUBCOMMANDED: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "MEMORY", "SCRIPT",
];

/// Opens a connection to the node at `addr`, which needs no credentials.
pub async fn connect(addr: SocketAddr) -> Result<MultiplexedConnection> {
    Access::default().connect(addr).await
}

/// Connections to a cluster's nodes with its credentials, opened once and reused (a poll of a large cluster would
/// otherwise open one per node each time); one that fails is dropped, and opened again when next needed.
#[derive(Default)]
pub(crate) struct Pool {
    access: Access,
    open: Mutex<HashMap<SocketAddr, MultiplexedConnection>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.open.lock().map_or(0, |c| c.len());
        f.debug_struct("Pool")
            .field("access", &self.access)
            .field("open", &open)
            .finish()
    }
}

impl Pool {
    /// A pool that connects with `access`.
    pub(crate) fn new(access: Access) -> Self {
        Self {
            access,
            open: Mutex::default(),
        }
    }

    /// The credentials its connections use.
    pub(crate) fn access(&self) -> &Access {
        &self.access
    }

    /// The pooled connection to `addr`, and whether it was opened just now.
    async fn connection(&self, addr: SocketAddr) -> Result<(MultiplexedConnection, bool)> {
        if let Some(conn) = self.lock().get(&addr) {
            return Ok((conn.clone(), false));
        }
        let conn = self.access.connect(addr).await?;
        self.lock().insert(addr, conn.clone());
        Ok((conn, true))
    }

    /// Drops the connection to `addr`, if one is open: the node there is gone (a new one may take its port).
    pub(crate) fn forget(&self, addr: SocketAddr) {
        self.lock().remove(&addr);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, MultiplexedConnection>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` over the pooled connection to `addr`. A connection that fails other than by a server's error reply
    /// (a timeout, a closed socket: the node restarted, or another node took its port) is dropped; if it was an old
    /// one, `op` runs once more on a new connection. The harness's commands may run twice: they are idempotent.
    async fn with<T, F, Fut>(&self, addr: SocketAddr, op: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let broken = |e: &Error| e.redis_error().is_none_or(|r| r.kind() == redis::ErrorKind::Io);
        let (conn, fresh) = self.connection(addr).await?;
        match op(conn).await {
            Err(e) if broken(&e) => {
                self.forget(addr);
                if fresh {
                    return Err(e);
                }
                let (conn, _) = self.connection(addr).await?;
                let retried = op(conn).await;
                if retried.as_ref().is_err_and(broken) {
                    self.forget(addr);
                }
                retried
            }
            other => other,
        }
    }

    /// Runs `cmd` on the node at `addr` over its pooled connection.
    pub(crate) async fn query<T: FromRedisValue>(&self, addr: SocketAddr, cmd: &redis::Cmd) -> Result<T> {
        self.with(addr, |mut conn| async move {
            cmd.query_async(&mut conn)
                .await
                .map_err(|e| Error::from(e).context(about(addr, cmd)))
        })
        .await
    }

    /// Runs a pipeline on the node at `addr` over its pooled connection (its commands go out back to back),
    /// ignoring its replies.
    pub(crate) async fn query_pipe(&self, addr: SocketAddr, pipe: &redis::Pipeline) -> Result<()> {
        self.with(addr, |mut conn| async move {
            pipe.exec_async(&mut conn)
                .await
                .map_err(|e| Error::from(e).context(addr))
        })
        .await
    }

    /// [`NodeView::read`] over the pooled connection.
    pub(crate) async fn view(&self, addr: SocketAddr) -> Result<NodeView> {
        self.with(addr, |mut conn| async move { NodeView::read_on(addr, &mut conn).await })
            .await
    }
}

/// Runs one command on the node at `addr`, which needs no credentials.
pub async fn query<T: FromRedisValue>(addr: SocketAddr, cmd: &redis::Cmd) -> Result<T> {
    Access::default().query(addr, cmd).await
}

/// Runs a command given as words on the node at `addr`, which needs no credentials (see [`Access::command`]).
pub fn command<T: FromRedisValue>(addr: SocketAddr, words: &[&str]) -> impl Future<Output = Result<T>> + use<T> {
    Access::default().command(addr, words)
}

/// One node's view of the cluster, read in one round trip.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The node's address.
    pub addr: SocketAddr,
    /// Its `CLUSTER INFO`.
    pub info: ClusterInfo,
    /// Its `CLUSTER NODES`.
    pub nodes: ClusterNodes,
    /// Its `INFO replication`.
    pub replication: ReplicationInfo,
    /// Its `CLUSTER SLOTS`: the map it gives clients.
    pub slots: ClusterSlots,
    /// Its `CLUSTER SHARDS`, where the server has the command (Redis 7.0+, Valkey).
    pub shards: Option<ClusterShards>,
}

impl NodeView {
    /// Reads `CLUSTER INFO`, `CLUSTER NODES`, `INFO replication`, `CLUSTER SLOTS` and `CLUSTER SHARDS` from the node
    /// at `addr`, which needs no credentials, in one round trip ([`Access::view`] for one that does).
    pub async fn read(addr: SocketAddr) -> Result<Self> {
        Access::default().view(addr).await
    }

    /// [`NodeView::read`] over a connection already open to the node at `addr`.
    async fn read_on(addr: SocketAddr, conn: &mut MultiplexedConnection) -> Result<Self> {
        let replies: Vec<redis::RedisResult<redis::Value>> = redis::pipe()
            .ignore_errors()
            .cmd("CLUSTER")
            .arg("INFO")
            .cmd("CLUSTER")
            .arg("NODES")
            .cmd("INFO")
            .arg("replication")
            .cmd("CLUSTER")
            .arg("SLOTS")
            .cmd("CLUSTER")
            .arg("SHARDS")
            .query_async(conn)
            .await
            .map_err(|e| {
                Error::from(e).context(format!(
                    "{addr} (its view: CLUSTER INFO, NODES, SLOTS, SHARDS, INFO replication)"
                ))
            })?;
        let [info, nodes, replication, slots, shards] = <[_; 5]>::try_from(replies)
            .map_err(|r| Error::redis(format!("{addr}: {} replies to 5 commands", r.len())))?;
        let text = |reply: redis::RedisResult<redis::Value>| -> Result<String> {
            redis::from_redis_value(reply?).map_err(|e| Error::with_kind(ErrorKind::Redis, format!("{addr}: {e}")))
        };
        Ok(Self {
            addr,
            info: ClusterInfo::parse(&text(info)?),
            nodes: ClusterNodes::parse(&text(nodes)?).map_err(|e| e.context(addr))?,
            replication: ReplicationInfo::parse(&text(replication)?),
            slots: ClusterSlots::from_value(&slots?).map_err(|e| e.context(addr))?,
            // A server without the command (Redis 6.0) answers an error: then there is nothing to check.
            shards: shards
                .ok()
                .map(|v| ClusterShards::from_value(&v))
                .transpose()
                .map_err(|e| e.context(addr))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_of_a_command_names_the_node_and_the_command() {
        let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let mut setslot = redis::cmd("cluster");
        setslot.arg("setslot").arg(5).arg("NODE").arg("abc");
        assert_eq!(about(addr, &setslot), "127.0.0.1:7001 (CLUSTER SETSLOT)");
        let mut migrate = redis::cmd("MIGRATE");
        migrate.arg("127.0.0.1").arg(7002);
        assert_eq!(about(addr, &migrate), "127.0.0.1:7001 (MIGRATE)");
        assert_eq!(about(addr, &redis::cmd("PING")), "127.0.0.1:7001 (PING)");
    }
}
