//! `#[verily::load]` at run time: runs a test's body `concurrency` at a
//! time, measures it (iterations, errors, latency, throughput), watches the
//! test's own database (peak connections, deadlocks) and the process's
//! memory, and turns what it saw into a verdict and a [`LoadReport`] for
//! the reports.
//!
//! Fixtures are built once; every iteration gets a clone of each (so each
//! must be `Clone + Send + Sync`; a `Db` or `PgPool` clone shares one pool).

mod run;
mod sample;
mod stats;

pub use sample::{SAMPLE_INTERVAL, Sampled};
pub use stats::Latency;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fixtures::TestContext;
use crate::model::{Failure, TestResult};
use crate::registry::TestDescriptor;
use crate::size::format_size;
use run::Until;
use sample::DbWatch;
use stats::Tally;

/// The category of every load test.
pub const CATEGORY: &str = "load";

/// Whether `test` must run alone: load tests measure the machine, so the
/// runner gives them every `--test-threads` permit.
pub fn takes_the_machine(test: &TestDescriptor) -> bool {
    test.category == CATEGORY
}

/// What a `#[verily::load(...)]` asked for. Not public API: built by
/// generated code.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub concurrency: usize,
    /// Measured iterations; `None` with a `duration`.
    pub iterations: Option<u64>,
    pub duration: Option<Duration>,
    /// Iterations run first, not measured: the baseline of memory is taken
    /// after them.
    pub warmup: u64,
    pub max_connections: Option<u64>,
    /// Errors allowed, as a fraction of the iterations (0 unless declared).
    pub max_error_rate: f64,
    pub max_memory_growth: Option<u64>,
    /// A latency budget; sensitive to the machine, so only when declared.
    pub p99: Option<Duration>,
}

impl Plan {
    /// Concurrency and iterations when the attribute names neither.
    pub const DEFAULT_CONCURRENCY: usize = 10;
    pub const DEFAULT_ITERATIONS: u64 = 1000;
}

/// What one load test did, for the reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub concurrency: usize,
    /// Measured iterations (the warm-up's are not among them).
    pub iterations: u64,
    pub warmup: u64,
    /// Failed iterations, warm-up included.
    pub errors: u64,
    /// Each distinct error message with its count, most frequent first.
    pub error_messages: Vec<(String, u64)>,
    /// Wall time of the measured iterations.
    pub elapsed: Duration,
    pub latency: Latency,
    /// Connections of the test's database at the busiest sample (the
    /// framework's own sessions not counted); `None` without a database.
    pub peak_connections: Option<i64>,
    pub max_connections: Option<u64>,
    /// Deadlocks PostgreSQL detected in the test's database during the test.
    pub deadlocks: Option<i64>,
    /// The sampler's cost: samples taken and time spent in them.
    pub samples: u64,
    pub sampling: Duration,
    /// Resident memory after the warm-up and after the run, in bytes.
    pub memory_before: Option<u64>,
    pub memory_after: Option<u64>,
}

