//! A made cluster's identity and the label format that carries it: the label keys, the labels written on every
//! container and network of a cluster, and the [`Identity`] read back from them. Docker is the source of truth,
//! so this file is the one place that knows how a cluster is written into it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::docker::Container;
use crate::engine::owner;
use crate::images::node_image::NodeImage;
use crate::images::versions::Version;
use crate::server::settings;
use crate::spec::{ClusterSpec, Networking};
use crate::{Error, Result};

/// Label naming the cluster a container or network belongs to.
pub(crate) const LABEL_CLUSTER: &str = "cluster-tests.cluster";
/// Label holding the port a node container listens on.
pub(crate) const LABEL_PORT: &str = "cluster-tests.port";
/// Label holding the server version name a cluster runs.
pub(crate) const LABEL_VERSION: &str = "cluster-tests.version";
/// Label holding the cluster's node timeout in milliseconds.
pub(crate) const LABEL_NODE_TIMEOUT: &str = "cluster-tests.node-timeout-ms";
/// Label holding the port of a cluster's first node (a joining node takes the lowest free port from there).
pub(crate) const LABEL_FIRST_PORT: &str = "cluster-tests.first-port";
/// Label saying how a cluster's nodes are networked (`pod` or `bridge`, see [`crate::Networking`]).
pub(crate) const LABEL_NETWORKING: &str = "cluster-tests.networking";
/// Label holding the host port range a pod publishes on 127.0.0.1 (`first-last`).
pub(crate) const LABEL_PUBLISHED: &str = "cluster-tests.published";
/// Label holding the host port range a pod publishes for plain-text clients beside TLS ones (`first-last`).
pub(crate) const LABEL_PLAIN_PUBLISHED: &str = "cluster-tests.plain-published";
/// Label saying whether a cluster's nodes keep their writes on disk (`true` or `false`, see
/// [`crate::ClusterSpec::persist`]).
pub(crate) const LABEL_PERSIST: &str = "cluster-tests.persist";
/// Label holding the server settings every node runs with, as config text (see [`ClusterSpec::server_config`]).
pub(crate) const LABEL_SETTINGS: &str = "cluster-tests.settings";
/// Label holding the plain-text port of the first node of a TLS cluster that has them beside its TLS ports.
pub(crate) const LABEL_PLAIN_PORT: &str = "cluster-tests.plain-port";
/// Label marking the container that holds a pod's network namespace (it runs no node).
pub(crate) const LABEL_HOLDER: &str = "cluster-tests.holder";
/// Label on a holder that runs the fault tools image as root with `NET_ADMIN` (its pod is fenced): fault rules
/// go in by an exec in it, with no container of their own.
pub(crate) const LABEL_FENCED: &str = "cluster-tests.fenced";
/// Label holding the directory where a cluster that needs credentials keeps them (the path, never a secret).
pub(crate) const LABEL_SECRETS: &str = "cluster-tests.secrets";
/// Label naming the test process that owns a cluster, so that a later run can remove it if that process died
/// (absent on clusters the CLI keeps).
pub(crate) const LABEL_OWNER: &str = "cluster-tests.owner";

/// Label naming the process that made a container or network (written as owner values are), so that a create or
/// join cut short removes only what it made itself, never what a concurrent one made.
pub(crate) const LABEL_MAKER: &str = "cluster-tests.made-by";

/// Label holding the pool a cluster belongs to ([`pool_key`]): clusters of one pool are interchangeable, so a warm
/// one of the pool serves any test of that spec (see [`crate::cluster::warm`]).
pub(crate) const LABEL_POOL: &str = "cluster-tests.pool";
/// Label of a warm cluster's marker containers (created, never started): `offer`, `lease` or `release`.
pub(crate) const LABEL_MARK: &str = "cluster-tests.mark";
/// Label of a lease: the process that claimed the cluster (written as owner values are).
pub(crate) const LABEL_LEASED_BY: &str = "cluster-tests.leased-by";
/// Label of the offer of a cluster a test made for a keeper's pool: what the cluster was when offered (see
/// [`crate::cluster::recycle::Fingerprint`]).
pub(crate) const LABEL_PRINT: &str = "cluster-tests.print";
/// Label of a release: the keeper process asked to remove the cluster.
pub(crate) const LABEL_REAPER: &str = "cluster-tests.reaper";
/// Label of a release: whether the keeper may recycle the cluster (`true`: no fault rule was set in its network).
pub(crate) const LABEL_RECYCLE: &str = "cluster-tests.recycle";

