//! `#[enum_complete]` on the events example: every check passes on the
//! healthy pipeline, and each incident is caught by the named check with its
//! message, through real cargo and the JSON report.

use crate::support::cargo_test_example;

#[verily::test(category = "e2e", timeout = "15m")]
fn each_enum_incident_is_caught_by_its_check() {
    let local = [("VERILY_POSTGRES", "local")];
    let healthy = cargo_test_example(
        "events",
        &[],
        &["--category", "schema", "--format", "json"],
        &local,
    );
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    let checks: Vec<String> = healthy.finished().into_keys().collect();
    assert_eq!(
        checks,
        [
            "events::event::EventType::pg_type",
            "events::event::EventType::scan",
            "events::event::EventType::serde",
            "events::event::EventType::strings",
            "events::router::severity",
            "events::router::topic_for",
        ]
    );
    for (feature, check, expected) in [
        (
            "bug-variant-missing-in-migration",
            "events::event::EventType::pg_type",
            "EventType::PositionClosed (\"position_closed\") is missing from the database enum event_type",
        ),
        (
            "bug-serde-rename-collision",
            "events::event::EventType::serde",
            "EventType::TradingSignal and EventType::OrderFilled both serialize to \"trading_signal\"",
        ),
        (
            "bug-router-unimplemented",
            "events::router::topic_for",
            "topic_for failed for 1 of 4 variants of EventType:\n  RiskAlert: panicked: not implemented: risk alerts have no topic yet (at examples/events/src/router.rs:",
        ),
        (
            "bug-stale-config-label",
            "events::event::EventType::scan",
            "config/routes.toml:13: \"risk_alert\" is not a label of EventType",
        ),
    ] {
        let broken = cargo_test_example(
            "events",
            &[feature],
            &["--category", "schema", "--format", "json"],
            &local,
        );
        assert_eq!(
            broken.code, 101,
            "{feature}: {}\n{}",
            broken.stdout, broken.stderr
        );
        let finished = broken.finished();
        let event = &finished[check];
        assert_eq!(event["outcome"], "failed", "{feature}: {check}");
        let message = event["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{feature}: {check} said:\n{message}"
        );
    }
}
