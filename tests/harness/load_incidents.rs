//! The ledger example's concurrency incidents, each switched on by a
//! feature and caught by its named load test with what it saw: real cargo,
//! real harness, the JSON report's outcomes, messages and `load` blocks.

use serde_json::Value;

use crate::support::cargo_test_example;

const TESTS: [&str; 4] = [
    "deposits_stay_within_the_pool",
    "concurrent_deposits_are_all_counted",
    "opposite_transfers_do_not_deadlock",
    "reads_always_find_a_connection",
];

/// The ledger's load tests with `features`, on a local cluster: there a
/// connection costs a fork, so a pool per request shows as many
/// connections as callers; through Docker, a debug build's SCRAM handshake
/// throttles new connections to a few dozen a second.
fn load_tests(features: &[&str]) -> (i32, std::collections::BTreeMap<String, Value>, String) {
    let run = cargo_test_example(
        "ledger",
        features,
        &["--format", "json"],
        &[("VERILY_POSTGRES", "local")],
    );
    let finished = run
        .finished()
        .into_iter()
        .map(|(name, event)| {
            let short = name.rsplit("::").next().unwrap_or_default().to_owned();
            (short, event)
        })
        .collect();
    (
        run.code,
        finished,
        format!("{}\n{}", run.stdout, run.stderr),
    )
}

/// Without a feature every load test passes, and its `load` block says
/// what it measured; each feature then fails its own load test, with the
/// message naming what was seen, and no other. One test, run after run:
/// two load runs at once on two cores would measure each other.
#[verily::test(category = "e2e", timeout = "30m")]
fn each_concurrency_incident_is_caught_by_its_load_test() {
    the_clean_ledger_passes_its_load_tests();
    each_incident_fails_only_its_own_test();
}

fn the_clean_ledger_passes_its_load_tests() {
    let (code, finished, output) = load_tests(&[]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(finished.len(), TESTS.len(), "{output}");
    for test in TESTS {
        let event = &finished[test];
        assert_eq!(event["outcome"], "passed", "{test}: {event}");
        assert_eq!(event["category"], "load", "{test}: {event}");
        assert_eq!(event["load"]["errors"], 0, "{test}: {event}");
        assert_eq!(event["load"]["deadlocks"], 0, "{test}: {event}");
    }
    let pool = &finished["deposits_stay_within_the_pool"]["load"];
    assert_eq!(pool["iterations"], 400, "{pool}");
    assert_eq!(pool["warmup"], 50, "{pool}");
    assert_eq!(pool["concurrency"], 50, "{pool}");
    assert_eq!(pool["max_connections"], 10, "{pool}");
    let peak = pool["peak_connections"].as_i64().unwrap_or(-1);
    assert!((1..=10).contains(&peak), "{pool}");
    assert!(pool["memory_after"].as_u64().unwrap_or(0) > 0, "{pool}");
}

fn each_incident_fails_only_its_own_test() {
    let incidents: [(&str, &str, &str); 4] = [
        (
            "bug-pool-per-request",
            "deposits_stay_within_the_pool",
            "pool limit not respected: ",
        ),
        (
            "bug-lost-update",
            "concurrent_deposits_are_all_counted",
            "after the load: panicked: assertion `left == right` failed: 500 deposits of 1 were made, the balance says ",
        ),
        (
            "bug-deadlock",
            "opposite_transfers_do_not_deadlock",
            "deadlock(s) in the test's database",
        ),
        (
            "bug-connection-leak",
            "reads_always_find_a_connection",
            "× Err: pool timed out while waiting for an open connection",
        ),
    ];
    for (feature, catcher, expected) in incidents {
        let (code, finished, output) = load_tests(&[feature]);
        assert_eq!(code, 101, "{feature}: {output}");
        assert_eq!(finished.len(), TESTS.len(), "{feature}: {output}");
        for test in TESTS {
            let event = &finished[test];
            if test == catcher {
                assert_eq!(event["outcome"], "failed", "{feature}: {event}");
                let message = event["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains(expected),
                    "{feature}: `{expected}` not in: {message}"
                );
            } else {
                assert_eq!(
                    event["outcome"], "passed",
                    "{feature} broke {test}: {event}"
                );
            }
        }
        let load = &finished[catcher]["load"];
        match feature {
            "bug-pool-per-request" => {
                assert!(
                    load["peak_connections"].as_i64().unwrap_or(0) > 10,
                    "{load}"
                )
            }
            // PostgreSQL's own count, read once the sessions flushed it.
            "bug-deadlock" => {
                assert!(load["deadlocks"].as_i64().unwrap_or(0) >= 1, "{load}");
                assert!(load["errors"].as_u64().unwrap_or(0) >= 1, "{load}");
            }
            "bug-connection-leak" => {
                assert!(load["errors"].as_u64().unwrap_or(0) >= 1, "{load}")
            }
            _ => {}
        }
    }
}

/// Tests of this pair running now: the load test must never see the other.
static BESIDE_THE_LOAD_TEST: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// A load test takes the machine: the runner gives it every
/// `--test-threads` permit, so the test below never runs beside it
/// (without that, the two start together and every iteration fails).
#[verily::load(concurrency = 4, iterations = 400)]
async fn a_load_test_runs_alone() {
    let beside = BESIDE_THE_LOAD_TEST.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(beside, 0, "a test ran beside the load test");
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
}

#[verily::test(category = "smoke")]
async fn a_test_that_would_run_beside_it() {
    BESIDE_THE_LOAD_TEST.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    BESIDE_THE_LOAD_TEST.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
}
