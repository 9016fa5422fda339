//! `cargo xtask stop` and `cargo xtask leftovers`: clusters removed, and a check that test runs left nothing.

use cluster_tests::playground::{
    self as harness, Docker, census, orphan_secrets, remove_abandoned, remove_cluster, remove_orphan_secrets,
};
use cluster_tests::{Error, Result};

use crate::playground::out;

/// Options of `cargo xtask stop`.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Remove every cluster nobody can still be using: those of killed tests or benches, and clusters left
    /// half-made or with no node running. Clusters made on purpose with `create` (and kept test clusters) that
    /// have a node running are kept and named; `stop --cluster NAME` removes one.
    #[arg(long)]
    all: bool,
}

/// `stop`: removes the cluster `name` (does nothing, successfully, if there is none), and mentions clusters
/// nobody can still be using; with `all`, removes those (see [`StopArgs::all`]).
pub async fn stop(name: &str, args: StopArgs) -> Result<()> {
    let docker = Docker::connect().await?;
    let census = census(&docker).await?;
    if args.all {
        let mut failed = None;
        for cluster in &census.abandoned {
            match remove_abandoned(&docker, cluster).await {
                Ok(removed) => out!(
                    "removed `{}`: {} containers, {} network(s)",
                    cluster.name,
                    removed.containers,
                    removed.networks
                ),
                Err(e) => failed = Some(e.context(format!("removing `{}`", cluster.name))),
            }
        }
        let orphans = orphan_secrets(&docker).await?;
        for (name, dir) in &orphans {
            remove_orphan_secrets(&docker, name).await?;
            out!(
                "removed the secrets of `{name}`, left in {} with no cluster",
                dir.display()
            );
        }
        if census.abandoned.is_empty() && orphans.is_empty() {
            out!("no cluster that nobody can be using; nothing to stop");
        }
        for name in &census.kept {
            out!("kept `{name}`: made on purpose and running; `cargo xtask stop --cluster {name}` removes it");
        }
        for (name, why) in &census.owned {
            out!("kept `{name}`: {why}");
        }
        return failed.map_or(Ok(()), Err);
    }
    let removed = remove_cluster(&docker, name, None).await?;
    // A removal cut short by SIGKILL may have left its secrets: they go too.
    let secrets = remove_orphan_secrets(&docker, name).await?;
    if let Some(dir) = &secrets {
        out!("removed the secrets of `{name}` left in {}", dir.display());
    }
    match (removed.containers, removed.networks) {
        (0, 0) if secrets.is_some() => out!("no cluster running"),
        (0, 0) => out!("no cluster running; nothing to stop"),
        (0, _) => out!("no cluster running; removed the network `{name}` left behind"),
        (n, 0) => out!("stopped `{name}`: removed {n} containers"),
        (n, _) => out!("stopped `{name}`: removed {n} containers and its network"),
    }
    let others: Vec<&str> = census
        .abandoned
        .iter()
        .map(|c| c.name.as_str())
        .filter(|other| *other != name)
        .collect();
    if !others.is_empty() {
        out!(
            "{} other cluster(s) nobody can still be using (left by tests that are gone, or half-made): {}; \
             `cargo xtask stop --all` removes them, and only them",
            others.len(),
            others.join(", ")
        );
    }
    Ok(())
}

/// `leftovers`: what CI checks after the suite; the same check wherever it runs.
pub async fn leftovers() -> Result<()> {
    let found = harness::leftovers(&Docker::connect().await?).await?;
    for name in &found.phantom_networks {
        out!(
            "warning: network {name} keeps a phantom endpoint (Docker engine bug moby/moby#42119); restarting the \
             Docker daemon clears it"
        );
    }
    if found.any() {
        let secrets: Vec<String> = found.secrets.iter().map(|d| d.display().to_string()).collect();
        return Err(Error::other(format!(
            "the test run left {} container(s) ({}), {} network(s) ({}) and {} secrets director(ies) of gone \
             clusters ({}) behind; `cargo xtask stop --all` removes the secrets",
            found.containers.len(),
            found.containers.join(", "),
            found.networks.len(),
            found.networks.join(", "),
            secrets.len(),
            secrets.join(", ")
        )));
    }
    out!("nothing left behind");
    Ok(())
}
