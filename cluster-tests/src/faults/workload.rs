//! Any client library under the checker: the user's own program (a *workload*, in any language) writes while the
//! seeded faults run and reports what its client told it, one JSON line per write; the checker then reads every
//! key back and judges the writes exactly as it judges its own writers ([`Cluster::count_lost_writes`]).
//!
//! The protocol (docs/check-your-client.md has it with examples):
//! - the workload learns where the cluster is from the `CHECK_*` variables below, and writes only keys that
//!   start with [`PREFIX_ENV`], each key once, one `SET` each;
//! - for every write it prints one line `{"key": K, "value": V, "outcome": "ok"|"fail"|"unknown", "start": T0,
//!   "end": T1}` (times in Unix seconds; other fields are ignored) on stdout, or to the file [`OUTPUT_ENV`] names;
//! - the run (its faults and its length) begins at the workload's first line, so a slow start-up (an
//!   interpreter on a loaded machine) costs no part of it; a workload that prints nothing within
//!   [`START_GRACE`] fails the check;
//! - it writes until it gets SIGTERM (sent to its process group) or its stdin closes (the checker holds it open
//!   until then, and a checker that dies closes it too), then exits within [`STOP_GRACE`].

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::cluster::handle::Cluster;
use crate::faults::checker::{CheckReport, CheckSpec, Outcome, WAIT_MS, Write, run_id};
use crate::wait::not_yet;
use crate::{Error, Result, bail, wait};

/// Seed addresses, `127.0.0.1:7001,127.0.0.1:7002,...`: every live node, as a cluster client's start-up nodes.
pub const SEEDS_ENV: &str = "CHECK_SEEDS";
/// The prefix every key of the run starts with (`check:<run>:`), new for each run.
pub const PREFIX_ENV: &str = "CHECK_KEY_PREFIX";
/// `WAIT` replicas per write (`0`: no `WAIT`), from [`CheckSpec::wait`].
pub const WAIT_ENV: &str = "CHECK_WAIT";
/// The `WAIT` timeout in milliseconds the checker's own writers use.
pub const WAIT_MS_ENV: &str = "CHECK_WAIT_MS";
/// The file to write the records to, set only when [`Workload::output`] names one (else: stdout).
pub const OUTPUT_ENV: &str = "CHECK_OUTPUT";
/// The ACL user, set only where the cluster has one.
pub const USER_ENV: &str = "CHECK_USER";
/// The password, set only where the cluster has one.
pub const PASSWORD_ENV: &str = "CHECK_PASSWORD";
/// The CA certificate (PEM file), set only where the nodes speak TLS; with [`TLS_CERT_ENV`] and [`TLS_KEY_ENV`].
pub const TLS_CA_ENV: &str = "CHECK_TLS_CA";
/// The client certificate (PEM file), where the nodes speak TLS.
pub const TLS_CERT_ENV: &str = "CHECK_TLS_CERT";
/// Its key (PEM file), where the nodes speak TLS.
pub const TLS_KEY_ENV: &str = "CHECK_TLS_KEY";

/// How long a workload has to exit after SIGTERM before it is killed and the check fails.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a workload has to print (or write to its output file) its first line after it was started.
pub const START_GRACE: Duration = Duration::from_secs(30);
/// How many problems [`WorkloadFindings::examples`] quotes.
const EXAMPLES: usize = 5;

/// A program that writes to the cluster with its own client library and reports each write.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The program and its arguments, e.g. `["python3", "workload.py"]`.
    pub command: Vec<String>,
    /// The file it writes its records to (made empty first); `None`: its stdout.
    pub output: Option<PathBuf>,
}

impl Workload {
    /// `program` with `args`, reporting on its stdout.
    pub fn new(program: impl Into<String>, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut command = vec![program.into()];
        command.extend(args.into_iter().map(Into::into));
        Self { command, output: None }
    }

    /// A shell command line (`sh -c LINE`), reporting on its stdout.
    pub fn shell(line: &str) -> Self {
        Self::new("sh", ["-c", line])
    }
}

/// What the checker could not vouch for in a workload's records; such records are left out of the verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkloadFindings {
    /// Lines that were well-formed records.
    pub records: usize,
    /// Lines that were not: not JSON, a field missing or of the wrong type, an unknown outcome, times outside
    /// the run.
    pub malformed: usize,
    /// Keys reported with two different values (one `SET` per key is the protocol): not judged.
    pub conflicting: usize,
    /// Records of keys outside the run's prefix ([`PREFIX_ENV`]): not judged (an earlier run's key could pass).
    pub foreign: usize,
    /// Up to 5 of the problems, each with its line number.
    pub examples: Vec<String>,
}

