//! A check workload for redis-rs: `cargo build --example workload`, then `cargo xtask check --workload
//! target/debug/examples/workload`.
//!
//! Writes unique keys through a redis-rs cluster connection until SIGTERM or the end of stdin and prints one JSON line per write: what
//! the client said (ok, fail, unknown). With `CHECK_WAIT=N` > 0, `SET` and `WAIT N` go in one pipeline, which
//! redis-rs sends to the key's master on one connection, so `ok` means N replicas have that write. The protocol
//! and the variables: docs/check-your-client.md.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use redis::AsyncCommands;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let var = |name: &str| std::env::var(name).ok();
    let need = |name: &str| {
        var(name).ok_or(format!(
            "${name} is not set: run me under `cargo xtask check --workload`"
        ))
    };
    let (prefix, wait) = (
        need("CHECK_KEY_PREFIX")?,
        var("CHECK_WAIT").map_or(Ok(0), |w| w.parse())?,
    );
    let wait_ms: u64 = var("CHECK_WAIT_MS").map_or(Ok(500), |w| w.parse())?;
    let scheme = if var("CHECK_TLS_CA").is_some() {
        "rediss"
    } else {
        "redis"
    };
    let seeds: Vec<String> = need("CHECK_SEEDS")?
        .split(',')
        .map(|s| format!("{scheme}://{s}/"))
        .collect();
    let mut builder = redis::cluster::ClusterClient::builder(seeds)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1));
    if let Some(user) = var("CHECK_USER") {
        builder = builder.username(user);
    }
    if let Some(password) = var("CHECK_PASSWORD") {
        builder = builder.password(password);
    }
    if let Some(ca) = var("CHECK_TLS_CA") {
        let read = |name: &str| std::fs::read(need(name)?).map_err(|e| format!("${name}: {e}"));
        let client_tls = redis::ClientTlsConfig {
            client_cert: read("CHECK_TLS_CERT")?,
            client_key: read("CHECK_TLS_KEY")?,
        };
        builder = builder.certs(redis::TlsCertificates {
            client_tls: Some(client_tls),
            root_cert: Some(std::fs::read(ca)?),
        });
    }
    let mut conn = builder.build()?.get_async_connection().await?;
    let mut out: Box<dyn std::io::Write> = match var("CHECK_OUTPUT") {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn({
        let stop = stop.clone();
        async move {
            sigterm.recv().await;
            stop.store(true, Ordering::Relaxed);
        }
    });
    // The checker closes stdin at the stop too, and so does a checker that dies: stop then as well.
    std::thread::spawn({
        let stop = stop.clone();
        move || {
            std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).ok();
            stop.store(true, Ordering::Relaxed);
        }
    });
    let now = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (key, value) = (format!("{prefix}rs:{n}"), n.to_string());
        let start = now();
        let answer = if wait == 0 {
            tokio::time::timeout(Duration::from_secs(3), conn.set::<_, _, ()>(&key, &value))
                .await
                .map(|r| r.map(|()| true))
        } else {
            let mut pipe = redis::pipe();
            pipe.set(&key, &value).ignore().cmd("WAIT").arg(wait).arg(wait_ms);
            let confirmed = pipe.query_async::<(usize,)>(&mut conn);
            tokio::time::timeout(Duration::from_secs(3), confirmed)
                .await
                .map(|r| r.map(|(replicas,)| replicas >= wait))
        };
        let outcome = match answer {
            Ok(Ok(true)) => "ok",
            // Applied but not confirmed by WAIT, timed out, or the connection lost: it may or may not be there.
            Ok(Ok(false)) | Err(_) => "unknown",
            Ok(Err(e)) if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() => "unknown",
            Ok(Err(_)) => "fail",
        };
        let record = serde_json::json!({"key": key, "value": value, "outcome": outcome, "start": start, "end": now()});
        writeln!(out, "{record}")?;
        // Paced, as the checker's own writers are: a few hundred writes a second leave the machine to the servers.
        let gap = if outcome == "ok" { 2 } else { 20 };
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    out.flush()?;
    Ok(())
}
