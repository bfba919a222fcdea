//! What a test is and how it ends, as every layer above sees it: the
//! future a generated test returns, and its verdict.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// What a generated test function returns.
pub type TestFuture<'a> = Pin<Box<dyn Future<Output = TestResult> + Send + 'a>>;

/// The verdict of one test body: `Ok` passed, `Err` failed.
pub type TestResult = Result<(), Failure>;

/// Why a test failed: a message, and where, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// What went wrong, phrased for the person reading the report.
    pub message: String,
    /// `file:line[:column]` of the panic or of the test.
    pub location: Option<String>,
}

impl Failure {
    /// A failure with no location of its own; the report uses the test's.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
        }
    }

    /// The same failure, located at `file:line[:column]`.
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(location) = &self.location {
            write!(f, "\n  at {location}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Infrastructure a test needs before its body can run. Known statically, so
/// a run whose selected tests need nothing starts nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Needs(u32);

impl Needs {
    /// No infrastructure.
    pub const NONE: Needs = Needs(0);
    /// A PostgreSQL server and a database of the test's own.
    pub const POSTGRES: Needs = Needs(1);
    /// A Redis server and a database of the test's own on it.
    pub const REDIS: Needs = Needs(1 << 1);

    const NAMES: [(Needs, &'static str); 2] =
        [(Needs::POSTGRES, "postgres"), (Needs::REDIS, "redis")];

    /// Both sets of needs.
    pub const fn union(self, other: Needs) -> Needs {
        Needs(self.0 | other.0)
    }

    /// Whether every need in `other` is in `self`.
    pub const fn contains(self, other: Needs) -> bool {
        self.0 & other.0 == other.0
    }

    /// Names of the needs, for listings and reports.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(need, _)| self.contains(*need))
            .map(|(_, name)| name)
    }
}

impl fmt::Debug for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}
