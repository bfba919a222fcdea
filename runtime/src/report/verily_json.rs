//! `--format verily-json`: verily's own schema, one JSON object per line,
//! with a closing table per category (`--format json` speaks libtest's).
//! The schema is stable; fields may be added, never renamed or removed.
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
//!
//! `load` is `null` except for load tests, where it is:
//!
//! ```text
//! {"concurrency":50,"iterations":2000,"warmup":100,"errors":0,"error_rate":0.0,
//!  "errors_by_message":[{"message":"...","count":3}],"duration":1.2,
//!  "throughput":1666.7,"latency":{"p50":0.0011,"p95":0.0030,"p99":0.0052,"max":0.011},
//!  "peak_connections":10,"max_connections":10,"deadlocks":0,
//!  "samples":120,"sampling":0.03,"memory_before":41943040,"memory_after":42991616}
//! ```
//!
//! (latencies, `duration` and `sampling` in seconds, memory in bytes;
//! the database fields are `null` when the test has no database).

use std::io::{self, Write};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Record, Reporter, Summary};
use crate::load::LoadReport;
use crate::registry::TestDescriptor;
use crate::select::Selection;

/// Identifies the schema in the first event.
pub const SCHEMA: &str = "verily/1";

#[derive(Debug, Default)]
pub struct VerilyJson;

impl VerilyJson {
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
        "needs": record.services,
        "tags": record.test.tags().collect::<Vec<_>>(),
        "tries": record.tries,
        "flaky": record.is_flaky(),
        "load": record.load.as_deref().map(load_event),
    })
}

/// The `load` object of a load test's `finished` event.
pub fn load_event(load: &LoadReport) -> Value {
    let errors: Vec<Value> = load
        .error_messages
        .iter()
        .map(|(message, count)| json!({"message": message, "count": count}))
        .collect();
    json!({
        "concurrency": load.concurrency,
        "iterations": load.iterations,
        "warmup": load.warmup,
        "errors": load.errors,
        "error_rate": load.error_rate(),
        "errors_by_message": errors,
        "duration": load.elapsed.as_secs_f64(),
        "throughput": load.throughput(),
        "latency": {
            "p50": load.latency.p50.as_secs_f64(),
            "p95": load.latency.p95.as_secs_f64(),
            "p99": load.latency.p99.as_secs_f64(),
            "max": load.latency.max.as_secs_f64(),
        },
        "peak_connections": load.peak_connections,
        "max_connections": load.max_connections,
        "deadlocks": load.deadlocks,
        "samples": load.samples,
        "sampling": load.sampling.as_secs_f64(),
        "memory_before": load.memory_before,
        "memory_after": load.memory_after,
    })
}

impl Reporter for VerilyJson {
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

    fn test_slow(&mut self, test: &'static TestDescriptor, running: Duration) {
        eprintln!("SLOW [> {}] {}", super::seconds(running), test.name);
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
            "flaky": summary.flaky().count(),
            "not_run": summary.not_run,
            "filtered_out": summary.filtered_out,
            "duration": summary.elapsed.as_secs_f64(),
            "categories": categories,
        }));
    }
}
