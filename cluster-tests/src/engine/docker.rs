//! The one place that talks to the Docker engine: labelled networks and node containers.
//!
//! Every container the harness starts is a testcontainers [`ContainerRequest`] started with [`AsyncRunner`]
//! ([`Docker::run`], [`Docker::run_to_end`]); everything testcontainers does not do (listing by label, images,
//! networks, exec, pause, the never-started marker containers of the warm pool) goes through the
//! `bollard::Docker` testcontainers configured ([`docker_client_instance`]), so there is one configured client.
//!
//! Everything the project makes carries the cluster label (see [`crate::cluster::identity`]), so what exists is
//! always read back from Docker by label; no state is kept anywhere else.
//!
//! Longer than most modules on purpose: it is the whole engine surface the harness uses (images, networks,
//! containers, exec, logs), each call a few lines that share the client, its timeout and the private error
//! mapping (`port_taken`, `is_not_found`, `is_removal_in_progress`); split by resource, every part would need
//! those helpers, and the one home for "how the harness talks to Docker" would be gone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use testcontainers::bollard;
use testcontainers::bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, NetworkCreateRequest, PortBinding,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use testcontainers::core::IntoContainerPort;
use testcontainers::core::client::{ClientError, docker_client_instance};
use testcontainers::core::error::WaitContainerError;
use testcontainers::runners::AsyncRunner;
use testcontainers::{
    ContainerAsync, ContainerRequest, CopyTargetOptions, GenericImage, ImageExt, ReuseDirective, TestcontainersError,
};

use crate::{Error, ErrorKind, Result};

/// The only host address node ports are ever published on.
pub(crate) const LOOPBACK: &str = "127.0.0.1";

/// How long one call to the Docker engine may take before it is given up.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long testcontainers may take to start a container (create, copy its files, start).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Label that tells apart every container this process starts (`<pid>-<count>`): see [`Docker::run`].
const LABEL_START: &str = "cluster-tests.start";

/// Mode of the files copied into a container: testcontainers' copy makes them owned by root:0, and every
/// container of the harness runs with group 0 (see [`ContainerSpec::user`]), so its processes read them and no
/// other uid's can.
const FILE_MODE: u32 = 0o640;

/// A connection to the Docker engine.
#[derive(Clone)]
pub struct Docker {
    api: bollard::Docker,
}

impl std::fmt::Debug for Docker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self.api.client_version();
        f.debug_struct("Docker")
            .field("api_version", &version.to_string())
            .finish()
    }
}

/// What it takes to start one container.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Host name inside the container (not allowed when it shares another container's network).
    pub hostname: Option<String>,
    /// Image tag.
    pub image: String,
    /// Docker network mode: a network's name, `container:<id>` to share that container's namespace, or `host`.
    pub network: String,
    /// User (`uid`) the entry point runs as, always with group 0, which owns the container's [`PrivateFile`]s;
    /// the image's default when absent.
    pub user: Option<String>,
    /// Ports published on the host's 127.0.0.1 only, each on the same port number as inside.
    pub published: Vec<u16>,
    /// Entry point instead of the image's.
    pub entrypoint: Option<Vec<String>>,
    /// Arguments passed to the entry point.
    pub args: Vec<String>,
    /// Labels set on the container.
    pub labels: HashMap<String, String>,
    /// Paths where an empty tmpfs writable by every user is mounted (e.g. a data directory the node's uid could
    /// not write in the image).
    pub tmpfs: Vec<String>,
    /// Files copied into the container before it starts.
    pub files: Vec<PrivateFile>,
    /// Capabilities added to the container's defaults (e.g. `NET_ADMIN` for the fault tools).
    pub cap_add: Vec<String>,
}

/// A file copied into a container before it starts (testcontainers' `with_copy_to`), owned by root:0, mode 0640:
/// readable by the container's own user (which runs with group 0) and no other uid. A server's config holding a
/// password goes in this way, never on a command line or in a label, which `docker inspect` shows. Its
/// directories are made as needed (owned by root, mode 0755).
#[derive(Clone, Default)]
pub(crate) struct PrivateFile {
    /// Absolute path inside the container.
    pub path: String,
    /// What it holds.
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for PrivateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Its contents may be a secret.
        f.debug_struct("PrivateFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .finish()
    }
}

