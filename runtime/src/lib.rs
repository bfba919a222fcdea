//! Runtime of verily: the registry that generated tests submit to, the
//! harness CLI, the runner, fixtures and reports.
//!
//! Without the `harness` feature this crate is only [`category`],
//! [`duration`] and [`similar`], with no dependencies: what the macros check at compile time.

// The harness runs servers as child processes tied to the run with Unix
// signals, process groups and Unix sockets: it is Unix-only (tested on Linux).
#[cfg(all(feature = "harness", not(unix)))]
compile_error!(
    "verily's `testing` feature (verily-runtime's `harness`) runs on Unix only (Linux; macOS untested): \
     run the tests on Linux, in WSL2 or in a Linux container. The attributes and the `Wire` trait, \
     without `testing`, build on every target."
);

pub mod category;

pub use category::category_of;
pub mod duration;
pub mod similar;

#[cfg(feature = "harness")]
pub mod app;
#[cfg(feature = "harness")]
pub mod cli;
#[cfg(feature = "harness")]
pub mod config;
#[cfg(feature = "harness")]
pub mod db;
#[cfg(feature = "harness")]
pub mod enums;
#[cfg(feature = "harness")]
pub mod errors;
#[cfg(feature = "harness")]
pub mod eventually;
#[cfg(feature = "harness")]
pub mod fixture;
#[cfg(feature = "harness")]
pub mod infra;
#[cfg(feature = "harness")]
pub mod persist;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "harness")]
pub mod registry;
#[cfg(feature = "harness")]
pub mod report;
#[cfg(feature = "harness")]
pub mod runner;

#[cfg(feature = "redis")]
pub use crate::redis::{Redis, RedisServer};
#[cfg(feature = "harness")]
pub use app::{App, AppConfig, AppError, HttpError, Ready, Response};
#[cfg(feature = "harness")]
pub use config::Config;
#[cfg(feature = "harness")]
pub use db::Db;
#[cfg(feature = "harness")]
pub use eventually::{NeverHeld, eventually};
#[cfg(feature = "harness")]
pub use fixture::{Fixture, FixtureError, TestContext};
#[cfg(feature = "harness")]
pub use infra::InfraError;
#[cfg(feature = "harness")]
pub use infra::postgres::exclusive::PgServer;
#[cfg(feature = "harness")]
pub use infra::proxy::{ProxyTarget, TcpProxy, Upstream};
#[cfg(feature = "harness")]
pub use registry::{Needs, TestDescriptor};
#[cfg(feature = "harness")]
pub use runner::{Failure, TestResult, main, main_with, skip};

#[cfg(feature = "harness")]
#[doc(hidden)]
pub use inventory;
#[cfg(feature = "linkme")]
#[doc(hidden)]
pub use linkme;
#[cfg(feature = "harness")]
#[doc(hidden)]
pub use sqlx;
