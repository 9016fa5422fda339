//! Node images of the matrix: their tags, and building them offline from Debian packages with
//! `images/build-node-image.sh` (as root, or as any user in the `docker` group: see the script).
//!
//! A tag carries a hash of the recipe (the version's matrix entry, the build script and the architecture), so an
//! unchanged recipe is never rebuilt and a changed one never reuses a stale image. Images are built for the host's
//! architecture. The library installs nothing on the host: a missing tool is reported with the command that
//! installs it (the CLI's `build` and `.ci/run` install it where they may).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine::docker::{Docker, ImageInfo};
use crate::images::versions::Version;
use crate::{Error, ErrorKind, Remedy, Result, bail};

/// Repository part of every node image tag.
pub const IMAGE_REPOSITORY: &str = "cluster-tests-node";
/// Label every node image built here carries (`node`).
pub const LABEL_IMAGE: &str = "cluster-tests.image";
/// Label of a built image naming its matrix version.
pub const LABEL_IMAGE_VERSION: &str = "cluster-tests.version";
/// Label of a built image holding its recipe hash.
pub const LABEL_RECIPE: &str = "cluster-tests.recipe";
/// The environment variable bounding one image build, in seconds.
pub const BUILD_TIMEOUT_ENV: &str = "CLUSTER_BUILD_TIMEOUT";
/// How long one image build may take unless [`BUILD_TIMEOUT_ENV`] says otherwise: a cold build takes 5-20 s,
/// mostly downloading packages.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// The bounds a build timeout must lie in.
const BUILD_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 30..=7200;

/// The build script, embedded so the harness can build images from any working directory.
const BUILD_SCRIPT: &str = include_str!("../../images/build-node-image.sh");

/// The Debian name of the host's CPU architecture (`amd64`, `arm64`, ...), which images are built for.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        other => other, // s390x, riscv64, loongarch64 are spelt alike
    }
}

/// The tag of the node image for `version` on this host, e.g. `cluster-tests-node:redis-7.0-3f2a9c1b0d4e`.
pub fn tag(version: &Version) -> String {
    format!("{IMAGE_REPOSITORY}:{}-{}", version.name, recipe_hash(version))
}

/// The recipe's hash as it appears in the tag (12 hex digits).
fn recipe_hash(version: &Version) -> String {
    format!("{:012x}", fnv1a(recipe(version).as_bytes()) & 0xffff_ffff_ffff)
}

/// Everything that decides what an image holds: the fields of the matrix entry the build uses, the script and
/// the architecture. (Not `server`, a description, `default` nor `image`: changing those rebuilds nothing.)
fn recipe(v: &Version) -> String {
    format!(
        "suite={}\nextra_suites={:?}\npackages={:?}\nserver_bin={}\ncli_bin={}\ninsecure_release_date={}\narch={}\n{BUILD_SCRIPT}",
        v.suite,
        v.extra_suites,
        v.packages,
        v.server_bin,
        v.cli_bin,
        v.insecure_release_date,
        host_architecture()
    )
}

/// FNV-1a: a stable hash (std's hasher may change between releases, and a tag must not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What [`ensure_built`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    /// The image existed already.
    Present,
    /// The image was built now.
    Built,
}

/// How long one build may take: [`BUILD_TIMEOUT_ENV`] (seconds) or [`DEFAULT_BUILD_TIMEOUT`]; absurd values are
/// refused.
pub fn build_timeout() -> Result<Duration> {
    let Ok(text) = std::env::var(BUILD_TIMEOUT_ENV) else {
        return Ok(DEFAULT_BUILD_TIMEOUT);
    };
    match text.trim().parse::<u64>() {
        Ok(secs) if BUILD_TIMEOUT_RANGE.contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => bail!(
            Refused,
            "${BUILD_TIMEOUT_ENV}={text:?}: give the seconds one image build may take, {} to {} (default {})",
            BUILD_TIMEOUT_RANGE.start(),
            BUILD_TIMEOUT_RANGE.end(),
            DEFAULT_BUILD_TIMEOUT.as_secs()
        ),
    }
}

