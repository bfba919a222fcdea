//! `--format json`: one JSON object per line on stdout. The schema is
//! stable; fields may be added, never renamed or removed.
//!
//! ```text
//! {"type":"suite","event":"started","schema":"verily/1","test_count":12,"filtered_out":3}
//! {"type":"test","event":"started","name":"ops::factory","category":"wiring"}
//! {"type":"test","event":"finished","name":"ops::factory","category":"wiring",
//!  "outcome":"failed","duration":0.004,"message":"...","location":"src/lib.rs:10",
//!  "file":"src/lib.rs","line":10,"needs":[]}
//! {"type":"suite","event":"finished","outcome":"failed","passed":11,"failed":1,
//!  "ignored":0,"filtered_out":3,"duration":0.3,
//!  "categories":[{"category":"wiring","passed":11,"failed":1,"ignored":0,"duration":0.02}]}
//! ```
//!
//! `outcome` is one of `passed`, `failed`, `timed_out`, `ignored`, `skipped`;
//! durations are in seconds; `message` is `null` unless the test failed or
//! skipped itself (then it says why); `location` is `null` unless it failed.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{Record, Reporter, Summary};
use crate::registry::TestDescriptor;
use crate::select::Selection;

/// Identifies the schema in the first event.
pub const SCHEMA: &str = "verily/1";

#[derive(Debug, Default)]
pub struct Json;

impl Json {
    pub fn new() -> Self {
        Self
    }

    fn emit(&self, event: Value) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }
}

/// The `finished` event of one test.
pub fn test_event(record: &Record) -> Value {
    let failed = record.outcome.is_failure();
    json!({
        "type": "test",
        "event": "finished",
        "name": record.test.name,
        "category": record.test.category,
        "outcome": record.outcome.as_str(),
        "duration": record.duration.as_secs_f64(),
        "message": record.message(),
        "location": failed.then(|| record.location()),
        "file": record.test.file,
        "line": record.test.line,
        "needs": record.test.needs.names().collect::<Vec<_>>(),
    })
}

impl Reporter for Json {
    fn started(&mut self, selection: &Selection) {
        self.emit(json!({
            "type": "suite",
            "event": "started",
            "schema": SCHEMA,
            "test_count": selection.tests.len(),
            "filtered_out": selection.filtered_out,
        }));
    }

    fn test_started(&mut self, test: &'static TestDescriptor) {
        self.emit(json!({
            "type": "test",
            "event": "started",
            "name": test.name,
            "category": test.category,
        }));
    }

    fn test_finished(&mut self, record: &Record) {
        self.emit(test_event(record));
    }

    fn finished(&mut self, summary: &Summary) {
        let categories: Vec<Value> = summary
            .by_category()
            .into_iter()
            .map(|(name, stats)| {
                json!({
                    "category": name,
                    "passed": stats.passed,
                    "failed": stats.failed,
                    "ignored": stats.ignored,
                    "duration": stats.time.as_secs_f64(),
                })
            })
            .collect();
        self.emit(json!({
            "type": "suite",
            "event": "finished",
            "outcome": if summary.failed() == 0 { "passed" } else { "failed" },
            "passed": summary.passed(),
            "failed": summary.failed(),
            "ignored": summary.ignored(),
            "filtered_out": summary.filtered_out,
            "duration": summary.elapsed.as_secs_f64(),
            "categories": categories,
        }));
    }
}
