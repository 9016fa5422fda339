//! Only the host reaches a node: a container on Docker's default bridge, or one connected to the pod's own network,
//! opens no node's client or bus port by the pod's address, while clients on the host's 127.0.0.1 still reach
//! every node. A packet routed to the pod from another network, which Docker masquerades to the pod's gateway
//! address, is refused even when Docker's isolation between networks lets it through.

use std::net::SocketAddr;
use std::time::Duration;

use cluster_tests::playground::{Docker, ensure_tools};
use cluster_tests::server::node::command;
use cluster_tests::{Cluster, Node, Result};

use crate::common::docker;

#[tokio::test(flavor = "multi_thread")]
async fn no_other_container_reaches_a_node_and_the_host_reaches_all() -> Result<()> {
    let cluster = Cluster::start_for_test().await?;
    let tools = ensure_tools(&Docker::connect().await?).await?;
    let label = format!("cluster-tests.cluster={}", cluster.name());
    let holder = format!("{}-pod", cluster.name());
    let on_network = |field: &str| {
        docker(&[
            "inspect",
            "-f",
            &format!("{{{{range .NetworkSettings.Networks}}}}{{{{.{field}}}}}{{{{end}}}}"),
            &holder,
        ])
    };
    let (pod, pod_network) = (on_network("IPAddress"), on_network("NetworkID"));
    assert!(
        !pod.is_empty() && !pod_network.is_empty(),
        "the pod has an address on its network"
    );
    let nodes = cluster.nodes().await?;
    for network in ["bridge", pod_network.as_str()] {
        let closed = probe_from(network, &label, &tools, &pod, &nodes);
        assert_eq!(
            closed,
            2 * nodes.len(),
            "from {network}: every node's client and bus port probed closed"
        );
    }
    let pod_ip = pod.parse().expect("the pod's address is an IP address");
    let probes: Vec<_> = nodes
        .iter()
        .map(|n| SocketAddr::new(pod_ip, n.port))
        .map(|addr| std::thread::spawn(move || (addr, connects_with_ttl(addr, 64), connects_with_ttl(addr, 63))))
        .collect();
    let mut probed = 0;
    for probe in probes {
        let (addr, sent_by_host, routed_once) = probe.join().expect("the probe thread ends");
        assert!(
            sent_by_host,
            "the host, with TTL 64, reaches {addr} from the pod's gateway"
        );
        assert!(
            !routed_once,
            "{addr} takes a packet routed once (TTL 63) from the pod's gateway"
        );
        probed += 1;
    }
    assert_eq!(probed, nodes.len(), "every node's client port probed with both TTLs");
    for n in &nodes {
        let addr = n.addr.expect("running");
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        let pong: String = command(addr, &["PING"]).await?;
        assert_eq!(pong, "PONG", "the host reaches {addr}");
    }
    Ok(())
}

/// Probes every node's client and bus port at the pod's address from a container on `network`, asserts each
/// closed, and returns how many were; a listener on the same network must be seen open, or a closed verdict would
/// prove nothing.
fn probe_from(network: &str, label: &str, tools: &str, pod: &str, nodes: &[Node]) -> usize {
    let listener = docker(&[
        "run",
        "-d",
        "--rm",
        "--network",
        network,
        "--label",
        label,
        "--entrypoint",
        "/bin/busybox",
        tools,
        "nc",
        "-ll",
        "-p",
        "5000",
        "-e",
        "/bin/busybox",
        "true",
    ]);
    let listener_ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &listener,
    ]);
    let mut targets = vec![format!("{listener_ip}:5000")];
    for n in nodes {
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
        "--network",
        network,
        "--label",
        label,
        "--entrypoint",
        "/bin/busybox",
        tools,
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
    assert!(
        verdict(&targets[0]),
        "on {network}, the probe sees an open port as open:\n{probed}"
    );
    for t in &targets[1..] {
        assert!(!verdict(t), "{t} is reachable from network {network}:\n{probed}");
    }
    targets.len() - 1
}

/// Whether a connection to `addr` from the host, whose packets carry `ttl`, is made within 3 s. The host dials the
/// pod's address from its own address on the pod's network, the gateway: that is where a connection from another
/// network comes from too once Docker routed and masqueraded it, one hop lower than the host's 64.
fn connects_with_ttl(addr: SocketAddr, ttl: u32) -> bool {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a TCP socket");
    socket.set_ttl_v4(ttl).expect("the socket's TTL is set");
    socket.connect_timeout(&addr.into(), Duration::from_secs(3)).is_ok()
}