/// The record of one write, as a workload prints it.
#[derive(serde::Deserialize)]
struct Record {
    key: String,
    value: String,
    outcome: String,
    start: Option<f64>,
    end: f64,
}

impl Cluster {
    /// Runs `workload` while the faults of `spec` happen ([`CheckSpec::writers`] is not used; [`CheckSpec::wait`]
    /// is passed on), then reads back every key it reported and judges its records as the checker's own writes.
    /// A workload that cannot start, exits before the run is over, does not exit within [`STOP_GRACE`] of
    /// SIGTERM, exits with an error, or reports no record at all fails the check; in every case the faults are
    /// undone first and the workload's process group is killed.
    pub async fn check_workload(&self, spec: &CheckSpec, workload: &Workload) -> Result<CheckReport> {
        let Some((program, args)) = workload.command.split_first() else {
            bail!(Refused, "`Workload::command` is empty: give the program to run");
        };
        self.check_can_run(spec).await?;
        let prefix = format!("check:{}:", run_id());
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(self.workload_env(spec, &prefix).await?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(path) = &workload.output {
            std::fs::File::create(path)
                .map_err(|e| Error::refused(format!("cannot make the workload's output {}: {e}", path.display())))?;
            command.env(OUTPUT_ENV, path);
        }
        let tail = |stderr: Vec<String>| match stderr.is_empty() {
            true => "it printed nothing on stderr".to_owned(),
            false => format!("the end of its stderr:\n{}", stderr.join("\n")),
        };
        let (start, epoch) = (Instant::now(), SystemTime::now());
        let mut child = command
            .spawn()
            .map_err(|e| Error::refused(format!("cannot start the workload `{program}`: {e}")))?;
        let group = Group(child.id().expect("a child just spawned has a pid"));
        // Held open until the stop: its end tells the workload to stop, even if this process is killed.
        let stdin = child.stdin.take();
        let (first_line, printed) = tokio::sync::oneshot::channel();
        let stdout = tokio::spawn(read_lines(
            child.stdout.take().expect("piped"),
            usize::MAX,
            Some(first_line),
        ));
        let stderr = tokio::spawn(read_lines(child.stderr.take().expect("piped"), 10, None));
        tracing::info!(
            "check: workload `{}` started (keys {prefix}*)",
            workload.command.join(" ")
        );
        let begun = async {
            match &workload.output {
                // Stdout closed with no line: whether the workload exits or hangs decides.
                None => printed.await.is_ok() || std::future::pending().await,
                Some(path) => wait::until("the workload's first record", START_GRACE, || async {
                    match std::fs::metadata(path) {
                        Ok(meta) if meta.len() > 0 => Ok(()),
                        _ => not_yet!("{} is empty", path.display()),
                    }
                })
                .await
                .is_ok(),
            }
        };
        // The run begins at the workload's first line; an exit before it is an early exit.
        let mut early = None;
        tokio::select! {
            begun = tokio::time::timeout(START_GRACE, begun) => if !matches!(begun, Ok(true)) {
                drop(group);
                reap(&mut child).await;
                let stderr = collected(stderr).await;
                bail!(
                    Timeout,
                    "the workload reported nothing within {} s of its start; it was killed; {}",
                    START_GRACE.as_secs(),
                    tail(stderr)
                );
            },
            status = child.wait() => early = Some(status),
        }
        let begun = Instant::now();

        // The faults, while watching the workload: if it exits early, the round under way is finished (and
        // undone) before the check fails.
        let abort = AtomicBool::new(early.is_some());
        let schedule = self.run_schedule(spec, start, &abort);
        tokio::pin!(schedule);
        let rounds = if early.is_some() {
            schedule.await
        } else {
            tokio::select! {
                rounds = &mut schedule => rounds,
                status = child.wait() => {
                    abort.store(true, Ordering::Relaxed);
                    early = Some(status);
                    schedule.await
                }
            }
        };
        if early.is_none() {
            let left = spec.seconds.saturating_sub(begun.elapsed()).max(Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                status = child.wait() => early = Some(status),
            }
        }
        let rounds = rounds?;
        let seconds = start.elapsed().as_secs_f64();
        if let Some(status) = early {
            let status = status.map_err(|e| Error::other(format!("waiting for the workload: {e}")))?;
            group.signal(libc::SIGKILL); // whatever it left running in its group
            let stderr = collected(stderr).await;
            self.settle().await?;
            bail!(
                Refused,
                "the workload exited after {:.1} s, before the run was over ({}; it must write until SIGTERM or \
                 the end of its stdin); {}",
                seconds,
                describe(status),
                tail(stderr)
            );
        }
        drop(stdin);
        group.signal(libc::SIGTERM);
        let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(status) => status.map_err(|e| Error::other(format!("waiting for the workload: {e}")))?,
            Err(_) => {
                drop(group);
                reap(&mut child).await;
                let stderr = collected(stderr).await;
                bail!(
                    Timeout,
                    "the workload did not exit within {} s of SIGTERM at the end of the run; it was killed; {}",
                    STOP_GRACE.as_secs(),
                    tail(stderr)
                );
            }
        };
        drop(group); // whatever it left running in its group
        let lines = match &workload.output {
            None => collected(stdout).await,
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| Error::refused(format!("cannot read the workload's output {}: {e}", path.display())))?
                .lines()
                .map(str::to_owned)
                .collect(),
        };
        let stderr = collected(stderr).await;
        if !(status.success() || status_is_sigterm(status)) {
            bail!(
                Refused,
                "the workload failed at the end of the run ({}); {}",
                describe(status),
                tail(stderr)
            );
        }
        let (writes, findings) = parse(&lines, &prefix, epoch, SystemTime::now());
        if findings.records == 0 {
            bail!(
                Refused,
                "the workload reported no write in {} line(s){}; each write is one JSON line \
                 {{\"key\", \"value\", \"outcome\", \"start\", \"end\"}}; {}",
                lines.len(),
                findings.examples.first().map_or(String::new(), |e| format!(" ({e})")),
                tail(stderr)
            );
        }
        tracing::info!(
            "check: workload reported {} write(s) ({} malformed line(s), {} conflicting key(s), {} foreign)",
            findings.records,
            findings.malformed,
            findings.conflicting,
            findings.foreign
        );
        let mut report = self.judge(spec, &writes, rounds, seconds).await?;
        report.workload = Some(findings);
        Ok(report)
    }

    /// What a workload is told: where the cluster is, how to get in, the run's key prefix, the `WAIT` to use.
    async fn workload_env(&self, spec: &CheckSpec, prefix: &str) -> Result<Vec<(&'static str, String)>> {
        let seeds: Vec<String> = self.live_addrs().await?.iter().map(ToString::to_string).collect();
        let mut env = vec![
            (SEEDS_ENV, seeds.join(",")),
            (PREFIX_ENV, prefix.to_owned()),
            (WAIT_ENV, spec.wait.to_string()),
            (WAIT_MS_ENV, WAIT_MS.to_string()),
        ];
        let access = self.access();
        env.extend(access.user().map(|u| (USER_ENV, u.to_owned())));
        env.extend(access.password().map(|p| (PASSWORD_ENV, p.to_owned())));
        if let Some(files) = self.tls_files() {
            env.push((TLS_CA_ENV, files.ca.display().to_string()));
            env.push((TLS_CERT_ENV, files.cert.display().to_string()));
            env.push((TLS_KEY_ENV, files.key.display().to_string()));
        }
        Ok(env)
    }

    /// After a failed workload: the cluster ready again, so the failure leaves it as a check found it.
    async fn settle(&self) -> Result<()> {
        self.wait_ready(
            crate::server::ready::Shape::Any,
            self.identity().step_timeout(self.nodes().await?.len()),
        )
        .await
    }
}

