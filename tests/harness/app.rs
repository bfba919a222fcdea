//! The `App` fixture and `eventually`, through the real harness of
//! `tests/demo_app.rs` (shell scripts as services): what fails a test,
//! what its message shows, which category it gets, what is left running.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{demo_app_binary, run_with_env};

fn message<'a>(finished: &'a BTreeMap<String, Value>, test: &str) -> &'a str {
    finished[&format!("demo_app::{test}")]["message"]
        .as_str()
        .unwrap_or_default()
}

#[verily::test(category = "e2e", timeout = "5m")]
fn app_outcomes_messages_and_categories() -> Result<(), String> {
    let demo = demo_app_binary()?;
    let pids = std::env::temp_dir().join(format!("vy-suite-app-pids-{}", std::process::id()));
    let run = run_with_env(
        demo,
        &["--format", "json"],
        &[("DEMO_APP_PIDS", &pids.to_string_lossy())],
    );
    let finished = run.finished();
    let outcome = |test: &str| run.outcome(test);

    // What the app logged fails a test that passed, unless declared.
    assert_eq!(
        outcome("an_unexpected_error_line_fails_a_passing_test"),
        "failed"
    );
    assert!(
        message(&finished, "an_unexpected_error_line_fails_a_passing_test").starts_with(
            "Noisy logged an error the test did not expect: ERROR payment gateway unreachable\n(if the test expects it: app.expect_log_error(\"...\"))\n--- last lines of Noisy, pid "
        ),
        "{}",
        run.stdout
    );
    assert_eq!(outcome("a_declared_error_line_passes"), "passed");
    // Judged on all the app wrote, not on what its readers had got to.
    assert_eq!(
        outcome("an_error_line_logged_just_before_the_end_is_caught"),
        "failed",
        "{}",
        run.stdout
    );
    assert!(
        message(&finished, "an_error_line_logged_just_before_the_end_is_caught").starts_with(
            "LateNoisy logged an error the test did not expect: ERROR written just before the test ended\n"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(outcome("a_json_error_line_fails_a_passing_test"), "failed");
    assert!(
        message(&finished, "a_json_error_line_fails_a_passing_test").contains(r#""level":"ERROR""#)
    );
    assert_eq!(outcome("a_logged_panic_fails_a_passing_test"), "failed");
    assert!(
        message(&finished, "a_logged_panic_fails_a_passing_test")
            .contains("panicked at src/jobs.rs:42:9")
    );

    // A start that fails says how it ended, what it waited for, and shows
    // the app's last lines.
    let crashed = message(
        &finished,
        "an_app_that_exits_before_ready_fails_with_its_status",
    );
    assert!(
        crashed.starts_with(
            "fixture failed: Crashing exited (exit status: 3) before it was ready (waited for its port to accept a connection)"
        ),
        "{crashed}"
    );
    assert!(
        crashed.contains("  | fatal: no config file at /etc/app.toml"),
        "{crashed}"
    );
    let silent = message(&finished, "an_app_that_is_never_ready_fails_at_its_timeout");
    assert!(
        silent.starts_with(
            "fixture failed: Silent was not ready within 0.3 s: waited for a log line containing `listening`"
        ),
        "{silent}"
    );
    let no_binary = message(&finished, "the_default_app_needs_a_binary");
    assert!(
        no_binary.contains("no app binary to start")
            && no_binary.contains("Config::new().app_binary(env!(\"CARGO_BIN_EXE_<bin name>\"))"),
        "{no_binary}"
    );

    // Lifecycle, and a failing test's message carries the log tail.
    assert_eq!(
        outcome("terminate_returns_the_exit_status"),
        "passed",
        "{}",
        run.stdout
    );
    assert_eq!(
        message(&finished, "a_failing_test_shows_the_app_log_tail")
            .lines()
            .collect::<Vec<_>>()[..1],
        ["panicked: the answer was wrong"]
    );
    assert!(message(&finished, "a_failing_test_shows_the_app_log_tail").contains("  | ready"));

    // A test stopped at its timeout: the report says so, with the app's
    // last lines in the timeout's message.
    assert_eq!(
        outcome("a_timed_out_test_shows_the_app_log_tail"),
        "timed_out"
    );
    let timed_out = message(&finished, "a_timed_out_test_shows_the_app_log_tail");
    assert!(
        timed_out.starts_with("timed out after 3")
            && timed_out.contains("--- last lines of Stuck, pid ")
            && timed_out.contains("  | ready\n  | waiting for the ledger lock"),
        "{timed_out}"
    );

    // The fixture's category applies unless the test names one.
    let category = |test: &str| finished[&format!("demo_app::{test}")]["category"].clone();
    assert_eq!(category("terminate_returns_the_exit_status"), "e2e");
    assert_eq!(category("the_default_app_needs_a_binary"), "e2e");
    assert_eq!(category("a_named_category_wins_over_the_fixture"), "smoke");
    assert_eq!(category("eventually_lists_what_it_saw"), "integration");

    // eventually: the distinct values over time, repeats folded.
    let never = message(&finished, "eventually_lists_what_it_saw");
    assert!(
        never.starts_with(
            "panicked: never held within 0.3 s: running (0%) (x2) -> running (10%) (x3) -> running (20%) (x"
        ),
        "{never}"
    );

    // The app and the child it started are gone once the test is over.
    assert_eq!(outcome("an_app_child_is_stopped_with_it"), "passed");
    let recorded = std::fs::read_to_string(&pids).map_err(|error| error.to_string())?;
    let _ = std::fs::remove_file(&pids);
    for pid in recorded.split_whitespace() {
        assert!(
            !alive(pid),
            "process {pid} of the app outlived its test ({recorded})"
        );
    }
    Ok(())
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// kill -9 of the harness: the app dies by its parent-death signal, the
/// child it started by the keeper of its process group.
#[verily::test(category = "e2e", timeout = "5m")]
fn kill_9_of_the_harness_stops_the_app_and_its_child() -> Result<(), String> {
    use std::time::{Duration, Instant};
    let demo = demo_app_binary()?;
    let pids = std::env::temp_dir().join(format!("vy-suite-app-kill-{}", std::process::id()));
    let _ = std::fs::remove_file(&pids);
    let mut harness = crate::leftovers::spawn(
        demo,
        &[
            "--ignored",
            "--exact",
            "demo_app::an_app_child_waits_for_the_harness_to_die",
        ],
        &[(
            "DEMO_APP_PIDS".to_owned(),
            pids.to_string_lossy().into_owned(),
        )],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let recorded = loop {
        match std::fs::read_to_string(&pids) {
            Ok(text) if text.split_whitespace().count() == 2 => break text,
            _ if Instant::now() > deadline => {
                crate::leftovers::signal(&harness, libc::SIGKILL);
                return Err(format!(
                    "the app never recorded its pids: {}",
                    crate::leftovers::stderr_of(&mut harness)
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let _ = std::fs::remove_file(&pids);
    crate::leftovers::signal(&harness, libc::SIGKILL);
    let _ = harness.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorded.split_whitespace().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<&str> = recorded
        .split_whitespace()
        .filter(|pid| alive(pid))
        .collect();
    assert!(
        left.is_empty(),
        "outlived the killed harness: {left:?} (app, child: {recorded})"
    );
    Ok(())
}
