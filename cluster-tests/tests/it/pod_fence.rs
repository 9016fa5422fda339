//! Only the host reaches a node: a container on Docker's default bridge, where every pod sits, opens no node's
//! client or bus port by the pod's address, while clients on the host's 127.0.0.1 still reach every node.

use cluster_tests::playground::{Docker, ensure_tools};
use cluster_tests::server::node::command;
use cluster_tests::{Cluster, Result};

use crate::common::docker;

#[tokio::test(flavor = "multi_thread")]
async fn a_container_on_the_default_bridge_reaches_no_node_and_the_host_reaches_all() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let tools = ensure_tools(&Docker::connect().await?).await?;
    let label = format!("cluster-tests.cluster={}", cluster.name());
    let pod = docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}}",
        &format!("{}-pod", cluster.name()),
    ]);
    assert!(!pod.is_empty(), "the pod has an address on the default bridge");
    // A listener on the same bridge: the probe must see it open, or a closed verdict would prove nothing.
    let listener = docker(&[
        "run",
        "-d",
        "--rm",
        "--label",
        &label,
        "--entrypoint",
        "/bin/busybox",
        &tools,
        "nc",
        "-ll",
        "-p",
        "5000",
        "-e",
        "/bin/busybox",
        "true",
    ]);
    let listener_ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &listener]);
    let nodes = cluster.nodes().await?;
    let mut targets = vec![format!("{listener_ip}:5000")];
    for n in &nodes {
        targets.push(format!("{pod}:{}", n.port));
        targets.push(format!("{pod}:{}", u32::from(n.port) + 10000));
    }
    // Every target at once, each with a 3 s connect deadline; one line per target.
    let script = targets
        .iter()
        .map(|t| {
            let (ip, port) = t.split_once(':').unwrap();
            format!("(if /bin/busybox nc -w 3 {ip} {port} </dev/null; then echo {t} open; else echo {t} closed; fi) &")
        })
        .chain(["wait".to_owned()])
        .collect::<Vec<_>>()
        .join("\n");
    let probed = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        "--entrypoint",
        "/bin/busybox",
        &tools,
        "sh",
        "-c",
        &script,
    ]);
    docker(&["rm", "-f", &listener]);
    let verdict = |t: &str| {
        probed
            .lines()
            .find(|l| l.starts_with(&format!("{t} ")))
            .unwrap_or_else(|| panic!("no verdict for {t}:\n{probed}"))
            .ends_with(" open")
    };
    assert!(verdict(&targets[0]), "the probe sees an open port as open:\n{probed}");
    for t in &targets[1..] {
        assert!(!verdict(t), "{t} is reachable from the default bridge:\n{probed}");
    }
    for n in &nodes {
        let addr = n.addr.expect("running");
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        let pong: String = command(addr, &["PING"]).await?;
        assert_eq!(pong, "PONG", "the host reaches {addr}");
    }
    Ok(())
}
