//! `--junit PATH`: a JUnit XML report, one `<testsuite>` per category, as
//! GitLab, Jenkins and GitHub test reporters read it.

use std::fmt::Write as _;
use std::path::Path;

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
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"verily\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        summary.records.len(),
        summary.failed(),
        summary.ignored(),
        summary.elapsed.as_secs_f64()
    );
    for (category, stats) in summary.by_category() {
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(category),
            stats.passed + stats.failed + stats.ignored,
            stats.failed,
            stats.ignored,
            stats.time.as_secs_f64()
        );
        for record in summary
            .records
            .iter()
            .filter(|record| record.test.category == category)
        {
            let (classname, name) = record
                .test
                .name
                .rsplit_once("::")
                .unwrap_or(("", record.test.name));
            let _ = write!(
                xml,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\" file=\"{}\" line=\"{}\"",
                escape(name),
                escape(classname),
                record.duration.as_secs_f64(),
                escape(record.test.file),
                record.test.line
            );
            let mut children = properties(record);
            match &record.outcome {
                Outcome::Passed => {}
                Outcome::Ignored => children.push_str("      <skipped/>\n"),
                Outcome::Skipped(reason) => {
                    let _ = writeln!(children, "      <skipped message=\"{}\"/>", escape(reason));
                }
                Outcome::Failed(_) | Outcome::TimedOut(_) => {
                    let message = record.message().unwrap_or_default();
                    let first_line = message.lines().next().unwrap_or_default();
                    let kind = record.outcome.as_str();
                    let _ = writeln!(
                        children,
                        "      <failure type=\"{kind}\" message=\"{}\">{}\n  at {}</failure>",
                        escape(first_line),
                        escape(&message),
                        escape(&record.location())
                    );
                }
            }
            if children.is_empty() {
                xml.push_str("/>\n");
            } else {
                let _ = write!(xml, ">\n{children}    </testcase>\n");
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// The test's category and tags (`category`, then a `tag` per tag), and a
/// load test's figures (`load.*`), as `<properties>`.
fn properties(record: &Record) -> String {
    let mut figures = vec![("category", record.test.category.to_owned())];
    figures.extend(
        record
            .test
            .tags
            .iter()
            .map(|tag| ("tag", (*tag).to_owned())),
    );
    if let Some(load) = record.load.as_deref() {
        figures.extend(load_figures(load));
    }
    let mut xml = String::from("      <properties>\n");
    for (name, value) in figures {
        let _ = writeln!(
            xml,
            "        <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    xml.push_str("      </properties>\n");
    xml
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

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{escape, render};
    use crate::fixtures::TestContext;
    use crate::load::{Latency, LoadReport};
    use crate::model::{Needs, TestFuture};
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
        needs: Needs::NONE,
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
        };
        let xml = render(&Summary::new(vec![record], 0, Duration::from_secs(2)));
        assert!(
            xml.contains(
                "line=\"3\">\n      <properties>\n        <property name=\"category\" value=\"load\"/>\n        <property name=\"load.concurrency\" value=\"50\"/>\n        <property name=\"load.iterations\" value=\"400\"/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"load.peak_connections\" value=\"10\"/>"),
            "{xml}"
        );
        assert!(!xml.contains("load.memory_before"), "{xml}");
        assert!(
            xml.contains("      </properties>\n    </testcase>\n"),
            "{xml}"
        );
    }

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\"\u{1b}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }
}