/// A local image, as Docker reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    /// Image id (`sha256:...`).
    pub id: String,
    /// Its tags (`repo:tag`).
    pub tags: Vec<String>,
    /// CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Size in bytes.
    pub size: u64,
    /// Entry point of its config.
    pub entrypoint: Vec<String>,
    /// Default command of its config.
    pub cmd: Vec<String>,
    /// `PATH` of its config's environment, if set.
    pub path: Option<String>,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// A network, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Network {
    /// Network id: what the harness refers to it by, since Docker 20.10 lets several networks share a name.
    pub id: String,
    /// Network name.
    pub name: String,
    /// When it was made, in nanoseconds since the Unix epoch (0 if Docker did not say).
    pub created: i128,
    /// The network's labels.
    pub labels: HashMap<String, String>,
}

/// A container of the project, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Container {
    /// Container id.
    pub id: String,
    /// Container name, without Docker's leading slash.
    pub name: String,
    /// Image the container runs.
    pub image: String,
    /// Address on the cluster's network (absent while the container is not running).
    pub ip: Option<IpAddr>,
    /// Id of the network it is attached to (absent when it shares another container's namespace).
    pub network_id: Option<String>,
    /// Whether the container is running.
    pub running: bool,
    /// Docker's state of it: `running`, `paused`, `exited`, `created`, ...
    pub state: String,
    /// The container's labels.
    pub labels: HashMap<String, String>,
}

