//! The e2e tier under nextest: a process per test, each starting its own
//! app on a database of the run's shared cluster. Every e2e test of the
//! example runs and passes, and nothing of the run is left afterwards.

use std::time::Duration;

use crate::e2e_incidents::SUITE;
use crate::e2e_leftovers::{processes_with, within};
use crate::leftovers::PrivateDirs;
use crate::support::{cargo, private_target};

#[verily::test(category = "e2e", timeout = "20m")]
fn nextest_runs_the_e2e_tests_and_leaves_nothing() {
    let nextest = cargo().args(["nextest", "--version"]).output();
    if !nextest.is_ok_and(|output| output.status.success()) {
        verily::skip(
            "cargo-nextest is not installed: `cargo install cargo-nextest` to run this check",
        );
    }
    let dirs = PrivateDirs::new("e2e-nextest");
    let marker = format!("VERILY_RUNTIME_DIR={}", dirs.base.display());
    // The build of the healthy example that e2e_leftovers uses too.
    let target = private_target("e2e-leftovers");
    let output = cargo()
        .args(["nextest", "run", "-p", "operations", "--test", "harness"])
        .args(["-E", "test(e2e)", "--no-fail-fast", "--color", "never"])
        .envs(dirs.env(false))
        .env("VERILY_POSTGRES", "local")
        // The shared cluster stops soon after the last process is done.
        .env("VERILY_SHARED_IDLE_MS", "500")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo nextest runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let ran = SUITE.len();
    assert!(
        stderr.contains(&format!("{ran} tests run: {ran} passed")),
        "{stderr}"
    );
    for test in SUITE {
        let name = format!("[e2e] harness::e2e::{test}");
        assert!(
            stderr
                .lines()
                .any(|line| line.trim_start().starts_with("PASS") && line.ends_with(&name)),
            "{name} did not pass:\n{stderr}"
        );
    }

    let gone = within(Duration::from_secs(30), || {
        processes_with(&marker).is_empty()
            && leftover_files(&dirs).is_empty()
            && dirs.leftover_processes().is_empty()
    });
    assert!(
        gone,
        "left after the nextest run: processes {:?}, files {:?}, {:?}\n{stderr}",
        processes_with(&marker),
        leftover_files(&dirs),
        dirs.leftover_processes()
    );
}

/// What the run left in its runtime directory, but the shared cluster's
/// lock files: they stay by design (removing a lock file another process
/// may be opening is a race), as postgres.rs counts them too.
fn leftover_files(dirs: &PrivateDirs) -> Vec<String> {
    dirs.leftover_files()
        .into_iter()
        .filter(|name| !name.ends_with(".clients") && !name.ends_with(".start"))
        .collect()
}
