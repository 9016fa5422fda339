//! What a cluster's nodes run: a matrix version's image built here from Debian packages, or any image given by
//! reference that holds `redis-server` or `valkey-server` (the official `redis:<tag>` and `valkey/valkey:<tag>`,
//! a local tag, a company's own).
//!
//! An image given by reference is used as it is: it is pulled if missing (where the engine can pull), its server
//! binary is found by trying candidates (the image's entry point and command, then its `PATH`) with `--version`,
//! which also tells the server and version; the nodes run that binary as their entry point (whatever entry point
//! script the image has), in a fresh `/data` (a tmpfs any uid can write, since nodes run as uid = port and an
//! image's own `/data` may belong to its server user). The cluster's features are detected from the servers, not
//! read from a version table.

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::docker::{ContainerSpec, Docker, ImageInfo};
use crate::images::build;
use crate::images::versions::Version;
use crate::{Error, Remedy, Result, bail};

/// Label of a node container naming the image it was made from, as given (a tag or a reference).
const LABEL_IMAGE_REF: &str = "cluster-tests.image-ref";
/// Label of a node container (and of a node image built here) holding the server binary's path in the image.
const LABEL_SERVER_BIN: &str = "cluster-tests.server-bin";
/// Label of a node container (and of a node image built here) holding the client binary's path in the image.
const LABEL_CLI_BIN: &str = "cluster-tests.cli-bin";
/// Label of a node container (and of a node image built here) naming the server and version (`Redis 7.0.15`).
const LABEL_SERVER: &str = "cluster-tests.server";
/// Label of a short-lived container that probes an image for its binaries (removed when the probe ends).
const LABEL_PROBE: &str = "cluster-tests.probe";

/// The environment variable that makes the tests run an image given by reference (it wins over
/// `$CLUSTER_VERSION`).
pub const IMAGE_ENV: &str = "CLUSTER_IMAGE";
/// How long a pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one probe of a candidate binary may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// Where a node's data lives in an image given by reference (a tmpfs mounted there).
const DATA_DIR: &str = "/data";
/// The `PATH` assumed for an image whose config sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a cluster's node image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A matrix version, built here from its Debian recipe when missing.
    Recipe(&'static Version),
    /// Any image by reference (`redis:7.4`, `valkey/valkey:8.1`, `registry.example.com/redis:hardened`).
    Reference(String),
}

impl From<&'static Version> for ImageSource {
    fn from(version: &'static Version) -> Self {
        Self::Recipe(version)
    }
}

impl ImageSource {
    /// `$CLUSTER_IMAGE` if set, else the version of `$CLUSTER_VERSION` (or the default one).
    pub fn from_env() -> Result<Self> {
        match std::env::var(IMAGE_ENV) {
            Ok(reference) if !reference.trim().is_empty() => Ok(Self::Reference(reference.trim().to_owned())),
            _ => Ok(Self::Recipe(Version::from_env()?)),
        }
    }

    /// The matrix version, when the image is built from its recipe.
    pub fn version(&self) -> Option<&'static Version> {
        match self {
            Self::Recipe(v) => Some(v),
            Self::Reference(_) => None,
        }
    }

    /// How it is named in labels and messages: the version's name, or the reference.
    pub fn name(&self) -> &str {
        match self {
            Self::Recipe(v) => &v.name,
            Self::Reference(r) => r,
        }
    }
}

/// A node image ready to run: which image, which binaries, which server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    /// The image containers are made from (a tag, a reference or an id).
    pub reference: String,
    /// The matrix version it was built from, if it was.
    pub version: Option<&'static Version>,
    /// Absolute path of the server binary inside the image: the nodes' entry point.
    pub server_bin: String,
    /// Absolute path of the command-line client (`redis-cli`, `valkey-cli`), if the image has one.
    pub cli_bin: Option<String>,
    /// Server and version as the binary reports them, e.g. `Redis 7.0.15`.
    pub server: String,
    /// Whether nodes get a fresh data directory (a tmpfs at `/data`) rather than the image's own.
    pub fresh_data_dir: bool,
}

impl NodeImage {
    /// The node image of `source`: built if it is a missing recipe, pulled if it is a missing reference (with
    /// progress), and its binaries found.
    pub async fn resolve(docker: &Docker, source: &ImageSource) -> Result<Self> {
        match source {
            ImageSource::Recipe(version) => {
                let (tag, outcome, took) = build::ensure_built(docker, version).await?;
                if outcome == build::BuildOutcome::Built {
                    tracing::info!("image: built {tag} ({:.1} s)", took.as_secs_f64());
                }
                Ok(Self::of_recipe(version, tag))
            }
            ImageSource::Reference(reference) => Self::of_reference(docker, reference).await,
        }
    }

    /// The node image of a version built here, known without asking Docker.
    fn of_recipe(version: &'static Version, tag: String) -> Self {
        Self {
            reference: tag,
            version: Some(version),
            server_bin: version.server_bin.clone(),
            cli_bin: Some(version.cli_bin.clone()),
            server: version.server.clone(),
            fresh_data_dir: false,
        }
    }

