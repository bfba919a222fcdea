//! `--junit PATH`: a JUnit XML report, one `<testsuite>` per category, as
//! GitLab, Jenkins and GitHub test reporters read it, written by
//! quick-junit (nextest's writer): failures with their text in
//! `system-out`, a flaky test's failed tries as `flakyFailure`, a failing
//! test's earlier tries as `rerunFailure`, timestamps, and the category,
//! tags and load figures as properties. quick-junit drops ANSI escapes and
//! the control characters XML 1.0 cannot carry.

use std::path::Path;

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::{Outcome, Record, Summary};
use crate::load::LoadReport;

/// Writes the report of `summary` to `path`, creating parent directories.
pub fn write(path: &Path, summary: &Summary) -> std::io::Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, render(summary))
}

/// The XML text of the report.
pub fn render(summary: &Summary) -> String {
    let mut report = Report::new("verily");
    report
        .set_timestamp(timestamp(summary.started_at))
        .set_time(summary.elapsed);
    for (category, stats) in summary.by_category() {
        let mut suite = TestSuite::new(category);
        suite.set_time(stats.time);
        let records = summary
            .records
            .iter()
            .filter(|record| record.test.category == category);
        if let Some(first) = records.clone().map(|record| record.started_at).min() {
            suite.set_timestamp(timestamp(first));
        }
        suite.add_test_cases(records.map(test_case));
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .expect("a report of strings and numbers serializes")
}

fn timestamp(at: std::time::SystemTime) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::<chrono::Utc>::from(at).fixed_offset()
}

fn test_case(record: &Record) -> TestCase {
    let (classname, name) = record
        .test
        .name
        .rsplit_once("::")
        .unwrap_or(("", record.test.name));
    let status = match &record.outcome {
        Outcome::Passed => {
            let mut status = TestCaseStatus::success();
            status.add_reruns(record.earlier.iter().map(rerun));
            status
        }
        Outcome::Ignored => {
            let mut status = TestCaseStatus::skipped();
            if let Some(reason) = record.test.ignore_reason {
                status.set_message(reason);
            }
            status
        }
        Outcome::Skipped(reason) => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason.as_str());
            status
        }
        Outcome::Failed(_) | Outcome::TimedOut(_) => {
            let message = record.message().unwrap_or_default();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(message.lines().next().unwrap_or_default())
                .set_type(record.outcome.as_str())
                .set_description(format!("{message}\n  at {}", record.location()));
            status.add_reruns(record.earlier.iter().map(rerun));
            status
        }
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(classname)
        .set_time(record.duration)
        .set_timestamp(timestamp(record.started_at));
    case.extra.insert("file".into(), record.test.file.into());
    case.extra
        .insert("line".into(), record.test.line.to_string().into());
    if record.outcome.is_failure() {
        case.set_system_out(super::json::failure_text(record));
    }
    case.add_property(Property::new("category", record.test.category));
    case.add_properties(
        record
            .test
            .tags
            .iter()
            .map(|tag| Property::new("tag", *tag)),
    );
    if let Some(load) = record.load.as_deref() {
        case.add_properties(
            load_figures(load)
                .into_iter()
                .map(|(name, value)| Property::new(name, value)),
        );
    }
    case
}

/// A failed try before the last: `flakyFailure` under a test that then
/// passed, `rerunFailure` under one that failed again.
fn rerun(outcome: &Outcome) -> TestRerun {
    let message = match outcome {
        Outcome::Failed(failure) => failure.message.clone(),
        Outcome::TimedOut(timeout) => format!("timed out after {}", super::seconds(*timeout)),
        other => other.as_str().to_owned(),
    };
    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
    rerun
        .set_message(message.lines().next().unwrap_or_default())
        .set_type(outcome.as_str())
        .set_description(message.as_str());
    rerun
}

