//! `cargo xtask test`: the suite under nextest once per server version, then a version x scenario table.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::playground::Interrupts;
use cluster_tests::playground::{Docker, ensure_built};
use cluster_tests::{ClusterSpec, Error, IMAGE_ENV, ImageSource, NodeImage, Result, VERSION_ENV, Version, WarmPool};

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
    /// `scenario::test_name`: a scenario is a module of the integration-test binary, or a test binary with its
    /// tests at its root (`cli` of xtask).
    pub scenario: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its time in seconds.
    pub seconds: f64,
}

/// Clusters of the default spec kept ready per version while the suites run.
const WARM_READY: usize = 2;
/// Clusters the keeper makes at once: enough to keep up with tests claiming them.
const WARM_MAKING: usize = 3;

/// Runs the suite for each version (on its upstream image with `upstream`), prints the table, and fails if any cell
/// failed.
pub async fn run(args: Args) -> Result<()> {
    let versions = &crate::versions(&args.version)?;
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
    let mut workspace = Workspace::locate()?;
    // Clusters made ahead for the tests, and removed after them by this process (see cluster_tests::WarmPool).
    let specs = versions
        .iter()
        .map(|v| -> Result<ClusterSpec> {
            Ok(match upstream {
                true => ClusterSpec::default().image(ImageSource::Reference(upstream_image(v)?.into())),
                false => ClusterSpec::default().version(v),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let keeper = WarmPool::new(specs)
        .ready(WARM_READY)
        .making(WARM_MAKING)
        .start()
        .await?;
    workspace.env.push(keeper.env());
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
    let mut interrupts = Interrupts::catch()?;
    let suites = async {
        println!("=== unit tests (the same for every version)");
        let unit_run = run_suite(
            &workspace,
            Version::default_version(),
            None,
            with("kind(lib) | kind(bin)"),
        )
        .await?;
        let mut results: Vec<(&Version, Suite)> = Vec::new();
        for version in versions {
            let image = if upstream { Some(upstream_image(version)?) } else { None };
            println!(
                "=== {} ({}{})",
                version.name,
                version.server,
                image.map(|i| format!(", image {i}")).unwrap_or_default()
            );
            let suite = run_suite(&workspace, version, image, with("kind(test)")).await?;
            results.push((version, suite));
        }
        Ok::<_, Error>((unit_run, results))
    };
    // On a signal the keeper still removes what it made (the tests' own processes get the terminal's signal too).
    let ran = tokio::select! {
        ran = suites => ran,
        signal = interrupts.next() => Err(Error::other(format!("{signal}: the test run was interrupted"))),
    };
    let kept = keeper.stop().await?;
    let (unit_run, results) = ran?;
    println!(
        "warm clusters: {} made ahead, {} removed after their tests{}",
        kept.made,
        kept.removed,
        if kept.failures.is_empty() {
            String::new()
        } else {
            format!("; failures: {}", kept.failures.join("; "))
        }
    );
    print_table(&results);
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
pub async fn time_suite(version: &'static Version) -> Result<f64> {
    let suite = run_suite(&Workspace::locate()?, version, None, Vec::new()).await?;
    if !suite.nextest_ok || suite.outcomes.is_empty() || suite.outcomes.iter().any(|o| !o.passed) {
        return Err(Error::other("the test suite did not pass, so its time means nothing"));
    }
    Ok(suite.seconds)
}

/// One nextest run: its wall time, its JUnit outcomes, and whether nextest itself exited with success.
struct Suite {
    seconds: f64,
    outcomes: Vec<Outcome>,
    nextest_ok: bool,
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

/// Runs nextest once, from the workspace root, with `$CLUSTER_VERSION` set (and `$CLUSTER_IMAGE`, to run `image`),
/// on a blocking thread, so the runtime's tasks (the warm pool's keeper) go on meanwhile.
async fn run_suite(
    workspace: &Workspace,
    version: &'static Version,
    image: Option<&str>,
    nextest_args: Vec<String>,
) -> Result<Suite> {
    let (root, target, env) = (workspace.root.clone(), workspace.target.clone(), workspace.env.clone());
    let image = image.unwrap_or("").to_owned();
    tokio::task::spawn_blocking(move || {
        let sh = xshell::Shell::new().map_err(|e| Error::other(e.to_string()))?;
        sh.change_dir(&root);
        for (key, value) in &env {
            sh.set_var(key, value);
        }
        let profile = profile();
        let junit = format!("{target}/nextest/{profile}/junit.xml");
        sh.remove_path(&junit).ok();
        let start = Instant::now();
        // A failing suite is reported in the table and by the caller, not as an error here.
        let nextest_ok = xshell::cmd!(
            sh,
            "cargo nextest run --workspace --profile {profile} {nextest_args...}"
        )
        .env(VERSION_ENV, &version.name)
        .env(IMAGE_ENV, &image)
        .run()
        .is_ok();
        let seconds = start.elapsed().as_secs_f64();
        let xml = sh.read_file(&junit).unwrap_or_default();
        Ok(Suite {
            seconds,
            outcomes: parse_junit(&xml),
            nextest_ok,
        })
    })
    .await
    .map_err(|e| Error::other(format!("the nextest run failed: {e}")))?
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
            // A test in a module is named by its path (`create::creates_...`); one at its binary's root gets the
            // binary's name in front.
            let name = attr(tag, "name");
            let scenario = if name.contains("::") {
                name
            } else {
                let classname = attr(tag, "classname");
                let binary = classname.rsplit("::").next().unwrap_or(&classname);
                format!("{binary}::{name}")
            };
            Outcome {
                scenario,
                passed: !body.contains("<failure") && !body.contains("<error"),
                seconds: attr(tag, "time").parse().unwrap_or(0.0),
            }
        })
        .collect()
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
        let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="cluster-tests::it" tests="2">
<testcase name="failover::failover_right_after_create_works" classname="cluster-tests::it" timestamp="x" time="4.211">
</testcase>
<testcase name="failover::removing_a_master" classname="cluster-tests::it" time="9.5"><failure type="test failure">boom</failure><system-out>x</system-out></testcase>
<testcase name="unit" classname="cluster-tests" time="0.001"/>
</testsuite><testsuite name="xtask::cli" tests="1">
<testcase name="help_lists_versions" classname="xtask::cli" time="0.2"/>
</testsuite></testsuites>"#;
        let cases = parse_junit(xml);
        assert_eq!(cases.len(), 4);
        assert_eq!(
            cases[0],
            Outcome {
                scenario: "failover::failover_right_after_create_works".into(),
                passed: true,
                seconds: 4.211
            }
        );
        assert_eq!(cases[1].scenario, "failover::removing_a_master");
        assert!(!cases[1].passed);
        assert!(cases[2].passed);
        assert_eq!(cases[3].scenario, "cli::help_lists_versions");
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
