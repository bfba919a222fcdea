//! The static description every generated test registers, and the two
//! backends that collect them: `inventory` (default) and `linkme`.

use std::time::Duration;

use crate::fixtures::TestContext;
use crate::model::TestFuture;

/// Everything the harness knows about a test before running it.
///
/// Generated code builds one in a `static` per test; every field is
/// const-constructible.
#[derive(Debug)]
pub struct TestDescriptor {
    /// `module::path::fn`, from `module_path!()`.
    pub name: &'static str,
    /// `wiring`, `persistence`, ... or a user's own category.
    pub category: &'static str,
    /// Source file of the annotated item.
    pub file: &'static str,
    /// Line of the annotated item's name.
    pub line: u32,
    /// Skipped unless `--ignored` or `--include-ignored`.
    pub ignored: bool,
    /// Why it is ignored, if the attribute said.
    pub ignore_reason: Option<&'static str>,
    /// Per-test timeout; the run's `--timeout` applies when `None`.
    pub timeout: Option<Duration>,
    /// `tags = ["slow", "nightly"]`: names `--tags` selects by, besides the
    /// category (which is a tag too, see [`TestDescriptor::tags`]).
    pub tags: &'static [&'static str],
    /// `retries = N`: tries after a failure; the run's `--retries` applies
    /// when `None`.
    pub retries: Option<u32>,
    /// Whether it runs on a tokio runtime of its own, whose tasks end with
    /// it (an async body, or fixtures); a sync body that takes nothing runs
    /// on the run's runtime, as cheaply as libtest runs a `#[test]`.
    pub own_runtime: bool,
    /// Sets up the fixtures and runs the test.
    pub run: for<'a> fn(&'a mut TestContext) -> TestFuture<'a>,
}

impl TestDescriptor {
    /// The name with the category in front, `[wiring] module::fn`, the form
    /// nextest sees so that filter expressions can select a category.
    pub fn qualified_name(&self) -> String {
        format!("[{}] {}", self.category, self.name)
    }

    /// The category, then the attribute's tags.
    pub fn tags(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.category).chain(self.tags.iter().copied())
    }

    /// Whether `name` names this test, plainly or with its category in front.
    pub fn is_named(&self, name: &str) -> bool {
        if name == self.name {
            return true;
        }
        name.strip_prefix('[')
            .and_then(|rest| rest.strip_prefix(self.category))
            .and_then(|rest| rest.strip_prefix("] "))
            == Some(self.name)
    }
}

#[cfg(not(feature = "linkme"))]
inventory::collect!(TestDescriptor);

/// The tests of every crate linked into the harness binary.
#[cfg(feature = "linkme")]
#[linkme::distributed_slice]
pub static TESTS: [TestDescriptor];

/// Every registered test, in registration order (unspecified; sort before
/// showing).
pub fn registered() -> impl Iterator<Item = &'static TestDescriptor> {
    #[cfg(not(feature = "linkme"))]
    {
        inventory::iter::<TestDescriptor>.into_iter()
    }
    #[cfg(feature = "linkme")]
    {
        TESTS.iter()
    }
}