/// Makes sure the image for `version` exists, building it if not, and returns its tag.
///
/// Builds are serialised across processes with a lock file, so parallel test processes build an image once. Both
/// the wait for the lock and the build are bounded by [`build_timeout`].
pub async fn ensure_built(docker: &Docker, version: &Version) -> Result<(String, BuildOutcome, Duration)> {
    let tag = tag(version);
    let start = Instant::now();
    if docker.image_exists(&tag).await? {
        return Ok((tag, BuildOutcome::Present, start.elapsed()));
    }
    let timeout = build_timeout()?;
    let lock = BuildLock::acquire(timeout + Duration::from_secs(30)).await?;
    // Another process may have built it while this one waited for the lock.
    if docker.image_exists(&tag).await? {
        return Ok((tag, BuildOutcome::Present, start.elapsed()));
    }
    tracing::info!(
        "image: {tag} is not built yet; building it from Debian {} packages ({})",
        version.suite,
        host_architecture()
    );
    crate::progress::progress!("image build", 0, 0);
    build_into(version, &tag, timeout).await?;
    crate::progress::progress!("image build", 1, 1);
    drop(lock);
    // Images of earlier recipes are not removed here: another checkout (a branch, a worktree) sharing this engine
    // may still use them. `prune` removes them when asked.
    let earlier = docker
        .image_tags(&format!("{IMAGE_REPOSITORY}:{}-*", version.name))
        .await?
        .into_iter()
        .filter(|t| *t != tag)
        .count();
    if earlier > 0 {
        tracing::info!(
            "image: {earlier} image(s) of earlier {} recipes remain; `playground::prune_images` removes them",
            version.name
        );
    }
    Ok((tag, BuildOutcome::Built, start.elapsed()))
}

/// Repository part of the fault tools image's tag.
pub const TOOLS_REPOSITORY: &str = "cluster-tests-tools";
/// The Debian suite the fault tools come from, and the packages.
const TOOLS_SUITE: &str = "bookworm";
const TOOLS_PACKAGES: [&str; 3] = ["iptables", "iproute2", "busybox-static"];
/// The binaries the tools image holds. `iptables-nft` is Debian's default backend since buster and what Docker
/// itself uses on such hosts; it needs only nf_tables in the kernel. Busybox gives `sh -c`, so that one
/// short-lived container applies a whole change.
/// `ss` kills the connections a new cut crosses (rules stop new packets of a connection in one direction only).
pub(crate) const TOOLS_BINS: [&str; 4] = ["/usr/sbin/iptables-nft", "/usr/sbin/tc", "/usr/bin/ss", "/bin/busybox"];

/// The tag of the fault tools image, e.g. `cluster-tests-tools:bookworm-3f2a9c1b0d4e`; it hashes the recipe,
/// the build script and the host's architecture.
pub fn tools_tag() -> String {
    let recipe = format!(
        "suite={TOOLS_SUITE}\npackages={TOOLS_PACKAGES:?}\nbins={TOOLS_BINS:?}\narch={}\n{BUILD_SCRIPT}",
        host_architecture()
    );
    format!(
        "{TOOLS_REPOSITORY}:{TOOLS_SUITE}-{:012x}",
        fnv1a(recipe.as_bytes()) & 0xffff_ffff_ffff
    )
}

/// Makes sure the fault tools image (iptables, tc, ss, busybox; see [`TOOLS_BINS`]) exists, building it from
/// Debian packages as node images are if not (under the same lock and timeout), and returns its tag.
pub async fn ensure_tools(docker: &Docker) -> Result<String> {
    let tag = tools_tag();
    if docker.image_exists(&tag).await? {
        return Ok(tag);
    }
    let timeout = build_timeout()?;
    let lock = BuildLock::acquire(timeout + Duration::from_secs(30)).await?;
    if docker.image_exists(&tag).await? {
        return Ok(tag);
    }
    tracing::info!(
        "image: {tag} is not built yet; building it from Debian {TOOLS_SUITE} packages {} ({})",
        TOOLS_PACKAGES.join(" "),
        host_architecture()
    );
    let mut args: Vec<String> = ["-s", "--", "--tools", "--tag", &tag, "--suite", TOOLS_SUITE]
        .map(String::from)
        .to_vec();
    args.extend(["--arch".into(), host_architecture().into()]);
    for bin in TOOLS_BINS {
        args.extend(["--bin".into(), bin.into()]);
    }
    args.push("--".into());
    args.extend(TOOLS_PACKAGES.map(String::from));
    tokio::task::spawn_blocking(move || {
        check_build_tools()?;
        run_script(&args, "the fault tools image", timeout)
    })
    .await
    .map_err(|e| Error::other(format!("image build task: {e}")))??;
    drop(lock);
    Ok(tag)
}

/// Builds `version`'s recipe into `tag` (always, whether or not it exists), within `timeout`.
pub async fn build_into(version: &Version, tag: &str, timeout: Duration) -> Result<()> {
    let (recipe, build_tag) = (version.clone(), tag.to_owned());
    tokio::task::spawn_blocking(move || build(&recipe, &build_tag, timeout))
        .await
        .map_err(|e| Error::other(format!("image build task: {e}")))?
}

