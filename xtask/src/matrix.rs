//! `cargo xtask test`: the suite under nextest once per server version (several versions side by side, under one
//! machine-wide cap on live clusters), then a version x scenario table, the slowest tests and the wall time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cluster_tests::playground::{Docker, ensure_built};
use cluster_tests::{
    ClusterSpec, Error, IMAGE_ENV, ImageSource, MAX_CLUSTERS_ENV, NodeImage, PoolSizes, Result, VERSION_ENV, Version,
    WarmPool,
};

use crate::playground::Interrupts;

/// Set once the run is interrupted: a lane then starts no further version (the one it runs ends on the signal).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The nextest processes running now, by pid (cargo execs nextest in its own place): stopped if the engine stalls.
static SUITES: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// How often the run asks the Docker engine for a listing, and for how long it may answer none before the run stops
/// its suites: against an engine that no longer answers, every test would wait out its own timeouts, one after the
/// other, for hours (a CI run here hit its 90-minute limit so).
const ENGINE_PROBE_EVERY: Duration = Duration::from_secs(10);
const ENGINE_SILENT_FOR: Duration = Duration::from_secs(150);

/// Clusters of the default spec kept ready for a version while its suite runs.
const WARM_READY: usize = 2;
/// Clusters the keeper makes at once: each make is mostly the servers' 2 s writable delay, but its container
/// starts take the CPU the tests' servers need; a second make at once left the machine at a load average of 35-40.
const WARM_MAKING: usize = 1;

/// Versions whose suites run at once (`CLUSTER_TESTS_LANES`, unless set): the others wait in line, so a version's
/// tests never queue behind five others' for the cap, and the tail of one version overlaps the next one's start.
const LANES: usize = 2;
/// Clusters alive at once, over all the versions run side by side ([`MAX_CLUSTERS_ENV`], unless set already). The
/// matrix is bound by the CPU on 2 cores (busy 96% of a run), so more at once adds no speed, only replies that
/// take over 5 s: six at once did (three runs measured).
const SIDE_BY_SIDE_CLUSTERS: usize = 4;
/// Tests of one version run at once when versions run side by side (`NEXTEST_TEST_THREADS`, unless set already;
/// `-j` overrides it): the lanes' threads together fill the cap.
const SIDE_BY_SIDE_THREADS: usize = 2;
/// Variable that sets [`LANES`].
const LANES_ENV: &str = "CLUSTER_TESTS_LANES";
/// How many of the slowest tests the end of the run lists.
const SLOWEST: usize = 8;

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Version to test, or `all`.
    #[arg(long, default_value = "all", value_parser = crate::version_names(true))]
    version: String,
    /// `debian`: the images built here (the default, needs no registry); `upstream`: each version's official
    /// image named in images/versions.toml (pulled; needs a registry).
    #[arg(long, default_value = "debian", value_parser = ["debian", "upstream"])]
    images: String,
    /// Arguments passed on to `cargo nextest run`.
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

/// One test's outcome in one version's run.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `binary::test_name`.
    pub scenario: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its time in seconds.
    pub seconds: f64,
}

