//! `cargo xtask create`: makes a cluster and waits until it is ready.

use std::time::Duration;

use cluster_tests::playground::{self as harness, Docker, remove_interrupted_cluster};
use cluster_tests::{
    AclUser, ClientAuth, ClusterSpec, Error, ImageSource, Networking, PlainPorts, Result, Version, generate_password,
    parse_acl_file,
};

use crate::images::install_build_tools;
use crate::playground::{Interrupts, command, out, print_topology};

/// Options of `cargo xtask create`.
#[derive(clap::Args)]
pub struct Args {
    /// Server version (an image built here from Debian packages).
    #[arg(long, default_value_t = crate::default_version(), value_parser = crate::version_names(false))]
    version: String,
    /// Run any image holding redis-server or valkey-server instead (e.g. `redis:7.4`, `valkey/valkey:8.1`, a
    /// local tag); pulled if missing, where the Docker engine can reach a registry.
    #[arg(long, conflicts_with = "version", value_name = "REF")]
    image: Option<String>,
    /// Number of masters (at least 3).
    #[arg(long, default_value_t = 3)]
    masters: usize,
    /// Replicas per master.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// cluster-node-timeout in milliseconds (default: 1000, or 50 per node for clusters over 20 nodes).
    #[arg(long)]
    node_timeout: Option<u64>,
    /// Port of the first node on 127.0.0.1; the others follow.
    #[arg(long, default_value_t = cluster_tests::FIRST_PORT)]
    port_base: u16,
    /// Ports published beyond the nodes' own, for `join` (a running cluster cannot publish more).
    #[arg(long, default_value_t = cluster_tests::DEFAULT_SPARE_PORTS)]
    spare_ports: usize,
    /// `pod`: every node at 127.0.0.1:<port> on the host, as the original tool had; `bridge`: each node in its
    /// own network namespace, at its container address (reachable from a Linux host only).
    #[arg(long, default_value = "pod", value_parser = ["pod", "bridge"])]
    networking: String,
    /// `requirepass` and `masterauth` on every node; with no value, one is generated and printed once. Later
    /// commands find it in a 0600 file under target/cluster-tests/<cluster>/.
    #[arg(long, value_name = "SECRET", num_args = 0..=1, default_missing_value = "")]
    password: Option<String>,
    /// An ACL user loaded on every node, `NAME:PASSWORD:RULES` (e.g. `reader:pw:~* +@read`); repeatable.
    #[arg(long = "user", value_name = "NAME:PASS:RULES")]
    users: Vec<String>,
    /// An ACL file of `user NAME on >PASSWORD RULES...` lines, loaded on every node.
    #[arg(long, value_name = "FILE")]
    acl: Option<std::path::PathBuf>,
    /// Turn the `default` user off: every client must name a user.
    #[arg(long)]
    no_default_user: bool,
    /// TLS only, on client connections, replication and the cluster bus, with certificates of the cluster's
    /// own CA; the CA and a client certificate are written under target/cluster-tests/<cluster>/, their paths printed.
    #[arg(long)]
    tls: bool,
    /// Mutual TLS: `--tls`, and clients must present a certificate of the cluster's CA (`required`, the default),
    /// or may present one or none (`optional`).
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "required",
          value_parser = ["required", "optional"])]
    tls_client_auth: Option<String>,
    /// With `--tls`, every node also listens for plain-text clients, on ports from P on (in the order of its TLS
    /// ports, which `--port-base` sets). Redis 7.0+ and Valkey hand each client the ports of its own kind.
    #[arg(long, value_name = "P")]
    plain_port_base: Option<u16>,
    /// With `--tls`, copy the CA, the server certificate and key and the client certificate and key into DIR as
    /// ca.crt, redis.crt, redis.key, client.crt and client.key, for a client suite's fixture path.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<std::path::PathBuf>,
    /// A server setting on every node, joined ones too, as in redis.conf (e.g. `maxmemory-policy=allkeys-lru`,
    /// `save=900 1`); repeatable. Checked by the server before anything starts; settings the harness relies on
    /// (ports, cluster mode, announced addresses, bind, TLS files, dir, credentials, ...) are refused with why.
    #[arg(long = "config", value_name = "NAME=VALUE")]
    config: Vec<String>,
    /// A redis.conf fragment of settings for every node (one `name value` directive a line), as `--config`.
    #[arg(long, value_name = "FILE")]
    config_file: Option<std::path::PathBuf>,
    /// Let every client use DEBUG, host clients too (`enable-debug-command yes`; Redis 6.0 has no such setting
    /// and allows DEBUG anyway).
    #[arg(long)]
    enable_debug_command: bool,
    /// Keep writes on disk (AOF, fsync every second), so a killed and restarted node has them.
    #[arg(long)]
    persist: bool,
}