impl LoadReport {
    /// Iterations per second.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.iterations as f64 / seconds
        } else {
            0.0
        }
    }

    /// Errors over every iteration run, warm-up included.
    pub fn error_rate(&self) -> f64 {
        let runs = self.iterations + self.warmup;
        if runs == 0 {
            0.0
        } else {
            self.errors as f64 / runs as f64
        }
    }

    /// Resident memory after the run minus after the warm-up (negative
    /// when it shrank).
    pub fn memory_growth(&self) -> Option<i64> {
        Some(self.memory_after? as i64 - self.memory_before? as i64)
    }

    /// The block the pretty report prints under the test, a line each.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "load: {} iterations at concurrency {} in {:.2}s ({:.0}/s){}",
                self.iterations,
                self.concurrency,
                self.elapsed.as_secs_f64(),
                self.throughput(),
                if self.warmup > 0 {
                    format!(", after {} warm-up", self.warmup)
                } else {
                    String::new()
                }
            ),
            format!(
                "  latency p50 {} p95 {} p99 {} max {}",
                millis(self.latency.p50),
                millis(self.latency.p95),
                millis(self.latency.p99),
                millis(self.latency.max)
            ),
            format!(
                "  errors {} ({:.2}%)",
                self.errors,
                self.error_rate() * 100.0
            ),
        ];
        for (message, count) in self.error_messages.iter().take(MESSAGES_SHOWN) {
            lines.push(format!("    {count} × {message}"));
        }
        if self.error_messages.len() > MESSAGES_SHOWN {
            lines.push(format!(
                "    ... and {} other messages",
                self.error_messages.len() - MESSAGES_SHOWN
            ));
        }
        if let Some(peak) = self.peak_connections {
            let limit = match self.max_connections {
                Some(limit) => format!(", limit {limit}"),
                None => String::new(),
            };
            lines.push(format!(
                "  database: {peak} connections at peak{limit}, {} deadlocks",
                self.deadlocks
                    .map_or_else(|| "unknown".to_owned(), |count| count.to_string())
            ));
        }
        if let (Some(before), Some(after), Some(growth)) =
            (self.memory_before, self.memory_after, self.memory_growth())
        {
            let sign = if growth < 0 { "-" } else { "+" };
            lines.push(format!(
                "  memory: resident {} after warm-up, {} after the run ({sign}{})",
                format_size(before),
                format_size(after),
                format_size(growth.unsigned_abs())
            ));
        }
        lines
    }

    /// What the plan's limits say about this run: one complaint per limit
    /// passed, none when it passed.
    fn complaints(&self, plan: &Plan) -> Vec<String> {
        let mut complaints = Vec::new();
        if let (Some(limit), Some(peak)) = (plan.max_connections, self.peak_connections)
            && peak > limit as i64
        {
            complaints.push(format!(
                "pool limit not respected: {peak} connections at peak, limit {limit}"
            ));
        }
        if let Some(deadlocks) = self.deadlocks.filter(|count| *count > 0) {
            complaints.push(format!(
                "PostgreSQL detected {deadlocks} deadlock(s) in the test's database"
            ));
        }
        if self.error_rate() > plan.max_error_rate {
            let shown: Vec<String> = self
                .error_messages
                .iter()
                .take(MESSAGES_SHOWN)
                .map(|(message, count)| format!("{count} × {message}"))
                .collect();
            complaints.push(format!(
                "{} of {} iterations failed ({:.2}%, allowed {}%): {}",
                self.errors,
                self.iterations + self.warmup,
                self.error_rate() * 100.0,
                plan.max_error_rate * 100.0,
                shown.join("; ")
            ));
        }
        if let (Some(limit), Some(growth)) = (plan.max_memory_growth, self.memory_growth())
            && growth > limit as i64
        {
            complaints.push(format!(
                "memory grew by {} during the run (resident {} after warm-up, {} after), limit {}",
                format_size(growth.unsigned_abs()),
                format_size(self.memory_before.unwrap_or_default()),
                format_size(self.memory_after.unwrap_or_default()),
                format_size(limit)
            ));
        }
        if let Some(budget) = plan.p99
            && self.latency.p99 > budget
        {
            complaints.push(format!(
                "p99 latency {} over the budget of {} (a budget depends on the machine)",
                millis(self.latency.p99),
                millis(budget)
            ));
        }
        complaints
    }
}

/// Error messages a report shows; the rest are counted.
const MESSAGES_SHOWN: usize = 5;

fn millis(duration: Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}

/// One load test in progress. Not public API: used by generated code.
#[doc(hidden)]
pub struct Load {
    plan: Plan,
    watch: Option<DbWatch>,
    tally: Tally,
    elapsed: Duration,
    sampled: Option<Sampled>,
    memory_before: Option<u64>,
    memory_after: Option<u64>,
}

