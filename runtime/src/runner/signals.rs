//! The signals that end a run early: Ctrl-C (SIGINT), and SIGTERM and
//! SIGHUP, which CI systems send on a timeout or a cancel. Each runs the
//! same teardown; the harness then exits with 128 + the signal's number.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The three handlers, installed for the whole run: a second signal
/// during teardown is seen too (and cuts the teardown short).
pub(crate) struct Signals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hangup: Option<Signal>,
}

impl Signals {
    /// Installs the handlers; inside the runtime.
    pub(crate) fn install() -> Self {
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// The number of the next signal received.
    pub(crate) async fn next(&mut self) -> i32 {
        tokio::select! {
            Some(()) = received(&mut self.interrupt) => libc::SIGINT,
            Some(()) = received(&mut self.terminate) => libc::SIGTERM,
            Some(()) = received(&mut self.hangup) => libc::SIGHUP,
            else => std::future::pending().await,
        }
    }
}

async fn received(handler: &mut Option<Signal>) -> Option<()> {
    match handler {
        Some(handler) => handler.recv().await,
        None => std::future::pending().await,
    }
}

/// `interrupted (SIGINT)`, for the line on stderr.
pub(crate) fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "interrupted (SIGINT)",
        libc::SIGTERM => "terminated (SIGTERM)",
        libc::SIGHUP => "hung up (SIGHUP)",
        _ => "signalled",
    }
}
