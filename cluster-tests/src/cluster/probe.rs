//! Server settings checked by the server itself before a cluster starts: one throwaway node container of the
//! cluster's image, with the nodes' own arguments, config and files, on Docker's `none` network (it publishes
//! nothing and reaches nothing), until its server says it is ready or stops with its own words. It is labelled as
//! the cluster's, so whatever removes a cut-short create removes it too.

use std::time::Duration;

use crate::cluster::identity::{Identity, LABEL_PORT};
use crate::cluster::launch::node_container;
use crate::cluster::networking::Attachment;
use crate::engine::docker::Docker;
use crate::images::node_image::NodeImage;
use crate::security::credentials::Secrets;
use crate::server::settings::DEBUG_DIRECTIVE;
use crate::spec::{ClusterSpec, FIRST_PORT};
use crate::wait::not_yet;
use crate::{Error, Result, wait};

/// What every server version logs once it has read its config, loaded its modules and listens.
const READY_LINE: &str = "Ready to accept connections";

/// The settings the nodes of `spec` run with, as its server accepts them: `spec.server_config`, and the DEBUG
/// directive where [`ClusterSpec::debug_command`] asks for it and the server has it. Without settings nothing is
/// started; with them one probe (two on a server without the DEBUG directive), about half a second each.
pub(crate) async fn accepted_settings(
    docker: &Docker,
    spec: &ClusterSpec,
    image: &NodeImage,
    secrets: Option<&Secrets>,
) -> Result<Vec<(String, String)>> {
    let mut settings = spec.server_config.clone();
    if spec.debug_command {
        let (name, value) = DEBUG_DIRECTIVE;
        settings.push((name.to_owned(), value.to_owned()));
    }
    if settings.is_empty() {
        return Ok(settings);
    }
    let start = std::time::Instant::now();
    let refused = |words: String| {
        Error::refused(format!(
            "the server refused the settings of cluster `{}` before anything started; its own words:\n{}",
            spec.name,
            words.trim_end()
        ))
    };
    match probe(docker, spec, image, secrets, &settings).await? {
        Err(words) if spec.debug_command && words.contains(DEBUG_DIRECTIVE.0) && unknown_directive(&words) => {
            // A server that does not know the directive allows DEBUG to every client anyway (Redis 6.0).
            settings.pop();
            probe(docker, spec, image, secrets, &settings).await?.map_err(refused)?;
            Ok(settings)
        }
        outcome => outcome.map(|()| settings).map_err(refused),
    }
    .inspect(|settings| {
        tracing::info!(
            "settings: {} accepted by {} ({:.2} s to ask it)",
            settings.len(),
            image.server,
            start.elapsed().as_secs_f64()
        );
    })
}

/// Whether a server's words say it does not know a directive (every version: "Bad directive or wrong number of
/// arguments").
fn unknown_directive(words: &str) -> bool {
    words.to_ascii_lowercase().contains("bad directive")
}

/// Starts one node of `spec` with `settings` where it can reach nothing, and removes it again once its server is
/// ready (`Ok(Ok)`) or has stopped (`Ok(Err)` with its last words).
async fn probe(
    docker: &Docker,
    spec: &ClusterSpec,
    image: &NodeImage,
    secrets: Option<&Secrets>,
    settings: &[(String, String)],
) -> Result<std::result::Result<(), String>> {
    let port = spec.first_port.unwrap_or(FIRST_PORT);
    let mut identity = Identity::new(spec, port, image.clone());
    identity.settings = settings.to_vec();
    let none = Attachment::Bridge { network: "none".into() };
    let mut container = node_container(&identity, port, &none, secrets);
    container.name = format!("{}-probe", spec.name);
    container.hostname = None;
    // Not a node of the cluster: nothing that reads a cluster back takes it for one.
    container.labels.remove(LABEL_PORT);
    // It says it is ready at notice level, whatever the settings' level (the last of a setting wins).
    container.args.extend(["--loglevel".to_owned(), "notice".to_owned()]);
    let started = docker.run(&container).await?;
    let outcome = wait::until(
        &format!("{} to read its settings", container.name),
        Duration::from_secs(20),
        || async {
            let logs = docker.log_tail(&started.id, 30).await?;
            if logs.contains(READY_LINE) {
                return Ok(Ok(()));
            }
            match docker.state(&started.id).await?.as_deref() {
                Some("running" | "created") => not_yet!("its server has not said it is ready"),
                _ => Ok(Err(docker.log_tail(&started.id, 8).await?)),
            }
        },
    )
    .await;
    docker.remove_container(&started.id).await?;
    outcome
}
