//! One module per row of the table; each measures verily and its
//! peer in the same run, alternating, and adds its lines to the report.

pub mod cold_start;
pub mod compile;
pub mod e2e;
pub mod load;
pub mod nextest;
pub mod overhead;
pub mod persistence;

use crate::BenchError;
use crate::measure::{Outcome, tail};

/// Checks that verily's `--format json` report says `n` tests passed
/// and none failed; returns each test's duration in seconds.
pub fn verily_passed(outcome: &Outcome, n: usize) -> Result<Vec<f64>, BenchError> {
    let mut durations = Vec::new();
    let mut outcomes = Vec::new();
    let mut suite = None;
    for line in outcome.stdout.lines().filter(|line| line.starts_with('{')) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match (event["type"].as_str(), event["event"].as_str()) {
            (Some("test"), Some("started" | "timeout")) => {}
            (Some("test"), Some(_)) => {
                outcomes.push(event["outcome"].as_str().unwrap_or("?").to_owned());
                durations.push(event["duration"].as_f64().unwrap_or(f64::NAN));
            }
            (Some("suite"), Some("ok" | "failed")) => suite = Some(event),
            _ => {}
        }
    }
    let passed = outcomes.iter().filter(|o| *o == "passed").count();
    let suite_ok = suite
        .as_ref()
        .is_some_and(|s| s["passed"].as_u64() == Some(n as u64) && s["failed"].as_u64() == Some(0));
    if !outcome.status.success() || passed != n || outcomes.len() != n || !suite_ok {
        return Err(BenchError::new(format!(
            "{}: expected {n} passed tests, got {passed} passed of {} ({}); suite: {}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
            outcome.command,
            outcomes.len(),
            outcome.status,
            suite
                .map(|s| s.to_string())
                .unwrap_or_else(|| "no suite event".to_owned()),
            tail(&outcome.stdout, 15),
            tail(&outcome.stderr, 30)
        )));
    }
    Ok(durations)
}

/// Checks libtest's closing line: `test result: ok. n passed; 0 failed`.
pub fn libtest_passed(outcome: &Outcome, n: usize) -> Result<(), BenchError> {
    let expected = format!("test result: ok. {n} passed; 0 failed");
    if outcome.status.success() && outcome.stdout.contains(&expected) {
        Ok(())
    } else {
        Err(BenchError::new(format!(
            "{}: no `{expected}` ({})\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
            outcome.command,
            outcome.status,
            tail(&outcome.stdout, 30),
            tail(&outcome.stderr, 30)
        )))
    }
}

/// `postgres: <source>, ready in X s` and `template database migrated (N
/// migrations) in Y s` from the harness's stderr: `(source, X, Y)`.
pub fn harness_timings(stderr: &str) -> Result<(String, f64, f64), BenchError> {
    let ready = stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("postgres: ")?;
        let (source, seconds) = rest.rsplit_once(", ready in ")?;
        Some((
            source.to_owned(),
            seconds.strip_suffix(" s")?.parse::<f64>().ok()?,
        ))
    });
    let migrated = stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("postgres: template database migrated (")?;
        let (count, rest) = rest.split_once(" migrations) in ")?;
        let count: usize = count.parse().ok()?;
        Some((count, rest.strip_suffix(" s")?.parse::<f64>().ok()?))
    });
    match (ready, migrated) {
        (Some((source, ready)), Some((count, migrated))) => {
            let expected = crate::generate::schema::MIGRATIONS.len();
            if count != expected {
                return Err(BenchError::new(format!(
                    "the template got {count} migrations, expected {expected}"
                )));
            }
            Ok((source, ready, migrated))
        }
        _ => Err(BenchError::new(format!(
            "no `postgres: ..., ready in X s` and `template database migrated` lines on stderr:\n{}",
            tail(stderr, 20)
        ))),
    }
}
