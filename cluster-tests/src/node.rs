//! Talking to one node, always with connect and response timeouts (a removed container's address never answers).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};

use crate::topology::{ClusterInfo, ClusterNodes, ClusterShards, ClusterSlots, ReplicationInfo};
use crate::{Error, ErrorKind, Result};

/// How long a TCP connect to a node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a node may take to answer a command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(2000);

/// Opens a connection to the node at `addr`.
pub async fn connect(addr: SocketAddr) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| Error::from(e).context(addr))
}

/// Connections to nodes, opened once and reused (a poll of a large cluster would otherwise open one per node each
/// time); one that fails is dropped, and opened again when next needed.
#[derive(Default)]
pub(crate) struct Pool(Mutex<HashMap<SocketAddr, MultiplexedConnection>>);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.0.lock().map_or(0, |c| c.len());
        f.debug_struct("Pool").field("open", &open).finish()
    }
}

impl Pool {
    async fn connection(&self, addr: SocketAddr) -> Result<MultiplexedConnection> {
        if let Some(conn) = self.lock().get(&addr) {
            return Ok(conn.clone());
        }
        let conn = connect(addr).await?;
        self.lock().insert(addr, conn.clone());
        Ok(conn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, MultiplexedConnection>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `cmd` on the node at `addr` over its pooled connection; a failure drops that connection.
    pub(crate) async fn query<T: FromRedisValue>(&self, addr: SocketAddr, cmd: &redis::Cmd) -> Result<T> {
        let mut conn = self.connection(addr).await?;
        let reply = cmd.query_async(&mut conn).await;
        self.dropping_on_failure(addr, reply.map_err(|e| Error::from(e).context(addr)))
    }

    /// Runs a pipeline on the node at `addr` over its pooled connection (its commands go out back to back),
    /// ignoring its replies; a failure drops that connection.
    pub(crate) async fn query_pipe(&self, addr: SocketAddr, pipe: &redis::Pipeline) -> Result<()> {
        let mut conn = self.connection(addr).await?;
        let reply = pipe.exec_async(&mut conn).await;
        self.dropping_on_failure(addr, reply.map_err(|e| Error::from(e).context(addr)))
    }

    /// [`NodeView::read`] over the pooled connection.
    pub(crate) async fn view(&self, addr: SocketAddr) -> Result<NodeView> {
        let mut conn = self.connection(addr).await?;
        let view = NodeView::read_on(addr, &mut conn).await;
        self.dropping_on_failure(addr, view)
    }

    fn dropping_on_failure<T>(&self, addr: SocketAddr, result: Result<T>) -> Result<T> {
        // A server's error reply leaves the connection fine; anything else (a timeout, a closed socket) may not.
        if result
            .as_ref()
            .is_err_and(|e| e.redis_error().is_none_or(|r| r.kind() == redis::ErrorKind::Io))
        {
            self.lock().remove(&addr);
        }
        result
    }
}

/// Runs one command on the node at `addr`.
pub async fn query<T: FromRedisValue>(addr: SocketAddr, cmd: &redis::Cmd) -> Result<T> {
    let mut conn = connect(addr).await?;
    cmd.query_async(&mut conn)
        .await
        .map_err(|e| Error::from(e).context(addr))
}

/// Runs a pipeline (or transaction) on the node at `addr`, ignoring its replies.
pub async fn query_pipe(addr: SocketAddr, pipe: redis::Pipeline) -> Result<()> {
    let mut conn = connect(addr).await?;
    pipe.exec_async(&mut conn)
        .await
        .map_err(|e| Error::from(e).context(addr))
}

/// Runs a command given as words, e.g. `["CLUSTER", "MEET", ip, port]` (the words are copied at once).
pub fn command<T: FromRedisValue>(addr: SocketAddr, words: &[&str]) -> impl Future<Output = Result<T>> + use<T> {
    let mut cmd = redis::cmd(words[0]);
    cmd.arg(&words[1..]);
    async move { query(addr, &cmd).await }
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
    /// at `addr`, in one round trip.
    pub async fn read(addr: SocketAddr) -> Result<Self> {
        Self::read_on(addr, &mut connect(addr).await?).await
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
            .map_err(|e| Error::from(e).context(addr))?;
        let [info, nodes, replication, slots, shards] = <[_; 5]>::try_from(replies)
            .map_err(|r| Error::new(format!("{addr}: {} replies to 5 commands", r.len())))?;
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