/// A load test's figures, named `load.*`.
fn load_figures(load: &LoadReport) -> Vec<(&'static str, String)> {
    let mut figures = vec![
        ("load.concurrency", load.concurrency.to_string()),
        ("load.iterations", load.iterations.to_string()),
        ("load.warmup", load.warmup.to_string()),
        ("load.errors", load.errors.to_string()),
        ("load.error_rate", format!("{:.6}", load.error_rate())),
        ("load.throughput", format!("{:.1}", load.throughput())),
        (
            "load.latency_p50",
            format!("{:.6}", load.latency.p50.as_secs_f64()),
        ),
        (
            "load.latency_p95",
            format!("{:.6}", load.latency.p95.as_secs_f64()),
        ),
        (
            "load.latency_p99",
            format!("{:.6}", load.latency.p99.as_secs_f64()),
        ),
        (
            "load.latency_max",
            format!("{:.6}", load.latency.max.as_secs_f64()),
        ),
    ];
    let optional = [
        (
            "load.peak_connections",
            load.peak_connections.map(|n| n.to_string()),
        ),
        (
            "load.max_connections",
            load.max_connections.map(|n| n.to_string()),
        ),
        ("load.deadlocks", load.deadlocks.map(|n| n.to_string())),
        (
            "load.memory_before",
            load.memory_before.map(|n| n.to_string()),
        ),
        (
            "load.memory_after",
            load.memory_after.map(|n| n.to_string()),
        ),
    ];
    figures.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?))),
    );
    figures
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::render;
    use crate::fixtures::TestContext;
    use crate::load::{Latency, LoadReport};
    use crate::model::Failure;
    use crate::model::TestFuture;
    use crate::registry::TestDescriptor;
    use crate::report::{Outcome, Record, Summary};

    fn pass(_: &mut TestContext) -> TestFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    static LOAD_TEST: TestDescriptor = TestDescriptor {
        name: "ledger::deposits",
        category: "load",
        file: "tests/harness.rs",
        line: 3,
        ignored: false,
        ignore_reason: None,
        timeout: None,
        tags: &[],
        retries: None,
        own_runtime: false,
        run: pass,
    };

    #[test]
    fn a_load_test_carries_its_figures_as_properties() {
        let load = LoadReport {
            concurrency: 50,
            iterations: 400,
            warmup: 50,
            errors: 0,
            error_messages: Vec::new(),
            elapsed: Duration::from_secs(2),
            latency: Latency::default(),
            peak_connections: Some(10),
            max_connections: Some(10),
            deadlocks: Some(0),
            samples: 200,
            sampling: Duration::from_millis(40),
            memory_before: None,
            memory_after: None,
        };
        let record = Record {
            test: &LOAD_TEST,
            outcome: Outcome::Passed,
            duration: Duration::from_secs(2),
            load: Some(Box::new(load)),
            tries: 1,
            earlier: Vec::new(),
            started_at: std::time::SystemTime::now(),
            services: Vec::new(),
            timeout_note: None,
        };
        let xml = render(&Summary::new(vec![record], 0, Duration::from_secs(2)));
        let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed");
        let case = &parsed.test_suites[0].test_cases[0];
        let properties: Vec<(&str, &str)> = case
            .properties
            .iter()
            .map(|property| (property.name.as_str(), property.value.as_str()))
            .collect();
        assert_eq!(
            properties[..3],
            [
                ("category", "load"),
                ("load.concurrency", "50"),
                ("load.iterations", "400")
            ],
            "{xml}"
        );
        assert!(
            properties.contains(&("load.peak_connections", "10")),
            "{xml}"
        );
        assert!(!xml.contains("load.memory_before"), "{xml}");
    }

    static COLORED: TestDescriptor = TestDescriptor {
        name: "ui::colors",
        category: "smoke",
        tags: &["slow"],
        ..LOAD_TEST
    };

    #[test]
    fn control_characters_leave_well_formed_xml() {
        let record = Record {
            test: &COLORED,
            outcome: Outcome::Failed(Failure::new("\u{1b}[31mred\u{1b}[0m & <b> \u{7}bell")),
            duration: Duration::from_millis(3),
            load: None,
            tries: 2,
            earlier: vec![Outcome::Failed(Failure::new("first \u{1b}[1mtry"))],
            started_at: std::time::SystemTime::now(),
            services: Vec::new(),
            timeout_note: None,
        };
        let xml = render(&Summary::new(vec![record], 0, Duration::from_secs(1)));
        assert!(!xml.contains('\u{1b}') && !xml.contains('\u{7}'), "{xml}");
        assert!(xml.contains("red &amp; &lt;b&gt; bell"), "{xml}");
        let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed");
        let case = &parsed.test_suites[0].test_cases[0];
        assert_eq!(case.name.as_str(), "colors");
        assert!(
            matches!(&case.status, quick_junit::TestCaseStatus::NonSuccess { reruns, .. } if reruns.runs.len() == 1),
            "{xml}"
        );
    }
}