impl Load {
    /// Prepares the run once the fixtures are built: if they opened the
    /// test's database ([`TestContext::opened_database`]), a session of the
    /// framework's own watches it.
    pub async fn start(database: Option<crate::fixtures::Db>, plan: Plan) -> Result<Self, Failure> {
        let watch = match database {
            Some(db) => Some(DbWatch::open(&db).await.map_err(Failure::new)?),
            None if plan.max_connections.is_some() => {
                return Err(Failure::new(
                    "`max_connections` counts the connections of the test's database, but the test takes no database fixture: take a `Db` (or a fixture built on one) as a parameter",
                ));
            }
            None => None,
        };
        Ok(Self {
            plan,
            watch,
            tally: Tally::default(),
            elapsed: Duration::ZERO,
            sampled: None,
            memory_before: None,
            memory_after: None,
        })
    }

    /// Runs the warm-up, then the measured iterations, `concurrency` at a
    /// time.
    pub async fn run<F, Fut>(&mut self, iteration: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TestResult> + Send + 'static,
    {
        let iteration = Arc::new(iteration);
        let concurrency = self.plan.concurrency.max(1);
        if let Some(watch) = &mut self.watch {
            watch.start();
        }
        if self.plan.warmup > 0 {
            let warmup = run::phase(
                &iteration,
                concurrency,
                Until::Iterations(self.plan.warmup),
                false,
            )
            .await;
            self.tally.merge(warmup);
        }
        self.memory_before = sample::resident_bytes();
        let started = Instant::now();
        let until = match (self.plan.duration, self.plan.iterations) {
            (Some(duration), _) => Until::Deadline(started + duration),
            (None, iterations) => Until::Iterations(iterations.unwrap_or(Plan::DEFAULT_ITERATIONS)),
        };
        let measured = run::phase(&iteration, concurrency, until, true).await;
        self.elapsed = started.elapsed();
        self.tally.merge(measured);
        self.memory_after = sample::resident_bytes();
        if let Some(watch) = &mut self.watch {
            self.sampled = watch.stop().await;
        }
    }

    /// Runs the test's closing check (`after = ...`), a panic in it being
    /// its failure.
    pub async fn after<Fut>(&self, check: Fut) -> TestResult
    where
        Fut: Future<Output = TestResult>,
    {
        run::caught(check)
            .await
            .map_err(|failure| Failure::new(format!("after the load: {failure}")))
    }

    /// Reads the deadlocks, hands the report to the harness and gives the
    /// verdict: every limit passed, and `after` (the closing check's
    /// result) with them.
    pub async fn finish(mut self, ctx: &mut TestContext, after: TestResult) -> TestResult {
        let mut problems = Vec::new();
        let deadlocks = match self.watch.as_mut() {
            Some(watch) => match watch.deadlocks().await {
                Ok(count) => Some(count),
                Err(error) => {
                    problems.push(error);
                    None
                }
            },
            None => None,
        };
        if let Some(watch) = self.watch.take() {
            watch.close().await;
        }
        let measured = self.tally.latencies.len() as u64;
        let sampled = self.sampled.unwrap_or_default();
        let report = LoadReport {
            concurrency: self.plan.concurrency.max(1),
            iterations: measured,
            warmup: self.tally.runs - measured,
            errors: self.tally.errors.values().sum(),
            error_messages: self.tally.errors_by_count(),
            elapsed: self.elapsed,
            latency: Latency::of(&mut self.tally.latencies),
            peak_connections: self.sampled.map(|sampled| sampled.peak_connections),
            max_connections: self.plan.max_connections,
            deadlocks,
            samples: sampled.samples,
            sampling: sampled.busy,
            memory_before: self.memory_before,
            memory_after: self.memory_after,
        };
        problems.extend(report.complaints(&self.plan));
        if let Err(failure) = after {
            problems.push(failure.message);
        }
        ctx.hold(report);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(problems.join("\n")))
        }
    }
}