/// Runs the suite for each version (on its upstream image with `upstream`), prints the table, and fails if any cell
/// failed.
pub async fn run(args: Args) -> Result<()> {
    let versions = &crate::versions(&args.version)?;
    let lanes = lanes(versions.len())?;
    let upstream = args.images == "upstream";
    let nextest_args = &args.nextest_args;
    if !upstream {
        crate::images::install_build_tools()?;
    }
    let docker = Docker::connect().await?;
    for version in versions {
        if upstream {
            let reference = upstream_image(version)?;
            NodeImage::resolve(&docker, &ImageSource::Reference(reference.into())).await?;
        } else {
            ensure_built(&docker, version).await?;
        }
    }
    let workspace = Workspace::locate()?;
    let (user_filters, other_args) = split_filtersets(nextest_args);
    // With filters of the user's (filtersets, or name filters: words not starting with `-`, which may also be an
    // option's value) a run may match nothing; without, it must run something.
    let narrowed = !user_filters.is_empty() || !name_filters(&other_args).is_empty();
    let user_no_tests = other_args.iter().any(|a| a.starts_with("--no-tests"));
    let with = |base: &str| -> Vec<String> {
        let mut args = vec!["-E".to_owned(), combine(base, &user_filters)];
        if narrowed && !user_no_tests {
            args.push("--no-tests=pass".into());
        }
        args.extend(other_args.iter().cloned());
        args
    };
    let images: Vec<Option<&'static str>> = versions
        .iter()
        .map(|v| upstream.then(|| upstream_image(v)).transpose())
        .collect::<Result<_>>()?;
    // Clusters made ahead for the tests, and removed after them by this process (see cluster_tests::WarmPool).
    let specs = versions
        .iter()
        .zip(&images)
        .map(|(v, image)| match image {
            Some(reference) => ClusterSpec::default().image(ImageSource::Reference((*reference).into())),
            None => ClusterSpec::default().version(v),
        })
        .collect();
    // Side by side, a version's pool is kept ready only while its suite runs (see `run_side_by_side`).
    let side_by_side = versions.len() > 1;
    let keeper = WarmPool::new(specs)
        .ready(if side_by_side { 0 } else { WARM_READY })
        .making(WARM_MAKING)
        .start()
        .await?;
    let mut workspace = workspace;
    workspace.env.push(keeper.env());
    let (unit_args, suite_args) = (with("kind(lib) | kind(bin)"), with("kind(test)"));
    let matrix_start = Instant::now();
    let pool_sizes = keeper.pool_sizes();
    let runner_versions = versions.clone();
    // nextest runs on a blocking thread, so the runtime's tasks (the keeper) go on meanwhile.
    let suites = tokio::task::spawn_blocking(move || -> Result<(Suite, Vec<(&'static Version, Suite)>)> {
        let (workspace, versions) = (&workspace, &runner_versions);
        println!("=== unit tests (the same for every version)");
        let unit_run = run_suite(workspace, Version::default_version(), None, &unit_args, None)?;
        let results = if side_by_side {
            run_side_by_side(workspace, lanes, versions, &images, &suite_args, &pool_sizes)?
        } else {
            println!("=== {}", title(versions[0], images[0]));
            vec![(
                versions[0],
                run_suite(workspace, versions[0], images[0], &suite_args, None)?,
            )]
        };
        Ok((unit_run, results))
    });
    // On a signal the keeper still removes what it made (the tests' own processes get the terminal's signal too).
    let mut interrupts = Interrupts::catch()?;
    let ran = tokio::select! {
        ran = suites => ran.map_err(|e| Error::other(format!("the test runner failed: {e}"))).and_then(|r| r),
        signal = interrupts.next() => {
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            Err(Error::other(format!("{signal}: the test run was interrupted")))
        }
        stalled = engine_stalled(&docker) => {
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            stop_suites();
            // The keeper's removals would wait on the engine too: what they leave, `cargo xtask leftovers` lists.
            tokio::time::timeout(Duration::from_secs(30), keeper.stop()).await.ok();
            return Err(stalled);
        }
    };
    let kept = keeper.stop().await?;
    let (unit_run, results) = ran?;
    println!(
        "warm clusters: {} made ahead, {} recycled for another test, {} removed{}",
        kept.made,
        kept.recycled,
        kept.removed,
        if kept.failures.is_empty() {
            String::new()
        } else {
            format!("; failures: {}", kept.failures.join("; "))
        }
    );
    let matrix_seconds = matrix_start.elapsed().as_secs_f64();
    print_table(&results);
    print_slowest(&results);
    println!(
        "matrix: {} version(s) in {matrix_seconds:.1}s wall{}",
        results.len(),
        if side_by_side {
            format!(
                ", side by side: {} versions at a time, {} tests at a time per version, at most {} clusters at once",
                env_or(LANES_ENV, LANES),
                env_or("NEXTEST_TEST_THREADS", SIDE_BY_SIDE_THREADS),
                env_or(MAX_CLUSTERS_ENV, SIDE_BY_SIDE_CLUSTERS)
            )
        } else {
            String::new()
        }
    );
    let unit_failed = unit_run.outcomes.iter().filter(|o| !o.passed).count();
    println!(
        "unit tests: {} passed, {unit_failed} failed ({:.1}s)",
        unit_run.outcomes.len() - unit_failed,
        unit_run.seconds
    );

    let runs = std::iter::once(("the unit tests", &unit_run)).chain(results.iter().map(|(v, s)| (v.name.as_str(), s)));
    let mut empty = Vec::new();
    let mut nextest_failed = Vec::new();
    for (name, suite) in runs {
        if suite.outcomes.is_empty() && !narrowed {
            empty.push(name);
        }
        if !suite.nextest_ok {
            nextest_failed.push(name);
        }
    }
    if !empty.is_empty() {
        return Err(Error::other(format!(
            "no test ran for {} (did the build or nextest fail?)",
            empty.join(", ")
        )));
    }
    let failed = unit_failed
        + results
            .iter()
            .map(|(_, s)| s.outcomes.iter().filter(|o| !o.passed).count())
            .sum::<usize>();
    if failed > 0 {
        return Err(Error::other(format!(
            "{failed} test(s) failed; see the table and the output above"
        )));
    }
    if !nextest_failed.is_empty() {
        return Err(Error::other(format!(
            "nextest failed for {} though no test case failed; see its output above",
            nextest_failed.join(", ")
        )));
    }
    Ok(())
}

/// Resolves once the Docker engine has answered no listing of its containers and networks for
/// [`ENGINE_SILENT_FOR`], with what that means and what to do.
async fn engine_stalled(docker: &Docker) -> Error {
    let mut answered = Instant::now();
    loop {
        tokio::time::sleep(ENGINE_PROBE_EVERY).await;
        match docker.answers(3 * ENGINE_PROBE_EVERY).await {
            Ok(()) => answered = Instant::now(),
            Err(e) if answered.elapsed() >= ENGINE_SILENT_FOR => {
                return Error::other(format!(
                    "the Docker engine has answered no listing of its containers and networks for {} s (last: \
                     {e}), so the run stopped its suites rather than let every test time out against it. Docker \
                     20.10 before 20.10.27 can deadlock in its network controller while containers start and stop \
                     (moby/libnetwork#2679): restart the Docker daemon, then `cargo xtask leftovers` lists what \
                     this run left",
                    answered.elapsed().as_secs()
                ));
            }
            Err(_) => {}
        }
    }
}

/// Sends SIGTERM to the nextest processes running now: nextest then stops its tests and exits.
fn stop_suites() {
    for &pid in SUITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        // SAFETY: kill(2) with a valid signal; the pid is one this process spawned, taken off the list as soon as it
        // is reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
}

/// Where the workspace and its build output are (the JUnit report lands under the target directory).
struct Workspace {
    root: String,
    target: String,
    /// Variables every nextest run gets.
    env: Vec<(&'static str, String)>,
}

impl Workspace {
    fn locate() -> Result<Self> {
        let sh = xshell::Shell::new().map_err(|e| Error::other(e.to_string()))?;
        let json = xshell::cmd!(sh, "cargo metadata --format-version 1 --no-deps")
            .quiet()
            .read()
            .map_err(|e| Error::other(format!("cargo metadata: {e}")))?;
        let meta: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| Error::other(format!("cargo metadata: {e}")))?;
        let field = |key: &str| {
            meta[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::other(format!("cargo metadata has no {key}")))
        };
        Ok(Self {
            root: field("workspace_root")?,
            target: field("target_directory")?,
            env: Vec::new(),
        })
    }
}

/// Runs the whole suite (unit and integration tests) for `version` once; returns its wall time in seconds, or an
/// error if it did not pass (a failed run's time means nothing).
pub fn time_suite(version: &Version) -> Result<f64> {
    let suite = run_suite(&Workspace::locate()?, version, None, &[], None)?;
    if !suite.nextest_ok || suite.outcomes.is_empty() || suite.outcomes.iter().any(|o| !o.passed) {
        return Err(Error::other("the test suite did not pass, so its time means nothing"));
    }
    Ok(suite.seconds)
}

/// One nextest run: its wall time, its JUnit outcomes, whether nextest itself exited with success, and where its
/// output went (a run side by side with others).
struct Suite {
    seconds: f64,
    outcomes: Vec<Outcome>,
    nextest_ok: bool,
    log: Option<PathBuf>,
}

/// Separates the user's filtersets (`-E X`, `--filterset X`, `--filterset=X`, and the older `--filter-expr`)
/// from the other nextest arguments: repeated filtersets are a union in nextest, so they are combined with ours
/// by [`combine`] instead of being passed on.
fn split_filtersets(args: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut filters, mut rest) = (Vec::new(), Vec::new());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-E" | "--filterset" | "--filter-expr" => filters.extend(args.next().cloned()),
            a if a.starts_with("--filterset=") || a.starts_with("--filter-expr=") => {
                filters.extend(a.split_once('=').map(|(_, f)| f.to_owned()))
            }
            a if a.starts_with("-E") && a.len() > 2 => filters.push(a[2..].to_owned()),
            _ => rest.push(arg.clone()),
        }
    }
    (filters, rest)
}

