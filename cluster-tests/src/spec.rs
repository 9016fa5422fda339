//! What to make, as plain values: [`ClusterSpec`] with its defaults and builder methods, the checks that refuse
//! what cannot work, and [`Networking`]. It knows nothing of what makes it ([`ClusterSpec::start`], defined with
//! the cluster handle). Over 600 lines because each field's builder, default and refusal sit together, and half
//! the file is the refusals' unit tests.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::images::node_image::ImageSource;
use crate::images::versions::Version;
use crate::security::credentials::{AclUser, Credentials, Secrets, secrets_dir};
use crate::security::tls::ClientAuth;
use crate::server::settings;
use crate::{Error, Result, bail};

/// Default cluster node timeout of clusters up to 20 nodes. Failover takes about this plus 1.3 s (failure
/// agreement and the servers' fixed 0.5-1 s election delay), so it sets how fast the cluster heals; 1 s showed no
/// false failure with five clusters being made and broken at once on a 2-core machine. `create --node-timeout`
/// raises it for busier machines.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Node timeout per node of larger clusters, unless one is set: every node pings every other at least twice per
/// node timeout, so the servers' own load grows with the square of the nodes. Measured on 2 cores: 100 nodes at a
/// 1 s timeout kept flagging healthy nodes as failing and took 93 s to be ready; at 5 s (50 ms per node), 29 s.
pub const NODE_TIMEOUT_PER_NODE: Duration = Duration::from_millis(50);
/// Most nodes one cluster may have: the largest measured to become ready on a 2-core machine (100 nodes, 50
/// masters with a replica each, in about 30 s).
pub const MAX_NODES: usize = 100;
/// Longest node timeout accepted: failover then takes over a minute, more than any step of the harness waits.
pub const MAX_NODE_TIMEOUT: Duration = Duration::from_secs(60);
/// Port of the first node; the others follow (7001, 7002, ...), as in the Redis Cluster tutorial.
pub const FIRST_PORT: u16 = 7001;
/// Ports a pod publishes beyond its nodes', for nodes that join later (a pod cannot publish more once it runs).
pub const DEFAULT_SPARE_PORTS: usize = 3;
/// Environment variable that keeps test clusters up for debugging: `always`, or `on-failure` (a test that
/// panics keeps its cluster). A kept cluster has no owner, so later runs (and a removal of every abandoned cluster) leave it
/// alone; [`playground::remove_cluster`](crate::playground::remove_cluster) removes it by name.
pub const KEEP_ENV: &str = "CLUSTER_TESTS_KEEP";

/// How long a cluster lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// A test's: removed when its [`Cluster`](crate::Cluster) is dropped (unless [`KEEP_ENV`] says otherwise), and by a later test
    /// run if this process dies first.
    Test,
    /// Kept until removed on purpose ([`Cluster::remove`](crate::Cluster::remove),
    /// [`playground::remove_cluster`](crate::playground::remove_cluster)).
    Kept,
}

