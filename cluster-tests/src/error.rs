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

/// An error from the harness, carrying a message that says what failed and, where it can, what to do.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
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
            source: Some(Arc::new(e)),
        }
    }
}

impl From<bollard::errors::Error> for Error {
    fn from(e: bollard::errors::Error) -> Self {
        Self {
            kind: ErrorKind::Docker,
            message: format!("docker: {e}"),
            source: Some(Arc::new(e)),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self {
            kind: ErrorKind::Other,
            message: e.to_string(),
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
