//! Node images: their tags, and building them offline from Debian packages with `images/build-node-image.sh`.
//!
//! A tag carries a hash of the recipe (the version's matrix entry and the build script), so an unchanged recipe
//! is never rebuilt and a changed one never reuses a stale image.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::Docker;
use crate::versions::Version;
use crate::{Error, Progress, Result, bail};

/// Repository part of every node image tag.
pub const IMAGE_REPOSITORY: &str = "cluster-tests-node";

/// The build script, embedded so the harness can build images from any working directory.
const BUILD_SCRIPT: &str = include_str!("../../images/build-node-image.sh");

/// The tag of the node image for `version`, e.g. `cluster-tests-node:redis-7.0-3f2a9c1b0d4e`.
pub fn tag(version: &Version) -> String {
    format!(
        "{IMAGE_REPOSITORY}:{}-{:012x}",
        version.name,
        fnv1a(recipe(version).as_bytes()) & 0xffff_ffff_ffff
    )
}

/// Everything that decides what an image holds: the fields of the matrix entry the build uses, and the script.
/// (Not `server`, a description, nor `default`: changing those rebuilds nothing.)
fn recipe(v: &Version) -> String {
    format!(
        "suite={}\nextra_suites={:?}\npackages={:?}\nserver_bin={}\ncli_bin={}\ninsecure_release_date={}\n{BUILD_SCRIPT}",
        v.suite, v.extra_suites, v.packages, v.server_bin, v.cli_bin, v.insecure_release_date
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

/// Makes sure the image for `version` exists, building it if not, and returns its tag.
///
/// Builds are serialised across processes with a lock file, so parallel test processes build an image once.
pub async fn ensure_built(
    docker: &Docker,
    version: &Version,
    progress: Progress<'_>,
) -> Result<(String, BuildOutcome, Duration)> {
    let tag = tag(version);
    let what = format!("Debian {} packages", version.suite);
    let (build_version, build_tag) = (version.clone(), tag.clone());
    let (outcome, took) = ensure_tag(docker, &tag, &what, progress, move || build(&build_version, &build_tag)).await?;
    if outcome == BuildOutcome::Built {
        // Images of this version's earlier recipes are stale now; those still used by a container stay.
        remove_stale(
            docker,
            &format!("{IMAGE_REPOSITORY}:{}-*", version.name),
            &tag,
            progress,
        )
        .await?;
    }
    Ok((tag, outcome, took))
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

/// The tag of the fault tools image, e.g. `cluster-tests-tools:bookworm-3f2a9c1b0d4e`.
pub fn tools_tag() -> String {
    let recipe = format!("suite={TOOLS_SUITE}\npackages={TOOLS_PACKAGES:?}\nbins={TOOLS_BINS:?}\n{BUILD_SCRIPT}");
    format!(
        "{TOOLS_REPOSITORY}:{TOOLS_SUITE}-{:012x}",
        fnv1a(recipe.as_bytes()) & 0xffff_ffff_ffff
    )
}

/// Makes sure the fault tools image (iptables, tc, busybox; see [`TOOLS_BINS`]) exists, building it from Debian
/// packages as node images are if not, and returns its tag.
pub async fn ensure_tools(docker: &Docker, progress: Progress<'_>) -> Result<String> {
    let tag = tools_tag();
    let build_tag = tag.clone();
    let what = format!("Debian {TOOLS_SUITE} packages {}", TOOLS_PACKAGES.join(" "));
    let (outcome, _) = ensure_tag(docker, &tag, &what, progress, move || {
        let mut args: Vec<String> = ["-s", "--", "--tools", "--tag", &build_tag, "--suite", TOOLS_SUITE]
            .map(String::from)
            .to_vec();
        for bin in TOOLS_BINS {
            args.extend(["--bin".into(), bin.into()]);
        }
        args.push("--".into());
        args.extend(TOOLS_PACKAGES.map(String::from));
        run_script(&args, "the fault tools", "--version all")
    })
    .await?;
    if outcome == BuildOutcome::Built {
        remove_stale(docker, &format!("{TOOLS_REPOSITORY}:*"), &tag, progress).await?;
    }
    Ok(tag)
}

/// Builds `tag` with `build` unless it exists, under the cross-process build lock.
async fn ensure_tag(
    docker: &Docker,
    tag: &str,
    what: &str,
    progress: Progress<'_>,
    build: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<(BuildOutcome, Duration)> {
    let start = Instant::now();
    if docker.image_exists(tag).await? {
        return Ok((BuildOutcome::Present, start.elapsed()));
    }
    let lock = lock_file()?;
    let lock_for_build = lock.try_clone()?;
    tokio::task::spawn_blocking(move || lock_for_build.lock())
        .await
        .map_err(|e| Error::new(format!("waiting for the image build lock: {e}")))??;
    // Another process may have built it while this one waited for the lock.
    if docker.image_exists(tag).await? {
        return Ok((BuildOutcome::Present, start.elapsed()));
    }
    progress(&format!("image: {tag} is not built yet; building it from {what}"));
    tokio::task::spawn_blocking(build)
        .await
        .map_err(|e| Error::new(format!("image build task: {e}")))??;
    drop(lock);
    Ok((BuildOutcome::Built, start.elapsed()))
}

/// Removes the images matching `pattern` other than `keep` (those still used by a container stay).
async fn remove_stale(docker: &Docker, pattern: &str, keep: &str, progress: Progress<'_>) -> Result<()> {
    for stale in docker.image_tags(pattern).await? {
        if stale != keep && docker.remove_image(&stale).await.is_ok() {
            progress(&format!("image: removed {stale}, built from an earlier recipe"));
        }
    }
    Ok(())
}

/// Builds `version`'s recipe from scratch into a throwaway tag, removes that, and returns the seconds it took.
pub async fn time_cold_build(docker: &Docker, version: &Version) -> Result<f64> {
    let tag = format!("{IMAGE_REPOSITORY}:cold-build-{}-{}", version.name, std::process::id());
    let (version, build_tag) = (version.clone(), tag.clone());
    let start = Instant::now();
    let built = tokio::task::spawn_blocking(move || build(&version, &build_tag))
        .await
        .map_err(|e| Error::new(format!("image build task: {e}")))?;
    let seconds = start.elapsed().as_secs_f64();
    docker.remove_image(&tag).await?;
    built.map(|()| seconds)
}

/// The file whose lock serialises image builds. Opened read-only where it exists (a lock needs no write access,
/// so another user's lock file does not get in the way), created otherwise.
fn lock_file() -> Result<std::fs::File> {
    let path = std::env::temp_dir().join("cluster-tests-image-build.lock");
    std::fs::File::open(&path)
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        })
        .map_err(|e| Error::new(format!("opening lock file {}: {e}", path.display())))
}

/// Runs the build script for `version`; its progress goes to stderr. On failure no tag is left behind.
fn build(version: &Version, tag: &str) -> Result<()> {
    let mut args: Vec<String> = vec!["-s".into(), "--".into(), "--tag".into(), tag.into()];
    args.extend(["--suite".into(), version.suite.clone()]);
    for suite in &version.extra_suites {
        args.extend(["--extra-suite".into(), suite.clone()]);
    }
    if version.insecure_release_date {
        args.push("--insecure-release-date".into());
    }
    args.extend([
        "--server-bin".into(),
        version.server_bin.clone(),
        "--cli-bin".into(),
        version.cli_bin.clone(),
    ]);
    args.push("--".into());
    args.extend(version.packages.iter().cloned());
    run_script(
        &args,
        &format!("the {} image", version.name),
        &format!("--version {}", version.name),
    )
}

/// Runs the build script with `args` (it reads itself from stdin); `what` names the image in errors and
/// `build_args` is what to pass `cargo xtask build` to build it by hand.
fn run_script(args: &[String], what: &str, build_args: &str) -> Result<()> {
    if !is_root() {
        bail!(
            "{what} is not built yet, and building it needs root (mmdebstrap unpacks root-owned files); run \
             `sudo -E cargo xtask build {build_args}` once (or run as root), then retry"
        );
    }
    ensure_mmdebstrap()?;
    let mut child = Command::new("bash")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::new(format!("running bash for the image build: {e}")))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(BUILD_SCRIPT.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building {what} failed ({status}); see the build output above");
    }
    Ok(())
}

/// Finds `mmdebstrap`; on a Debian-family host as root it installs it with apt (and says so).
fn ensure_mmdebstrap() -> Result<()> {
    if find_in_path("mmdebstrap").is_some() {
        return Ok(());
    }
    let debian = Path::new("/etc/debian_version").exists();
    if !(debian && is_root()) {
        bail!(
            "mmdebstrap is needed to build node images and is not installed.\n\
             Install it with: sudo apt-get install -y mmdebstrap   (Debian/Ubuntu; image builds run as root)"
        );
    }
    eprintln!(
        "mmdebstrap is missing: installing it with `apt-get install -y mmdebstrap` (Debian host, running as root)"
    );
    let ok = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(ok(&["install", "-y", "-qq", "mmdebstrap"])
        || (ok(&["update", "-qq"]) && ok(&["install", "-y", "-qq", "mmdebstrap"])))
    {
        bail!("installing mmdebstrap with apt-get failed; run `apt-get update && apt-get install -y mmdebstrap`");
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
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
