//! Runs the selected tests on a tokio runtime, in parallel up to
//! `--test-threads`, each under its timeout (retried on failure up to its
//! retries), and reports as they finish.

mod signals;

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{RwLock, mpsc};

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

/// How long after its timeout a test whose thread is blocked (its own
/// timer cannot fire) is reported timed out anyway.
const BLOCKED_GRACE: Duration = Duration::from_millis(500);

/// The harness's `main`: parses `std::env::args`, runs, and exits with 0
/// (all passed) or 101 (a test failed, or a bad command line), as libtest.
pub fn main() -> ! {
    main_with(Config::default())
}

/// [`main`] with a configuration (migrations, Docker image).
pub fn main_with(config: Config) -> ! {
    // Re-executed to keep a cluster shared by a nextest run's processes?
    crate::infra::postgres::shared::keep_if_keeper();
    crate::infra::hosted::keep_if_keeper(&config);
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
    // A variable set to a value it does not take: say so rather than
    // run with a setting the user did not ask for.
    if let Some(problem) = crate::env::env().problems.first() {
        return usage_error(&format!("{problem}; fix it or unset it"));
    }
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
    let env = crate::env::env();
    env.category_in_name.unwrap_or(env.under_nextest)
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
        .or(crate::env::env().test_threads)
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
    // Made on the run's runtime, which its services use for the whole run.
    let infrastructure = {
        let _runtime = runtime.enter();
        Arc::new(Infrastructure::new(config))
    };
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
    if !crate::env::env().under_nextest {
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
    let slow = options.slow.unwrap_or(DEFAULT_SLOW);
    let mut records = Vec::with_capacity(selection.tests.len());
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
            services: Vec::new(),
            timeout_note: None,
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
    };
    let options_fail_fast = options.fail_fast;
    // `threads` workers take the tests in the selection's order (sorted, or
    // shuffled) from one queue. A load test takes the machine: it waits for
    // the tests running beside it, and the tests after it wait for it (the
    // lock is fair).
    let queue = Arc::new(Mutex::new(to_run.into_iter()));
    let machine = Arc::new(RwLock::new(()));
    // --fail-fast: set by the first failure; no test starts after it.
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..threads {
        let (queue, machine, stop) = (Arc::clone(&queue), Arc::clone(&machine), Arc::clone(&stop));
        let (sender, infrastructure) = (sender.clone(), Arc::clone(infrastructure));
        tokio::spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .next();
                let Some(test) = next else { return };
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let (_shared, _alone);
                if crate::load::takes_the_machine(test) {
                    _alone = machine.write().await;
                } else {
                    _shared = machine.read().await;
                }
                let _ = sender.send(Event::Started(test));
                let record = plan.run(test, Arc::clone(&infrastructure), &sender).await;
                if options_fail_fast && record.outcome.is_failure() {
                    stop.store(true, Ordering::SeqCst);
                }
                let _ = sender.send(Event::Finished(record));
            }
        });
    }
    drop(sender);
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
            let record = supervise(
                test,
                timeout,
                self.slow,
                Arc::clone(&infrastructure),
                sender,
            )
            .await;
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

/// Runs one test, says when it has run past `slow` (and each multiple),
/// and stops waiting at its timeout. Afterwards it returns what the test
/// borrowed (its database); a test stopped at its timeout leaves that to
/// the end of the run.
///
/// A test with an async body or fixtures runs on a tokio runtime of its
/// own, as under `#[tokio::test]`: the tasks it spawns end with it, before
/// what it borrowed is given back, so a server it left running cannot hold
/// its database's connections. The runtime is current-thread, on a thread
/// of the run's blocking pool (a load test's is multi-threaded, for its
/// concurrent callers); services start and lend on the run's runtime
/// (`Infrastructure::on_run_runtime`), which outlives every test. A sync
/// test that takes no fixture holds nothing and runs in a task of the run's
/// runtime, as cheaply as libtest runs a `#[test]`.
async fn supervise(
    test: &'static TestDescriptor,
    timeout: Duration,
    slow: Duration,
    infrastructure: SharedInfrastructure,
    sender: &mpsc::UnboundedSender<Event>,
) -> Record {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let used = crate::fixtures::Used::default();
    let using = Arc::clone(&used);
    let mut timeout_note = None;
    let (outcome, duration, load) = if test.own_runtime {
        let run_runtime = tokio::runtime::Handle::current();
        let mut thread = tokio::task::spawn_blocking(move || {
            on_its_own_runtime(test, timeout, started, infrastructure, using, &run_runtime)
        });
        // A test stuck in blocking code never lets its runtime's timer
        // fire: stop waiting for it a little later, and leave its thread.
        let deadline = started + timeout + BLOCKED_GRACE;
        match wait(test, &mut thread, started, deadline, slow, sender).await {
            Some(Ok((outcome, duration, load, note))) => {
                timeout_note = note;
                (outcome, duration, load)
            }
            Some(Err(join_error)) => (
                Outcome::Failed(Failure::new(format!(
                    "the test's thread ended: {join_error}"
                ))),
                started.elapsed(),
                None,
            ),
            None => (Outcome::TimedOut(timeout), started.elapsed(), None),
        }
    } else {
        let mut task = tokio::spawn(async move {
            let mut context = TestContext::new(test.name, test.category, infrastructure, using);
            run_body(test, &mut context).await
        });
        let outcome = match wait(test, &mut task, started, started + timeout, slow, sender).await {
            Some(Ok(ran)) => outcome_of(ran),
            Some(Err(join_error)) => {
                Outcome::Failed(Failure::new(format!("the test's task ended: {join_error}")))
            }
            None => {
                task.abort();
                Outcome::TimedOut(timeout)
            }
        };
        (outcome, started.elapsed(), None)
    };
    let services = used.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Record {
        test,
        outcome,
        duration,
        load,
        tries: 1,
        earlier: Vec::new(),
        started_at,
        services,
        timeout_note,
    }
}

