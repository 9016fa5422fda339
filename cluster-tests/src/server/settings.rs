//! Server settings beyond the harness's own ([`ClusterSpec::server_config`](crate::ClusterSpec::server_config), a
//! redis.conf fragment): their form, the names refused because the harness relies on them (each with why and what
//! to use instead), and the config text every node is given, joined ones too. Whether the server itself accepts
//! them is asked of the server, by [`crate::cluster::probe`], before anything starts.

use std::fmt::Write as _;

use crate::{Result, bail};

/// Names the harness sets or relies on, with why a setting of them is refused; a name ending in `*` covers every
/// name it begins.
const REFUSED: &[(&str, &str)] = &[
    (
        "port",
        "the harness gives every node its port (`ClusterSpec::first_port`)",
    ),
    (
        "tls-port",
        "the harness gives every node its port (`ClusterSpec::first_port`)",
    ),
    (
        "bind*",
        "the nodes must accept the port proxy's connections, which come from the pod's bridge address",
    ),
    (
        "protected-mode",
        "the nodes must accept the port proxy's connections, which come from the pod's bridge address",
    ),
    ("cluster-enabled", "the harness makes a cluster"),
    (
        "cluster-config-file",
        "the harness keeps each node's cluster state in nodes.conf in its data directory",
    ),
    (
        "cluster-port",
        "the cluster bus is on port + 10000, which the harness relies on",
    ),
    ("cluster-node-timeout", "set it with `ClusterSpec::node_timeout`"),
    (
        "cluster-announce-*",
        "the nodes announce the addresses the host reaches them at (127.0.0.1 and their ports)",
    ),
    (
        "cluster-preferred-endpoint-type",
        "the nodes hand out the addresses the host reaches them at (127.0.0.1)",
    ),
    (
        "tls-cert-file",
        "TLS is `ClusterSpec::tls`, with certificates of the cluster's own CA",
    ),
    (
        "tls-key-file*",
        "TLS is `ClusterSpec::tls`, with certificates of the cluster's own CA",
    ),
    (
        "tls-client-*",
        "TLS is `ClusterSpec::tls`, with certificates of the cluster's own CA",
    ),
    (
        "tls-ca-cert-*",
        "TLS is `ClusterSpec::tls`, with certificates of the cluster's own CA",
    ),
    (
        "tls-dh-params-file",
        "TLS is `ClusterSpec::tls`, with certificates of the cluster's own CA",
    ),
    (
        "tls-cluster",
        "TLS is `ClusterSpec::tls`: the bus and replication are TLS with it",
    ),
    (
        "tls-replication",
        "TLS is `ClusterSpec::tls`: the bus and replication are TLS with it",
    ),
    ("tls-auth-clients", "set it with `ClusterSpec::tls_client_auth`"),
    (
        "dir",
        "each node keeps nodes.conf and its data in the directory the image gives it",
    ),
    ("appendonly", "set it with `ClusterSpec::persist`"),
    (
        "requirepass",
        "set it with `ClusterSpec::password` (the harness must log in too)",
    ),
    (
        "masterauth",
        "set it with `ClusterSpec::password` (the harness must log in too)",
    ),
    (
        "masteruser",
        "set users with `ClusterSpec::user` (the harness must log in too)",
    ),
    (
        "user",
        "set users with `ClusterSpec::user` (the harness must log in too)",
    ),
    (
        "aclfile",
        "set users with `ClusterSpec::user` (the harness must log in too)",
    ),
    ("replicaof", "the harness makes replicas with CLUSTER REPLICATE"),
    ("slaveof", "the harness makes replicas with CLUSTER REPLICATE"),
    (
        "daemonize",
        "the server must stay in the foreground: its container ends with it",
    ),
    (
        "logfile",
        "the server's words must reach the container's output, where the harness reads why a node stopped",
    ),
    (
        "include",
        "a fragment cannot include files, which are not in the node containers: put their lines in it",
    ),
    (
        "rename-command",
        "the harness and client libraries call commands by their names (CLUSTER, CONFIG, INFO, ...)",
    ),
];

