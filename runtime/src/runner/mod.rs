//! Runs the selected tests on a tokio runtime, in parallel up to
//! `--test-threads`, each under its timeout, and reports as they finish.

pub(crate) mod panic;
pub mod select;
mod signals;

pub use panic::skip;

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use crate::cli::{self, Options};
use crate::config::Config;
use crate::fixture::{FixtureError, TestContext};
use crate::infra::{Infrastructure, SharedInfrastructure};
use crate::registry::{self, TestDescriptor};
use crate::report::{self, Outcome, Record, Reporter};
use select::Selection;
use signals::Signals;

/// What a generated test function returns.
pub type TestFuture<'a> = Pin<Box<dyn Future<Output = TestResult> + Send + 'a>>;

/// The verdict of one test body.
pub type TestResult = Result<(), Failure>;

/// Timeout of a test that sets none, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the end-of-run teardown may take before the harness exits
/// anyway.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(60);

/// Why a test failed: a message, and where, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, phrased for the person reading the report.
    pub message: String,
    /// `file:line[:column]` of the panic or of the test.
    pub location: Option<String>,
    /// The test skipped itself (see [`skip`]): not a failure.
    pub skipped: bool,
}

impl Failure {
    /// A failure with no location of its own; the report uses the test's.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            skipped: false,
        }
    }

    /// A test that stopped itself because it cannot run here.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            skipped: true,
            ..Self::new(reason)
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(location) = &self.location {
            write!(f, "\n  at {location}")?;
        }
        Ok(())
    }
}

impl From<FixtureError> for Failure {
    fn from(error: FixtureError) -> Self {
        Failure::new(format!("fixture failed: {error}"))
    }
}

/// The harness's `main`: parses `std::env::args`, runs, and exits with 0
/// (all passed), 101 (a test failed) or 2 (bad command line).
pub fn main() -> ! {
    main_with(Config::default())
}

/// [`main`] with a configuration (migrations, Docker image).
pub fn main_with(config: Config) -> ! {
    // Re-executed to keep a cluster shared by a nextest run's processes?
    crate::infra::postgres::shared::keep_if_keeper();
    let code = run_cli(std::env::args().skip(1), config);
    // Exit rather than return: a test stuck in blocking code past its
    // timeout must not keep the process alive.
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Runs the harness with these arguments and returns the exit code.
pub fn run_cli<I, S>(args: I, config: Config) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let options = match cli::parse(args) {
        Ok(options) => options,
        Err(error) => return usage_error(&error),
    };
    if options.help {
        print!("{}", cli::USAGE);
        return 0;
    }
    let registered: Vec<&'static TestDescriptor> = registry::registered().collect();
    let selection = match select::select(&registered, &options) {
        Ok(selection) => selection,
        Err(error) => return usage_error(&error),
    };
    if options.list {
        list(&selection, &options);
        return 0;
    }
    run(selection, &options, config)
}

fn usage_error(error: &dyn fmt::Display) -> i32 {
    eprintln!("error: {error}");
    2
}

/// nextest sees names with their category in front (`[wiring] a::b`), so a
/// filter expression such as `test(/^\[wiring\]/)` selects a category.
fn names_carry_category() -> bool {
    match std::env::var("VERILY_CATEGORY_IN_NAME") {
        Ok(value) => value == "1",
        Err(_) => {
            std::env::var_os("NEXTEST").is_some() || std::env::var_os("NEXTEST_RUN_ID").is_some()
        }
    }
}

fn list(selection: &Selection, options: &Options) {
    let qualified = names_carry_category();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for test in &selection.tests {
        let result = if qualified {
            writeln!(out, "{}: test", test.qualified_name())
        } else {
            writeln!(out, "{}: test", test.name)
        };
        if result.is_err() {
            return;
        }
    }
    if options.format != cli::Format::Terse {
        let _ = writeln!(out, "\n{} tests", selection.tests.len());
    }
}