impl Docker {
    /// The Docker client testcontainers configured (`DOCKER_HOST`, `~/.testcontainers.properties`, else the local
    /// socket), once the engine answers. It sends no API version: the engine serves its own (the `engine_guard`
    /// test holds that).
    pub async fn connect() -> Result<Self> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::docker(format!(
                "cannot reach the Docker engine testcontainers is configured for (DOCKER_HOST, \
                 ~/.testcontainers.properties, else /var/run/docker.sock): {e}\n\
                 Is the Docker daemon running, and may this user use it (`docker info` tells)?"
            ))
        };
        let connecting = async {
            let api = docker_client_instance().await.map_err(|e| unreachable(&e))?;
            let api = api.with_timeout(DOCKER_TIMEOUT);
            api.ping().await.map_err(|e| unreachable(&e))?;
            Ok(Self { api })
        };
        tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .map_err(|_| unreachable(&"no answer in 10 s"))?
    }

    /// Whether the engine answers, within `within`, the two listings every cluster operation needs: running
    /// containers and networks. A ping is not enough: Docker 20.10 before 20.10.27 can deadlock in its network
    /// controller (moby/libnetwork#2679) and still answer pings, while every container start, stop and network
    /// call waits for good.
    pub async fn answers(&self, within: Duration) -> Result<()> {
        let listings = async {
            self.api.list_containers(None).await?;
            self.api.list_networks(None).await?;
            Ok::<_, Error>(())
        };
        tokio::time::timeout(within, listings).await.map_err(|_| {
            Error::with_kind(
                ErrorKind::Timeout,
                format!(
                    "the Docker engine did not list its containers and networks within {} s",
                    within.as_secs()
                ),
            )
        })?
    }

    /// The engine's version and API version (`20.10.24`, `1.41`).
    pub async fn version(&self) -> Result<(String, String)> {
        let v = self.api.version().await?;
        Ok((v.version.unwrap_or_default(), v.api_version.unwrap_or_default()))
    }

    /// Whether an image with this tag exists locally.
    pub(crate) async fn image_exists(&self, tag: &str) -> Result<bool> {
        match self.api.inspect_image(tag).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A local image, or `None` when there is none of that reference.
    pub(crate) async fn image_info(&self, reference: &str) -> Result<Option<ImageInfo>> {
        let image = match self.api.inspect_image(reference).await {
            Ok(image) => image,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(Error::from(e).context(format!("inspecting image {reference}"))),
        };
        let config = image.config.unwrap_or_default();
        Ok(Some(ImageInfo {
            id: image.id.unwrap_or_default(),
            tags: image.repo_tags.unwrap_or_default(),
            architecture: image.architecture.unwrap_or_default(),
            size: image.size.unwrap_or_default().max(0) as u64,
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            path: config
                .env
                .unwrap_or_default()
                .into_iter()
                .find_map(|e| e.strip_prefix("PATH=").map(str::to_owned)),
            labels: config.labels.unwrap_or_default(),
        }))
    }

    /// The local images carrying the label `filter` (`key` or `key=value`), each as [`Docker::image_info`] gives.
    pub(crate) async fn images_labelled(&self, filter: &str) -> Result<Vec<ImageInfo>> {
        let filters = HashMap::from([("label", vec![filter.to_owned()])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut images = Vec::new();
        for summary in self.api.list_images(Some(options)).await? {
            if let Some(info) = self.image_info(&summary.id).await? {
                images.push(info);
            }
        }
        Ok(images)
    }

    /// Pulls `reference` from its registry, saying each layer's progress to `progress` (one line per status
    /// change), within `timeout`. The engine's own refusal (no registry reachable, no such image, a malformed
    /// reference) comes back as the error.
    pub(crate) async fn pull(
        &self,
        reference: &str,
        progress: &(dyn Fn(&str) + Send + Sync),
        timeout: Duration,
    ) -> Result<()> {
        use futures_util::StreamExt;
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let pulling = async {
            let mut stream = self.api.create_image(Some(options), None, None);
            let mut last = String::new();
            while let Some(item) = stream.next().await {
                let info = item?;
                if let Some(detail) = info.error_detail {
                    return Err(Error::with_kind(
                        ErrorKind::Docker,
                        detail.message.unwrap_or_else(|| "the pull failed".into()),
                    ));
                }
                let line = match (info.id, info.status) {
                    (Some(id), Some(status)) => format!("{id}: {status}"),
                    (None, Some(status)) => status,
                    _ => continue,
                };
                if line != last {
                    progress(&line);
                    last = line;
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, pulling).await.map_err(|_| {
            Error::with_kind(
                ErrorKind::Timeout,
                format!("pulling {reference} did not finish in {} s", timeout.as_secs()),
            )
        })?
    }

    /// The size in bytes of a local image.
    pub async fn image_size(&self, tag: &str) -> Result<u64> {
        let image = self.api.inspect_image(tag).await?;
        Ok(image.size.unwrap_or_default().max(0) as u64)
    }

    /// Creates a bridge network with these labels and returns its id. Docker before API 1.44 makes a second
    /// network of the same name without complaint (and bollard cannot ask it to check), so callers look first
    /// (see [`Docker::networks_named`]).
    pub(crate) async fn create_network(&self, name: &str, labels: HashMap<String, String>) -> Result<String> {
        let created = self
            .api
            .create_network(NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".into()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::from(e).context(format!("creating network {name}")))?;
        Ok(created.id)
    }

    /// Networks whose labels match every one of `filters` (`key=value`, or `key` for any value).
    pub(crate) async fn networks(&self, filters: &[String]) -> Result<Vec<Network>> {
        self.list_networks(HashMap::from([("label", filters.to_vec())])).await
    }

    /// Every network called exactly `name`, labelled or not, oldest first (Docker 20.10 allows several).
    pub(crate) async fn networks_named(&self, name: &str) -> Result<Vec<Network>> {
        let mut networks = self
            .list_networks(HashMap::from([("name", vec![name.to_owned()])]))
            .await?;
        // The name filter matches substrings.
        networks.retain(|n| n.name == name);
        networks.sort_by_key(|n| (n.created, n.id.clone()));
        Ok(networks)
    }

    async fn list_networks(&self, filters: HashMap<&str, Vec<String>>) -> Result<Vec<Network>> {
        let networks = self
            .api
            .list_networks(Some(ListNetworksOptionsBuilder::default().filters(&filters).build()))
            .await?;
        Ok(networks
            .into_iter()
            .map(|n| Network {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                created: n.created.map_or(0, |t| t.unix_timestamp_nanos()),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// Removes a network by id; a network that is already gone is not an error. Returns false, not an error,
    /// while Docker refuses because the network still has endpoints (containers being removed are still attached).
    pub(crate) async fn remove_network(&self, id: &str) -> Result<bool> {
        match self.api.remove_network(id).await {
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("has active endpoints") =>
            {
                Ok(false)
            }
            Err(e) if !is_not_found(&e) => Err(Error::from(e).context(format!("removing network {id}"))),
            _ => Ok(true),
        }
    }

    /// Starts a container through testcontainers and returns it as Docker then reports it. A port that cannot be
    /// published gives [`ErrorKind::PortTaken`] naming it.
    ///
    /// It outlives its testcontainers handle, and this process when the harness says so (a CLI cluster, a warm
    /// one another process claims): it is started with [`ReuseDirective::Always`], so dropping its
    /// [`ContainerAsync`] leaves it, and the harness removes it by its labels ([`crate::cluster::removal`], the
    /// reaper of a killed maker's clusters). The reuse lookup testcontainers makes first never finds one: each
    /// start has its own [`LABEL_START`].
    pub(crate) async fn run(&self, spec: &ContainerSpec) -> Result<Container> {
        let started = self.launch(spec, ReuseDirective::Always).await?;
        let id = started.id().to_owned();
        drop(started);
        let listed =
            self.list(HashMap::from([("id", vec![id.clone()])]))
                .await
                .and_then(|found| {
                    found.into_iter().next().ok_or_else(|| {
                        Error::docker(format!("container {} vanished right after it started", spec.name))
                    })
                });
        if listed.is_err() {
            self.remove_container(&id).await.ok();
        }
        listed
    }

    /// Starts `spec` with `AsyncRunner`; one that does not start is removed again (testcontainers leaves a
    /// container it created but could not start).
    async fn launch(&self, spec: &ContainerSpec, reuse: ReuseDirective) -> Result<ContainerAsync<GenericImage>> {
        let outcome = tokio::time::timeout(STARTUP_TIMEOUT + DOCKER_TIMEOUT, request(spec, reuse).start()).await;
        let e = match outcome {
            Ok(Ok(started)) => return Ok(started),
            Ok(Err(e)) => e,
            Err(_) => TestcontainersError::from(WaitContainerError::StartupTimeout),
        };
        // A name already taken is another container's: leave it.
        if let TestcontainersError::Client(ClientError::CreateContainer(e)) = &e
            && matches!(
                e,
                bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }
            )
        {
            return Err(Error::docker(format!("docker: {e}"))
                .context(format!("creating container {}", spec.name))
                .of_kind(ErrorKind::NameTaken));
        }
        self.remove_container(&spec.name).await.ok();
        if let TestcontainersError::Client(ClientError::StartContainer(e)) = &e
            && let Some(taken) = port_taken(e)
        {
            return Err(taken);
        }
        Err(Error::from(e).context(format!("starting container {}", spec.name)))
    }

    /// Creates (does not start) a container; returns its id. A name already taken gives
    /// [`ErrorKind::NameTaken`]: Docker makes at most one container of a name, which makes creating one a claim.
    /// testcontainers only starts containers, so these markers of the warm pool are made here.
    pub(crate) async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.args.clone()),
            entrypoint: spec.entrypoint.clone(),
            labels: Some(spec.labels.clone()),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = self.api.create_container(Some(options), body).await.map_err(|e| {
            let conflict = matches!(
                e,
                bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }
            );
            let e = Error::from(e).context(format!("creating container {}", spec.name));
            if conflict { e.of_kind(ErrorKind::NameTaken) } else { e }
        })?;
        Ok(created.id)
    }

    /// Runs a container to its end (at most `timeout`), removes it, and returns its exit code and output. Its
    /// [`ContainerAsync`] owns it: cut short, dropping it removes the container (unless
    /// `TESTCONTAINERS_COMMAND=keep`; its labels still name its cluster).
    pub(crate) async fn run_to_end(&self, spec: &ContainerSpec, timeout: Duration) -> Result<(i64, String)> {
        use futures_util::StreamExt;
        let outcome = async {
            let started = self.launch(spec, ReuseDirective::Never).await?;
            let id = started.id().to_owned();
            let mut waits = self.api.wait_container(&id, None::<WaitContainerOptions>);
            let code = match waits.next().await {
                Some(Ok(done)) => done.status_code,
                // bollard reports a non-zero exit as an error that carries the code.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => return Err(e.into()),
                None => -1,
            };
            let options = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
            let mut logs = self.api.logs(&id, Some(options));
            let mut text = String::new();
            while let Some(chunk) = logs.next().await {
                text.push_str(&chunk?.to_string());
            }
            started
                .rm()
                .await
                .map_err(|e| Error::from(e).context(format!("removing container {}", spec.name)))?;
            Ok((code, text))
        };
        match tokio::time::timeout(timeout, outcome).await {
            Ok(result) => result,
            Err(_) => {
                // Dropping the handle removed it, unless testcontainers was told to keep containers.
                self.remove_container(&spec.name).await?;
                Err(Error::timeout(format!(
                    "container {} did not finish in {timeout:?}",
                    spec.name
                )))
            }
        }
    }

    /// Containers (running or not) whose labels match every one of `filters` (`key=value`, or `key` for any
    /// value), sorted by name.
    pub(crate) async fn containers(&self, filters: &[String]) -> Result<Vec<Container>> {
        self.list(HashMap::from([("label", filters.to_vec())])).await
    }

    async fn list(&self, filters: HashMap<&str, Vec<String>>) -> Result<Vec<Container>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let mut containers: Vec<Container> = self
            .api
            .list_containers(Some(options))
            .await?
            .into_iter()
            .map(|c| Container {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                image: c.image.unwrap_or_default(),
                ip: endpoints(&c.network_settings)
                    .filter_map(|e| e.ip_address.as_deref())
                    .find_map(|ip| ip.parse().ok()),
                network_id: endpoints(&c.network_settings).find_map(|e| e.network_id.clone()),
                running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
                state: c.state.map_or_else(|| "unknown".into(), |s| s.to_string()),
                labels: c.labels.unwrap_or_default(),
            })
            .collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(containers)
    }

    /// Removes a container at once (SIGKILL, like a machine losing power); one already gone, or already being
    /// removed by someone else, is not an error.
    pub(crate) async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.api.remove_container(id, Some(options)).await {
            Err(e) if !is_not_found(&e) && !is_removal_in_progress(&e) => {
                Err(Error::from(e).context(format!("removing container {id}")))
            }
            _ => Ok(()),
        }
    }

    /// A stream that yields once for each container made with label `label` from now on (Docker's events): a
    /// condition to wait on instead of polling. It ends if the engine closes it.
    pub(crate) fn containers_created(
        &self,
        label: &str,
    ) -> impl futures_util::Stream<Item = Result<()>> + Send + 'static + use<> {
        use futures_util::StreamExt;
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("event", vec!["create".to_owned()]),
            ("label", vec![label.to_owned()]),
        ]);
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .filters(&filters)
            .build();
        // Events arrive as they happen: no response timeout applies to the stream.
        let api = self.api.clone().with_timeout(Duration::from_secs(u64::from(u32::MAX)));
        api.events(Some(options))
            .map(|event| event.map(drop).map_err(Error::from))
    }

    /// Freezes every process of a container (the freezer cgroup): it keeps its network, and answers nothing.
    pub(crate) async fn pause(&self, id: &str) -> Result<()> {
        // The kernel's freezer gives up when a task does not stop in time ("unable to freeze"), which a loaded
        // machine makes happen; the cgroup is thawed again then, so trying again is safe. At most three tries.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.api.pause_container(id).await {
                Ok(()) => return Ok(()),
                Err(e) if tries < 3 && e.to_string().contains("unable to freeze") => {
                    tracing::debug!("pausing container {id}: {e}; trying again");
                }
                Err(e) => return Err(Error::from(e).context(format!("pausing container {id}"))),
            }
        }
    }

    /// Thaws a container frozen by [`Docker::pause`].
    pub(crate) async fn unpause(&self, id: &str) -> Result<()> {
        self.api
            .unpause_container(id)
            .await
            .map_err(|e| Error::from(e).context(format!("unpausing container {id}")))
    }

    /// Sends SIGKILL to a container's process: it stops at once and keeps its file system (`docker kill`).
    pub(crate) async fn kill(&self, id: &str) -> Result<()> {
        self.api
            .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
            .await
            .map_err(|e| Error::from(e).context(format!("killing container {id}")))
    }

    /// Starts a stopped container again, with the files it had (`docker start`).
    pub(crate) async fn start(&self, id: &str) -> Result<()> {
        self.api
            .start_container(id, None)
            .await
            .map_err(|e| Error::from(e).context(format!("starting container {id}")))
    }

    /// The container's state (`running`, `exited`, ...), or `None` if it no longer exists.
    pub(crate) async fn state(&self, id: &str) -> Result<Option<String>> {
        let found = self.list(HashMap::from([("id", vec![id.to_owned()])])).await?;
        Ok(found.into_iter().next().map(|c| c.state))
    }

    /// The last `lines` lines of a container's output (stdout and stderr), e.g. a server's own error on exit.
    pub(crate) async fn log_tail(&self, id: &str, lines: usize) -> Result<String> {
        use futures_util::StreamExt;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut logs = self.api.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = logs.next().await {
            text.push_str(&chunk?.to_string());
        }
        Ok(text)
    }

    /// Runs `cmd` inside a running container and returns its exit code and combined output.
    pub(crate) async fn exec(&self, container: &str, cmd: &[String]) -> Result<(i64, String)> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let exec = self
            .api
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = self.api.start_exec(&exec.id, None).await? {
            while let Some(chunk) = output.next().await {
                text.push_str(&chunk?.to_string());
            }
        }
        let code = self.api.inspect_exec(&exec.id).await?.exit_code.unwrap_or(-1);
        Ok((code, text))
    }

    /// Tags of the local images whose reference matches `pattern` (e.g. `repo:prefix-*`).
    pub(crate) async fn image_tags(&self, pattern: &str) -> Result<Vec<String>> {
        let filters = HashMap::from([("reference", vec![pattern.to_owned()])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self
            .api
            .list_images(Some(options))
            .await?
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .collect())
    }

    /// Removes a local image tag (refused by Docker while a container uses it); one already gone is not an error.
    pub(crate) async fn remove_image(&self, tag: &str) -> Result<()> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default().build();
        match self.api.remove_image(tag, Some(options), None).await {
            Err(e) if !is_not_found(&e) => Err(Error::from(e).context(format!("removing image {tag}"))),
            _ => Ok(()),
        }
    }
}

