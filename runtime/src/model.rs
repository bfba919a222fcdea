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
