//! Slow, lossy links: loss everywhere, delay where the kernel has netem; heal leaves nothing behind.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::{Cluster, Result};

/// How long the client waits for a connection and an answer through the lossy link.
const LOSSY_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_lossy_master_keeps_serving_and_heal_removes_every_rule() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let unknown = cluster.first_port() + 100;
    let err = cluster
        .slow(Some(unknown), Duration::ZERO, 10.0)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "no node of cluster `{}` listens on port {unknown}",
            cluster.name()
        )),
        "{err}"
    );

    let fault = cluster.slow(None, Duration::ZERO, 10.0).await?;
    assert_eq!(fault.port, cluster.first_port());
    let keys = data::keys("lossy", 100);
    // TCP turns loss into latency: a lost segment is sent again after the retransmission timeout, which doubles
    // at each loss of the same segment, and starts at 3 s on a connection whose handshake lost a packet (Linux's
    // fallback, with no round trip measured yet). So an answer through a 10% lossy link can take 3 s, or 9 s after
    // two losses in a row: the client waits long enough for that, where the default client (2 s) times out.
    let mut client = cluster
        .client_with(|b| {
            b.retries(8)
                .connection_timeout(LOSSY_TIMEOUT)
                .response_timeout(LOSSY_TIMEOUT)
        })
        .await?;
    data::write(&mut client, &keys).await?;
    data::verify_keys(&mut client, &keys).await?;
    let heal = cluster.heal().await?;
    assert_eq!(heal.namespaces, 1);

    // Delay needs the kernel's netem: it works, or is refused with the reason and leaves nothing behind.
    match cluster.slow(None, Duration::from_millis(50), 0.0).await {
        Ok(_) => {
            data::verify_keys(&mut client, &keys).await?;
            cluster.heal().await?;
        }
        Err(e) => assert!(e.to_string().contains("netem"), "{e}"),
    }
    let err = cluster.heal().await.unwrap_err().to_string();
    assert!(err.contains("nothing to heal"), "{err}");
    Ok(())
}
