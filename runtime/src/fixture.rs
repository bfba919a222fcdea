//! Test parameters resolved by type: the [`Fixture`] trait and the
//! per-test [`TestContext`] fixtures are built from.

use std::fmt;
use std::future::Future;

use crate::registry::{Needs, TestDescriptor};

/// A value a test (or a `#[wired]` factory) can take as a parameter.
///
/// The harness builds each parameter with `setup` before the body runs.
/// Fixtures compose: `setup` may ask the context for other fixtures.
///
/// ```ignore
/// impl groundtruth::Fixture for Settings {
///     async fn setup(_ctx: &mut groundtruth::TestContext) -> Result<Self, groundtruth::FixtureError> {
///         Ok(Settings::for_tests())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a groundtruth fixture",
    label = "groundtruth does not know how to build this parameter",
    note = "implement `groundtruth::Fixture` for `{Self}` (in a `#[groundtruth::fixture]` impl, so production builds leave it out)"
)]
pub trait Fixture: Sized + Send + 'static {
    /// Infrastructure this fixture needs, including what the fixtures it
    /// builds on need.
    const NEEDS: Needs = Needs::NONE;

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

/// What one running test knows while its fixtures are built.
pub struct TestContext {
    descriptor: &'static TestDescriptor,
}

impl fmt::Debug for TestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestContext")
            .field("test", &self.descriptor.name)
            .finish_non_exhaustive()
    }
}

impl TestContext {
    pub(crate) fn new(descriptor: &'static TestDescriptor) -> Self {
        Self { descriptor }
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
}
