//! `cargo xtask connect`: a `redis-cli -c` session on a node, or one command sent by the harness.

use std::io::IsTerminal;
use std::net::SocketAddr;

use cluster_tests::playground as harness;
use cluster_tests::{Access, Error, Result};

use crate::playground::{find, out, pick, say};

/// Options of `cargo xtask connect`.
#[derive(clap::Args)]
pub struct Args {
    /// Node port (default: any live node).
    port: Option<u16>,
    /// A command to run instead of the interactive session, e.g. `-- set foo bar`.
    #[arg(last = true)]
    command: Vec<String>,
}

/// `connect`: an interactive `redis-cli -c` inside the node's container (so redirects reach every node), or,
/// with a command, that command sent by the harness itself, following redirects; an error reply exits 1.
pub async fn run(name: &str, args: Args) -> Result<()> {
    let cluster = find(name).await?;
    let node = pick(&cluster, args.port).await?;
    if !args.command.is_empty() {
        let reply = run_command(cluster.access(), node.addr.expect("picked nodes run"), &args.command).await?;
        print_reply(&reply);
        return Ok(());
    }
    let sh = xshell::Shell::new().map_err(|e| Error::other(e.to_string()))?;
    // With a terminal, -t: its hang-up ends the cli. Without, -i alone: the cli ends when its stdin closes, which
    // Docker does when this client goes, however it goes, so no cli is left running in the container.
    let tty = if std::io::stdin().is_terminal() { "-it" } else { "-i" };
    let (container, cli, port) = (&node.container, cluster.image().cli()?, node.port.to_string());
    let access = cluster.access();
    let user: Vec<&str> = access.user().map(|u| vec!["--user", u]).unwrap_or_default();
    // The password goes by environment (`docker exec -e NAME` passes this process's value), never in an
    // argument that `ps` would show; valkey-cli reads VALKEYCLI_AUTH, redis-cli REDISCLI_AUTH.
    let auth: Vec<&str> = match access.password() {
        Some(_) => vec!["-e", "REDISCLI_AUTH", "-e", "VALKEYCLI_AUTH"],
        None => vec![],
    };
    let tls = harness::node_cli_tls_args(&cluster);
    let cmd = xshell::cmd!(
        sh,
        "docker exec {tty} {auth...} {container} {cli} {tls...} -c -p {port} {user...}"
    );
    let mut cmd = std::process::Command::from(cmd);
    if let Some(password) = access.password() {
        cmd.env("REDISCLI_AUTH", password).env("VALKEYCLI_AUTH", password);
    }
    // Interactive: the session needs this terminal's stdin, which xshell's own `run` would close.
    let status = cmd
        .status()
        .map_err(|e| Error::other(format!("running docker exec: {e}")))?;
    if !status.success() {
        return Err(Error::other(format!("{cli} on {container} exited with {status}")));
    }
    Ok(())
}

/// Sends `words` to the node at `addr`, following `MOVED` and `ASK` redirects as `redis-cli -c` does; a server's
/// error reply is an error.
async fn run_command(access: &Access, mut addr: SocketAddr, words: &[String]) -> Result<redis::Value> {
    const REDIRECTS: usize = 5;
    let mut cmd = redis::cmd(&words[0]);
    cmd.arg(&words[1..]);
    let mut asking = false;
    for _ in 0..=REDIRECTS {
        let mut conn = access.connect(addr).await?;
        if asking {
            // On the same connection, just before the command: the target serves a slot it imports only then.
            redis::cmd("ASKING").exec_async(&mut conn).await?;
        }
        let e = match cmd.query_async::<redis::Value>(&mut conn).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let Some(target) = e.redirect_node().and_then(|(to, _)| to.parse().ok()) else {
            return Err(e.into());
        };
        asking = e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask);
        say(&format!("-> redirected to {target}"));
        addr = target;
    }
    Err(Error::redis(format!(
        "more than {REDIRECTS} redirects for {}",
        words.join(" ")
    )))
}

/// Prints a reply as `redis-cli` does when its output is not a terminal: one line per value.
fn print_reply(value: &redis::Value) {
    use redis::Value;
    match value {
        Value::Nil => out!(""),
        Value::Int(n) => out!("{n}"),
        Value::Okay => out!("OK"),
        Value::SimpleString(s) => out!("{s}"),
        Value::BulkString(bytes) => out!("{}", String::from_utf8_lossy(bytes).trim_end_matches('\n')),
        Value::VerbatimString { text, .. } => out!("{}", text.trim_end_matches('\n')),
        Value::Double(d) => out!("{d}"),
        Value::Boolean(b) => out!("{}", i32::from(*b)),
        Value::BigNumber(n) => out!("{}", String::from_utf8_lossy(n)),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(print_reply),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            print_reply(k);
            print_reply(v);
        }),
        other => out!("{other:?}"),
    }
}
