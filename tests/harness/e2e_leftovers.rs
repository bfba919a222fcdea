//! Nothing of an e2e run outlives it: the apps a test started, their
//! databases and the run's cluster are gone after the suite, after Ctrl-C
//! and after kill -9 of the harness (then the next run removes the rest).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::leftovers::{self, PrivateDirs};
use crate::support::{cargo_executable, cargo_test_example, private_target};

/// The example's harness, built once per process.
fn example_harness() -> &'static std::path::Path {
    static HARNESS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HARNESS.get_or_init(|| {
        let target = private_target("e2e-leftovers");
        cargo_executable(&[
            "test",
            "--no-run",
            "-p",
            "operations",
            "--test",
            "harness",
            "--target-dir",
            &target.to_string_lossy(),
        ])
        .expect("the example's harness builds")
    })
}

/// Live processes whose environment carries `marker` (`KEY=value`): the
/// apps a harness started inherit its environment.
pub fn processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.parse::<u32>().is_ok())
        })
        .filter(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            !stat.contains(") Z ")
                && std::fs::read(entry.path().join("environ")).is_ok_and(|environ| {
                    environ
                        .split(|byte| *byte == 0)
                        .any(|variable| variable == marker.as_bytes())
                })
        })
        .map(|entry| {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            format!("{} ({})", entry.file_name().to_string_lossy(), comm.trim())
        })
        .collect()
}

/// Waits up to `limit` for `check` to hold.
pub fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

fn environment(dirs: &PrivateDirs) -> Vec<(String, String)> {
    let mut env = dirs.env(false);
    env.push(("VERILY_POSTGRES".to_owned(), "local".to_owned()));
    // Jobs slow enough that the app is still busy when the signal comes.
    env.push(("OPERATIONS_STEP_MS".to_owned(), "500".to_owned()));
    env
}

#[verily::test(category = "e2e", timeout = "15m")]
fn the_e2e_suite_leaves_no_app_database_or_cluster() {
    let dirs = PrivateDirs::new("e2e-suite");
    let marker = format!("VERILY_RUNTIME_DIR={}", dirs.base.display());
    let env = dirs.env(false);
    let mut env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    env.push(("VERILY_POSTGRES", "local"));
    // Builds of its own: the healthy operations-api, not a feature's.
    let target = private_target("e2e-leftovers");
    let target = target.to_string_lossy();
    env.push(("CARGO_TARGET_DIR", &target));
    let run = cargo_test_example("operations", &[], &["--category", "e2e"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("9 passed"), "{}", run.stdout);
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "apps outlived the run"
    );
    assert_eq!(dirs.leftover_files(), Vec::<String>::new());
    assert_eq!(dirs.leftover_processes(), Vec::<String>::new());
}

#[verily::test(category = "e2e", timeout = "15m")]
fn ctrl_c_and_kill_9_of_the_harness_leave_no_app_running() {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGKILL, "SIGKILL")] {
        let dirs = PrivateDirs::new("e2e-signal");
        let marker = format!("VERILY_RUNTIME_DIR={}", dirs.base.display());
        let env = environment(&dirs);
        let mut harness = leftovers::spawn(
            example_harness(),
            &[
                "--category",
                "e2e",
                "--exact",
                "harness::e2e::cancelling_stops_the_job_and_a_new_one_still_runs",
            ],
            &env,
        );
        let api_running = within(Duration::from_secs(120), || {
            processes_with(&marker)
                .iter()
                .any(|process| process.contains("operations-api"))
        });
        assert!(
            api_running,
            "{name}: the app never started: {}",
            leftovers::stderr_of(&mut harness)
        );
        leftovers::signal(&harness, signal);
        let status = leftovers::wait_with_limit(&mut harness, Duration::from_secs(90));
        let stderr = leftovers::stderr_of(&mut harness);
        if signal == libc::SIGINT {
            assert_eq!(
                status.and_then(|status| status.code()),
                Some(130),
                "{stderr}"
            );
        }
        assert!(
            within(Duration::from_secs(10), || processes_with(&marker)
                .is_empty()),
            "{name}: still running: {:?}\n{stderr}",
            processes_with(&marker)
        );
        if signal == libc::SIGKILL {
            // The cluster of a killed run is removed by the next run.
            let next: Vec<(&str, &str)> = env
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect();
            let again = crate::support::run_with_env(
                example_harness(),
                &["--exact", "harness::e2e::an_operation_runs_to_completion"],
                &next,
            );
            assert_eq!(again.code, 0, "{}", again.stderr);
        }
        assert_eq!(
            dirs.leftover_files(),
            Vec::<String>::new(),
            "{name}\n{stderr}"
        );
        assert_eq!(dirs.leftover_processes(), Vec::<String>::new(), "{name}");
        assert_eq!(processes_with(&marker), Vec::<String>::new(), "{name}");
    }
}
