//! Runtime of groundtruth: the registry that generated tests submit to, the
//! harness CLI, the runner, fixtures and reports.
//!
//! Without the `harness` feature this crate is only [`category`],
//! [`duration`] and [`similar`], with no dependencies: what the macros check at compile time.

pub mod category;
pub mod duration;
pub mod similar;

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
pub use config::Config;
#[cfg(feature = "harness")]
pub use db::Db;
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
