//! Node images: their tags, and building them offline from Debian packages with `images/build-node-image.sh`.
//!
//! A tag carries a hash of the recipe (the version's matrix entry and the build script), so an unchanged recipe
//! is never rebuilt and a changed one never reuses a stale image.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::Docker;
use crate::versions::Version;
use crate::{Error, Result, bail};

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
pub async fn ensure_built(docker: &Docker, version: &Version) -> Result<(String, BuildOutcome, Duration)> {
    let tag = tag(version);
    let start = Instant::now();
    if docker.image_exists(&tag).await? {
        return Ok((tag, BuildOutcome::Present, start.elapsed()));
    }
    let lock = lock_file()?;
    let lock_for_build = lock.try_clone()?;
    tokio::task::spawn_blocking(move || lock_for_build.lock())
        .await
        .map_err(|e| Error::new(format!("waiting for the image build lock: {e}")))??;
    // Another process may have built it while this one waited for the lock.
    if docker.image_exists(&tag).await? {
        return Ok((tag, BuildOutcome::Present, start.elapsed()));
    }
    tracing::info!(
        "image: {tag} is not built yet; building it from Debian {} packages",
        version.suite
    );
    let (recipe, build_tag) = (version.clone(), tag.clone());
    tokio::task::spawn_blocking(move || build(&recipe, &build_tag))
        .await
        .map_err(|e| Error::new(format!("image build task: {e}")))??;
    drop(lock);
    // Images of this version's earlier recipes are stale now; those still used by a container stay.
    for stale in docker
        .image_tags(&format!("{IMAGE_REPOSITORY}:{}-*", version.name))
        .await?
    {
        if stale != tag && docker.remove_image(&stale).await.is_ok() {
            tracing::info!("image: removed {stale}, built from an earlier recipe");
        }
    }
    Ok((tag, BuildOutcome::Built, start.elapsed()))
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
    if !is_root() {
        bail!(
            "the {} image is not built yet, and building it needs root (mmdebstrap unpacks root-owned files); run \
             `sudo -E cargo xtask build --version {}` once (or run as root), then retry",
            version.name,
            version.name
        );
    }
    ensure_mmdebstrap()?;
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

    let mut child = Command::new("bash")
        .args(&args)
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
        bail!(
            "building the {} image failed ({status}); see the build output above",
            version.name
        );
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