/// The testcontainers request of `spec`: a [`GenericImage`] with its entry point and published ports, and the rest
/// as [`ImageExt`] settings; the host config's network mode, 127.0.0.1-only bindings and tmpfs are set last (its
/// modifier), since testcontainers would otherwise publish every exposed port on all addresses.
fn request(spec: &ContainerSpec, reuse: ReuseDirective) -> ContainerRequest<GenericImage> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static STARTS: AtomicU32 = AtomicU32::new(0);
    let (name, tag) = split_reference(&spec.image);
    let mut image = GenericImage::new(name, tag);
    let mut cmd = spec.args.clone();
    if let Some((first, rest)) = spec.entrypoint.as_deref().and_then(<[String]>::split_first) {
        image = image.with_entrypoint(first);
        cmd = rest.iter().cloned().chain(cmd).collect();
    }
    for port in &spec.published {
        image = image.with_exposed_port(port.tcp());
    }
    let start = format!("{}-{}", std::process::id(), STARTS.fetch_add(1, Ordering::Relaxed));
    let mut request = image
        .with_container_name(&spec.name)
        .with_labels(spec.labels.clone())
        .with_label(LABEL_START, start)
        .with_cmd(cmd)
        .with_startup_timeout(STARTUP_TIMEOUT)
        .with_reuse(reuse);
    if let Some(hostname) = &spec.hostname {
        request = request.with_hostname(hostname);
    }
    if let Some(user) = &spec.user {
        let user = if user.contains(':') {
            user.clone()
        } else {
            format!("{user}:0")
        };
        request = request.with_user(user);
    }
    for cap in &spec.cap_add {
        request = request.with_cap_add(cap);
    }
    for file in &spec.files {
        request = request.with_copy_to(
            CopyTargetOptions::new(&file.path).with_mode(FILE_MODE),
            file.contents.clone(),
        );
    }
    let network = spec.network.clone();
    let bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
        .published
        .iter()
        .map(|port| {
            let binding = PortBinding {
                host_ip: Some(LOOPBACK.into()),
                host_port: Some(port.to_string()),
            };
            (format!("{port}/tcp"), Some(vec![binding]))
        })
        .collect();
    let tmpfs: HashMap<String, String> = spec.tmpfs.iter().map(|p| (p.clone(), "mode=1777".to_owned())).collect();
    request.with_host_config_modifier(move |host: &mut HostConfig| {
        host.network_mode = Some(network.clone());
        host.publish_all_ports = Some(false);
        host.port_bindings = Some(bindings.clone());
        host.tmpfs = (!tmpfs.is_empty()).then(|| tmpfs.clone());
        host.init = Some(false);
    })
}