/// What a fixture must be for every iteration of a load test to get its
/// own: a clone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shared by the iterations of a load test",
    label = "every iteration gets a clone of this fixture",
    note = "a load test's fixtures must be `Clone + Send + Sync` (hold the value in an `Arc`, or derive `Clone`): they are built once and each iteration gets a clone; a `Db` or `PgPool` clone shares one pool"
)]
pub trait Shared: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> Shared for T {}

/// Checks at compile time that a fixture can be shared, and clones it.
/// Not public API. Used by generated code.
#[doc(hidden)]
pub fn shared<T: Shared>(fixture: &T) -> T {
    fixture.clone()
}

/// One iteration's return value as a result: `()` succeeds, `Err` is
/// counted by its `Display` message (so errors that differ only in detail
/// a `Debug` form would carry, such as process ids, count as one).
pub trait IntoIterationResult {
    fn into_iteration_result(self) -> TestResult;
}

impl IntoIterationResult for () {
    fn into_iteration_result(self) -> TestResult {
        Ok(())
    }
}

impl<E: std::fmt::Display> IntoIterationResult for Result<(), E> {
    fn into_iteration_result(self) -> TestResult {
        self.map_err(|error| Failure::new(format!("Err: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> LoadReport {
        LoadReport {
            concurrency: 50,
            iterations: 1000,
            warmup: 0,
            errors: 0,
            error_messages: Vec::new(),
            elapsed: Duration::from_secs(1),
            latency: Latency::default(),
            peak_connections: Some(23),
            max_connections: Some(10),
            deadlocks: Some(0),
            samples: 100,
            sampling: Duration::from_millis(20),
            memory_before: Some(40 << 20),
            memory_after: Some(71 << 20),
        }
    }

    fn plan() -> Plan {
        Plan {
            concurrency: 50,
            iterations: Some(1000),
            duration: None,
            warmup: 0,
            max_connections: None,
            max_error_rate: 0.0,
            max_memory_growth: None,
            p99: None,
        }
    }

    #[test]
    fn the_pretty_block_names_every_figure() {
        let mut report = report();
        report.errors = 3;
        report.error_messages = vec![("Err: pool timed out".into(), 3)];
        assert_eq!(
            report.lines(),
            [
                "load: 1000 iterations at concurrency 50 in 1.00s (1000/s)",
                "  latency p50 0.00ms p95 0.00ms p99 0.00ms max 0.00ms",
                "  errors 3 (0.30%)",
                "    3 × Err: pool timed out",
                "  database: 23 connections at peak, limit 10, 0 deadlocks",
                "  memory: resident 40.0 MB after warm-up, 71.0 MB after the run (+31.0 MB)",
            ]
        );
    }

    #[test]
    fn each_limit_passed_is_named_with_what_was_seen() {
        let mut report = report();
        assert!(report.complaints(&plan()).is_empty());
        let strict = Plan {
            max_connections: Some(10),
            max_memory_growth: Some(20 << 20),
            ..plan()
        };
        report.errors = 3;
        report.error_messages = vec![("Err: pool timed out".into(), 3)];
        report.deadlocks = Some(2);
        assert_eq!(
            report.complaints(&strict),
            [
                "pool limit not respected: 23 connections at peak, limit 10",
                "PostgreSQL detected 2 deadlock(s) in the test's database",
                "3 of 1000 iterations failed (0.30%, allowed 0%): 3 × Err: pool timed out",
                "memory grew by 31.0 MB during the run (resident 40.0 MB after warm-up, 71.0 MB after), limit 20.0 MB",
            ]
        );
        let tolerant = Plan {
            max_error_rate: 0.01,
            ..plan()
        };
        report.deadlocks = Some(0);
        assert!(report.complaints(&tolerant).is_empty());
    }
}
