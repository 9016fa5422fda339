//! A cluster's name is its own: two creates at once give one cluster and a clear refusal, a network of that name
//! the cluster does not own is refused, and one it left behind is reused.

use std::collections::HashMap;
use std::sync::Mutex;

use cluster_tests::docker::{Docker, LABEL_CLUSTER};
use cluster_tests::{Cluster, ClusterSpec, ErrorKind, Networking, Result};

fn spec(networking: Networking) -> Result<ClusterSpec> {
    Ok(ClusterSpec {
        networking,
        ..ClusterSpec::for_test()?
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn two_creates_at_once_make_one_cluster_and_the_loser_leaves_it_alone() -> Result<()> {
    let docker = Docker::connect().await?;
    for networking in [Networking::Pod, Networking::Bridge] {
        let spec = spec(networking)?;
        let (a, b) = tokio::join!(
            Cluster::create(&docker, spec.clone(), &|_| {}),
            Cluster::create(&docker, spec.clone(), &|_| {})
        );
        let (winner, loser) = match (a, b) {
            (Ok((winner, _)), Err(loser)) | (Err(loser), Ok((winner, _))) => (winner, loser),
            (Ok(_), Ok(_)) => panic!("{networking:?}: both creates of {} succeeded", spec.name),
            (Err(a), Err(b)) => panic!("{networking:?}: both creates failed: {a} / {b}"),
        };
        assert_eq!(loser.kind(), ErrorKind::NameTaken, "{networking:?}: {loser}");
        assert!(
            loser.to_string().contains("is being created or already exists"),
            "{networking:?}: {loser}"
        );
        let nodes = winner.nodes().await?;
        assert_eq!(
            nodes.len(),
            spec.node_count(),
            "{networking:?}: the winner's nodes are all there"
        );
        assert!(nodes.iter().all(|n| n.addr.is_some()), "{networking:?}: and running");
        if networking == Networking::Bridge {
            assert_eq!(docker.networks_named(&spec.name).await?.len(), 1, "one network");
        }
        winner.remove().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_network_of_the_name_is_refused_and_a_leftover_one_reused() -> Result<()> {
    let docker = Docker::connect().await?;
    let spec = spec(Networking::Bridge)?;
    let foreign = docker.create_network(&spec.name, HashMap::new()).await?;
    let refused = Cluster::create(&docker, spec.clone(), &|_| {}).await;
    docker.remove_network(&foreign).await?;
    let err = refused.err().expect("a foreign network refuses create").to_string();
    assert!(err.contains("is not cluster"), "{err}");
    assert!(
        docker
            .containers(&[format!("{LABEL_CLUSTER}={}", spec.name)])
            .await?
            .is_empty()
    );

    // A network of the cluster's, with no maker alive: what Docker 20.10 can fail to remove (moby/moby#42119).
    let leftover = docker
        .create_network(
            &spec.name,
            HashMap::from([(LABEL_CLUSTER.to_owned(), spec.name.clone())]),
        )
        .await?;
    let lines = Mutex::new(Vec::<String>::new());
    let (cluster, _) = Cluster::create(&docker, spec.clone(), &|l| lines.lock().unwrap().push(l.to_owned())).await?;
    let networks = docker.networks_named(&spec.name).await?;
    assert_eq!(networks.len(), 1, "no second network of the name");
    assert_eq!(networks[0].id, leftover, "the leftover is reused");
    assert!(
        lines.lock().unwrap().iter().any(|l| l.contains("reusing")),
        "and create says so"
    );
    cluster.remove().await?;
    assert!(docker.networks_named(&spec.name).await?.is_empty(), "removal takes it");
    Ok(())
}
