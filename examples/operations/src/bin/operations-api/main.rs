//! The operations HTTP API: `POST /operations` starts a (simulated)
//! training job, `GET /operations/{id}` reports it, `DELETE` cancels it,
//! `GET /health`. The orphan detector runs in the background; SIGTERM
//! saves a checkpoint for each running job before the process exits.
//!
//! Environment: `DATABASE_URL`, `PORT` (default 8080), the settings of
//! `operations::Settings`, `OPERATIONS_STEP_MS` (one training step, default
//! 50) and `OPERATIONS_SWEEP_MS` (between orphan sweeps, default 500).

mod log;
mod routes;
mod training;

use std::sync::Arc;
use std::time::Duration;

use operations::{OperationsService, OrphanDetector, Settings};

#[tokio::main]
async fn main() {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            log::error(format!("configuration: {error}"));
            std::process::exit(2);
        }
    };
    let port: u16 = match number("PORT", 8080) {
        Ok(port) => port,
        Err(error) => {
            log::error(error);
            std::process::exit(2);
        }
    };
    let (step, sweep) = match (
        number("OPERATIONS_STEP_MS", 50),
        number("OPERATIONS_SWEEP_MS", 500),
    ) {
        (Ok(step), Ok(sweep)) => (Duration::from_millis(step), Duration::from_millis(sweep)),
        (Err(error), _) | (_, Err(error)) => {
            log::error(error);
            std::process::exit(2);
        }
    };
    let service = match OperationsService::connect(&settings).await {
        Ok(service) => Arc::new(service),
        Err(error) => {
            log::error(format!("cannot start: {error}"));
            std::process::exit(1);
        }
    };
    // Connects on first use: the service's pool already proved the
    // database reachable, and a second handshake would delay readiness.
    let pool = match settings.lazy_pool() {
        Ok(pool) => pool,
        Err(error) => {
            log::error(format!("cannot start: {error}"));
            std::process::exit(1);
        }
    };
    let detector = Arc::new(OrphanDetector::new(
        Some(Arc::clone(&service)),
        settings.orphan_timeout,
    ));
    if cfg!(feature = "bug-detector-not-started") {
        // The incident: the detector is built (and says so), but its task
        // is never spawned.
        let _ = &detector;
    } else {
        tokio::spawn(sweep_forever(detector, sweep));
    }
    log::info("orphan detector started");

    let jobs = training::Jobs::new(Arc::clone(&service), pool, step);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            log::error(format!("cannot listen on 127.0.0.1:{port}: {error}"));
            std::process::exit(1);
        }
    };
    log::info(format!("listening on http://127.0.0.1:{port}"));
    let shutdown_jobs = jobs.clone();
    let served = axum::serve(listener, routes::router(jobs))
        .with_graceful_shutdown(async move {
            terminated().await;
            log::info("SIGTERM: shutting down");
            if cfg!(feature = "bug-sigterm-no-checkpoint") {
                // The incident: the handler exits without saving the
                // running jobs' state.
                return;
            }
            let saved = shutdown_jobs.checkpoint_all().await;
            log::info(format!(
                "shutdown: saved a checkpoint for {saved} running operation(s)"
            ));
        })
        .await;
    if let Err(error) = served {
        log::error(format!("server: {error}"));
        std::process::exit(1);
    }
}

/// Sweeps for orphans now and then every `interval`.
async fn sweep_forever(detector: Arc<OrphanDetector>, interval: Duration) {
    loop {
        match detector.sweep().await {
            Ok(0) => {}
            Ok(count) => log::info(format!(
                "orphan detector: marked {count} operation(s) failed"
            )),
            Err(error) => log::warn(format!("orphan detector: sweep failed: {error}")),
        }
        tokio::time::sleep(interval).await;
    }
}

/// SIGTERM (or Ctrl-C, when run by hand).
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A whole number from the environment, or `default`.
fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(raw) => raw
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not `{raw}`")),
        Err(_) => Ok(default),
    }
}