/// What a cluster is made of. `Default` is a test's cluster (3 masters with one replica each, the default server
/// version, a unique name, a free port range, removed on drop); change it with the builder methods or with struct
/// update syntax, and make it with [`ClusterSpec::start`].
///
/// ```no_run
/// # async fn demo() -> cluster_tests::Result<()> {
/// use std::time::Duration;
/// use cluster_tests::ClusterSpec;
/// let cluster = ClusterSpec::from_env()?.masters(4).replicas(2).node_timeout(Duration::from_secs(2)).start().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterSpec {
    /// Cluster name: prefix of its container names.
    pub name: String,
    /// What the nodes run: a matrix version's image, built here if missing, or any image by reference.
    pub image: ImageSource,
    /// Masters (at least 3, as Redis Cluster needs a majority of masters to fail a node over).
    pub masters: usize,
    /// Replicas per master.
    pub replicas: usize,
    /// `cluster-node-timeout`; `None` scales it with the cluster: [`DEFAULT_NODE_TIMEOUT`], or
    /// [`NODE_TIMEOUT_PER_NODE`] per node when that is more.
    pub node_timeout: Option<Duration>,
    /// Port of the first node; `None` picks a free range on the host ([`FIRST_PORT`] with
    /// [`Networking::Bridge`], which publishes nothing).
    pub first_port: Option<u16>,
    /// How the nodes are networked and reached from the host.
    pub networking: Networking,
    /// Ports published beyond the nodes' own, for nodes that join later ([`Networking::Pod`] only).
    pub spare_ports: usize,
    /// How long the cluster lives.
    pub lifetime: Lifetime,
    /// `requirepass` (and `masterauth`) of every node; `None` for none. Clients then need it (see
    /// [`Cluster::access`](crate::Cluster::access)).
    pub password: Option<String>,
    /// ACL users loaded on every node, joined ones too. With users the harness uses one of its own,
    /// [`HARNESS_USER`](crate::HARNESS_USER).
    pub users: Vec<AclUser>,
    /// Turns the `default` user off: every client must name a user.
    pub default_user_off: bool,
    /// TLS on client connections, replication and the bus, with certificates of the cluster's own CA (see
    /// [`Cluster::access`](crate::Cluster::access) and [`Cluster::tls_files`](crate::Cluster::tls_files)); `Some(ClientAuth::Required)` for mutual TLS. TLS only
    /// unless [`plain_ports`](Self::plain_ports) adds plain-text ones. Needs [`Networking::Pod`], whose addresses
    /// (127.0.0.1) the node certificate names.
    pub tls: Option<ClientAuth>,
    /// Whether nodes keep their writes on disk (AOF, `appendfsync everysec`), so a killed and restarted node
    /// comes back with them; without it a restarted node comes back empty (its `nodes.conf` is kept either way).
    pub persist: bool,
    /// Server settings every node runs with, joined ones too, as `(name, value)` directives of redis.conf (see
    /// [`ClusterSpec::server_config`]); the server checks them before anything starts.
    pub server_config: Vec<(String, String)>,
    /// Lets every client use DEBUG, host clients included (`enable-debug-command yes` where the server has the
    /// setting; servers without it, Redis 6.0, allow DEBUG anyway).
    pub debug_command: bool,
    /// With [`tls`](Self::tls), a plain-text port for every node too, beside its TLS port.
    pub plain_ports: PlainPorts,
}

/// Plain-text ports beside TLS ones: every node then listens on both (see [`ClusterSpec::plain_ports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainPorts {
    /// TLS only.
    #[default]
    Off,
    /// Plain-text ports right after the TLS ones (and their spares): a free range twice as long is found.
    Beside,
    /// Plain-text ports from this one on, in the order of the nodes' TLS ports (the spares' too).
    At(u16),
}

impl std::fmt::Debug for ClusterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("masters", &self.masters)
            .field("replicas", &self.replicas)
            .field("node_timeout", &self.node_timeout)
            .field("first_port", &self.first_port)
            .field("networking", &self.networking)
            .field("spare_ports", &self.spare_ports)
            .field("lifetime", &self.lifetime)
            // Never the password itself.
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("users", &self.users)
            .field("default_user_off", &self.default_user_off)
            .field("tls", &self.tls)
            .field("persist", &self.persist)
            .field("server_config", &self.server_config)
            .field("debug_command", &self.debug_command)
            .field("plain_ports", &self.plain_ports)
            .finish()
    }
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            name: unique_name(),
            image: ImageSource::Recipe(Version::default_version()),
            masters: 3,
            replicas: 1,
            node_timeout: None,
            first_port: None,
            networking: Networking::Pod,
            spare_ports: DEFAULT_SPARE_PORTS,
            lifetime: Lifetime::Test,
            password: None,
            users: Vec::new(),
            default_user_off: false,
            tls: None,
            persist: false,
            server_config: Vec::new(),
            debug_command: false,
            plain_ports: PlainPorts::Off,
        }
    }
}

impl ClusterSpec {
    /// A test's cluster ([`Default`]) running the image `$CLUSTER_IMAGE` names, else the matrix version
    /// `$CLUSTER_VERSION` names (the default one if neither is set).
    pub fn from_env() -> Result<Self> {
        Ok(Self::default().image(ImageSource::from_env()?))
    }

