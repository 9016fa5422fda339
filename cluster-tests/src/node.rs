//! Talking to one node, always with connect and response timeouts (a removed container's address never answers).

use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};

use crate::topology::{ClusterInfo, ClusterNodes, ReplicationInfo};
use crate::{Error, Result};

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

/// Runs one command on the node at `addr`.
pub async fn query<T: FromRedisValue>(addr: SocketAddr, cmd: &redis::Cmd) -> Result<T> {
    let mut conn = connect(addr).await?;
    cmd.query_async(&mut conn)
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
}

impl NodeView {
    /// Reads `CLUSTER INFO`, `CLUSTER NODES` and `INFO replication` from the node at `addr`.
    pub async fn read(addr: SocketAddr) -> Result<Self> {
        let mut conn = connect(addr).await?;
        let (info, nodes, replication): (String, String, String) = redis::pipe()
            .cmd("CLUSTER")
            .arg("INFO")
            .cmd("CLUSTER")
            .arg("NODES")
            .cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::from(e).context(addr))?;
        Ok(Self {
            addr,
            info: ClusterInfo::parse(&info),
            nodes: ClusterNodes::parse(&nodes).map_err(|e| e.context(addr))?,
            replication: ReplicationInfo::parse(&replication),
        })
    }
}