impl Args {
    /// The spec of the cluster `name` these options describe; a generated password is printed here, once.
    fn spec(self, name: &str) -> Result<ClusterSpec> {
        let Self {
            version,
            image,
            masters,
            replicas,
            node_timeout,
            port_base,
            spare_ports,
            networking,
            password,
            users,
            acl,
            no_default_user,
            tls,
            tls_client_auth,
            plain_port_base,
            tls_dir: _,
            config,
            config_file,
            enable_debug_command,
            persist,
        } = self;
        let mut server_config = Vec::new();
        for setting in &config {
            let (name, value) = setting.split_once('=').ok_or_else(|| {
                Error::refused(format!(
                    "--config takes NAME=VALUE, e.g. maxmemory=100mb (got `{setting}`)"
                ))
            })?;
            server_config.push((name.to_owned(), value.to_owned()));
        }
        let mut users = users.iter().map(|u| AclUser::parse(u)).collect::<Result<Vec<_>>>()?;
        if let Some(file) = acl {
            let text =
                std::fs::read_to_string(&file).map_err(|e| Error::other(format!("reading {}: {e}", file.display())))?;
            users.extend(parse_acl_file(&text).map_err(|e| e.context(file.display()))?);
        }
        if no_default_user && users.is_empty() {
            return Err(Error::refused(
                "--no-default-user without --user or --acl leaves no user a client could log in as (the harness's \
                 own is kept to itself); add one, e.g. --user 'app:SECRET:~* +@all'",
            ));
        }
        let generated = password.as_deref() == Some("");
        let password = password.map(|p| if p.is_empty() { generate_password() } else { p });
        if generated {
            // The one time it is shown; later commands read it from the cluster's file.
            println!("password: {}", password.as_deref().unwrap_or_default());
        }
        let mut spec = ClusterSpec {
            password,
            users,
            default_user_off: no_default_user,
            tls: match (tls, tls_client_auth.as_deref()) {
                (_, Some("optional")) => Some(ClientAuth::Optional),
                (_, Some(_)) => Some(ClientAuth::Required),
                (true, None) => Some(ClientAuth::None),
                (false, None) => None,
            },
            plain_ports: plain_port_base.map_or(PlainPorts::Off, PlainPorts::At),
            server_config,
            debug_command: enable_debug_command,
            masters,
            replicas,
            node_timeout: node_timeout.map(Duration::from_millis),
            first_port: Some(port_base),
            spare_ports,
            networking: Networking::named(&networking)?,
            persist,
            ..cluster_tests::playground::spec(match image {
                Some(reference) => ImageSource::Reference(reference),
                None => ImageSource::Recipe(Version::named(&version)?),
            })
            .name(name)
        };
        if let Some(file) = config_file {
            let text =
                std::fs::read_to_string(&file).map_err(|e| Error::other(format!("reading {}: {e}", file.display())))?;
            spec = spec
                .server_config_fragment(&text)
                .map_err(|e| e.context(file.display()))?;
        }
        Ok(spec)
    }
}

/// `create`: makes the cluster `name`, or refuses if one runs. SIGINT, SIGTERM or SIGHUP removes what was made.
pub async fn run(name: &str, args: Args) -> Result<()> {
    let tls_dir = args.tls_dir.clone();
    if tls_dir.is_some() && !(args.tls || args.tls_client_auth.is_some()) {
        return Err(Error::refused(
            "--tls-dir needs --tls (there are no certificates without it)",
        ));
    }
    let spec = args.spec(name)?;
    if spec.image.version().is_some() {
        install_build_tools()?;
    }
    let name = spec.name.clone();
    let mut interrupts = Interrupts::catch()?;
    let docker = Docker::connect().await?;
    let created = tokio::select! {
        created = harness::create(&docker, spec) => created?,
        signal = interrupts.next() => {
            // Watches for a while after the first empty pass, so a container create already in flight goes too.
            let removed = remove_interrupted_cluster(&docker, &name).await?;
            return Err(Error::other(format!(
                "interrupted by {signal}; removed what had been made ({} containers, {} network)",
                removed.containers, removed.networks
            )));
        }
    };
    let (cluster, report) = created;
    out!(
        "ready in {:.2} s (node timeout {} ms)",
        report.replicas_synced.as_secs_f64(),
        cluster.node_timeout().as_millis()
    );
    print_topology(&cluster.topology().await?);
    let tls = cluster.tls_files().map(|f| {
        format!(
            "--tls --cacert {} --cert {} --key {} ",
            f.ca.display(),
            f.cert.display(),
            f.key.display()
        )
    });
    let plain = cluster.plain_port(cluster.first_port());
    if let Some(args) = &tls {
        match plain {
            Some(plain) => out!(
                "TLS on the ports above, plain text on {plain} and up (node {} is also at {plain}); a TLS client \
                 needs the cluster's CA and client certificate: {args}",
                cluster.first_port()
            ),
            None => out!("TLS only; a host client needs the cluster's CA and client certificate: {args}"),
        }
    }
    if !cluster.server_settings().is_empty() {
        let settings: Vec<String> = cluster
            .server_settings()
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        out!("server settings on every node: {}", settings.join(", "));
    }
    if let Some(dir) = &tls_dir {
        let written = cluster.copy_tls_files(dir)?;
        out!(
            "TLS files in {}: {}",
            dir.display(),
            written
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let next = [
        command(&name, "connect"),
        command(&name, "failover"),
        command(&name, "stop"),
    ];
    match cluster.published_ports() {
        Some(_) => out!(
            "next: `redis-cli {}-c -p {}` (or {}), {}, {}",
            tls.unwrap_or_default(),
            cluster.first_port(),
            next[0],
            next[1],
            next[2]
        ),
        None => out!("next: {}", next.join(", ")),
    }
    Ok(())
}
