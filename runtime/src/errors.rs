//! Typed errors of the harness, each phrased so a person can act on it.
//!
//! [`InfraError`] and `FixtureError` carry the error that caused them, when
//! there is one: their `Display` already includes its message (reports print
//! one line per error), and `source()` gives the typed cause to code that
//! wants to inspect it (`downcast_ref::<sqlx::Error>()`).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A command line the harness cannot run. Exit code 101, phrased as
/// libtest phrases its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// A flag the harness does not know.
    UnknownFlag(String),
    /// A flag that needs a value was last on the line.
    MissingValue(&'static str),
    /// A flag's value is not one of its choices or not of its shape.
    InvalidValue {
        flag: &'static str,
        value: String,
        expected: String,
    },
    /// `--category` or `--skip-category` named no known category.
    UnknownCategory { name: String, known: Vec<String> },
    /// `--tags` named a tag no test has.
    UnknownTag {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    /// `--tags` is not a tag expression.
    TagExpression { expression: String, problem: String },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownFlag(flag) => write!(
                f,
                "Unrecognized option: '{}' (run with --help for the flags)",
                flag.trim_start_matches('-')
            ),
            CliError::MissingValue(flag) => write!(
                f,
                "Argument to option '{}' missing",
                flag.trim_start_matches('-')
            ),
            CliError::InvalidValue {
                flag,
                value,
                expected,
            } => write!(f, "argument for {flag} must be {expected} (was {value})"),
            CliError::UnknownCategory { name, known } => write!(
                f,
                "unknown category `{name}`; known categories: {}",
                known.join(", ")
            ),
            CliError::UnknownTag {
                name,
                suggestion,
                known,
            } => {
                write!(f, "unknown tag `{name}` in --tags")?;
                if let Some(near) = suggestion {
                    write!(f, " (did you mean `{near}`?)")?;
                }
                write!(f, "; known tags: {}", known.join(", "))
            }
            CliError::TagExpression {
                expression,
                problem,
            } => write!(
                f,
                "invalid --tags `{expression}`: {problem}; write tags joined with & | ! and parentheses, as in `persistence & !slow`"
            ),
        }
    }
}

impl std::error::Error for CliError {}

/// The error that caused another, shared: infrastructure errors are handed
/// to every test that needed the service.
pub(crate) type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// An error that is a message for a person, and maybe the error that
/// caused it. `Clone`: one error may fail many tests.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            message: String,
            source: Option<Cause>,
        }

        impl $name {
            /// A message saying what failed and what to do about it.
            pub fn new(message: impl Into<String>) -> Self {
                Self {
                    message: message.into(),
                    source: None,
                }
            }

            /// `context: source`, keeping `source` as the typed cause.
            pub fn with_source(
                context: impl fmt::Display,
                source: impl Error + Send + Sync + 'static,
            ) -> Self {
                Self {
                    message: format!("{context}: {source}"),
                    source: Some(Arc::new(source)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.message)
            }
        }

        impl PartialEq for $name {
            /// Equal when they say the same thing.
            fn eq(&self, other: &Self) -> bool {
                self.message == other.message
            }
        }

        impl Eq for $name {}

        impl Error for $name {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                self.source
                    .as_deref()
                    .map(|source| source as &(dyn Error + 'static))
            }
        }
    };
}

message_error! {
    /// Infrastructure that could not be provided; every test that needs it
    /// fails with this message, tests that need nothing still run.
    InfraError
}

message_error! {
    /// A fixture that could not be built. The test fails with this message
    /// without running its body.
    FixtureError
}

impl From<InfraError> for FixtureError {
    /// The same message; the infrastructure error is the source.
    fn from(error: InfraError) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Arc::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_as_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no initdb");
        let error = InfraError::with_source("cannot start PostgreSQL", io);
        assert_eq!(error.to_string(), "cannot start PostgreSQL: no initdb");
        let source = error.source().expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(InfraError::new("plain").source().is_none());
    }

    #[test]
    fn an_infrastructure_error_stays_reachable_from_the_fixture_error() {
        let infra = InfraError::new("no PostgreSQL: install postgresql");
        let error = FixtureError::from(infra.clone());
        assert_eq!(error.to_string(), infra.to_string());
        let source = error.source().expect("a source");
        assert_eq!(source.downcast_ref::<InfraError>(), Some(&infra));
    }
}