    async fn of_reference(docker: &Docker, reference: &str) -> Result<Self> {
        // A malformed reference is refused by the engine's inspect already.
        let local = docker
            .image_info(reference)
            .await
            .map_err(|e| not_available(reference, &e))?;
        let info = match local {
            Some(info) => info,
            None => {
                tracing::info!("image: {reference} is not here; pulling it");
                let say = |line: &str| tracing::info!("pull: {line}");
                docker
                    .pull(reference, &say, PULL_TIMEOUT)
                    .await
                    .map_err(|e| not_available(reference, &e))?;
                docker
                    .image_info(reference)
                    .await?
                    .ok_or_else(|| Error::docker(format!("{reference} was pulled but Docker does not find it")))?
            }
        };
        if !info.architecture.is_empty() && info.architecture != build::host_architecture() {
            tracing::info!(
                "image: {reference} is for {}, this host is {}: it runs only under emulation (binfmt), slowly",
                info.architecture,
                build::host_architecture()
            );
        }
        let (server_bin, server) = find_server(docker, reference, &info).await?;
        let cli_bin = find_cli(docker, reference, &info, &server_bin).await;
        if cli_bin.is_none() {
            tracing::info!(
                "image: {reference} has no redis-cli or valkey-cli; the cluster works, `Cluster::host_cli` and \
                 an interactive cli in a node do not"
            );
        }
        Ok(Self {
            reference: reference.to_owned(),
            version: None,
            server_bin,
            cli_bin,
            server,
            fresh_data_dir: true,
        })
    }

    /// The labels that let a cluster found later run more nodes of this image without probing it again.
    pub(crate) fn labels(&self) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_IMAGE_REF.to_owned(), self.reference.clone()),
            (LABEL_SERVER_BIN.to_owned(), self.server_bin.clone()),
            (LABEL_SERVER.to_owned(), self.server.clone()),
        ]);
        if let Some(cli) = &self.cli_bin {
            labels.insert(LABEL_CLI_BIN.to_owned(), cli.clone());
        }
        labels
    }

    /// The node image a cluster's container was made with, read from its labels (`image` is the container's own,
    /// `version` the matrix version it names, if any).
    pub(crate) fn from_labels(
        labels: &HashMap<String, String>,
        image: &str,
        version: Option<&'static Version>,
    ) -> Result<Self> {
        match (labels.get(LABEL_SERVER_BIN), version) {
            (Some(server_bin), _) => Ok(Self {
                reference: labels.get(LABEL_IMAGE_REF).cloned().unwrap_or_else(|| image.to_owned()),
                version,
                server_bin: server_bin.clone(),
                cli_bin: labels.get(LABEL_CLI_BIN).cloned(),
                server: labels.get(LABEL_SERVER).cloned().unwrap_or_default(),
                fresh_data_dir: version.is_none(),
            }),
            // A cluster made before images were given by reference: its version says it all.
            (None, Some(version)) => Ok(Self::of_recipe(version, image.to_owned())),
            (None, None) => bail!(
                Refused,
                "the cluster's containers do not say which server binary they run"
            ),
        }
    }

    /// How the cluster's labels name what it runs: the matrix version, or the image reference.
    pub(crate) fn source_name(&self) -> &str {
        self.version.map_or(&self.reference, |v| &v.name)
    }

    /// The command-line client, or an error saying the image has none.
    pub fn cli(&self) -> Result<&str> {
        self.cli_bin.as_deref().ok_or_else(|| {
            Error::refused(format!(
                "image {} has no redis-cli or valkey-cli; send commands through `Cluster::client` instead",
                self.reference
            ))
            .with_remedy(Remedy::NoImageCli)
        })
    }

    /// Makes `container` run this image's server: its image, the server binary as entry point, and a fresh data
    /// directory where the image's own may not be writable.
    pub(crate) fn apply(&self, container: &mut ContainerSpec) {
        container.image = self.reference.clone();
        container.entrypoint = Some(vec![self.server_bin.clone()]);
        container.labels.extend(self.labels());
        if self.fresh_data_dir {
            container.tmpfs.push(DATA_DIR.to_owned());
            container.args.extend(["--dir".to_owned(), DATA_DIR.to_owned()]);
        }
    }
}

/// The error for an image that is neither here nor pullable: what the engine said, and what works without a
/// registry.
fn not_available(reference: &str, e: &Error) -> Error {
    Error::with_kind(
        e.kind(),
        format!(
            "image {reference} is not on this machine and could not be pulled: {e}\n\
             Without a registry, use a local image instead: `ImageSource::Recipe` builds a version of the matrix \
             from Debian packages ({}), or give one `docker images` lists",
            Version::names().join(", ")
        ),
    )
    .with_remedy(Remedy::LocalImage)
}

