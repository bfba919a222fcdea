//! The workers: `concurrency` tasks on the harness's runtime, each taking
//! the next iteration until the count (or the deadline) is reached, timing
//! each one and catching its panic, so one failed iteration never stops the
//! run.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Instant;

use super::stats::Tally;
use crate::model::{Failure, TestResult};
use crate::panic::{self, Caught};

/// How long one phase runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    /// This many iterations in all, shared by the workers.
    Iterations(u64),
    /// Until this instant; iterations in flight then finish.
    Deadline(Instant),
}

/// Runs one phase and merges what the workers saw. `measure` keeps the
/// latencies (the warm-up's are dropped).
pub(crate) async fn phase<F, Fut>(
    iteration: &Arc<F>,
    concurrency: usize,
    until: Until,
    measure: bool,
) -> Tally
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TestResult> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let expected = match until {
        Until::Iterations(total) => (total as usize).div_ceil(concurrency.max(1)),
        Until::Deadline(_) => 1024,
    };
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let iteration = Arc::clone(iteration);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                if measure {
                    tally.latencies.reserve(expected);
                }
                loop {
                    let more = match until {
                        Until::Iterations(total) => next.fetch_add(1, Ordering::Relaxed) < total,
                        Until::Deadline(deadline) => Instant::now() < deadline,
                    };
                    if !more {
                        break;
                    }
                    let started = Instant::now();
                    let result = caught(iteration()).await;
                    if measure {
                        tally
                            .latencies
                            .push(started.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
                    }
                    tally.runs += 1;
                    if let Err(failure) = result {
                        *tally.errors.entry(describe(failure)).or_default() += 1;
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(tally) => total.merge(tally),
            // Panics are caught per iteration; a worker that ends otherwise
            // (the runtime shutting down) is counted, not hidden.
            Err(error) => {
                *total
                    .errors
                    .entry(format!("a load worker ended: {error}"))
                    .or_default() += 1
            }
        }
    }
    total
}

/// Polls `future` as test code: a panic becomes `Err(Failure)` and the
/// worker goes on with the next iteration.
pub(crate) async fn caught<Fut>(future: Fut) -> TestResult
where
    Fut: Future<Output = TestResult>,
{
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match panic::catch(|| future.as_mut().poll(cx)) {
        Ok(poll) => poll,
        Err(Caught::Panicked(failure)) => Poll::Ready(Err(failure)),
        // skip() stops a test, not one of its iterations: count it as an error.
        Err(Caught::Skipped(reason)) => Poll::Ready(Err(Failure::new(format!(
            "skip() inside a load iteration: {reason}"
        )))),
    })
    .await
}

/// The message errors are counted by: a panic's carries its location.
fn describe(failure: Failure) -> String {
    match failure.location {
        Some(location) => format!("{} (at {location})", failure.message),
        None => failure.message,
    }
}
