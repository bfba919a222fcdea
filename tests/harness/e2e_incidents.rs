//! The operations API's incidents, each switched on by a feature of the
//! example and caught by its named e2e test against the running binary:
//! real cargo, real harness, JSON report. Every failure shows the app's
//! log tail.

use std::collections::BTreeSet;

use crate::support::{cargo_test_example, private_target};

/// The example's e2e tests, by name under `harness::e2e`.
pub const SUITE: [&str; 9] = [
    "an_invalid_payload_gets_a_clear_4xx_and_the_app_stays_up",
    "an_operation_runs_to_completion",
    "an_operation_survives_a_restart",
    "an_orphan_left_before_startup_is_marked_failed",
    "cancelling_stops_the_job_and_a_new_one_still_runs",
    "post_writes_the_operation_row",
    "progress_is_reported_while_the_job_runs",
    "reqwest_talks_to_the_app_on_its_url",
    "sigterm_saves_a_checkpoint_per_running_operation",
];

#[verily::test(category = "e2e", timeout = "20m")]
fn each_api_incident_is_caught_by_its_e2e_test() {
    let args = ["--category", "e2e", "--format", "json"];
    // Builds of its own: the feature's operations-api, not another test's.
    let target = private_target("e2e-incidents");
    let target = target.to_string_lossy();
    let env = [("CARGO_TARGET_DIR", &*target)];
    let healthy = cargo_test_example("operations", &[], &args, &env);
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    let finished = healthy.finished();
    let names: BTreeSet<&str> = finished
        .keys()
        .map(|name| name.trim_start_matches("harness::e2e::"))
        .collect();
    assert_eq!(names, SUITE.into_iter().collect());
    // Every test that takes the App fixture is e2e without saying so.
    assert!(finished.values().all(|event| event["category"] == "e2e"));

    for (feature, test, start, also_failing) in [
        (
            "bug-api-response-only",
            "post_writes_the_operation_row",
            "post_writes_the_operation_row: expected 1 new row in operations where symbol = 'EURUSD', found 0 (before 0, after 0): no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)",
            // Without the row, cancelling and shutting down cannot save
            // their checkpoints (a foreign key), and a restarted app has
            // nothing to read back: the same incident, seen by each.
            &[
                "an_operation_survives_a_restart",
                "cancelling_stops_the_job_and_a_new_one_still_runs",
                "sigterm_saves_a_checkpoint_per_running_operation",
            ][..],
        ),
        (
            "bug-cancel-ignored",
            "cancelling_stops_the_job_and_a_new_one_still_runs",
            "panicked: called `Result::unwrap()` on an `Err` value: operations-api logged no line containing `op-1: stopped at step` within 5 s",
            &[],
        ),
        (
            "bug-progress-never-reported",
            "progress_is_reported_while_the_job_runs",
            "panicked: progress was never reported while the job ran, only: [0, 100]",
            &[],
        ),
        (
            "bug-sigterm-no-checkpoint",
            "sigterm_saves_a_checkpoint_per_running_operation",
            "sigterm_saves_a_checkpoint_per_running_operation: expected 2 new rows in checkpoints where reason = 'shutdown', found 0 (before 0, after 0): no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)",
            &[],
        ),
        (
            "bug-detector-not-started",
            "an_orphan_left_before_startup_is_marked_failed",
            "panicked: called `Result::unwrap()` on an `Err` value: never held within 5 s: RUNNING (x",
            &[],
        ),
        (
            "bug-error-500-with-trace",
            "an_invalid_payload_gets_a_clear_4xx_and_the_app_stays_up",
            "panicked: {\"kind\":\"training\"} got 500 {\"error\":\"Error(\\\"missing field `symbol`\\\", line: 1, column: 19) at examples/operations/src/bin/operations-api/routes.rs:",
            &[],
        ),
    ] {
        let broken = cargo_test_example("operations", &[feature], &args, &env);
        assert_eq!(
            broken.code, 101,
            "{feature}: {}\n{}",
            broken.stdout, broken.stderr
        );
        let finished = broken.finished();
        let failed: BTreeSet<&str> = finished
            .iter()
            .filter(|(_, event)| event["outcome"] != "passed")
            .map(|(name, _)| name.trim_start_matches("harness::e2e::"))
            .collect();
        let mut expected: BTreeSet<&str> = also_failing.iter().copied().collect();
        expected.insert(test);
        assert_eq!(failed, expected, "{feature}:\n{}", broken.stdout);
        let message = finished[&format!("harness::e2e::{test}")]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.starts_with(start), "{feature}: {message}");
        assert!(
            message.contains("--- last lines of operations-api, pid "),
            "{feature}: no log tail in {message}"
        );
    }
}
