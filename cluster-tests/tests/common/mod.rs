//! What several test files share: the `docker` command line, driven as a user drives it (the harness keeps its
//! own Docker connection private). Each test file uses part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What `docker <args>` prints on stdout, trimmed; fails the test if docker fails.
pub fn docker(args: &[&str]) -> String {
    String::from_utf8_lossy(&run(args).stdout).trim().to_owned()
}

/// What `docker <args>` prints on stdout and stderr (`docker logs` gives a container's stderr on its own);
/// fails the test if docker fails.
pub fn docker_all_output(args: &[&str]) -> String {
    let out = run(args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
