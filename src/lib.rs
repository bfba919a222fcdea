//! verily: tests that prove a Rust service is wired, persists and stays
//! consistent, against real infrastructure.
//!
//! ```ignore
//! #[verily::wired(repository, metrics)]
//! pub fn get_operations_service() -> OperationsService { ... }
//! ```
//!
//! The attributes generate tests at compile time; `verily::main!` in a
//! `harness = false` test target discovers, categorizes and runs them.
//!
//! Add verily twice: as a dependency (the attributes, the [`Wire`]
//! trait) and as a dev-dependency with the `testing` feature, which emits the
//! generated tests. A plain `cargo build` then contains none of them.
//!
//! ```toml
//! [dependencies]
//! verily = "0.1"
//! [dev-dependencies]
//! verily = { version = "0.1", features = ["testing"] }
//! ```

#![warn(missing_docs)]

pub use verily_macros::{enum_complete, fixture, load, persists, service, test, wired};
mod wire;

pub use wire::{Unwired, Wire};

#[cfg(feature = "testing")]
pub use verily_runtime::{
    App, AppConfig, AppError, Config, Db, Failure, Fixture, FixtureError, HttpError, InfraError,
    NeverHeld, PgServer, ProxyTarget, Ready, Response, Service, TcpProxy, TestContext, TestResult,
    Upstream, eventually, skip,
};

/// Redis fixtures (feature `redis`): the test's own database on the run's
/// server, and a server of the test's own with outage controls.
#[cfg(all(feature = "testing", feature = "redis"))]
pub use verily_runtime::{Redis, RedisServer};

/// PostgreSQL: the test's own database on the run's server ([`Db`], also
/// `sqlx::PgPool` and `sqlx::PgConnection` as parameters) and a server of
/// the test's own that it may break ([`PgServer`]).
///
/// [`Db`]: postgres::Db
/// [`PgServer`]: postgres::PgServer
#[cfg(feature = "testing")]
pub mod postgres {
    pub use verily_runtime::{Db, PgServer};
}

/// Redis (feature `redis`): the test's own logical database on the run's
/// server ([`Redis`], also redis's `MultiplexedConnection` and
/// `ConnectionManager` as parameters) and a server of the test's own that it
/// may break ([`RedisServer`]).
///
/// [`Redis`]: redis::Redis
/// [`RedisServer`]: redis::RedisServer
#[cfg(all(feature = "testing", feature = "redis"))]
pub mod redis {
    pub use verily_runtime::{Redis, RedisServer};
}

/// The entry point of a harness binary (`tests/harness.rs` with
/// `harness = false`), naming the crates whose tests it runs.
///
/// ```ignore
/// verily::main!(my_service, my_other_crate);
/// ```
///
/// Each named crate is linked in; without the name the linker drops a
/// crate's registrations and its tests silently vanish.
///
/// Migrations default to `migrations/` next to the harness crate's
/// Cargo.toml; configure them (or the Docker image) after a `;`:
///
/// ```ignore
/// verily::main!(my_service; config = verily::Config::new().migrations_dir("db/migrations"));
/// ```
#[macro_export]
macro_rules! main {
    ($($krate:ident),* $(,)?) => {
        $crate::main!($($krate),* ; config = $crate::Config::new());
    };
    ($($krate:ident),* ; config = $config:expr $(,)?) => {
        $(
            #[allow(unused_imports)]
            use $krate as _;
        )*

        // With libtest's harness (`rustc --test`) this target's main would
        // never run and libtest would report 0 tests. `#[test]` items exist
        // only in that mode, so this constant stops exactly that build.
        #[test]
        fn verily_main_needs_harness_false() {
            const _: () = ::core::panic!(::core::concat!(
                "verily::main! replaces libtest's harness, so this test target needs `harness = false`: in Cargo.toml add\n\n[[test]]\nname = \"",
                ::core::env!("CARGO_CRATE_NAME"),
                "\"\nharness = false\n\n(without it, libtest runs instead and reports 0 tests)"
            ));
        }

        fn main() {
            $crate::__private::harness_main(
                ($config)
                    .manifest_dir(::core::env!("CARGO_MANIFEST_DIR"))
                    .package(::core::env!("CARGO_PKG_NAME")),
            )
        }
    };
}

