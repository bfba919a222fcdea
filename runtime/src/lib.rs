//! Runtime of verily: the registry that generated tests submit to, the
//! harness CLI, the runner, fixtures and reports.
//!
//! Without the `harness` feature this crate is only `category`,
//! `duration`, `similar` and `size`, with no dependencies: what the macros check at compile time.

#![warn(missing_docs)]

// The harness runs servers as child processes tied to the run with Unix
// signals, process groups and Unix sockets: it is Unix-only (tested on Linux).
#[cfg(all(feature = "harness", not(unix)))]
compile_error!(
    "verily's `testing` feature (verily-runtime's `harness`) runs on Unix only (Linux; macOS untested): \
     run the tests on Linux, in WSL2 or in a Linux container. The attributes and the `Wire` trait, \
     without `testing`, build on every target."
);

// The layers, bottom to top: a module imports only from its own layer's
// foundations and the layers below it (ARCHITECTURE.md; checked by
// tests/harness/layers.rs).
//
// 0. foundations: category, duration, similar, size, hash, env, errors, model, panic, config
// 1. infra: servers and what the run makes on them
// 2. fixtures (what a test takes as parameters), checks (what generated tests verify)
// 3. registry: the descriptors generated tests submit
// 4. cli, 5. select, 6. report, 7. runner

#[doc(hidden)]
pub mod category;
#[doc(hidden)]
pub mod duration;
#[doc(hidden)]
pub mod similar;
#[doc(hidden)]
pub mod size;

#[cfg(feature = "harness")]
pub(crate) mod app;
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod checks;
#[cfg(feature = "harness")]
pub(crate) mod cli;
#[cfg(feature = "harness")]
pub(crate) mod config;
#[cfg(feature = "harness")]
pub(crate) mod env;
#[cfg(feature = "harness")]
pub(crate) mod errors;
#[cfg(feature = "harness")]
pub(crate) mod eventually;
#[cfg(feature = "harness")]
pub(crate) mod fixtures;
#[cfg(feature = "harness")]
pub(crate) mod hash;
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod infra;
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod load;
#[cfg(feature = "harness")]
pub(crate) mod model;
#[cfg(feature = "harness")]
pub(crate) mod panic;
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod registry;
#[cfg(feature = "harness")]
pub(crate) mod report;
#[cfg(feature = "harness")]
pub(crate) mod runner;
#[cfg(feature = "harness")]
pub(crate) mod select;

#[cfg(feature = "harness")]
pub use app::{App, AppConfig, AppError, HttpError, Ready, Response};
#[cfg(feature = "harness")]
pub use config::Config;
#[cfg(feature = "harness")]
pub use eventually::{NeverHeld, eventually};
#[cfg(feature = "harness")]
pub use fixtures::{Db, Fixture, FixtureError, TestContext};
#[cfg(feature = "redis")]
pub use fixtures::{Redis, RedisServer};
#[cfg(feature = "harness")]
pub use infra::postgres::test_server::PgServer;
#[cfg(feature = "harness")]
pub use infra::proxy::{ProxyTarget, TcpProxy, Upstream};
#[cfg(feature = "harness")]
pub use infra::{InfraError, Service};
#[cfg(feature = "harness")]
pub use model::{Failure, TestResult};
#[cfg(feature = "harness")]
pub use panic::skip;
#[cfg(feature = "harness")]
pub use runner::{main, main_with};

/// Not public API. Used by generated code and the facade.
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod __private {
    pub use crate::category::category_of;
    pub use crate::checks::enums::DeclaredEnum;
    pub use crate::checks::{enums, persist};
    #[cfg(feature = "linkme")]
    pub use crate::infra::hosted::HOSTED;
    pub use crate::infra::hosted::HostedService;
    pub use crate::load;
    pub use crate::model::TestFuture;
    #[cfg(feature = "linkme")]
    pub use crate::registry::TESTS;
    pub use crate::registry::TestDescriptor;
    pub use inventory;
    #[cfg(feature = "linkme")]
    pub use linkme;
    pub use sqlx;
}
