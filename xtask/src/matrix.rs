//! `cargo xtask test`: the suite under nextest once per server version, then a version x scenario table.

use std::collections::BTreeMap;
use std::time::Instant;

use cluster_tests::docker::Docker;
use cluster_tests::versions::VERSION_ENV;
use cluster_tests::{Error, Result, Version, image};

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

/// Runs the suite for each version, prints the table, and fails if any cell failed.
pub async fn run(versions: &[&'static Version], nextest_args: &[String]) -> Result<()> {
    let docker = Docker::connect().await?;
    for version in versions {
        image::ensure_built(&docker, version, &|line| println!("  {line}")).await?;
    }
    let with = |first: &[&str]| -> Vec<String> {
        first
            .iter()
            .map(|a| a.to_string())
            .chain(nextest_args.to_vec())
            .collect()
    };
    println!("=== unit tests (the same for every version)");
    let (unit_seconds, unit) = run_suite(Version::default_version(), &with(&["--lib", "--bins"]))?;
    let mut results: Vec<(&Version, f64, Vec<Outcome>)> = Vec::new();
    for version in versions {
        println!("=== {} ({})", version.name, version.server);
        let (seconds, outcomes) = run_suite(version, &with(&["-E", "kind(test)"]))?;
        results.push((version, seconds, outcomes));
    }
    print_table(&results);
    let unit_failed = unit.iter().filter(|o| !o.passed).count();
    println!(
        "unit tests: {} passed, {unit_failed} failed ({unit_seconds:.1}s)",
        unit.len() - unit_failed
    );

    let mut empty: Vec<&str> = results
        .iter()
        .filter(|(_, _, o)| o.is_empty())
        .map(|(v, _, _)| v.name.as_str())
        .collect();
    if unit.is_empty() {
        empty.push("the unit tests");
    }
    if !empty.is_empty() {
        return Err(Error::new(format!(
            "no test ran for {} (did the build or nextest fail?)",
            empty.join(", ")
        )));
    }
    let failed = unit_failed
        + results
            .iter()
            .map(|(_, _, o)| o.iter().filter(|o| !o.passed).count())
            .sum::<usize>();
    if failed > 0 {
        return Err(Error::new(format!(
            "{failed} test(s) failed; see the table and the output above"
        )));
    }
    Ok(())
}

/// The nextest profile: `ci` under CI (JUnit, no fail-fast), else `default`.
pub fn profile() -> &'static str {
    if std::env::var_os("CI").is_some() {
        "ci"
    } else {
        "default"
    }
}

/// Runs nextest once with `$CLUSTER_VERSION` set; returns the wall time and the JUnit outcomes.
pub fn run_suite(version: &Version, nextest_args: &[String]) -> Result<(f64, Vec<Outcome>)> {
    let sh = xshell::Shell::new().map_err(|e| Error::new(e.to_string()))?;
    let profile = profile();
    let junit = format!("target/nextest/{profile}/junit.xml");
    sh.remove_path(&junit).ok();
    let start = Instant::now();
    // A failing suite is reported in the table, not as an error here.
    let _ = xshell::cmd!(
        sh,
        "cargo nextest run --workspace --profile {profile} {nextest_args...}"
    )
    .env(VERSION_ENV, &version.name)
    .run();
    let seconds = start.elapsed().as_secs_f64();
    let xml = sh.read_file(&junit).unwrap_or_default();
    Ok((seconds, parse_junit(&xml)))
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

fn print_table(results: &[(&Version, f64, Vec<Outcome>)]) {
    let mut rows: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, (_, _, outcomes)) in results.iter().enumerate() {
        for o in outcomes {
            let row = rows
                .entry(&o.scenario)
                .or_insert_with(|| vec!["-".into(); results.len()]);
            row[i] = format!("{} {:.1}s", if o.passed { "ok" } else { "FAIL" }, o.seconds);
        }
    }
    let width = rows.keys().map(|k| k.len()).max().unwrap_or(8).max(8);
    print!("\n{:<width$}", "scenario");
    for (v, _, _) in results {
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
    for (_, seconds, _) in results {
        print!(" | {:<11}", format!("{seconds:.1}s"));
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
