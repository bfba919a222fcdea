//! App fixtures with known outcomes, for the framework's own suite
//! (`tests/harness/app.rs`): shell scripts stand in for services, so each
//! behaviour (an error line, a crash before ready, a slow start, a
//! graceful exit, a child process) is one line. `cargo test` does not run it.

use std::time::Duration;

use verily::{App, Ready, eventually};

verily::main!();

/// A fixture that starts `sh -c <script>`, ready when it prints `ready`,
/// with category `e2e` like the `App` fixture it wraps.
macro_rules! shell_app {
    ($name:ident, $script:expr) => {
        shell_app!($name, $script, Ready::Log("ready".to_owned()), 10_000);
    };
    ($name:ident, $script:expr, $ready:expr, $limit_ms:expr) => {
        // Some tests only need the app running, never touch it.
        #[allow(dead_code)]
        struct $name(App);

        impl verily::Fixture for $name {
            const CATEGORY: Option<&'static str> = Some("e2e");

            async fn setup(ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
                App::command("sh")
                    .arg("-c")
                    .arg($script)
                    .name(stringify!($name))
                    .no_database()
                    .ready_when($ready)
                    .ready_timeout(Duration::from_millis($limit_ms))
                    .grace(Duration::from_secs(5))
                    .start(ctx)
                    .await
                    .map($name)
            }
        }
    };
}

shell_app!(
    Noisy,
    "echo 'starting'; echo 'ERROR payment gateway unreachable' >&2; echo ready; exec sleep 60"
);
shell_app!(
    JsonNoisy,
    r#"echo '{"timestamp":"2026-01-01T00:00:00Z","level":"ERROR","fields":{"message":"db down"}}'; echo ready; exec sleep 60"#
);
shell_app!(
    Panicky,
    "echo ready; sleep 0.1; echo \"thread 'tokio-runtime-worker' panicked at src/jobs.rs:42:9:\" >&2; exec sleep 60"
);
shell_app!(
    Crashing,
    // A pipe's worth of output before its last words, which the failure
    // must still quote.
    "echo starting; seq 1 20000 >&2; echo 'fatal: no config file at /etc/app.toml' >&2; exit 3",
    Ready::Tcp,
    10_000
);
shell_app!(
    Silent,
    "echo starting; exec sleep 60",
    Ready::Log("listening".to_owned()),
    300
);
shell_app!(
    Graceful,
    // Ready only after a while, so a restart that took the first run's
    // `ready` line for its own would return before the second one.
    "trap 'echo saving state; exit 7' TERM; sleep 0.3; echo ready; while :; do sleep 0.02; done"
);
shell_app!(Parent, "sleep 300 & echo \"child $!\"; echo ready; wait");

// The error line goes to stderr and `ready` to stdout, read by separate
// threads: the verdict reads both streams to their end before judging, so
// an empty body is enough.
#[verily::test]
async fn an_unexpected_error_line_fails_a_passing_test(_app: Noisy) {}

#[verily::test]
async fn a_declared_error_line_passes(app: Noisy) {
    app.0.expect_log_error("payment gateway unreachable");
}

// Thousands of lines, then the error, on stderr; then `flushed` on stdout.
// The body returns the moment it sees `flushed`, when the stderr reader may
// still be a pipe's worth (64 KiB) behind the error line.
shell_app!(
    LateNoisy,
    "echo ready; seq 1 20000 >&2; echo 'ERROR written just before the test ended' >&2; echo flushed; exec sleep 60"
);

#[verily::test]
async fn an_error_line_logged_just_before_the_end_is_caught(app: LateNoisy) {
    app.0
        .wait_for_log("flushed", Duration::from_secs(10))
        .await
        .unwrap();
}

#[verily::test]
async fn a_json_error_line_fails_a_passing_test(_app: JsonNoisy) {}

#[verily::test]
async fn a_logged_panic_fails_a_passing_test(app: Panicky) {
    app.0
        .wait_for_log("panicked at", Duration::from_secs(5))
        .await
        .unwrap();
}

#[verily::test]
async fn an_app_that_exits_before_ready_fails_with_its_status(_app: Crashing) {}

#[verily::test]
async fn an_app_that_is_never_ready_fails_at_its_timeout(_app: Silent) {}

#[verily::test]
async fn terminate_returns_the_exit_status(app: Graceful) {
    let pid = app.0.pid().expect("running");
    let status = app.0.terminate().await.unwrap();
    assert_eq!(status.code(), Some(7), "{status}");
    app.0
        .wait_for_log("saving state", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(app.0.pid(), None);
    let port = app.0.port();
    app.0.restart().await.unwrap();
    assert_ne!(app.0.pid(), Some(pid));
    assert_eq!(app.0.port(), port);
    // Ready again by its new run's line, not the first run's.
    let readies = app.0.logs().iter().filter(|line| *line == "ready").count();
    assert_eq!(readies, 2, "{:?}", app.0.logs());
}

#[verily::test]
async fn a_failing_test_shows_the_app_log_tail(_app: Graceful) {
    panic!("the answer was wrong");
}

shell_app!(
    Stuck,
    "echo ready; echo 'waiting for the ledger lock'; exec sleep 60"
);

#[verily::test(timeout = "3s")]
async fn a_timed_out_test_shows_the_app_log_tail(app: Stuck) {
    app.0
        .wait_for_log("lock acquired", Duration::from_secs(60))
        .await
        .unwrap();
}

/// Writes its app's child pid to `$DEMO_APP_PIDS` for the suite to check.
#[verily::test]
async fn an_app_child_is_stopped_with_it(app: Parent) {
    let line = app
        .0
        .wait_for_log("child ", Duration::from_secs(5))
        .await
        .unwrap();
    let child = line.trim_start_matches("child ");
    if let Ok(path) = std::env::var("DEMO_APP_PIDS") {
        std::fs::write(path, format!("{} {child}", app.0.pid().unwrap())).unwrap();
    }
}

/// Holds its app (and the app's child) until the harness is killed.
#[verily::test]
#[ignore = "run by tests/harness/app.rs, which kills the harness"]
async fn an_app_child_waits_for_the_harness_to_die(app: Parent) {
    an_app_child_is_stopped_with_it(app).await;
    std::future::pending::<()>().await;
}

#[verily::test(category = "smoke")]
async fn a_named_category_wins_over_the_fixture(_app: Graceful) {}

#[verily::test]
async fn the_default_app_needs_a_binary(_app: App) {}

#[verily::test]
async fn eventually_lists_what_it_saw() {
    let mut polls = 0;
    let never = eventually(Duration::from_millis(300), || {
        polls += 1;
        let progress = (polls / 3).min(2) * 10;
        async move { Err::<(), _>(format!("running ({progress}%)")) }
    })
    .await
    .unwrap_err();
    panic!("{never}");
}