/// nextest options that take a value as the next argument (the value is not a name filter).
const VALUED_OPTIONS: &[&str] = &[
    "-j",
    "--test-threads",
    "--retries",
    "--max-fail",
    "-P",
    "--profile",
    "--partition",
    "--run-ignored",
    "--no-tests",
    "--status-level",
    "--final-status-level",
    "--failure-output",
    "--success-output",
    "--message-format",
    "--cargo-profile",
    "-F",
    "--features",
    "--target",
    "-p",
    "--package",
    "--bin",
    "--test",
    "--example",
    "--bench",
    "--exclude",
    "--config",
    "--tool-config-file",
    "--target-dir",
    "--manifest-path",
    "--color",
    "--threads",
];

/// The name filters among nextest arguments: words that are neither options nor an option's value.
fn name_filters(args: &[String]) -> Vec<&str> {
    let mut filters = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if VALUED_OPTIONS.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg.as_str());
        }
    }
    filters
}

/// `(base) & ((f1) | (f2) ...)`, or just `base` with no user filters.
fn combine(base: &str, user: &[String]) -> String {
    if user.is_empty() {
        return base.to_owned();
    }
    let any: Vec<String> = user.iter().map(|f| format!("({f})")).collect();
    format!("({base}) & ({})", any.join(" | "))
}

