//! The harness examples of README.md and docs/harness.md, run as they are written there (a test below keeps the
//! copies identical).

use std::time::Duration;

use cluster_tests::{Cluster, FailoverKind};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread")]
async fn my_client_survives_a_failover() -> cluster_tests::Result<()> {
    let cluster = Cluster::start_for_test().await?; // $CLUSTER_VERSION or redis-7.0; removed on drop
    let mut client = cluster.client().await?; // connect and response timeouts set, 8 retries
    let _: () = client.set("foo", "bar").await?;
    cluster.wait_replicated(Duration::from_secs(10)).await?; // every master's replicas have it
    cluster
        .failover(None, FailoverKind::RemoveMaster { force: false })
        .await?;
    let got: String = client.get("foo").await?;
    assert_eq!(got, "bar");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn my_own_client_settings_and_any_other_client_library() -> cluster_tests::Result<()> {
    let cluster = cluster_tests::ClusterSpec::from_env()?.start().await?;
    // The harness sets the seeds and its timeouts; the rest is the test's own policy.
    let mut client = cluster
        .client_with(|builder| builder.retries(2).response_timeout(Duration::from_millis(500)))
        .await?;
    let _: () = client.set("k", "v").await?;
    // Seeds for any other client library: every live node, at 127.0.0.1.
    let seeds = cluster.initial_nodes().await?;
    assert_eq!(seeds.len(), 6);
    assert!(
        seeds.iter().all(|url| url.starts_with("redis://127.0.0.1:")),
        "{seeds:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn four_masters_with_two_replicas_each() -> cluster_tests::Result<()> {
    use cluster_tests::ClusterSpec;
    use cluster_tests::server::data;
    let cluster = ClusterSpec::from_env()?.masters(4).replicas(2).start().await?;
    let topology = cluster.topology().await?;
    let masters = topology.live_masters();
    assert_eq!(masters.len(), 4);
    assert!(masters.iter().all(|m| topology.replicas_of(&m.id).len() == 2));
    let keys = data::keys("four", 1000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &keys).await?;
    data::verify_keys(&mut client, &keys).await?;
    Ok(())
}

/// Where the examples above are shown, and how many Rust examples each page shows.
const SHOWN: [(&str, &str, usize); 2] = [
    ("README.md", include_str!("../../../README.md"), 1),
    ("docs/harness.md", include_str!("../../../docs/harness.md"), 2),
];

#[test]
fn the_docs_show_these_examples_as_they_are_here() {
    let here = include_str!("examples.rs");
    for (page, text, count) in SHOWN {
        let blocks: Vec<&str> = text
            .split("```rust\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), count, "{page} has {count} Rust example(s)");
        for block in blocks {
            assert!(
                here.contains(block),
                "{page} shows an example that is not in tests/it/examples.rs:\n{block}"
            );
        }
    }
}