/// The directories of `info`'s `PATH`.
fn path_dirs(info: &ImageInfo) -> Vec<String> {
    let path = info.path.as_deref().unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

/// Candidate paths of a binary ending in `suffix` (`-server`, `-cli`): those the image's labels, entry point and
/// command name, then each of `names` in each `PATH` directory.
fn candidates(info: &ImageInfo, label: &str, suffix: &str, names: &[&str]) -> Vec<String> {
    let dirs = path_dirs(info);
    let mut found: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if !found.contains(&p) {
            found.push(p);
        }
    };
    if let Some(p) = info.labels.get(label).filter(|p| p.starts_with('/')) {
        push(p.clone());
    }
    for word in info.entrypoint.iter().chain(&info.cmd) {
        let base = word.rsplit('/').next().unwrap_or(word);
        if !base.ends_with(suffix) {
            continue;
        }
        if word.starts_with('/') {
            push(word.clone());
        } else {
            dirs.iter().for_each(|d| push(format!("{d}/{base}")));
        }
    }
    for dir in &dirs {
        for name in names {
            push(format!("{dir}/{name}"));
        }
    }
    found
}

/// Runs `bin --version` in `reference`; its output if it ran and exited 0.
async fn probe(docker: &Docker, reference: &str, bin: &str) -> Option<String> {
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let spec = ContainerSpec {
        name: format!("cluster-tests-probe-{}-{n}", std::process::id()),
        image: reference.to_owned(),
        network: "none".into(),
        entrypoint: Some(vec![bin.to_owned()]),
        args: vec!["--version".into()],
        labels: HashMap::from([(LABEL_PROBE.to_owned(), crate::engine::owner::this_process())]),
        ..Default::default()
    };
    match docker.run_to_end(&spec, PROBE_TIMEOUT).await {
        Ok((0, output)) => Some(output),
        _ => None,
    }
}

/// The server binary of an image and the server it is (`Redis 7.4.1`), from its `--version`.
async fn find_server(docker: &Docker, reference: &str, info: &ImageInfo) -> Result<(String, String)> {
    let tried = candidates(info, LABEL_SERVER_BIN, "-server", &["valkey-server", "redis-server"]);
    for bin in &tried {
        if let Some(server) = probe(docker, reference, bin)
            .await
            .as_deref()
            .and_then(parse_server_version)
        {
            return Ok((bin.clone(), server));
        }
    }
    bail!(
        Refused,
        "image {reference} has no redis-server or valkey-server that runs: tried {} (its entry point {:?}, command \
         {:?}, PATH {})",
        tried.join(", "),
        info.entrypoint,
        info.cmd,
        info.path.as_deref().unwrap_or("unset")
    )
}

/// The command-line client of an image: next to the server first, then on its `PATH`.
async fn find_cli(docker: &Docker, reference: &str, info: &ImageInfo, server_bin: &str) -> Option<String> {
    let mut tried = Vec::new();
    if let Some(prefix) = server_bin.strip_suffix("-server") {
        tried.push(format!("{prefix}-cli"));
    }
    for c in candidates(info, LABEL_CLI_BIN, "-cli", &["valkey-cli", "redis-cli"]) {
        if !tried.contains(&c) {
            tried.push(c);
        }
    }
    for bin in tried {
        if probe(docker, reference, &bin)
            .await
            .is_some_and(|out| out.contains("-cli "))
        {
            return Some(bin);
        }
    }
    None
}

/// `Redis server v=7.0.15 sha=...` or `Valkey server v=8.0.1 ...` -> `Redis 7.0.15`, `Valkey 8.0.1`.
pub fn parse_server_version(output: &str) -> Option<String> {
    let line = output.lines().find(|l| l.contains(" server v="))?.trim();
    let name = line.split_whitespace().next()?;
    let version = line.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
    Some(format!("{name} {version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_are_read_from_both_servers() {
        let redis = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=abc\n";
        assert_eq!(parse_server_version(redis).as_deref(), Some("Redis 7.0.15"));
        let valkey = "Valkey server v=8.0.1 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=abc\n";
        assert_eq!(parse_server_version(valkey).as_deref(), Some("Valkey 8.0.1"));
        assert_eq!(parse_server_version("redis-cli 7.0.15"), None);
    }

    #[test]
    fn candidates_follow_entry_point_command_then_path() {
        // The official redis image: an entry point script, `redis-server` as command, binaries in /usr/local/bin.
        let info = ImageInfo {
            entrypoint: vec!["docker-entrypoint.sh".into()],
            cmd: vec!["redis-server".into()],
            path: Some("/usr/local/bin:/usr/bin".into()),
            ..Default::default()
        };
        let c = candidates(&info, LABEL_SERVER_BIN, "-server", &["valkey-server", "redis-server"]);
        assert_eq!(
            c,
            [
                "/usr/local/bin/redis-server",
                "/usr/bin/redis-server",
                "/usr/local/bin/valkey-server",
                "/usr/bin/valkey-server"
            ]
        );
        // Ours: the label names it.
        let mut ours = ImageInfo::default();
        ours.labels
            .insert(LABEL_SERVER_BIN.into(), "/usr/bin/redis-server".into());
        assert_eq!(
            candidates(&ours, LABEL_SERVER_BIN, "-server", &[])[0],
            "/usr/bin/redis-server"
        );
    }
}