/// The nextest profile: `ci` under CI (JUnit, no fail-fast), else `default`.
pub fn profile() -> &'static str {
    if std::env::var_os("CI").is_some() {
        "ci"
    } else {
        "default"
    }
}

/// The upstream image the matrix names for `version`.
fn upstream_image(version: &Version) -> Result<&str> {
    version.image.as_deref().ok_or_else(|| {
        Error::refused(format!(
            "images/versions.toml names no upstream image for {} (`image = \"...\"`)",
            version.name
        ))
    })
}

/// `valkey-8.1 (valkey 8.1.1, image ...)`.
fn title(version: &Version, image: Option<&str>) -> String {
    format!(
        "{} ({}{})",
        version.name,
        version.server,
        image.map(|i| format!(", image {i}")).unwrap_or_default()
    )
}

/// The value of the environment variable `name`, or `default` where it is unset or empty.
fn env_or(name: &str, default: usize) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Versions run at once: [`LANES_ENV`] or [`LANES`], at most `versions`.
fn lanes(versions: usize) -> Result<usize> {
    let lanes = env_or(LANES_ENV, LANES);
    match lanes.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n.min(versions)),
        _ => Err(Error::refused(format!(
            "{LANES_ENV}={lanes}: give how many versions run at once, 1 or more"
        ))),
    }
}

/// Runs the versions' suites `lanes` at a time, each nextest in its own store directory (its JUnit report and
/// output log under `target/nextest/matrix/<version>/`), all under one cap on live clusters; prints each version's
/// outcome as it ends, with the output of a failed one. The keeper's pool of a version (`pool_sizes`, one spec per
/// version) keeps warm clusters ready only while its suite runs.
fn run_side_by_side<'v>(
    workspace: &Workspace,
    lanes: usize,
    versions: &[&'v Version],
    images: &[Option<&str>],
    nextest_args: &[String],
    pool_sizes: &PoolSizes,
) -> Result<Vec<(&'v Version, Suite)>> {
    println!(
        "=== {} versions, {lanes} at a time: {}; each one's output goes to target/nextest/matrix/<version>/output.log",
        versions.len(),
        versions.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    // Each lane takes the next version in line until none is left.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run_lane = || -> Vec<(usize, Result<(&'v Version, Suite)>)> {
        let mut done = Vec::new();
        loop {
            if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                return done;
            }
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (Some(&version), Some(&image)) = (versions.get(i), images.get(i)) else {
                return done;
            };
            if let Err(e) = pool_sizes.set_ready(i, WARM_READY) {
                done.push((i, Err(e)));
                continue;
            }
            let run = run_suite(workspace, version, image, nextest_args, Some(&version.name));
            pool_sizes.set_ready(i, 0).ok();
            let run = run.map(|suite| {
                let failed = suite.outcomes.iter().filter(|o| !o.passed).count();
                println!(
                    "=== {}: {} passed, {failed} failed in {:.1}s",
                    title(version, image),
                    suite.outcomes.len() - failed,
                    suite.seconds
                );
                if !suite.nextest_ok {
                    let log = suite.log.as_ref().map(std::fs::read_to_string);
                    print!("{}", log.and_then(|l| l.ok()).unwrap_or_default());
                }
                (version, suite)
            });
            done.push((i, run));
        }
    };
    let mut runs: Vec<(usize, Result<(&'v Version, Suite)>)> = std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..lanes).map(|_| scope.spawn(run_lane)).collect();
        lanes
            .into_iter()
            .flat_map(|lane| {
                lane.join()
                    .unwrap_or_else(|_| vec![(usize::MAX, Err(Error::other("a version's runner panicked")))])
            })
            .collect()
    });
    // The table keeps the matrix's order.
    runs.sort_by_key(|(i, _)| *i);
    runs.into_iter().map(|(_, run)| run).collect()
}

