//! Turning a test's panic into a failure with its message and location.
//!
//! A hook records the message and location on the panicking thread; the
//! test's future is polled inside `catch_unwind` on that same thread, so the
//! record is read back right where the unwind stops.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::pin::Pin;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use crate::model::Failure;

thread_local! {
    static INSIDE_TEST: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

static PRINT_PANICS: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the hook once per process. With `print` (`--nocapture`), test
/// panics are also printed as they happen, as libtest does.
pub(crate) fn install_hook(print: bool) {
    PRINT_PANICS.store(print, Ordering::Relaxed);
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if info.payload().is::<SkipSignal>() {
                return;
            }
            if INSIDE_TEST.with(Cell::get) {
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(failure_from_hook(info)));
                if !PRINT_PANICS.load(Ordering::Relaxed) {
                    return;
                }
            }
            default(info);
        }));
    });
}

fn failure_from_hook(info: &PanicHookInfo<'_>) -> Failure {
    let message = payload_message(info.payload());
    let failure = Failure::new(format!("panicked: {message}"));
    match info.location() {
        Some(location) => failure.at(format!(
            "{}:{}:{}",
            location.file(),
            location.line(),
            location.column()
        )),
        None => failure,
    }
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// The payload of [`skip`]: unwinds out of the test like a panic, but is
/// reported as a skip, not a failure.
struct SkipSignal(String);

/// Stops the running test and reports it skipped, with `reason`: for a test
/// whose infrastructure this machine does not have (no Docker engine, say).
pub fn skip(reason: impl Into<String>) -> ! {
    panic::resume_unwind(Box::new(SkipSignal(reason.into())))
}

/// How test code stopped early: a panic (a failure), or [`skip`] (not one).
#[derive(Debug)]
pub(crate) enum Caught {
    Panicked(Failure),
    Skipped(String),
}

/// Runs `f` as test code: a panic becomes `Err(Caught)`.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    let was_inside = INSIDE_TEST.with(|inside| inside.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    INSIDE_TEST.with(|inside| inside.set(was_inside));
    result.map_err(|payload| {
        if let Some(SkipSignal(reason)) = payload.downcast_ref::<SkipSignal>() {
            return Caught::Skipped(reason.clone());
        }
        Caught::Panicked(
            LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| {
                    Failure::new(format!("panicked: {}", payload_message(&*payload)))
                }),
        )
    })
}

/// A future that catches a panic (or a skip) while polling the inner future.
pub(crate) struct CatchPanic<F> {
    inner: Pin<Box<F>>,
}

impl<F> CatchPanic<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Caught>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch(|| inner.poll(cx)) {
            Ok(poll) => poll.map(Ok),
            Err(caught) => Poll::Ready(Err(caught)),
        }
    }
}
