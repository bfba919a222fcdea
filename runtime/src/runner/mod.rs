//! Runs the selected tests on a tokio runtime, in parallel up to
//! `--test-threads`, each under its timeout (retried on failure up to its
//! retries), and reports as they finish.

mod signals;

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, mpsc};

use crate::cli::{self, Options};
use crate::config::Config;
use crate::fixtures::TestContext;
use crate::infra::{Infrastructure, SharedInfrastructure};
use crate::load::LoadReport;
use crate::model::Failure;
use crate::panic::{self, Caught};
use crate::registry::{self, TestDescriptor};
use crate::report::{self, Outcome, Record, Reporter};
use crate::select::{self, Selection};
use signals::Signals;

/// Timeout of a test that sets none, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// When a test still running is reported slow, unless `--slow` says
/// otherwise (libtest warns after 60 s too).
pub const DEFAULT_SLOW: Duration = Duration::from_secs(60);

/// How long the end-of-run teardown may take before the harness exits
/// anyway.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(60);

/// The harness's `main`: parses `std::env::args`, runs, and exits with 0
/// (all passed) or 101 (a test failed, or a bad command line), as libtest.
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
    101
}

/// nextest sees names with their category in front (`[wiring] a::b`), so a
/// filter expression such as `test(/^\[wiring\]/)` selects a category.
fn names_carry_category() -> bool {
    match std::env::var("VERILY_CATEGORY_IN_NAME") {
        Ok(value) => value == "1",
        Err(_) => crate::config::under_nextest(),
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
        let count = selection.tests.len();
        let noun = if count == 1 { "test" } else { "tests" };
        let _ = writeln!(out, "\n{count} {noun}, 0 benchmarks");
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
    let mut logfile = match &options.logfile {
        Some(path) => match report::Logfile::create(path, options.report_time) {
            Ok(logfile) => Some(logfile),
            Err(error) => {
                eprintln!(
                    "error: could not create the --logfile {}: {error}",
                    path.display()
                );
                return 101;
            }
        },
        None => None,
    };
    let infrastructure = Arc::new(Infrastructure::new(config));
    let started = Instant::now();
    // Installed for the whole run, the end-of-run teardown included.
    let mut signals = {
        let _runtime = runtime.enter();
        Signals::install()
    };
    let records = runtime.block_on(async {
        tokio::select! {
            records = run_selection(&selection, options, threads, reporter.as_mut(), logfile.as_mut(), &infrastructure) => records,
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
    let mut summary = report::Summary::new(records, selection.filtered_out, started.elapsed());
    summary.not_run = selection
        .tests
        .iter()
        .filter(|test| Selection::runs(test, options.ignored))
        .count()
        .saturating_sub(summary.records.iter().filter(|r| r.tries > 0).count());
    reporter.finished(&summary);
    if let Some(count) = options.durations {
        report::durations(&summary, count, options.format);
    }
    // Under nextest, a process per test would race on the file; nextest
    // keeps its own record of what failed.
    if !crate::config::under_nextest() {
        let ran = summary
            .records
            .iter()
            .filter(|record| record.tries > 0)
            .map(|record| (record.test.name, record.outcome.is_failure()));
        if let Err(error) = select::record_failures(ran) {
            eprintln!("warning: could not record this run's failures for --last-failed: {error}");
        }
    }
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
    mut logfile: Option<&mut report::Logfile>,
    infrastructure: &SharedInfrastructure,
) -> Vec<Record> {
    reporter.started(selection);
    // --fail-fast: set by the first failure; tests not started by then never start.
    let stop = Arc::new(AtomicBool::new(false));
    let slow = options.slow.unwrap_or(DEFAULT_SLOW);
    let mut records = Vec::with_capacity(selection.tests.len());
    let semaphore = Arc::new(Semaphore::new(threads));
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let default_timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut to_run = Vec::with_capacity(selection.tests.len());
    for &test in &selection.tests {
        if Selection::runs(test, options.ignored) {
            to_run.push(test);
            continue;
        }
        records.push(Record {
            test,
            outcome: Outcome::Ignored,
            duration: Duration::ZERO,
            load: None,
            tries: 0,
            earlier: Vec::new(),
            started_at: SystemTime::now(),
        });
        let record = records.last().expect("just pushed");
        reporter.test_finished(record);
        if let Some(logfile) = logfile.as_deref_mut() {
            logfile.write(record);
        }
    }
    let plan = Plan {
        default_timeout,
        slow,
        retries: options.retries,
        fail_fast: options.fail_fast,
    };
    // Tests start in the selection's order (sorted, or shuffled): one task
    // takes the permits in turn and spawns each test as its permit comes.
    let infrastructure = Arc::clone(infrastructure);
    tokio::spawn(async move {
        for test in to_run {
            // A load test takes the machine: every permit, so nothing runs
            // beside it (the semaphore is fair: tests queued after it wait).
            let permits = if crate::load::takes_the_machine(test) {
                u32::try_from(threads).unwrap_or(u32::MAX)
            } else {
                1
            };
            let permit = Arc::clone(&semaphore)
                .acquire_many_owned(permits)
                .await
                .expect("the semaphore is never closed");
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let _ = sender.send(Event::Started(test));
            let (sender, stop, infrastructure) = (
                sender.clone(),
                Arc::clone(&stop),
                Arc::clone(&infrastructure),
            );
            tokio::spawn(async move {
                let _permit = permit;
                let record = plan.run(test, infrastructure, &sender).await;
                if plan.fail_fast && record.outcome.is_failure() {
                    stop.store(true, Ordering::SeqCst);
                }
                let _ = sender.send(Event::Finished(record));
            });
        }
    });
    while let Some(event) = receiver.recv().await {
        match event {
            Event::Started(test) => reporter.test_started(test),
            Event::Slow(test, running) => reporter.test_slow(test, running),
            Event::Finished(record) => {
                reporter.test_finished(&record);
                if let Some(logfile) = logfile.as_deref_mut() {
                    logfile.write(&record);
                }
                records.push(record);
            }
        }
    }
    records
}

/// How each test of a run is run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    default_timeout: Duration,
    slow: Duration,
    /// `--retries`, for tests that set none.
    retries: Option<u32>,
    fail_fast: bool,
}

impl Plan {
    /// Runs `test`, again after a failure while it has retries left.
    async fn run(
        self,
        test: &'static TestDescriptor,
        infrastructure: SharedInfrastructure,
        sender: &mpsc::UnboundedSender<Event>,
    ) -> Record {
        let tries = 1 + test.retries.or(self.retries).unwrap_or(0) as usize;
        let timeout = test.timeout.unwrap_or(self.default_timeout);
        let started_at = SystemTime::now();
        let mut earlier = Vec::new();
        let mut record = loop {
            let watch = watch_slow(test, self.slow, sender.clone());
            let record = supervise(test, timeout, Arc::clone(&infrastructure)).await;
            watch.abort();
            if !record.outcome.is_failure() || earlier.len() + 1 >= tries {
                break record;
            }
            earlier.push(record.outcome);
        };
        record.tries = u32::try_from(earlier.len() + 1).unwrap_or(u32::MAX);
        record.earlier = earlier;
        record.started_at = started_at;
        record
    }
}

enum Event {
    Started(&'static TestDescriptor),
    /// Still running after this long (`--slow`, and each multiple of it).
    Slow(&'static TestDescriptor, Duration),
    Finished(Record),
}

/// Reports `test` slow at each multiple of `slow` until aborted.
fn watch_slow(
    test: &'static TestDescriptor,
    slow: Duration,
    sender: mpsc::UnboundedSender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut running = Duration::ZERO;
        loop {
            tokio::time::sleep(slow).await;
            running += slow;
            if sender.send(Event::Slow(test, running)).is_err() {
                return;
            }
        }
    })
}

/// Runs one test in a task of its own and stops waiting at its timeout.
/// Afterwards it returns what the test borrowed (its database); a test
/// stopped at its timeout leaves that to the end of the run.
async fn supervise(
    test: &'static TestDescriptor,
    timeout: Duration,
    infrastructure: SharedInfrastructure,
) -> Record {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut task = tokio::spawn(async move {
        let mut context = TestContext::new(test.name, test.category, infrastructure);
        let result = match panic::CatchPanic::new((test.run)(&mut context)).await {
            Ok(verdict) => Ok(verdict),
            Err(Caught::Panicked(failure)) => Ok(Err(failure)),
            Err(skipped) => Err(skipped),
        };
        // Fixtures may judge the body's verdict (an app that logged an error).
        let result = result.map(|mut verdict| {
            context.amend(&mut verdict);
            verdict
        });
        (context, result)
    });
    let (outcome, context) = match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok((context, Ok(Ok(()))))) => (Outcome::Passed, Some(context)),
        Ok(Ok((context, Ok(Err(failure)) | Err(Caught::Panicked(failure))))) => {
            (Outcome::Failed(failure), Some(context))
        }
        Ok(Ok((context, Err(Caught::Skipped(reason))))) => {
            (Outcome::Skipped(reason), Some(context))
        }
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
    let mut load = None;
    if let Some(context) = context {
        load = context.held::<LoadReport>().map(Box::new);
        context.finish(outcome.is_failure()).await;
    }
    Record {
        test,
        outcome,
        duration,
        load,
        tries: 1,
        earlier: Vec::new(),
        started_at,
    }
}