    /// Sets the cluster's name (its containers are called `<name>-<port>`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs a matrix version, its image built here from Debian packages if missing.
    pub fn version(self, version: &'static Version) -> Self {
        self.image(version)
    }

    /// Runs this image: a matrix version, or any image by reference (pulled if missing, where the engine can).
    pub fn image(mut self, image: impl Into<ImageSource>) -> Self {
        self.image = image.into();
        self
    }

    /// Sets the number of masters.
    pub fn masters(mut self, masters: usize) -> Self {
        self.masters = masters;
        self
    }

    /// Sets the number of replicas per master.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets `cluster-node-timeout`.
    pub fn node_timeout(mut self, node_timeout: Duration) -> Self {
        self.node_timeout = Some(node_timeout);
        self
    }

    /// The node timeout the cluster runs with: the one set, or one scaled to its size.
    pub fn effective_node_timeout(&self) -> Duration {
        self.node_timeout
            .unwrap_or_else(|| DEFAULT_NODE_TIMEOUT.max(NODE_TIMEOUT_PER_NODE * self.node_count() as u32))
    }

    /// Puts the first node on `port` (the others follow) instead of a free range.
    pub fn first_port(mut self, port: u16) -> Self {
        self.first_port = Some(port);
        self
    }

    /// Sets how the nodes are networked.
    pub fn networking(mut self, networking: Networking) -> Self {
        self.networking = networking;
        self
    }

    /// Sets how many ports are published beyond the nodes' own, for joins.
    pub fn spare_ports(mut self, spare_ports: usize) -> Self {
        self.spare_ports = spare_ports;
        self
    }

    /// Sets how long the cluster lives.
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets a password on every node (`requirepass`, and `masterauth` so replicas and failovers work).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds an ACL user to every node.
    pub fn user(mut self, user: AclUser) -> Self {
        self.users.push(user);
        self
    }

    /// Turns the `default` user off on every node.
    pub fn default_user_off(mut self) -> Self {
        self.default_user_off = true;
        self
    }

    /// TLS only on every node and link; clients check the nodes against the cluster's CA.
    pub fn tls(mut self) -> Self {
        self.tls = Some(ClientAuth::None);
        self
    }

    /// Mutual TLS: [`security::tls`](Self::tls), and every client must present a certificate the cluster's CA signed.
    pub fn tls_client_auth(mut self) -> Self {
        self.tls = Some(ClientAuth::Required);
        self
    }

    /// Mutual TLS where clients may present a certificate: one the CA did not sign is refused, none is accepted
    /// (`tls-auth-clients optional`).
    pub fn tls_client_auth_optional(mut self) -> Self {
        self.tls = Some(ClientAuth::Optional);
        self
    }

    /// With TLS, a plain-text port for every node too (see [`PlainPorts`]).
    pub fn plain_ports(mut self, plain_ports: PlainPorts) -> Self {
        self.plain_ports = plain_ports;
        self
    }

