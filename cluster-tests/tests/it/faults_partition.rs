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
    // A client on the master's side writes to it directly from before the cut until it refuses: the window is
    // written into however long the fault tools take to put the cut in on a loaded machine.
    let addr = cluster.addr(port).await?;
    let mut conn = node::connect(addr).await?;
    let (first_ack, first_acked) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(async move {
        let (mut first_ack, mut acknowledged) = (Some(first_ack), Vec::new());
        for n in 0.. {
            let key = data::key_in(&master.slots, &format!("window{n}")).expect("the master serves slots");
            let reply: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg("v").query_async(&mut conn).await;
            match reply {
                Ok(()) => {
                    acknowledged.push((key, Instant::now()));
                    first_ack.take().map(|tx| tx.send(()));
                }
                Err(e) if e.to_string().to_uppercase().contains("CLUSTERDOWN") => {
                    return Ok((acknowledged, Instant::now()));
                }
                // A write that timed out is neither acknowledged nor refused: not counted either way.
                Err(e) if e.is_timeout() => eprintln!("a write timed out"),
                Err(e) => return Err(cluster_tests::Error::from(e).context("writing to the minority master")),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        unreachable!()
    });
    first_acked.await.expect("the writer acknowledged a first write");
    let called = Instant::now();
    let report = cluster
        .partition(Cut::Isolate {
            port,
            keep_clients: true,
        })
        .await?;
    let (returned, call) = (Instant::now(), called.elapsed());
    let fault = &report.minority_masters[0];
    assert_eq!((report.minority_masters.len(), fault.port), (1, port), "{report:?}");
    let (acknowledged, refused) = tokio::time::timeout(Duration::from_secs(15), writer)
        .await
        .expect("the minority master still took writes 15 s after the cut")
        .expect("the writer ran")?;
    let refused_after = refused - fault.at;
    // The servers mark a peer PFAIL once a ping has gone a node timeout without its pong, and a master that
    // cannot reach a majority of masters turns its state to fail at its next cron (100 ms). The cut is in
    // somewhere inside the partition call (timed from its start), so that call's own time is allowed on top,
    // and a margin for a busy 2-core machine.
    let bound = cluster.node_timeout() * 2 + Duration::from_millis(1500) + call;
    let in_window: Vec<&(String, Instant)> = acknowledged.iter().filter(|(_, at)| *at >= fault.at).collect();
    eprintln!(
        "minority master refused writes after {:.2} s (the partition call took {:.2} s), {} acknowledged since the cut",
        refused_after.as_secs_f64(),
        call.as_secs_f64(),
        in_window.len()
    );
    assert!(
        refused_after >= cluster.node_timeout() && refused_after <= bound,
        "{refused_after:?}, bound {bound:?}"
    );
    assert!(!in_window.is_empty(), "it accepted writes in the window");
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

    // What it acknowledged once the cut was in is gone: all it acknowledged after the partition call returned,
    // and some in all; none acknowledged before the call began is (everything written before was confirmed with
    // WAIT, and every write since is one key).
    let mut client = cluster.client().await?;
    data::verify_keys(&mut client, &before)
        .await
        .map_err(|e| e.context("reading back after heal"))?;
    let mut lost = Vec::new();
    for (key, at) in &acknowledged {
        let got: Option<String> = redis::AsyncCommands::get(&mut client, key).await?;
        if got.is_none() {
            lost.push(*at);
        }
    }
    let after_return = acknowledged.iter().filter(|(_, at)| *at >= returned).count();
    eprintln!(
        "{} of {} acknowledged writes lost, {after_return} of them acknowledged after the partition call returned",
        lost.len(),
        acknowledged.len()
    );
    assert!(!lost.is_empty(), "the window's writes are lost");
    assert!(
        lost.iter().filter(|at| **at >= returned).count() == after_return,
        "every write acknowledged after the cut was in is lost"
    );
    assert!(
        lost.iter().all(|at| *at >= called - Duration::from_secs(1)),
        "a write acknowledged well before the cut was lost"
    );
    let _: String = command(addr, &["PING"]).await?;
    Ok(())
}
