//! Partitioning a master away from the majority while clients can still reach it: the split-brain window in
//! which Redis Cluster loses acknowledged writes, measured.

use std::time::{Duration, Instant};

use cluster_tests::server::data;
use cluster_tests::server::node::{self, command};
use cluster_tests::server::topology::Role;
use cluster_tests::{ClusterSpec, Cut, Result};

#[tokio::test(flavor = "multi_thread")]
async fn a_minority_master_stops_writes_within_the_node_timeout_and_loses_only_its_window() -> Result<()> {
    // The window is observable only if it outlasts the partition command itself (it runs the tools container
    // twice, up to ~1.5 s on a loaded 2-core machine): with the 1 s default the master could notice before the
    // test wrote anything. Every bound below scales with the node timeout.
    let cluster = ClusterSpec::from_env()?
        .node_timeout(Duration::from_secs(3))
        .start()
        .await?;
    let err = cluster.heal().await.unwrap_err().to_string();
    assert!(err.contains("nothing to heal"), "{err}");
    let before = data::keys("before", 1000);
    let mut client = cluster.client().await?;
    data::write(&mut client, &before).await?;
    let acknowledged = cluster.wait_replicated(Duration::from_millis(1500)).await?;
    assert!(acknowledged.values().all(|n| *n >= 1), "{acknowledged:?}");

    let port = cluster.first_port();
    let topology = cluster.topology().await?;
    let master = topology.by_port(port).expect("first node").clone();
    // Connected before the cut, so the window's first write goes out the moment the partition call returns.
    let addr = cluster.addr(port).await?;
    let mut conn = node::connect(addr).await?;
    let report = cluster
        .partition(Cut::Isolate {
            port,
            keep_clients: true,
        })
        .await?;
    let fault = &report.minority_masters[0];
    assert_eq!((report.minority_masters.len(), fault.port), (1, port), "{report:?}");

    // Write to the isolated master directly, as a client on its side would, until it refuses.
    let mut acknowledged = Vec::new();
    let mut refused_after = None;
    for n in 0.. {
        let Some(key) = data::key_in(&master.slots, &format!("window{n}")) else {
            unreachable!()
        };
        let reply: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg("v").query_async(&mut conn).await;
        match reply {
            Ok(()) => acknowledged.push(key),
            Err(e) if e.to_string().to_uppercase().contains("CLUSTERDOWN") => {
                refused_after = Some(fault.at.elapsed());
                break;
            }
            // A write that timed out is neither acknowledged nor refused: not counted either way.
            Err(e) if e.is_timeout() => eprintln!("a write in the window timed out after {:?}", fault.at.elapsed()),
            Err(e) => return Err(cluster_tests::Error::from(e).context("writing to the minority master")),
        }
        assert!(
            fault.at.elapsed() < Duration::from_secs(15),
            "still writable after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_after = refused_after.expect("refused");
    // The servers mark a peer PFAIL once a ping has gone a node timeout without its pong, and a master that
    // cannot reach a majority of masters turns its state to fail at its next cron (100 ms); the margin is for a
    // busy 2-core machine.
    let bound = cluster.node_timeout() * 2 + Duration::from_millis(1500);
    eprintln!(
        "minority master refused writes after {:.2} s, {} acknowledged in the window",
        refused_after.as_secs_f64(),
        acknowledged.len()
    );
    assert!(
        refused_after >= cluster.node_timeout() && refused_after <= bound,
        "{refused_after:?}"
    );
    assert!(!acknowledged.is_empty(), "it accepted writes in the window");

    let takeover = cluster
        .wait_takeover(fault, cluster.node_timeout() * 5 + Duration::from_secs(10))
        .await?
        .expect("promoted on the majority side");
    assert_eq!(takeover.by, fault.replicas[0]);

    let healed_at = Instant::now();
    let heal = cluster.heal().await?;
    assert_eq!(heal.namespaces, 1);
    let view = node::NodeView::read(addr).await?;
    let me = view.nodes.myself().expect("myself");
    assert_eq!(me.role, Role::Replica, "the old master rejoined as a replica");
    eprintln!("healed and ready in {:.2} s", healed_at.elapsed().as_secs_f64());

    // What it acknowledged in the window is gone; everything acknowledged before (with WAIT) is kept.
    let mut client = cluster.client().await?;
    data::verify_keys(&mut client, &before)
        .await
        .map_err(|e| e.context("reading back after heal"))?;
    let mut lost = 0;
    for key in &acknowledged {
        let got: Option<String> = redis::AsyncCommands::get(&mut client, key).await?;
        lost += usize::from(got.is_none());
    }
    assert_eq!(lost, acknowledged.len(), "the window's writes are the ones lost");
    let _: String = command(addr, &["PING"]).await?;
    Ok(())
}
