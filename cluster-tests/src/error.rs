//! The harness's error type: a message meant for the person running the cluster, a kind for code to match on,
//! and the underlying error where there is one.

use std::fmt;
use std::sync::Arc;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A host port the cluster needs is held by another program or container.
    PortTaken(u16),
    /// A wait ran out of time; the message says what it waited for and what it last saw.
    Timeout,
    /// The Docker engine refused or failed a call.
    Docker,
    /// A container name is taken: a cluster of that name exists or is being made by someone else.
    NameTaken,
    /// A server answered with an error or a reply the harness cannot read, or could not be reached.
    Redis,
    /// The harness refused: bad input (an unknown port, a replica where a master is needed, a spec the servers
    /// cannot run), or a cluster not in the state asked for.
    Refused,
    /// A local failure outside Docker and the servers (a file, a process).
    Other,
}

/// What gets past an [`Error`], where the harness knows: a typed detail for a front end (the CLI) to
/// turn into its own advice. The message already says it in the library's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Remove the cluster, or what is left of it ([`Cluster::remove`](crate::Cluster::remove),
    /// [`playground::remove_cluster`](crate::playground::remove_cluster)).
    RemoveCluster,
    /// Remove every cluster nobody owns ([`playground::census`](crate::playground::census) and
    /// [`playground::remove_abandoned`](crate::playground::remove_abandoned)).
    RemoveAbandoned,
    /// Make the cluster first: none of that name runs.
    CreateCluster,
    /// Thaw the paused node on this port ([`Cluster::resume`](crate::Cluster::resume)).
    Resume(u16),
    /// Start the killed node on this port again ([`Cluster::restart`](crate::Cluster::restart)).
    Restart(u16),
    /// Add a master first ([`Cluster::add_master`](crate::Cluster::add_master)).
    AddMaster,
    /// Join a replica of the master on this port ([`Cluster::join`](crate::Cluster::join)).
    JoinReplicaOf(u16),
    /// The master on this port was added without all its slots: even them out again
    /// ([`Cluster::rebalance`](crate::Cluster::rebalance)) or take it out ([`Cluster::remove_master`](crate::Cluster::remove_master)).
    RebalanceOrRemove(u16),
    /// Have every node forget the nodes that are gone ([`Cluster::forget_gone`](crate::Cluster::forget_gone)).
    Forget,
    /// Finish or roll back the slot held half-way ([`Cluster::finish_held`](crate::Cluster::finish_held),
    /// [`Cluster::abort_held`](crate::Cluster::abort_held)).
    FinishOrAbortHeld,
    /// Hold a slot half-way first ([`Reshard::hold`](crate::Reshard::hold)).
    HoldSlot,
    /// Make the cluster with more spare ports ([`ClusterSpec::spare_ports`](crate::ClusterSpec::spare_ports)).
    MoreSparePorts,
    /// Force it: a master with no replica is removed anyway ([`FailoverKind::RemoveMaster`](crate::FailoverKind)).
    Force,
    /// Install the image build tools, or run an image there is ([`ClusterSpec::image`](crate::ClusterSpec::image)).
    InstallBuildTools,
    /// Use an image there is, or one of the matrix built here ([`ImageSource`](crate::ImageSource)).
    LocalImage,
    /// The image has no command-line client: send commands through the harness's client.
    NoImageCli,
}

/// An error from the harness, carrying a message that says what failed and, where it can, what to do.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    remedy: Option<Remedy>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether a server rejected a command or subcommand it does not know (wording differs across versions).
    pub(crate) fn is_unknown_command(&self) -> bool {
        let text = self.to_string().to_ascii_lowercase();
        text.contains("unknown subcommand") || text.contains("unknown command")
    }

    /// The harness refused: bad input, or a cluster not in the state the operation needs ([`ErrorKind::Refused`]).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Refused, message)
    }

    /// A wait ran out of time ([`ErrorKind::Timeout`]); the message says what it waited for and what it saw.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Timeout, message)
    }

    /// The Docker engine refused or failed a call ([`ErrorKind::Docker`]).
    pub fn docker(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Docker, message)
    }

    /// A server answered with an error or an unreadable reply, or could not be reached ([`ErrorKind::Redis`]).
    pub fn redis(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Redis, message)
    }

    /// Host `port` is held by another program or container ([`ErrorKind::PortTaken`]).
    pub fn port_taken(port: u16, message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::PortTaken(port), message)
    }

    /// A local failure outside Docker and the servers: a file, a process ([`ErrorKind::Other`]).
    pub fn other(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Other, message)
    }

    /// An error of `kind` with this message.
    pub fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            remedy: None,
            source: None,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's error, if this error came from one (e.g. to read a `MOVED` redirect's target).
    pub fn redis_error(&self) -> Option<&redis::RedisError> {
        self.source.as_deref()?.downcast_ref()
    }

    /// What gets past it, where the harness knows (see [`Remedy`]).
    pub fn remedy(&self) -> Option<Remedy> {
        self.remedy
    }

    /// The same error, with what gets past it.
    pub(crate) fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedy = Some(remedy);
        self
    }

    /// The same error, of `kind`.
    pub(crate) fn of_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same error with `context` put in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Self {
            kind: ErrorKind::Redis,
            message: e.to_string(),
            remedy: None,
            source: Some(Arc::new(e)),
        }
    }
}

impl From<testcontainers::bollard::errors::Error> for Error {
    fn from(e: testcontainers::bollard::errors::Error) -> Self {
        Self {
            kind: ErrorKind::Docker,
            message: format!("docker: {e}"),
            remedy: None,
            source: Some(Arc::new(e)),
        }
    }
}

impl From<testcontainers::TestcontainersError> for Error {
    fn from(e: testcontainers::TestcontainersError) -> Self {
        let kind = match e {
            testcontainers::TestcontainersError::WaitContainer(
                testcontainers::core::error::WaitContainerError::StartupTimeout,
            ) => ErrorKind::Timeout,
            _ => ErrorKind::Docker,
        };
        Self {
            kind,
            message: format!("testcontainers: {e}"),
            remedy: None,
            source: Some(Arc::new(e)),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self {
            kind: ErrorKind::Other,
            message: e.to_string(),
            remedy: None,
            source: Some(Arc::new(e)),
        }
    }
}

/// Returns early with an [`Error`] of the [`ErrorKind`] named first, made from a format string:
/// `bail!(Refused, Refused, "port {port} is taken")`.
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => { return Err($crate::Error::with_kind($crate::ErrorKind::$kind, format!($($arg)*))) };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_subcommand_wordings_are_recognised() {
        // Redis 6.0 has no ADDSLOTSRANGE: its real answer, captured from a node.
        let redis6 = include_str!("../fixtures/redis-6.0.addslotsrange-error.txt").trim();
        assert!(Error::redis(redis6).is_unknown_command(), "{redis6}");
        assert!(Error::redis("ERR unknown subcommand 'addslotsrange'. Try CLUSTER HELP.").is_unknown_command());
        assert!(!Error::redis("ERR Slot 0 is already busy").is_unknown_command());
    }
}
