//! Typed errors of the harness, each phrased so a person can act on it.

use std::fmt;

/// A command line the harness cannot run. Exit code 2.
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
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownFlag(flag) => {
                write!(f, "unknown flag `{flag}`; run with --help for the flags")
            }
            CliError::MissingValue(flag) => write!(f, "`{flag}` needs a value"),
            CliError::InvalidValue {
                flag,
                value,
                expected,
            } => write!(
                f,
                "invalid value `{value}` for `{flag}`: expected {expected}"
            ),
            CliError::UnknownCategory { name, known } => write!(
                f,
                "unknown category `{name}`; known categories: {}",
                known.join(", ")
            ),
        }
    }
}

impl std::error::Error for CliError {}
