//! Slow, lossy links: loss everywhere, delay where the kernel has netem; heal leaves nothing behind.

use std::time::Duration;

use cluster_tests::server::data;
use cluster_tests::{Cluster, Result};

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
    let mut client = cluster.client().await?;
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
