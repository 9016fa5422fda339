//! `cargo xtask keeper`: keeps warm clusters ready for tests run meanwhile (`cargo nextest run` in another
//! terminal, or a suite of the user's that uses the harness), and removes each after its test, until interrupted.

use std::time::Duration;

use cluster_tests::{ClusterSpec, Result, WarmPool};

use crate::playground::{Interrupts, say};

/// Options of `cargo xtask keeper`.
#[derive(clap::Args)]
pub struct Args {
    /// Server version whose clusters to keep ready, or `all`.
    #[arg(long, default_value_t = crate::default_version(), value_parser = crate::version_names(true))]
    version: String,
    /// Clusters kept ready per version (3 masters with 1 replica each, a test's default spec).
    #[arg(long, default_value_t = 2)]
    ready: usize,
    /// Clusters made at once.
    #[arg(long, default_value_t = 2)]
    making: usize,
}

/// How long the first offer may take: making a cluster takes a few seconds; building a missing image longer.
const FIRST_OFFER: Duration = Duration::from_secs(300);

pub async fn run(args: Args) -> Result<()> {
    let specs: Vec<ClusterSpec> = crate::versions(&args.version)?
        .into_iter()
        .map(|v| ClusterSpec::default().version(v))
        .collect();
    let mut interrupts = Interrupts::catch()?;
    let keeper = WarmPool::new(specs)
        .ready(args.ready)
        .making(args.making)
        .start()
        .await?;
    let (var, value) = keeper.env();
    tokio::select! {
        offered = keeper.until_offered(1, FIRST_OFFER) => offered?,
        signal = interrupts.next() => say(&format!("{signal}: stopping")),
    }
    say(&format!(
        "keeping {} warm cluster(s) ready per version of {}; tests started meanwhile claim them (Ctrl-C stops \
         and removes what is left)",
        args.ready, args.version
    ));
    say(&format!(
        "for cold test clusters to be removed off their tests' path too: export {var}='{value}'"
    ));
    let signal = interrupts.next().await;
    say(&format!("{signal}: stopping"));
    let report = keeper.stop().await?;
    say(&format!(
        "made {}, recycled {}, removed {}{}",
        report.made,
        report.recycled,
        report.removed,
        if report.failures.is_empty() {
            String::new()
        } else {
            format!("; failures: {}", report.failures.join("; "))
        }
    ));
    Ok(())
}