    /// Adds a server setting every node runs with, joined ones too: a redis.conf directive, e.g.
    /// `server_config("maxmemory-policy", "allkeys-lru")`. The server checks it before anything starts (its own
    /// words if it refuses); settings the harness relies on (ports, cluster mode and its file, announced
    /// addresses, bind, TLS files, dir, credentials, ...) are refused with the reason. Nodes log warnings only
    /// unless `loglevel` is set here.
    pub fn server_config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.server_config.push((name.into(), value.into()));
        self
    }

    /// Adds the settings of a redis.conf fragment (one `name value` directive a line, `#` comments), as
    /// [`server_config`](Self::server_config) does each.
    pub fn server_config_fragment(mut self, text: &str) -> Result<Self> {
        self.server_config.extend(settings::parse_fragment(text)?);
        Ok(self)
    }

    /// Lets every client use DEBUG (see [`ClusterSpec::debug_command`]).
    pub fn debug_command(mut self) -> Self {
        self.debug_command = true;
        self
    }

    /// How many ports the pod publishes for plain-text clients (none without [`PlainPorts`]).
    pub(crate) fn plain_published(&self) -> usize {
        match self.plain_ports {
            PlainPorts::Off => 0,
            PlainPorts::Beside | PlainPorts::At(_) => self.published_count(),
        }
    }

    /// What the nodes are told about credentials.
    fn credentials(&self) -> Credentials {
        Credentials {
            password: self.password.clone(),
            users: self.users.clone(),
            default_user_off: self.default_user_off,
            tls: self.tls,
        }
    }

    /// The secrets of the cluster this spec makes (fresh ones: a generated password or CA differs each time), if
    /// it needs any.
    pub(crate) fn secrets(&self) -> Result<Option<Secrets>> {
        let credentials = self.credentials();
        credentials
            .any()
            .then(|| credentials.secrets(&self.name, secrets_dir(&self.name)))
            .transpose()
    }

    /// Total number of nodes.
    pub fn node_count(&self) -> usize {
        self.masters * (1 + self.replicas)
    }

    /// How many host ports the cluster's pod publishes: the nodes' and the spare ones.
    pub fn published_count(&self) -> usize {
        self.node_count() + self.spare_ports
    }

    /// Rejects specs the servers cannot run; the message says what would work.
    pub fn validate(&self) -> Result<()> {
        if self.masters < 3 {
            bail!(
                Refused,
                "a Redis Cluster needs at least 3 masters (got {}): fewer cannot elect a failover",
                self.masters
            );
        }
        if self.replicas > 10 || self.node_count() > MAX_NODES {
            bail!(
                Refused,
                "{} masters with {} replicas each make {} nodes; at most {MAX_NODES} were measured to become ready on \
                 a 2-core machine (in about 30 s), and at most 10 replicas per master",
                self.masters,
                self.replicas,
                self.node_count()
            );
        }
        if self.spare_ports > 100 {
            bail!(
                Refused,
                "{} spare ports is more than joins need (each costs a proxy process on the host)",
                self.spare_ports
            );
        }
        if let Some(first) = self.first_port {
            let count = match self.networking {
                Networking::Pod => self.published_count(),
                Networking::Bridge => self.node_count(),
            };
            check_ports(u32::from(first), u32::from(first) + count as u32 - 1)?;
            let plain = match self.plain_ports {
                PlainPorts::Off => None,
                PlainPorts::Beside => Some(first + count as u16),
                PlainPorts::At(plain) => Some(plain),
            };
            if let Some(plain) = plain {
                check_plain_ports(first, count, plain)?;
            }
        }
        if self.plain_ports != PlainPorts::Off && (self.tls.is_none() || self.networking != Networking::Pod) {
            bail!(
                Refused,
                "plain-text ports beside TLS ones need TLS (`ClusterSpec::tls`) and the pod networking (the default)"
            );
        }
        settings::validate(&self.server_config)?;
        let node_timeout = self.effective_node_timeout();
        if node_timeout < Duration::from_millis(100) {
            bail!(Refused, "a node timeout under 100 ms would fail healthy nodes");
        }
        if node_timeout > MAX_NODE_TIMEOUT {
            bail!(
                Refused,
                "a node timeout over {} ms would leave a failed master unnoticed for over a minute",
                MAX_NODE_TIMEOUT.as_millis()
            );
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                Refused,
                "cluster name `{}` must be letters, digits, `-` or `_`",
                self.name
            );
        }
        if self.tls.is_some() && self.networking == Networking::Bridge {
            bail!(
                Refused,
                "TLS needs the pod networking (the default): its nodes are at 127.0.0.1, which their certificate \
                 names, while on a bridge network Docker gives each node its address only as it starts"
            );
        }
        keep_switch()?;
        self.credentials().validate()
    }

    /// Keeps the nodes' writes on disk (AOF), so a killed and restarted node comes back with them.
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = persist;
        self
    }

    /// Whether the cluster this spec makes is owned by this process (a test's, unless [`KEEP_ENV`] keeps it).
    pub(crate) fn owned(&self) -> bool {
        self.lifetime == Lifetime::Test && keep_switch().ok().flatten().is_none()
    }

    /// Where the cluster this spec makes keeps its credentials, if it needs any.
    pub(crate) fn secrets_dir(&self) -> Option<PathBuf> {
        self.credentials().any().then(|| secrets_dir(&self.name))
    }

    /// What dropping the handle of this spec's cluster does.
    pub(crate) fn on_drop(&self) -> OnDrop {
        match (self.lifetime, keep_switch().ok().flatten()) {
            (Lifetime::Kept, _) => OnDrop::Leave,
            (Lifetime::Test, None) => OnDrop::Remove,
            (Lifetime::Test, Some(keep)) => keep,
        }
    }
}