/// The pool of the clusters `spec` makes with `image`: the image and the shape (masters, replicas, node timeout,
/// spare ports).
pub(crate) fn pool_key(spec: &ClusterSpec, image: &NodeImage) -> String {
    format!(
        "{}|{}x{}|{}ms|{}spare",
        image.reference,
        spec.masters,
        spec.replicas,
        spec.effective_node_timeout().as_millis(),
        spec.spare_ports
    )
}

/// The label filter that selects everything of cluster `name`.
pub(crate) fn cluster_filter(name: &str) -> String {
    format!("{LABEL_CLUSTER}={name}")
}

/// The facts of a made cluster, written into every label it carries and read back from them.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) image: NodeImage,
    pub(crate) node_timeout: Duration,
    /// The port of the first node; settled when the pod gets its port range.
    pub(crate) first_port: u16,
    pub(crate) networking: Networking,
    /// The process that owns it (tests); `None` for clusters kept until removed on purpose.
    pub(crate) owner: Option<String>,
    /// Where its credentials are kept, if it needs any (see [`crate::security::credentials`]).
    pub(crate) secrets_dir: Option<PathBuf>,
    /// Whether its nodes keep their writes on disk (see [`ClusterSpec::persist`]).
    pub(crate) persist: bool,
    /// Its pool ([`pool_key`]).
    pub(crate) pool: String,
    /// The server settings every node runs with, as the server accepted them (see [`crate::cluster::probe`]).
    pub(crate) settings: Vec<(String, String)>,
    /// The plain-text port of the first node, where nodes have one beside their TLS port; the others follow as
    /// the TLS ports do. Settled with the first port.
    pub(crate) plain_first_port: Option<u16>,
}

impl Identity {
    /// The identity of the cluster `spec` describes, running `image`, its first node on `first_port`.
    pub(crate) fn new(spec: &ClusterSpec, first_port: u16, image: NodeImage) -> Self {
        Self {
            name: spec.name.clone(),
            node_timeout: spec.effective_node_timeout(),
            first_port,
            networking: spec.networking,
            owner: spec.owned().then(owner::this_process),
            secrets_dir: spec.secrets_dir(),
            persist: spec.persist,
            pool: pool_key(spec, &image),
            image,
            settings: Vec::new(),
            plain_first_port: None,
        }
    }

    /// The plain-text port of this cluster's node on the TLS port `port`, if nodes have one.
    pub(crate) fn plain_port(&self, port: u16) -> Option<u16> {
        self.plain_first_port.map(|plain| plain + (port - self.first_port))
    }

    /// Reads the identity of cluster `name` back from the labels of its `containers` (at least one).
    pub(crate) fn read(name: &str, containers: &[Container]) -> Result<Self> {
        let first = containers
            .first()
            .ok_or_else(|| Error::refused(format!("cluster `{name}` has no container")))?;
        let label = |key: &str| first.labels.get(key).cloned().unwrap_or_default();
        // Labels this project wrote; one that does not parse is named rather than replaced by a default.
        let parsed = |key: &str| -> Result<u64> {
            label(key).parse().map_err(|_| {
                Error::refused(format!(
                    "container {} has label {key}={:?}, which is not a number; was it made by this project?",
                    first.name,
                    label(key)
                ))
            })
        };
        // The node image as a node's labels record it (the holder's carry the same).
        let node = containers
            .iter()
            .find(|c| c.labels.contains_key(LABEL_PORT))
            .unwrap_or(first);
        let version = Version::named(&label(LABEL_VERSION)).ok();
        let first_port =
            u16::try_from(parsed(LABEL_FIRST_PORT)?).map_err(|_| Error::refused("first port out of range"))?;
        Ok(Self {
            name: name.to_owned(),
            image: NodeImage::from_labels(&node.labels, &node.image, version)?,
            node_timeout: Duration::from_millis(parsed(LABEL_NODE_TIMEOUT)?),
            first_port,
            networking: Networking::named(&label(LABEL_NETWORKING))?,
            owner: first.labels.get(LABEL_OWNER).cloned(),
            secrets_dir: first.labels.get(LABEL_SECRETS).map(PathBuf::from),
            persist: label(LABEL_PERSIST) == "true",
            pool: label(LABEL_POOL),
            settings: settings::parse_fragment(&label(LABEL_SETTINGS))?,
            plain_first_port: match first.labels.get(LABEL_PLAIN_PORT) {
                Some(_) => Some(
                    u16::try_from(parsed(LABEL_PLAIN_PORT)?).map_err(|_| Error::refused("plain port out of range"))?,
                ),
                None => None,
            },
        })
    }