/// Cargo, without the variables `cargo run` set for this process (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...): ring's
/// build script reruns when `CARGO_MANIFEST_DIR` changes, so a nested cargo that inherited it rebuilt ring and
/// everything above it (40 s, 110 core-s here) on every `cargo xtask test`, and the next `cargo xtask` rebuilt them
/// back.
fn cargo() -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let set_by_cargo_run = name.to_str().is_some_and(|n| {
            n.starts_with("CARGO_PKG_")
                || n.starts_with("CARGO_MANIFEST_")
                || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"].contains(&n)
        });
        if set_by_cargo_run {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs nextest once, from the workspace root, with `$CLUSTER_VERSION` set (and `$CLUSTER_IMAGE`, to run `image`).
/// With `side_by_side` (a store name), it keeps its report and its output in a store directory of its own and
/// runs under the cap on live clusters; otherwise its output goes to this terminal.
fn run_suite(
    workspace: &Workspace,
    version: &Version,
    image: Option<&str>,
    nextest_args: &[String],
    side_by_side: Option<&str>,
) -> Result<Suite> {
    let profile = profile();
    let store = side_by_side.map(|name| PathBuf::from(format!("{}/nextest/matrix/{name}", workspace.target)));
    let mut cmd = cargo();
    cmd.current_dir(&workspace.root)
        .args(["nextest", "run", "--workspace", "--profile", profile])
        .env(VERSION_ENV, &version.name)
        .env(IMAGE_ENV, image.unwrap_or(""))
        .envs(workspace.env.iter().map(|(k, v)| (k, v)));
    let junit = match &store {
        Some(store) => {
            std::fs::create_dir_all(store).map_err(|e| Error::other(format!("{}: {e}", store.display())))?;
            // A tool config file is the one place a run can be given its own store directory: the repository's
            // config sets no `[store]`, and its profiles still apply.
            let config = store.join("nextest.toml");
            let toml = format!("[store]\ndir = {:?}\n", store.display().to_string());
            std::fs::write(&config, toml).map_err(|e| Error::other(format!("{}: {e}", config.display())))?;
            cmd.arg("--tool-config-file").arg(format!("xtask:{}", config.display()));
            let log = std::fs::File::create(store.join("output.log"))
                .map_err(|e| Error::other(format!("{}: {e}", store.display())))?;
            let log2 = log.try_clone().map_err(|e| Error::other(e.to_string()))?;
            cmd.stdout(log).stderr(log2);
            for (name, default) in [
                (MAX_CLUSTERS_ENV, SIDE_BY_SIDE_CLUSTERS),
                ("NEXTEST_TEST_THREADS", SIDE_BY_SIDE_THREADS),
            ] {
                cmd.env(name, env_or(name, default));
            }
            store.join(profile).join("junit.xml")
        }
        None => PathBuf::from(format!("{}/nextest/{profile}/junit.xml", workspace.target)),
    };
    cmd.args(nextest_args);
    std::fs::remove_file(&junit).ok();
    let start = Instant::now();
    // A failing suite is reported in the table and by the caller, not as an error here.
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::other(format!("running cargo nextest: {e}")))?;
    let pid = child.id();
    SUITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(pid);
    let status = child.wait();
    SUITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|&p| p != pid);
    let nextest_ok = status
        .map_err(|e| Error::other(format!("running cargo nextest: {e}")))?
        .success();
    let seconds = start.elapsed().as_secs_f64();
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    Ok(Suite {
        seconds,
        outcomes: parse_junit(&xml),
        nextest_ok,
        log: store.map(|s| s.join("output.log")),
    })
}