/// A workload's process group: killed (SIGKILL) when dropped, whatever it still runs.
struct Group(u32);

impl Group {
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is shared.
        unsafe { libc::kill(-(self.0 as libc::pid_t), signal) };
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// Waits (briefly) for the workload, whose group was just sent SIGKILL, to be gone, so that it no longer runs
/// when the check returns.
async fn reap(child: &mut tokio::process::Child) {
    tokio::time::timeout(Duration::from_secs(5), child.wait()).await.ok();
}

fn status_is_sigterm(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGTERM)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// What a reader task collected, once its pipe closed; a pipe a process outside the group still holds gives
/// up after 2 s.
async fn collected(task: tokio::task::JoinHandle<Vec<String>>) -> Vec<String> {
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .ok()
        .and_then(|lines| lines.ok())
        .unwrap_or_default()
}

/// Every line of `from` (or, with `keep` < all, the last `keep`), until it closes; `first` is told when the first
/// line came.
async fn read_lines(
    from: impl AsyncRead + Unpin,
    keep: usize,
    mut first: Option<tokio::sync::oneshot::Sender<()>>,
) -> Vec<String> {
    let mut lines = BufReader::new(from).lines();
    let mut kept = VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(first) = first.take() {
            first.send(()).ok();
        }
        if kept.len() == keep {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept.into()
}

/// The writes a workload's `lines` report, one per key of the run (`prefix`), and what could not be vouched
/// for. Times are Unix seconds, taken relative to `epoch` (the run's start) and bounded by `now`.
fn parse(lines: &[String], prefix: &str, epoch: SystemTime, now: SystemTime) -> (Vec<Write>, WorkloadFindings) {
    let unix = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let (from, to) = (unix(epoch), unix(now));
    let mut findings = WorkloadFindings::default();
    let mut keys: BTreeMap<String, (Write, bool)> = BTreeMap::new();
    let problem = |findings: &mut WorkloadFindings, n: usize, what: String| {
        if findings.examples.len() < EXAMPLES {
            findings.examples.push(format!("line {}: {what}", n + 1));
        }
    };
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = match serde_json::from_str::<Record>(line) {
            Ok(record) => record,
            Err(e) => {
                findings.malformed += 1;
                let quoted: String = line.chars().take(80).collect();
                problem(&mut findings, n, format!("{e}: {quoted}"));
                continue;
            }
        };
        let outcome = match record.outcome.as_str() {
            "ok" => Outcome::Acknowledged,
            "fail" => Outcome::Failed,
            "unknown" => Outcome::Unknown,
            other => {
                findings.malformed += 1;
                problem(&mut findings, n, format!("outcome `{other}`: give ok, fail or unknown"));
                continue;
            }
        };
        let sent = record.start.unwrap_or(record.end);
        // A second of slack either side for clocks read at slightly different moments.
        if !(from - 1.0 <= sent && sent <= record.end && record.end <= to + 1.0) {
            findings.malformed += 1;
            problem(
                &mut findings,
                n,
                format!(
                    "times {sent:.3}..{:.3} are not within the run ({from:.3}..{to:.3})",
                    record.end
                ),
            );
            continue;
        }
        findings.records += 1;
        if !record.key.starts_with(prefix) {
            findings.foreign += 1;
            problem(&mut findings, n, format!("key `{}` is not under {prefix}", record.key));
            continue;
        }
        let since = |t: f64| Duration::from_secs_f64((t - from).max(0.0));
        let write = Write {
            key: record.key.clone(),
            value: record.value,
            outcome,
            sent: since(sent),
            done: since(record.end),
        };
        match keys.get_mut(&record.key) {
            None => {
                keys.insert(record.key, (write, false));
            }
            Some((_, conflicting)) if *conflicting => {}
            Some((first, conflicting)) if first.value != write.value => {
                *conflicting = true;
                findings.conflicting += 1;
                problem(
                    &mut findings,
                    n,
                    format!(
                        "key `{}` reported with values `{}` and `{}`",
                        write.key, first.value, write.value
                    ),
                );
            }
            // The same write reported again: the strongest outcome stands (a retry that was acknowledged).
            Some((first, _)) => {
                let rank = |o| {
                    [Outcome::Failed, Outcome::Unknown, Outcome::Acknowledged]
                        .iter()
                        .position(|x| *x == o)
                };
                if rank(write.outcome) > rank(first.outcome) {
                    *first = write;
                }
            }
        }
    }
    let writes = keys
        .into_values()
        .filter(|(_, conflicting)| !conflicting)
        .map(|(w, _)| w)
        .collect();
    (writes, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_leniently_and_what_cannot_be_vouched_for_is_counted() {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let now = epoch + Duration::from_secs(10);
        let line = |key: &str, value: &str, outcome: &str, end: f64| {
            format!(
                r#"{{"key":"p:{key}","value":"{value}","outcome":"{outcome}","start":{},"end":{end},"extra":1}}"#,
                end - 0.01
            )
        };
        let lines = vec![
            line("a", "1", "ok", 1001.0),
            line("b", "1", "unknown", 1002.0),
            line("b", "1", "ok", 1003.0), // a retry acknowledged: ok stands
            line("c", "1", "ok", 1004.0),
            line("c", "2", "ok", 1005.0), // conflicting: c is not judged
            line("d", "1", "maybe", 1005.0),
            line("e", "1", "ok", 2000.0), // after the run
            "not json".into(),
            String::new(),
            r#"{"key":"q:x","value":"1","outcome":"ok","end":1006}"#.into(),
        ];
        let (writes, findings) = parse(&lines, "p:", epoch, now);
        let judged: Vec<_> = writes.iter().map(|w| (w.key.as_str(), w.outcome)).collect();
        assert_eq!(judged, [("p:a", Outcome::Acknowledged), ("p:b", Outcome::Acknowledged)]);
        assert_eq!(writes[1].done, Duration::from_secs(3));
        assert_eq!(
            (
                findings.records,
                findings.malformed,
                findings.conflicting,
                findings.foreign
            ),
            (6, 3, 1, 1)
        );
        assert_eq!(findings.examples.len(), 5);
        assert!(
            findings.examples[0].starts_with("line 5: key `p:c`"),
            "{:?}",
            findings.examples
        );
    }
}