    /// How long one step of making or healing a cluster of `nodes` nodes may take (forming, a failover, a join):
    /// several node timeouts, plus room for a busy machine and a quarter of a second per node (a 100-node cluster
    /// needs about 10 s more to be met, gossiped and checked than a small one); at most about 6 minutes, as the
    /// node timeout and the number of nodes are bounded.
    pub(crate) fn step_timeout(&self, nodes: usize) -> Duration {
        self.node_timeout * 5 + Duration::from_secs(20) + Duration::from_millis(250) * nodes as u32
    }

    /// Labels put on every container and network this process makes for the cluster.
    pub(crate) fn labels(&self) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_CLUSTER.to_owned(), self.name.clone()),
            (LABEL_VERSION.to_owned(), self.image.source_name().to_owned()),
            (LABEL_NODE_TIMEOUT.to_owned(), self.node_timeout.as_millis().to_string()),
            (LABEL_FIRST_PORT.to_owned(), self.first_port.to_string()),
            (LABEL_NETWORKING.to_owned(), self.networking.name().to_owned()),
            (LABEL_MAKER.to_owned(), owner::this_process()),
            (LABEL_PERSIST.to_owned(), self.persist.to_string()),
            (LABEL_POOL.to_owned(), self.pool.clone()),
        ]);
        if let Some(owner) = &self.owner {
            labels.insert(LABEL_OWNER.to_owned(), owner.clone());
        }
        if let Some(dir) = &self.secrets_dir {
            labels.insert(LABEL_SECRETS.to_owned(), dir.display().to_string());
        }
        if !self.settings.is_empty() {
            labels.insert(LABEL_SETTINGS.to_owned(), settings::config_text(&self.settings));
        }
        if let Some(plain) = self.plain_first_port {
            labels.insert(LABEL_PLAIN_PORT.to_owned(), plain.to_string());
        }
        labels
    }

    /// The labels of this cluster's node on `port`.
    pub(crate) fn node_labels(&self, port: u16) -> HashMap<String, String> {
        let mut labels = self.labels();
        labels.insert(LABEL_PORT.to_owned(), port.to_string());
        labels
    }

    /// The labels of this cluster's pod holder, publishing host ports `first..=last`.
    pub(crate) fn holder_labels(&self, first: u16, last: u16) -> HashMap<String, String> {
        let mut labels = self.labels();
        labels.insert(LABEL_HOLDER.to_owned(), "yes".to_owned());
        labels.insert(LABEL_PUBLISHED.to_owned(), format!("{first}-{last}"));
        labels
    }
}

/// The port of a node container, from its labels (`None` for the pod's holder).
pub(crate) fn node_port(labels: &HashMap<String, String>) -> Option<u16> {
    labels.get(LABEL_PORT)?.parse().ok()
}

/// How a container's cluster is networked, from its labels (a cluster made before the label was: a bridge).
pub(crate) fn networking_of(labels: &HashMap<String, String>) -> Result<Networking> {
    labels
        .get(LABEL_NETWORKING)
        .map_or(Ok(Networking::Bridge), |n| Networking::named(n))
}

/// The host ports a pod's holder publishes for nodes, from its labels.
pub(crate) fn published_of(labels: &HashMap<String, String>) -> Option<std::ops::RangeInclusive<u16>> {
    range_label(labels, LABEL_PUBLISHED)
}

/// The host ports a pod's holder publishes for plain-text clients beside TLS ones, from its labels.
pub(crate) fn plain_published_of(labels: &HashMap<String, String>) -> Option<std::ops::RangeInclusive<u16>> {
    range_label(labels, LABEL_PLAIN_PUBLISHED)
}

fn range_label(labels: &HashMap<String, String>, key: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (first, last) = labels.get(key)?.split_once('-')?;
    Some(first.parse().ok()?..=last.parse().ok()?)
}