/// Builds `version`'s recipe from scratch into a throwaway tag, removes that, and returns the seconds it took.
pub async fn time_cold_build(docker: &Docker, version: &Version) -> Result<f64> {
    let tag = format!("{IMAGE_REPOSITORY}:cold-build-{}-{}", version.name, std::process::id());
    let start = Instant::now();
    let built = build_into(version, &tag, build_timeout()?).await;
    let seconds = start.elapsed().as_secs_f64();
    docker.remove_image(&tag).await?;
    built.map(|()| seconds)
}

/// The lock that serialises image builds across processes, held until dropped.
struct BuildLock(#[allow(dead_code)] std::fs::File);

impl BuildLock {
    /// Takes the lock, waiting at most `timeout` for another process's build to end.
    async fn acquire(timeout: Duration) -> Result<Self> {
        let path = std::env::temp_dir().join("cluster-tests-image-build.lock");
        let file = lock_file(&path)?;
        let start = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self(file)),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    bail!(Other, "locking {}: {e}", path.display())
                }
            }
            if start.elapsed() >= timeout {
                return Err(Error::with_kind(
                    ErrorKind::Timeout,
                    format!(
                        "another process has held the image build lock {} for {} s, longer than a build may take; \
                         if no build runs (`pgrep -a mmdebstrap`), that process is stuck: end it",
                        path.display(),
                        timeout.as_secs()
                    ),
                ));
            }
            if !said {
                tracing::info!("image: waiting for another process's image build to end");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Opens the lock file: read-only where it exists (a lock needs no write access, so another user's lock file
/// does not get in the way), created otherwise.
fn lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    std::fs::File::open(path)
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
        })
        .map_err(|e| Error::other(format!("opening lock file {}: {e}", path.display())))
}

/// Runs the build script for `version` within `timeout`; its progress goes to stderr. On failure no tag is left
/// behind (the script imports atomically and cleans up when it is ended).
fn build(version: &Version, tag: &str, timeout: Duration) -> Result<()> {
    check_build_tools()?;
    let mut args: Vec<String> = vec!["-s".into(), "--".into(), "--tag".into(), tag.into()];
    args.extend(["--suite".into(), version.suite.clone()]);
    for suite in &version.extra_suites {
        args.extend(["--extra-suite".into(), suite.clone()]);
    }
    if version.insecure_release_date {
        args.push("--insecure-release-date".into());
    }
    args.extend(["--arch".into(), host_architecture().into()]);
    args.extend([
        "--label".into(),
        format!("{LABEL_IMAGE_VERSION}={}", version.name),
        "--label".into(),
        format!("{LABEL_RECIPE}={}", recipe_hash(version)),
    ]);
    args.extend([
        "--server-bin".into(),
        version.server_bin.clone(),
        "--cli-bin".into(),
        version.cli_bin.clone(),
    ]);
    args.push("--".into());
    args.extend(version.packages.iter().cloned());
    run_script(&args, &format!("the {} image", version.name), timeout)
}

