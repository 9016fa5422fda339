//! The CLI's help and usage errors, without Docker.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

#[test]
fn create_help_lists_the_versions_and_usage_says_cargo_xtask() {
    let out = xtask(&["create", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("Usage: cargo xtask create"), "{help}");
    for version in ["redis-6.0", "redis-7.0", "valkey-9.1"] {
        assert!(help.contains(version), "{version} missing from:\n{help}");
    }
}

#[test]
fn a_usage_error_exits_2_before_touching_docker() {
    let out = xtask(&["create", "--version", "redis-1.0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("possible values"), "{err}");
}