/// How a cluster's nodes are networked (see [`crate::cluster::networking`] for what each means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Networking {
    /// One shared namespace per cluster, its ports published on the host's 127.0.0.1; nodes announce 127.0.0.1.
    #[default]
    Pod,
    /// A bridge network per cluster; each node has its own namespace and announces its container address.
    Bridge,
}

impl Networking {
    /// The name used in labels and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pod => "pod",
            Self::Bridge => "bridge",
        }
    }

    /// The networking called `name` (as [`Networking::name`] spells it).
    pub fn named(name: &str) -> Result<Self> {
        match name {
            "pod" => Ok(Self::Pod),
            "bridge" => Ok(Self::Bridge),
            other => Err(Error::refused(format!(
                "unknown networking `{other}`; use `pod` or `bridge`"
            ))),
        }
    }
}

/// What dropping a cluster's handle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDrop {
    /// Remove it.
    Remove,
    /// Leave it: a cluster kept on purpose, or one this handle does not own.
    Leave,
    /// Leave it, and say where it is and how to remove it: a test's, kept by a switch.
    Keep,
    /// Leave it if the thread is panicking (a failed assertion), else remove it.
    KeepOnPanic,
}

/// testcontainers' own switch, honoured as its users expect: `TESTCONTAINERS_COMMAND=keep` keeps every test's
/// cluster as `CLUSTER_TESTS_KEEP=always` does (which, set, wins).
pub const TESTCONTAINERS_COMMAND_ENV: &str = "TESTCONTAINERS_COMMAND";

/// What [`KEEP_ENV`] (or else [`TESTCONTAINERS_COMMAND_ENV`]) asks for, if anything.
pub(crate) fn keep_switch() -> Result<Option<OnDrop>> {
    let var = |name| std::env::var(name).ok();
    keep_asked(var(KEEP_ENV).as_deref(), var(TESTCONTAINERS_COMMAND_ENV).as_deref())
}

fn keep_asked(keep: Option<&str>, testcontainers_command: Option<&str>) -> Result<Option<OnDrop>> {
    match keep {
        None | Some("") => Ok((testcontainers_command == Some("keep")).then_some(OnDrop::Keep)),
        Some("always") => Ok(Some(OnDrop::Keep)),
        Some("on-failure") => Ok(Some(OnDrop::KeepOnPanic)),
        Some(other) => Err(Error::refused(format!(
            "{KEEP_ENV}={other} is not understood; use `always` or `on-failure` (or unset it)"
        ))),
    }
}

/// Refuses node ports `first..=last` outside 1024..=55535: the cluster bus listens on port + 10000.
pub(crate) fn check_ports(first: u32, last: u32) -> Result<()> {
    if first < 1024 || last > 55535 {
        let ports = if first == last {
            format!("port {first}")
        } else {
            format!("ports {first}..{last}")
        };
        bail!(
            Refused,
            "{ports} must lie in 1024..55535 (the cluster bus uses port + 10000); pick others"
        );
    }
    Ok(())
}