/// Runs the build script with `args` (it reads itself from stdin) within `timeout`; `what` names the image in
/// errors.
fn run_script(args: &[String], what: &str, timeout: Duration) -> Result<()> {
    let mut child = Command::new("bash")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::other(format!("running bash for the image build: {e}")))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(BUILD_SCRIPT.as_bytes())?;
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= timeout {
            // SIGTERM first: the script then ends mmdebstrap and removes its temporary tree.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let grace = Instant::now();
            while child.try_wait()?.is_none() && grace.elapsed() < Duration::from_secs(15) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::with_kind(
                ErrorKind::Timeout,
                format!(
                    "building {what} took over {} s and was ended; a slow mirror? set DEBIAN_MIRROR, or \
                     allow more with {BUILD_TIMEOUT_ENV}=SECONDS",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        bail!(Other, "building {what} failed ({status}); see the build output above");
    }
    Ok(())
}

/// The host tools an image build needs that are missing, each with the Debian package that has it.
pub fn missing_build_tools() -> Vec<(&'static str, &'static str)> {
    [("mmdebstrap", "mmdebstrap"), ("docker", "docker.io")]
        .into_iter()
        .filter(|(program, _)| find_in_path(program).is_none())
        .collect()
}

/// Refuses to build when a tool is missing, naming the exact command that installs it.
fn check_build_tools() -> Result<()> {
    let missing = missing_build_tools();
    if missing.is_empty() {
        return Ok(());
    }
    let programs: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    let packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    Err(Error::refused(format!(
        "building node images needs {} and it is not installed; install it with\n  sudo apt-get install -y {}\n\
         (Debian/Ubuntu). Without it, a cluster can run an image you have: `ClusterSpec::image` (e.g. redis:7.4 \
         where a registry is reachable)",
        programs.join(" and "),
        packages.join(" ")
    ))
    .with_remedy(Remedy::InstallBuildTools))
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Where a local node image came from, for the CLI's image list ([`list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    /// Its tags.
    pub tags: Vec<String>,
    /// The matrix version it belongs to (`redis-7.0`), if any.
    pub version: Option<String>,
    /// Server and version, as its labels say (empty for images of other origins).
    pub server: String,
    /// Size in bytes.
    pub size: u64,
    /// CPU architecture.
    pub architecture: String,
    /// Where it came from: `Debian bookworm`, or `registry` for a matrix version's upstream image.
    pub origin: String,
    /// Whether it is built from a recipe that is no longer the current one (`--prune` removes it).
    pub stale: bool,
}

/// The node images present: those built here, current or stale, and the upstream images the matrix names.
pub async fn list(docker: &Docker) -> Result<Vec<ImageEntry>> {
    let mut entries = Vec::new();
    let current: BTreeSet<String> = Version::all().iter().map(tag).collect();
    for info in docker.images_labelled(&format!("{LABEL_IMAGE}=node")).await? {
        entries.push(built_entry(&info, &current));
    }
    for version in Version::all() {
        let Some(reference) = &version.image else { continue };
        if let Some(info) = docker.image_info(reference).await? {
            entries.push(ImageEntry {
                tags: info.tags.clone(),
                version: Some(version.name.clone()),
                server: String::new(),
                size: info.size,
                architecture: info.architecture.clone(),
                origin: "registry (the matrix's upstream image)".into(),
                stale: false,
            });
        }
    }
    entries.sort_by(|a, b| (&a.version, &a.tags).cmp(&(&b.version, &b.tags)));
    Ok(entries)
}

fn built_entry(info: &ImageInfo, current: &BTreeSet<String>) -> ImageEntry {
    let label = |key: &str| info.labels.get(key).cloned().unwrap_or_default();
    let ours: Vec<&String> = info.tags.iter().filter(|t| t.starts_with(IMAGE_REPOSITORY)).collect();
    // Images of earlier scripts have no version label: the tag names it.
    let version = info.labels.get(LABEL_IMAGE_VERSION).cloned().or_else(|| {
        let t = ours.first()?.strip_prefix(&format!("{IMAGE_REPOSITORY}:"))?;
        Some(t.rsplit_once('-')?.0.to_owned())
    });
    let stale = !ours.is_empty()
        && ours.iter().all(|t| !current.contains(*t))
        && (info.architecture.is_empty() || info.architecture == host_architecture());
    ImageEntry {
        tags: info.tags.clone(),
        version,
        server: label("cluster-tests.server"),
        size: info.size,
        architecture: info.architecture.clone(),
        origin: format!("Debian {}", label("cluster-tests.debian-suite")),
        stale,
    }
}

/// Removes the images of recipes that are no longer current; returns a line per image, saying what could not be
/// removed (a container still uses it) and how to remove it.
pub async fn prune(docker: &Docker) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in list(docker).await?.into_iter().filter(|e| e.stale) {
        for t in entry.tags.iter().filter(|t| t.starts_with(IMAGE_REPOSITORY)) {
            lines.push(match docker.remove_image(t).await {
                Ok(()) => format!("removed {t}"),
                Err(e) => format!(
                    "kept {t}: {e}; `docker rmi {t}` removes it once no container uses it \
                     (`docker ps -a --filter ancestor={t}` lists them)"
                ),
            });
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_and_differ_per_version() {
        let tags: Vec<String> = Version::all().iter().map(tag).collect();
        for (v, t) in Version::all().iter().zip(&tags) {
            assert!(t.starts_with(&format!("{IMAGE_REPOSITORY}:{}-", v.name)), "{t}");
            assert_eq!(t, &tag(v), "tag must not change between calls");
        }
        let mut hashes: Vec<&str> = tags.iter().filter_map(|t| t.rsplit('-').next()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(
            hashes.len(),
            tags.len(),
            "each version's recipe hashes differently: {tags:?}"
        );
    }

    #[test]
    fn a_changed_recipe_changes_the_tag() {
        let v = Version::default_version();
        let mut changed = v.clone();
        changed.packages.push("extra".into());
        assert_ne!(tag(v), tag(&changed));
        let mut described = v.clone();
        described.server.push_str(" (renamed)");
        described.default = !described.default;
        assert_eq!(tag(v), tag(&described), "what the build does not use does not rebuild");
    }
}
