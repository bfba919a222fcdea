//! `--format json`: libtest's JSON (as `-Z unstable-options --format json`
//! prints it), one object per line, so that rust-analyzer, IntelliJ,
//! cargo2junit and other readers of libtest's output read ours.
//!
//! ```text
//! {"type":"suite","event":"started","test_count":3}
//! {"type":"test","event":"started","name":"ops::factory"}
//! {"type":"test","name":"ops::factory","event":"failed","stdout":"thread 'ops::factory' panicked at ..."}
//! {"type":"test","name":"ops::slow","event":"ignored","message":"needs a GPU"}
//! {"type":"suite","event":"failed","passed":1,"failed":1,"ignored":1,"measured":0,"filtered_out":0,"exec_time":0.3}
//! ```
//!
//! libtest's keys keep libtest's meaning: a test ends with `ok`, `failed` or
//! `ignored` (a test stopped at its timeout is `failed`, one that skipped
//! itself is `ignored` with its reason in `message`); `exec_time` is on
//! test events only with `--report-time`, as in libtest. Test events also
//! carry verily's keys, which libtest's readers ignore:
//!
//! - `category`, `tags`, `file`, `line`, `retries` (what the attribute
//!   said), on every test event;
//! - on the closing event: `needs` (the services the test asked for:
//!   `postgres`, `redis`, a user's own; derived from what it used, nothing
//!   declares it), `outcome` (`passed`, `failed`, `timed_out`,
//!   `ignored`, `skipped`), `duration` (seconds), `message` (why it failed
//!   or skipped itself), `location` (`file:line[:col]` of a failure),
//!   `tries` and `flaky` (a test that passed only on a retry), and `load`
//!   (a load test's figures, see `verily_json`).

use std::io::{self, Write};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Outcome, Record, Reporter, Summary};
use crate::registry::TestDescriptor;
use crate::select::Selection;

#[derive(Debug, Default)]
pub struct Json {
    report_time: bool,
}

impl Json {
    /// `report_time`: put `exec_time` on test events (`--report-time`).
    pub fn new(report_time: bool) -> Self {
        Self { report_time }
    }

    fn emit(&self, event: &Value) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }
}

/// libtest's event word for how a test ended.
pub fn event_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "ok",
        Outcome::Failed(_) | Outcome::TimedOut(_) => "failed",
        Outcome::Ignored | Outcome::Skipped(_) => "ignored",
    }
}

/// What libtest would have captured for a failed test: the panic as the
/// panic hook prints it, or the `Error: ...` of a test returning `Err`.
pub fn failure_text(record: &Record) -> String {
    let message = record.message().unwrap_or_default();
    match &record.outcome {
        Outcome::Failed(failure) if failure.location.is_some() => {
            let payload = message.strip_prefix("panicked: ").unwrap_or(&message);
            format!(
                "thread '{}' panicked at {}:\n{payload}\n",
                record.test.name,
                record.location()
            )
        }
        _ => format!("Error: {message}\n  at {}\n", record.location()),
    }
}

/// verily's keys on every test event.
fn descriptor_keys(test: &TestDescriptor, event: &mut Map<String, Value>) {
    event.insert("category".into(), test.category.into());
    event.insert("tags".into(), json!(test.tags().collect::<Vec<_>>()));
    event.insert("file".into(), test.file.into());
    event.insert("line".into(), test.line.into());
    event.insert("retries".into(), test.retries.into());
}

/// The event that closes one test.
pub fn test_event(record: &Record, report_time: bool) -> Value {
    let mut event = Map::new();
    event.insert("type".into(), "test".into());
    event.insert("name".into(), record.test.name.into());
    event.insert("event".into(), event_word(&record.outcome).into());
    if report_time && record.tries > 0 {
        event.insert("exec_time".into(), record.duration.as_secs_f64().into());
    }
    match &record.outcome {
        Outcome::Failed(_) | Outcome::TimedOut(_) => {
            event.insert("stdout".into(), failure_text(record).into());
        }
        Outcome::Ignored => {
            if let Some(reason) = record.test.ignore_reason {
                event.insert("message".into(), reason.into());
            }
        }
        Outcome::Skipped(_) | Outcome::Passed => {}
    }
    descriptor_keys(record.test, &mut event);
    // What it needed: the services it asked for (known once it ran).
    event.insert("needs".into(), json!(record.services));
    event.insert("outcome".into(), record.outcome.as_str().into());
    event.insert("duration".into(), record.duration.as_secs_f64().into());
    if let Some(message) = record.message() {
        event.insert("message".into(), message.into());
    }
    if record.outcome.is_failure() {
        event.insert("location".into(), record.location().into());
    }
    event.insert("tries".into(), record.tries.into());
    event.insert("flaky".into(), record.is_flaky().into());
    if let Some(load) = record.load.as_deref() {
        event.insert("load".into(), super::verily_json::load_event(load));
    }
    Value::Object(event)
}

impl Reporter for Json {
    fn started(&mut self, selection: &Selection) {
        self.emit(&json!({
            "type": "suite",
            "event": "started",
            "test_count": selection.tests.len(),
        }));
    }

    fn test_started(&mut self, test: &'static TestDescriptor) {
        let mut event = Map::new();
        event.insert("type".into(), "test".into());
        event.insert("event".into(), "started".into());
        event.insert("name".into(), test.name.into());
        descriptor_keys(test, &mut event);
        self.emit(&Value::Object(event));
    }

    /// libtest's warning for a test running long, as its `timeout` event.
    fn test_slow(&mut self, test: &'static TestDescriptor, _running: Duration) {
        self.emit(&json!({"type": "test", "event": "timeout", "name": test.name}));
    }

    fn test_finished(&mut self, record: &Record) {
        // libtest announces an ignored test before it reports it.
        if record.outcome == Outcome::Ignored {
            self.test_started(record.test);
        }
        self.emit(&test_event(record, self.report_time));
    }

    fn finished(&mut self, summary: &Summary) {
        self.emit(&json!({
            "type": "suite",
            "event": if summary.failed() == 0 { "ok" } else { "failed" },
            "passed": summary.passed(),
            "failed": summary.failed(),
            "ignored": summary.ignored(),
            "measured": 0,
            "filtered_out": summary.filtered_out,
            "exec_time": summary.elapsed.as_secs_f64(),
        }));
    }
}
