//! The engine question, guarded: the harness talks to Docker through the client testcontainers configures, which
//! (bollard 0.21) sends no `/vX.Y` prefix, so an engine answers in its own API version, Docker 20.10's 1.41
//! included. An upgrade that starts sending a version newer than this engine serves (bollard 0.22 sends its own,
//! 1.5x) fails here first, with the engine's refusal, before any cluster test does.

use cluster_tests::Result;
use cluster_tests::playground::Docker;

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_client_is_answered_by_this_engine_in_its_own_api_version() -> Result<()> {
    let docker = Docker::connect().await?;
    let (version, api) = docker.version().await.map_err(|e| {
        e.context(
            "the engine refused the shared Docker client's request: did a testcontainers/bollard upgrade start \
             sending an API version this engine does not serve? Pin the last working one in Cargo.lock",
        )
    })?;
    assert!(
        !version.is_empty() && !api.is_empty(),
        "the engine says its versions: {version} {api}"
    );
    let engine_api = crate::common::docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(
        api, engine_api,
        "the client was answered in the engine's own API version"
    );
    Ok(())
}