fn run(selection: Selection, options: &Options, config: Config) -> i32 {
    panic::install_hook(options.nocapture);
    let threads = options
        .test_threads
        .or_else(|| std::env::var("RUST_TEST_THREADS").ok()?.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // One spare worker keeps timers firing while a test blocks a thread.
        .worker_threads(threads + 1)
        .enable_all()
        .build()
        .expect("the tokio runtime of the harness could not start");
    let mut reporter = report::for_options(options);
    let infrastructure = Arc::new(Infrastructure::new(config));
    let started = Instant::now();
    // Installed for the whole run, the end-of-run teardown included.
    let mut signals = {
        let _runtime = runtime.enter();
        Signals::install()
    };
    let records = runtime.block_on(async {
        tokio::select! {
            records = run_selection(&selection, options, threads, reporter.as_mut(), &infrastructure) => records,
            signal = signals.next() => {
                eprintln!("\n{}: stopping the run's infrastructure", signals::name(signal));
                tokio::select! {
                    () = infrastructure.shutdown() => {}
                    again = signals.next() => eprintln!(
                        "{} during teardown: exiting now (the next run removes what is left)",
                        signals::name(again)
                    ),
                    () = tokio::time::sleep(TEARDOWN_LIMIT) => eprintln!(
                        "warning: tearing down the run's infrastructure took over {} s; gave up (the next run removes leftovers)",
                        TEARDOWN_LIMIT.as_secs()
                    ),
                }
                let _ = std::io::stdout().flush();
                std::process::exit(128 + signal);
            }
        }
    });
    runtime.block_on(async {
        tokio::select! {
            finished = tokio::time::timeout(TEARDOWN_LIMIT, infrastructure.shutdown()) => {
                if finished.is_err() {
                    eprintln!(
                        "warning: tearing down the run's infrastructure took over {} s; gave up (the next run removes leftovers)",
                        TEARDOWN_LIMIT.as_secs()
                    );
                }
            }
            signal = signals.next() => {
                eprintln!(
                    "{} during teardown: exiting now (the next run removes what is left)",
                    signals::name(signal)
                );
                let _ = std::io::stdout().flush();
                std::process::exit(128 + signal);
            }
        }
    });
    let summary = report::Summary::new(records, selection.filtered_out, started.elapsed());
    reporter.finished(&summary);
    if let Some(path) = &options.junit
        && let Err(error) = report::junit::write(path, &summary)
    {
        eprintln!(
            "error: could not write the JUnit report to {}: {error}",
            path.display()
        );
        return 101;
    }
    // The runtime may hold threads of timed-out tests; do not wait for them.
    runtime.shutdown_background();
    if summary.failed() > 0 { 101 } else { 0 }
}

async fn run_selection(
    selection: &Selection,
    options: &Options,
    threads: usize,
    reporter: &mut dyn Reporter,
    infrastructure: &SharedInfrastructure,
) -> Vec<Record> {
    reporter.started(selection);
    let mut records = Vec::with_capacity(selection.tests.len());
    let semaphore = Arc::new(Semaphore::new(threads));
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let default_timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
    for &test in &selection.tests {
        if !Selection::runs(test, options.ignored) {
            records.push(Record {
                test,
                outcome: Outcome::Ignored,
                duration: Duration::ZERO,
            });
            reporter.test_finished(records.last().expect("just pushed"));
            continue;
        }
        let semaphore = Arc::clone(&semaphore);
        let sender = sender.clone();
        let infrastructure = Arc::clone(infrastructure);
        tokio::spawn(async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let _ = sender.send(Event::Started(test));
            let timeout = test.timeout.unwrap_or(default_timeout);
            let record = supervise(test, timeout, infrastructure).await;
            let _ = sender.send(Event::Finished(record));
        });
    }
    drop(sender);
    while let Some(event) = receiver.recv().await {
        match event {
            Event::Started(test) => reporter.test_started(test),
            Event::Finished(record) => {
                reporter.test_finished(&record);
                records.push(record);
            }
        }
    }
    records
}

enum Event {
    Started(&'static TestDescriptor),
    Finished(Record),
}

/// Runs one test in a task of its own and stops waiting at its timeout.
/// Afterwards it returns what the test borrowed (its database); a test
/// stopped at its timeout leaves that to the end of the run.
async fn supervise(
    test: &'static TestDescriptor,
    timeout: Duration,
    infrastructure: SharedInfrastructure,
) -> Record {
    let started = Instant::now();
    let mut task = tokio::spawn(async move {
        let mut context = TestContext::new(test, infrastructure);
        let mut result = panic::CatchPanic::new((test.run)(&mut context)).await;
        context.amend(&mut result);
        (context, result)
    });
    let (outcome, context) = match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok((context, Ok(())))) => (Outcome::Passed, Some(context)),
        Ok(Ok((context, Err(failure)))) if failure.skipped => {
            (Outcome::Skipped(failure.message), Some(context))
        }
        Ok(Ok((context, Err(failure)))) => (Outcome::Failed(failure), Some(context)),
        Ok(Err(join_error)) => (
            Outcome::Failed(Failure::new(format!("the test's task ended: {join_error}"))),
            None,
        ),
        Err(_elapsed) => {
            task.abort();
            (Outcome::TimedOut(timeout), None)
        }
    };
    let duration = started.elapsed();
    if let Some(context) = context {
        context.finish(outcome.is_failure()).await;
    }
    Record {
        test,
        outcome,
        duration,
    }
}