/// Reads the test cases of a JUnit report (nextest's): name, pass/fail and time.
pub fn parse_junit(xml: &str) -> Vec<Outcome> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        tag.find(&key)
            .map(|i| &tag[i + key.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned()
    };
    xml.split("<testcase")
        .skip(1)
        .map(|case| {
            let tag = case.split('>').next().unwrap_or_default();
            let body = if tag.ends_with('/') {
                ""
            } else {
                case.split("</testcase>").next().unwrap_or_default()
            };
            let classname = attr(tag, "classname");
            let binary = classname.rsplit("::").next().unwrap_or(&classname);
            Outcome {
                scenario: format!("{binary}::{}", attr(tag, "name")),
                passed: !body.contains("<failure") && !body.contains("<error"),
                seconds: attr(tag, "time").parse().unwrap_or(0.0),
            }
        })
        .collect()
}

/// The slowest tests over every version, slowest first.
fn print_slowest(results: &[(&Version, Suite)]) {
    let mut all: Vec<(&str, &Outcome)> = results
        .iter()
        .flat_map(|(v, s)| s.outcomes.iter().map(move |o| (v.name.as_str(), o)))
        .collect();
    all.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    println!("\nslowest tests:");
    for (version, o) in all.iter().take(SLOWEST) {
        println!("  {:>6.1}s  {version:<11} {}", o.seconds, o.scenario);
    }
    let total: f64 = all.iter().map(|(_, o)| o.seconds).sum();
    println!("  {total:>6.1}s  in all, over {} tests", all.len());
}

fn print_table(results: &[(&Version, Suite)]) {
    let mut rows: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, (_, suite)) in results.iter().enumerate() {
        for o in &suite.outcomes {
            let row = rows
                .entry(&o.scenario)
                .or_insert_with(|| vec!["-".into(); results.len()]);
            row[i] = format!("{} {:.1}s", if o.passed { "ok" } else { "FAIL" }, o.seconds);
        }
    }
    let width = rows.keys().map(|k| k.len()).max().unwrap_or(8).max(8);
    print!("\n{:<width$}", "scenario");
    for (v, _) in results {
        print!(" | {:<11}", v.name);
    }
    println!();
    for (scenario, cells) in &rows {
        print!("{scenario:<width$}");
        for cell in cells {
            print!(" | {cell:<11}");
        }
        println!();
    }
    print!("{:<width$}", "wall time");
    for (_, suite) in results {
        print!(" | {:<11}", format!("{:.1}s", suite.seconds));
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_are_not_name_filters() {
        let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert!(name_filters(&args(&["--test-threads", "1", "--no-capture"])).is_empty());
        assert_eq!(
            name_filters(&args(&["-j", "2", "failover", "--retries=1"])),
            vec!["failover"]
        );
    }

    #[test]
    fn junit_cases_are_read_with_their_outcome() {
        let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="cluster-tests::failover" tests="2">
<testcase name="failover_right_after_create_works" classname="cluster-tests::failover" timestamp="x" time="4.211">
</testcase>
<testcase name="removing_a_master" classname="cluster-tests::failover" time="9.5"><failure type="test failure">boom</failure><system-out>x</system-out></testcase>
<testcase name="unit" classname="cluster-tests" time="0.001"/>
</testsuite></testsuites>"#;
        let cases = parse_junit(xml);
        assert_eq!(cases.len(), 3);
        assert_eq!(
            cases[0],
            Outcome {
                scenario: "failover::failover_right_after_create_works".into(),
                passed: true,
                seconds: 4.211
            }
        );
        assert!(!cases[1].passed);
        assert!(cases[2].passed);
    }

    #[test]
    fn user_filtersets_narrow_ours_instead_of_widening_it() {
        let args: Vec<String> = [
            "--no-capture",
            "-E",
            "test(join)",
            "--filterset=test(create)",
            "-Etest(x)",
        ]
        .map(str::to_owned)
        .to_vec();
        let (filters, rest) = split_filtersets(&args);
        assert_eq!(rest, ["--no-capture"]);
        assert_eq!(filters, ["test(join)", "test(create)", "test(x)"]);
        assert_eq!(
            combine("kind(test)", &filters),
            "(kind(test)) & ((test(join)) | (test(create)) | (test(x)))"
        );
        assert_eq!(combine("kind(test)", &[]), "kind(test)");
    }
}
