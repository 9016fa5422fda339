//! `cargo xtask build` and `cargo xtask images`: node images made here from Debian packages, and those present.

use cluster_tests::playground::{
    self as harness, BuildOutcome, Docker, build_into, build_timeout, ensure_built, ensure_tools, missing_build_tools,
    prune_images,
};
use cluster_tests::{Error, Result};

use crate::playground::{out, say};

/// Options of `cargo xtask build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Version to build, or `all`.
    #[arg(long, default_value_t = crate::default_version(), value_parser = crate::version_names(true))]
    version: String,
    /// Build the version's recipe into this tag instead, even if its image exists (one version only).
    #[arg(long)]
    tag: Option<String>,
}

/// Options of `cargo xtask images`.
#[derive(clap::Args)]
pub struct ImagesArgs {
    /// Remove the images built from recipes that are no longer current.
    #[arg(long)]
    prune: bool,
}

/// `build`: makes the images of the versions asked for that are missing (or, with `--tag`, builds the one version
/// into it). Installs mmdebstrap first where it is missing and this is root on a Debian-family host.
pub async fn build(args: BuildArgs) -> Result<()> {
    let versions = crate::versions(&args.version)?;
    let tag = args.tag.as_deref();
    install_build_tools()?;
    let docker = Docker::connect().await?;
    if let Some(tag) = tag {
        let [version] = versions[..] else {
            return Err(Error::refused("--tag builds one version; name it with --version"));
        };
        let start = std::time::Instant::now();
        build_into(version, tag, build_timeout()?).await?;
        let size = docker.image_size(tag).await? as f64 / 1e6;
        out!(
            "{:<11} {tag}  built in {:.1} s, {size:.1} MB",
            version.name,
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    for version in versions {
        let (tag, outcome, took) = ensure_built(&docker, version).await?;
        let size = docker.image_size(&tag).await? as f64 / 1e6;
        let what = if outcome == BuildOutcome::Built {
            "built"
        } else {
            "up to date"
        };
        out!(
            "{:<11} {tag}  {what} in {:.1} s, {size:.1} MB",
            version.name,
            took.as_secs_f64()
        );
    }
    let tools = ensure_tools(&docker).await?;
    out!(
        "{:<11} {tools}  (iptables, tc, ss for partition, slow and heal)",
        "tools"
    );
    Ok(())
}

/// Installs the missing build tools with apt when this is root on a Debian-family host (the library only reports
/// them); elsewhere the build's own error names the command. `build`, `create` and `test` call it, so on a fresh
/// machine `cargo xtask create` alone builds its image.
pub fn install_build_tools() -> Result<()> {
    let missing = missing_build_tools();
    let root = unsafe { libc::geteuid() } == 0;
    if missing.is_empty() || !root || !std::path::Path::new("/etc/debian_version").exists() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    say(&format!(
        "installing {} with apt-get (root on a Debian-family host)",
        packages.join(" ")
    ));
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .args(if args[0] == "install" { &packages[..] } else { &[] })
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(apt(&["install", "-y", "-qq"]) || (apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq"]))) {
        return Err(Error::other(format!(
            "installing {0} with apt-get failed; run `apt-get update && apt-get install -y {0}`",
            packages.join(" ")
        )));
    }
    Ok(())
}

/// `images`: lists the node images present; with `--prune`, removes those of earlier recipes.
pub async fn images(args: ImagesArgs) -> Result<()> {
    let docker = Docker::connect().await?;
    if args.prune {
        let lines = prune_images(&docker).await?;
        if lines.is_empty() {
            out!("no image of an earlier recipe; nothing to prune");
        }
        lines.iter().for_each(|l| out!("{l}"));
        return Ok(());
    }
    let entries = harness::images(&docker).await?;
    if entries.is_empty() {
        out!("no node image here; `cargo xtask build` makes one");
        return Ok(());
    }
    out!(
        "{:<11} {:<15} {:>8} {:<6} {:<44} {}",
        "VERSION",
        "SERVER",
        "SIZE",
        "ARCH",
        "TAG",
        "ORIGIN"
    );
    for e in &entries {
        out!(
            "{:<11} {:<15} {:>6.1}MB {:<6} {:<44} {}{}",
            e.version.as_deref().unwrap_or("-"),
            if e.server.is_empty() { "-" } else { &e.server },
            e.size as f64 / 1e6,
            e.architecture,
            e.tags.first().map_or("<untagged>", String::as_str),
            e.origin,
            if e.stale {
                ", not this checkout's recipe (--prune removes it)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