/// Why the harness refuses a setting of `name` (lower case), if it does.
pub(crate) fn refusal(name: &str) -> Option<&'static str> {
    REFUSED.iter().find_map(|(pattern, why)| {
        let matches = match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        };
        matches.then_some(*why)
    })
}

/// Refuses settings that are not one directive each (a name of letters, digits and `-`, a value on one line) or
/// that the harness relies on, naming the setting and why.
pub(crate) fn validate(settings: &[(String, String)]) -> Result<()> {
    for (name, value) in settings {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!(
                Refused,
                "server setting `{name}` is not a directive name (letters, digits and `-`, as in redis.conf)"
            );
        }
        if value.contains(['\n', '\r', '\0']) {
            bail!(Refused, "the value of server setting `{name}` must be one line");
        }
        if let Some(why) = refusal(&name.to_ascii_lowercase()) {
            bail!(Refused, "server setting `{name}` is refused: {why}");
        }
    }
    Ok(())
}

/// The settings of a redis.conf fragment: one `name value...` directive a line; blank lines and `#` comments are
/// skipped.
pub fn parse_fragment(text: &str) -> Result<Vec<(String, String)>> {
    let mut settings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if value.trim().is_empty() {
            bail!(
                Refused,
                "line {} is `{name}` with no value; a directive is `name value`",
                n + 1
            );
        }
        settings.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(settings)
}

/// The config text of `settings`, one directive a line, as every node is given it.
pub(crate) fn config_text(settings: &[(String, String)]) -> String {
    let mut text = String::new();
    for (name, value) in settings {
        writeln!(text, "{} {value}", name.to_ascii_lowercase()).ok();
    }
    text
}

/// The directive that lets every client use DEBUG. `yes`, not `local`: host clients arrive through the port proxy,
/// so the servers see them at the pod's bridge gateway, not at loopback. Servers without the directive (Redis 6.0)
/// allow DEBUG to every client.
pub(crate) const DEBUG_DIRECTIVE: (&str, &str) = ("enable-debug-command", "yes");

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn settings_the_harness_relies_on_are_refused_with_the_reason() {
        for (name, says) in [
            ("port", "first_port"),
            ("PORT", "first_port"),
            ("bind", "port proxy"),
            ("cluster-announce-ip", "127.0.0.1"),
            ("cluster-announce-tls-port", "127.0.0.1"),
            ("tls-cert-file", "own CA"),
            ("tls-client-key-file-pass", "own CA"),
            ("dir", "nodes.conf"),
            ("requirepass", "ClusterSpec::password"),
            ("include", "fragment"),
        ] {
            let e = validate(&one(name, "x")).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(says), "{name}: {e}");
        }
        for fine in [
            "maxmemory",
            "maxmemory-policy",
            "enable-debug-command",
            "tls-protocols",
            "save",
            "io-threads",
        ] {
            assert!(validate(&one(fine, "1")).is_ok(), "{fine}");
        }
        assert!(validate(&one("maxmemory", "1\nport 1")).is_err());
        assert!(validate(&one("max memory", "1")).is_err());
    }

    #[test]
    fn fragments_are_directives_a_line() {
        let text = "# for the suite\nmaxmemory 100mb\n\n  notify-keyspace-events   KEA\nsave 900 1\n";
        let settings = parse_fragment(text).unwrap();
        assert_eq!(
            settings,
            vec![
                ("maxmemory".into(), "100mb".into()),
                ("notify-keyspace-events".into(), "KEA".into()),
                ("save".into(), "900 1".into())
            ]
        );
        assert_eq!(
            config_text(&settings),
            "maxmemory 100mb\nnotify-keyspace-events KEA\nsave 900 1\n"
        );
        let e = parse_fragment("maxmemory 1\nappendonly\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