/// Not public API. Used by generated code.
#[doc(hidden)]
pub mod __private {
    pub use crate::wire::{
        DeclaredWiring, NestedDeref, NestedDerefTwice, NestedDirect, NestedNone, Probe,
        WiringReport,
    };

    #[cfg(feature = "testing")]
    pub use verily_runtime::__private::{
        DeclaredEnum, TestDescriptor, TestFuture, category_of, enums, inventory, load, persist,
    };
    #[cfg(feature = "testing")]
    pub use verily_runtime::{Db, Failure, Fixture, TestContext, TestResult};

    #[cfg(feature = "testing")]
    pub use verily_runtime::__private::HostedService;
    #[cfg(feature = "linkme")]
    pub use verily_runtime::__private::{HOSTED, TESTS, linkme};

    #[cfg(feature = "testing")]
    pub use verily_runtime::main_with as harness_main;

    #[cfg(feature = "testing")]
    pub use std::time::Duration;

    /// Emits generated tests only when the `testing` feature is on.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __verily_emit {
        ($($tokens:tt)*) => { $($tokens)* };
    }

    /// Emits generated tests only when the `testing` feature is on.
    #[cfg(not(feature = "testing"))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __verily_emit {
        ($($tokens:tt)*) => {};
    }

    /// Submits a `TestDescriptor` to the registry backend in use.
    #[cfg(all(feature = "testing", not(feature = "linkme")))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __verily_register {
        ($descriptor:expr) => {
            $crate::__private::inventory::submit! { $descriptor }
        };
    }

    /// Submits a `TestDescriptor` to the registry backend in use.
    #[cfg(feature = "linkme")]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __verily_register {
        ($descriptor:expr) => {
            #[$crate::__private::linkme::distributed_slice($crate::__private::TESTS)]
            #[linkme(crate = $crate::__private::linkme)]
            static __VERILY_TEST: $crate::__private::TestDescriptor = $descriptor;
        };
    }

    /// Submits a `HostedService` to the registry backend in use.
    #[cfg(all(feature = "testing", not(feature = "linkme")))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __verily_register_service {
        ($service:expr) => {
            $crate::__private::inventory::submit! { $service }
        };
    }

    /// Submits a `HostedService` to the registry backend in use.
    #[cfg(feature = "linkme")]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __verily_register_service {
        ($service:expr) => {
            #[$crate::__private::linkme::distributed_slice($crate::__private::HOSTED)]
            #[linkme(crate = $crate::__private::linkme)]
            static __VERILY_SERVICE: $crate::__private::HostedService = $service;
        };
    }

    pub use crate::__verily_emit as emit;
    #[cfg(feature = "testing")]
    pub use crate::__verily_register as register;
    #[cfg(feature = "testing")]
    pub use crate::__verily_register_service as register_service;

    /// The outcome of a factory that returned `Result`: `Err` fails the test.
    #[cfg(feature = "testing")]
    pub fn factory_ok<T, E: core::fmt::Debug>(
        factory: &str,
        output: Result<T, E>,
    ) -> Result<T, Failure> {
        output.map_err(|error| Failure::new(format!("{factory} returned Err: {error:?}")))
    }

    /// A test body's return value as a verdict: `()` passes, `Err` fails.
    #[cfg(feature = "testing")]
    pub trait IntoTestResult {
        fn into_test_result(self) -> TestResult;
    }

    #[cfg(feature = "testing")]
    impl IntoTestResult for () {
        fn into_test_result(self) -> TestResult {
            Ok(())
        }
    }

    #[cfg(feature = "testing")]
    impl<E: core::fmt::Debug> IntoTestResult for Result<(), E> {
        fn into_test_result(self) -> TestResult {
            self.map_err(|error| Failure::new(format!("the test returned Err: {error:?}")))
        }
    }
}
