//! Test parameters resolved by type: the [`Fixture`] trait and the
//! per-test [`TestContext`] fixtures are built from.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;

use crate::db::Db;
use crate::infra::postgres::Postgres;
use crate::infra::postgres::template::TestDatabase;
use crate::infra::{InfraError, Service, SharedInfrastructure, keep_requested};
use crate::registry::{Needs, TestDescriptor};
use crate::runner::TestResult;

/// A value a test (or a `#[wired]` factory) can take as a parameter.
///
/// The harness builds each parameter with `setup` before the body runs.
/// Fixtures compose: `setup` may ask the context for other fixtures.
///
/// ```ignore
/// impl verily::Fixture for Settings {
///     async fn setup(_ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
///         Ok(Settings::for_tests())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a verily fixture",
    label = "verily does not know how to build this parameter",
    note = "implement `verily::Fixture` for `{Self}` (in a `#[verily::fixture]` impl, so production builds leave it out)"
)]
pub trait Fixture: Sized + Send + 'static {
    /// Infrastructure this fixture needs, including what the fixtures it
    /// builds on need.
    const NEEDS: Needs = Needs::NONE;

    /// The category of a test that takes this fixture and names none
    /// (the `App` fixture says `e2e`); the first parameter that has one wins.
    const CATEGORY: Option<&'static str> = None;

    /// Builds the value for one test.
    fn setup(ctx: &mut TestContext) -> impl Future<Output = Result<Self, FixtureError>> + Send;
}

/// A fixture that could not be built. The test fails with this message
/// without running its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureError {
    message: String,
}

impl FixtureError {
    /// A message saying what failed and what to do about it.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FixtureError {}

/// How long a test's pool may take to close before its database is
/// dropped under it.
const POOL_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What one running test knows while its fixtures are built: its own
/// description, the run's infrastructure, and its database once made.
pub struct TestContext {
    descriptor: &'static TestDescriptor,
    infrastructure: SharedInfrastructure,
    database: Option<Lease>,
    /// Values the test's fixtures share, one per type (see [`TestContext::hold`]).
    held: Vec<Box<dyn Any + Send>>,
    /// What the test borrowed from services, given back when it ends.
    borrowed: Vec<GiveBack>,
    /// Checks that may change the test's verdict once its body has run.
    verdicts: Vec<AmendVerdict>,
}

/// Gives back one thing a test borrowed; `true` asks to keep it (a failed
/// test's, with `VERILY_KEEP=1`).
type GiveBack = Box<dyn FnOnce(bool) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Changes a test's verdict once its body has run (see
/// [`TestContext::amend_verdict`]).
type AmendVerdict = Box<dyn FnOnce(&mut TestResult) + Send>;

/// A test's database and the server it lives on, returned at the end.
struct Lease {
    postgres: Arc<Postgres>,
    database: TestDatabase,
    db: Db,
}

impl fmt::Debug for TestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestContext")
            .field("test", &self.descriptor.name)
            .finish_non_exhaustive()
    }
}

impl TestContext {
    pub(crate) fn new(
        descriptor: &'static TestDescriptor,
        infrastructure: SharedInfrastructure,
    ) -> Self {
        Self {
            descriptor,
            infrastructure,
            database: None,
            held: Vec::new(),
            borrowed: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// `module::path::fn` of the running test.
    pub fn test_name(&self) -> &'static str {
        self.descriptor.name
    }

    /// Category of the running test.
    pub fn category(&self) -> &'static str {
        self.descriptor.category
    }

    /// Builds fixture `T` for this test.
    pub async fn fixture<T: Fixture>(&mut self) -> Result<T, FixtureError> {
        T::setup(self).await
    }

    /// Service `S` of the run, started if this is the first test to need it.
    pub fn service<S: Service>(
        &self,
    ) -> impl Future<Output = Result<Arc<S>, InfraError>> + Send + 'static {
        let infrastructure = Arc::clone(&self.infrastructure);
        async move { infrastructure.service::<S>().await }
    }

    /// The run's configuration (images, migrations), for fixtures that
    /// start their own infrastructure (a `PgServer` migrates with it).
    pub fn config(&self) -> &crate::config::Config {
        self.infrastructure.config()
    }

    /// The value of type `T` a fixture of this test [held](Self::hold), so
    /// that every fixture built on it shares one (one database per test,
    /// whichever fixture asks first).
    pub fn held<T: Clone + Send + 'static>(&self) -> Option<T> {
        self.held
            .iter()
            .find_map(|value| value.downcast_ref::<T>())
            .cloned()
    }

    /// Keeps `value` for the rest of the test, replacing an earlier `T`.
    pub fn hold<T: Clone + Send + 'static>(&mut self, value: T) {
        self.held.retain(|held| !held.is::<T>());
        self.held.push(Box::new(value));
    }

    /// Runs `give_back` when the test ends (after the body, also when it
    /// failed or panicked; the last registered runs first). Its argument
    /// asks to keep what was borrowed: the test failed and
    /// `VERILY_KEEP=1` is set. A test stopped at its timeout gives
    /// nothing back; the service's shutdown cleans up after it.
    pub fn at_end<F, Fut>(&mut self, give_back: F)
    where
        F: FnOnce(bool) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.borrowed
            .push(Box::new(move |keep| Box::pin(give_back(keep))));
    }

    /// Runs `amend` on the test's verdict once its body has run (passed,
    /// failed or panicked; not when stopped at its timeout): an app that
    /// logged an error fails a passing test, a failing one gets its log
    /// tail. The first registered runs first.
    pub fn amend_verdict(&mut self, amend: impl FnOnce(&mut TestResult) + Send + 'static) {
        self.verdicts.push(Box::new(amend));
    }

    /// Applies the checks of [`amend_verdict`](Self::amend_verdict).
    pub(crate) fn amend(&mut self, result: &mut TestResult) {
        for amend in self.verdicts.drain(..) {
            amend(result);
        }
    }

    /// The test's own database, cloned from the migrated template on first
    /// use; PostgreSQL starts if this is the run's first test to need it.
    pub async fn database(&mut self) -> Result<Db, FixtureError> {
        if let Some(lease) = &self.database {
            return Ok(lease.db.clone());
        }
        let postgres = self.infrastructure.postgres().await?;
        let database = postgres
            .checkout()
            .await
            .map_err(|error| FixtureError::new(format!("no database for the test: {error}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(database.pool_size)
            .connect_lazy_with(database.options.clone());
        let db = Db {
            name: database.name.clone(),
            url: database.url.clone(),
            options: database.options.clone(),
            pool,
            observer: database.observer.clone(),
        };
        self.database = Some(Lease {
            postgres,
            database,
            db: db.clone(),
        });
        Ok(db)
    }

    /// Returns what the test borrowed: closes its pool, then drops its
    /// database (or keeps a failed test's, with `VERILY_KEEP=1`).
    pub(crate) async fn finish(mut self, failed: bool) {
        // Connections fixtures held close before their databases go.
        self.held.clear();
        while let Some(give_back) = self.borrowed.pop() {
            give_back(failed && keep_requested()).await;
        }
        if let Some(lease) = self.database.take() {
            // A body that leaked a connection (a forgotten transaction) would
            // make `close` wait forever; DROP ... WITH (FORCE) ends it instead.
            let _ = tokio::time::timeout(POOL_CLOSE_GRACE, lease.db.pool.close()).await;
            lease
                .postgres
                .release(lease.database, failed && keep_requested())
                .await;
        }
    }
}