/// Waits for `running` until `deadline` (`None` past it), reporting the
/// test slow at each multiple of `slow`. One timer at a time, no task of
/// its own: trivial tests stay cheap.
async fn wait<F: std::future::Future + Unpin>(
    test: &'static TestDescriptor,
    running: &mut F,
    started: Instant,
    deadline: Instant,
    slow: Duration,
    sender: &mpsc::UnboundedSender<Event>,
) -> Option<F::Output> {
    let mut slow_at = started + slow;
    loop {
        let wake = slow_at.min(deadline);
        match tokio::time::timeout_at(wake.into(), &mut *running).await {
            Ok(ended) => return Some(ended),
            Err(_) if wake >= deadline => return None,
            Err(_) => {
                let _ = sender.send(Event::Slow(test, slow_at - started));
                slow_at += slow;
            }
        }
    }
}

/// The test on a runtime of its own, on this (blocking-pool) thread: its
/// outcome, how long it ran, a load test's report, and what its fixtures
/// add to a timeout (an app's last lines).
fn on_its_own_runtime(
    test: &'static TestDescriptor,
    timeout: Duration,
    started: Instant,
    infrastructure: SharedInfrastructure,
    used: crate::fixtures::Used,
    run_runtime: &tokio::runtime::Handle,
) -> (Outcome, Duration, Option<Box<LoadReport>>, Option<String>) {
    let runtime = match test_runtime(test) {
        Ok(runtime) => runtime,
        Err(error) => {
            let failure = Failure::new(format!("no runtime for the test: {error}"));
            return (Outcome::Failed(failure), started.elapsed(), None, None);
        }
    };
    let mut context = TestContext::new(test.name, test.category, infrastructure, used);
    let ran = runtime
        .block_on(async { tokio::time::timeout(timeout, run_body(test, &mut context)).await });
    let duration = started.elapsed();
    if ran.is_err() {
        // Stopped at its timeout: its fixtures may still say why (an app's
        // last lines); what it borrowed stays for the end of the run.
        let mut verdict: crate::model::TestResult = Err(Failure::new(String::new()));
        context.amend(&mut verdict);
        give_back_runtime(test, runtime);
        let note = verdict
            .err()
            .map(|failure| failure.message.trim().to_owned())
            .filter(|note| !note.is_empty());
        return (Outcome::TimedOut(timeout), duration, None, note);
    }
    // The test's own tasks end here, with its runtime; a runtime the test
    // left no task on serves the thread's next test.
    give_back_runtime(test, runtime);
    let outcome = match ran {
        Ok(ran) => outcome_of(ran),
        Err(_elapsed) => Outcome::TimedOut(timeout),
    };
    let load = context.held::<LoadReport>().map(Box::new);
    if context.has_anything_to_give_back() {
        run_runtime.block_on(context.finish(outcome.is_failure()));
    }
    (outcome, duration, load, None)
}

/// The test's body with its panics caught, then its fixtures' judgement
/// of the verdict (an app that logged an error); `Err` when it skipped.
async fn run_body(
    test: &'static TestDescriptor,
    context: &mut TestContext,
) -> Result<crate::model::TestResult, Caught> {
    let result = match panic::CatchPanic::new((test.run)(context)).await {
        Ok(verdict) => Ok(verdict),
        Err(Caught::Panicked(failure)) => Ok(Err(failure)),
        Err(skipped) => Err(skipped),
    };
    result.map(|mut verdict| {
        context.amend(&mut verdict);
        verdict
    })
}

/// What a body that ran (or skipped itself) comes to.
fn outcome_of(ran: Result<crate::model::TestResult, Caught>) -> Outcome {
    match ran {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(failure)) | Err(Caught::Panicked(failure)) => Outcome::Failed(failure),
        Err(Caught::Skipped(reason)) => Outcome::Skipped(reason),
    }
}

thread_local! {
    /// A current-thread runtime the thread's last test left no task on.
    static IDLE_RUNTIME: std::cell::RefCell<Option<tokio::runtime::Runtime>> =
        const { std::cell::RefCell::new(None) };
}

/// A test's own runtime: current-thread, as `#[tokio::test]`'s default; a
/// load test's is multi-threaded, for its concurrent callers.
fn test_runtime(test: &TestDescriptor) -> std::io::Result<tokio::runtime::Runtime> {
    if test.category == "load" {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build();
    }
    if let Some(runtime) = IDLE_RUNTIME.with(|idle| idle.borrow_mut().take()) {
        return Ok(runtime);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Ends the test's tasks by dropping its runtime, unless it has none left:
/// then nothing of the test is on it, and it is kept for the thread's next
/// test (building one costs more than most tests).
fn give_back_runtime(test: &TestDescriptor, runtime: tokio::runtime::Runtime) {
    let reusable = test.category != "load" && runtime.metrics().num_alive_tasks() == 0;
    if reusable {
        IDLE_RUNTIME.with(|idle| *idle.borrow_mut() = Some(runtime));
    } else {
        runtime.shutdown_background();
    }
}