/// An image reference as testcontainers takes it: name and tag (`latest` when it has none; a digest's
/// `name@sha256` and hex, which it joins back with `:`).
fn split_reference(reference: &str) -> (&str, &str) {
    let after_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[after_slash..].rfind(':') {
        Some(i) => (&reference[..after_slash + i], &reference[after_slash + i + 1..]),
        None => (reference, "latest"),
    }
}

/// The port Docker could not publish because something else holds it, if that is what `e` says. Docker says
/// "Bind for 127.0.0.1:7001 failed: port is already allocated" when another container holds it and "listen tcp4
/// 127.0.0.1:7001: bind: address already in use" when another program does.
fn port_taken(e: &bollard::errors::Error) -> Option<Error> {
    let bollard::errors::Error::DockerResponseServerError { message, .. } = e else {
        return None;
    };
    if !message.contains("already allocated") && !message.contains("address already in use") {
        return None;
    }
    let after = &message[message.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    let port: u16 = digits.parse().ok()?;
    Some(Error::with_kind(
        ErrorKind::PortTaken(port),
        format!("port {port} on 127.0.0.1 is already in use by another program or container"),
    ))
}

/// The network endpoints of a listed container.
fn endpoints(
    settings: &Option<bollard::models::ContainerSummaryNetworkSettings>,
) -> impl Iterator<Item = &bollard::models::EndpointSettings> {
    settings.iter().flat_map(|s| s.networks.iter().flat_map(|n| n.values()))
}

fn is_removal_in_progress(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 409, message }
            if message.contains("already in progress")
    )
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag() {
        assert_eq!(
            split_reference("cluster-tests-node:valkey-9.1-e5"),
            ("cluster-tests-node", "valkey-9.1-e5")
        );
        assert_eq!(split_reference("redis"), ("redis", "latest"));
        assert_eq!(
            split_reference("reg:5000/team/redis"),
            ("reg:5000/team/redis", "latest")
        );
        assert_eq!(split_reference("reg:5000/redis:7.2"), ("reg:5000/redis", "7.2"));
        assert_eq!(split_reference("redis@sha256:ab12"), ("redis@sha256", "ab12"));
        assert_eq!(split_reference("sha256:ab12"), ("sha256", "ab12"));
    }
}