/// Refuses plain-text ports from `plain` on, for `count` nodes whose TLS ports begin at `first`, that leave
/// 1024..=65535 or meet the TLS ports or their bus ports (port + 10000): all of them listen in the pod.
fn check_plain_ports(first: u16, count: usize, plain: u16) -> Result<()> {
    let (plain, count, first) = (u32::from(plain), count as u32, u32::from(first));
    let meets = |start: u32| plain < start + count && start < plain + count;
    if plain < 1024 || plain + count - 1 > 65535 || meets(first) || meets(first + 10000) {
        bail!(
            Refused,
            "plain-text ports {plain}..{} must lie in 1024..65535 and clear of the TLS ports {first}..{} and their bus              ports {}..{}; pick others",
            plain + count - 1,
            first + count - 1,
            first + 10000,
            first + 10000 + count - 1
        );
    }
    Ok(())
}

/// A cluster name no other process uses, here or on another machine sharing the engine: `ct` and 8 random hex
/// digits (std's randomly keyed hasher over the pid, the time and a counter), then this process's count.
pub(crate) fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((std::process::id(), std::time::SystemTime::now(), n)) as u32;
    format!("ct{random:08x}x{n}")
}

/// Whether `name` is one [`unique_name`] makes: a test that did not name its cluster takes any name.
pub(crate) fn is_generated_name(name: &str) -> bool {
    let Some((random, count)) = name.strip_prefix("ct").and_then(|rest| rest.split_once('x')) else {
        return false;
    };
    random.len() == 8
        && random.chars().all(|c| c.is_ascii_hexdigit())
        && !count.is_empty()
        && count.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testcontainers_keep_keeps_every_cluster_unless_the_harness_switch_says_otherwise() {
        let asked = |keep, command| keep_asked(keep, command).unwrap();
        assert_eq!(asked(None, None), None);
        assert_eq!(asked(None, Some("remove")), None);
        assert_eq!(asked(None, Some("keep")), Some(OnDrop::Keep));
        assert_eq!(asked(Some(""), Some("keep")), Some(OnDrop::Keep));
        assert_eq!(asked(Some("on-failure"), Some("keep")), Some(OnDrop::KeepOnPanic));
        assert_eq!(asked(Some("always"), None), Some(OnDrop::Keep));
        assert!(keep_asked(Some("sometimes"), Some("keep")).is_err());
    }

    #[test]
    fn node_timeouts_scale_with_big_clusters_unless_set() {
        assert_eq!(ClusterSpec::default().effective_node_timeout(), DEFAULT_NODE_TIMEOUT);
        let big = ClusterSpec::default().masters(50);
        assert_eq!(big.effective_node_timeout(), Duration::from_secs(5));
        let set = big.clone().node_timeout(Duration::from_millis(1500));
        assert_eq!(set.effective_node_timeout(), Duration::from_millis(1500));
        let err = big.masters(51).validate().unwrap_err().to_string();
        assert!(err.contains("102 nodes") && err.contains("at most 100"), "{err}");
    }

    #[test]
    fn node_timeouts_are_bounded() {
        let spec = |ms| ClusterSpec::default().node_timeout(Duration::from_millis(ms));
        assert!(spec(1000).validate().is_ok());
        assert!(spec(60_000).validate().is_ok());
        let err = spec(u64::MAX).validate().unwrap_err().to_string();
        assert!(err.contains("60000 ms"), "{err}");
    }

    #[test]
    fn default_names_are_unique_and_valid() {
        let names: std::collections::BTreeSet<String> = (0..1000).map(|_| ClusterSpec::default().name).collect();
        assert_eq!(names.len(), 1000);
        assert!(
            names
                .iter()
                .all(|n| ClusterSpec::default().name(n.clone()).validate().is_ok())
        );
    }

    #[test]
    fn builders_and_struct_update_agree() {
        let built = ClusterSpec::default().name("x").masters(4).replicas(2).spare_ports(0);
        let updated = ClusterSpec {
            masters: 4,
            replicas: 2,
            spare_ports: 0,
            ..ClusterSpec::default().name("x")
        };
        assert_eq!(format!("{built:?}"), format!("{updated:?}"));
        assert_eq!(built.node_count(), 12);
        assert!(ClusterSpec::default().masters(2).validate().is_err());
    }
}
