//! A service that depends on verily as `vy` and denies the lints that
//! generated code most easily trips: every attribute takes
//! `crate = "vy"`, and its expansion must compile here.

#![deny(
    unused_qualifications,
    missing_docs,
    unreachable_pub,
    non_snake_case,
    unused_results,
    clippy::all
)]

use std::fmt;
use std::str::FromStr;

/// Where notes are kept.
#[derive(Debug, Clone, Default)]
pub struct Store;

/// The service, wired from its store.
#[vy::wired(store, crate = "vy")]
#[derive(Debug)]
pub struct Notes {
    /// `None` until wired.
    pub store: Option<Store>,
}

/// The factory the wiring test calls.
#[vy::wired(crate = "vy")]
pub fn notes() -> Notes {
    Notes { store: Some(Store) }
}

/// How urgent a note is.
#[vy::enum_complete(strings, crate = "vy")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Soon.
    High,
    /// Later.
    Low,
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::High => "high",
            Priority::Low => "low",
        })
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "high" => Ok(Priority::High),
            "low" => Ok(Priority::Low),
            other => Err(format!("unknown priority {other}")),
        }
    }
}

/// Every priority has a label.
#[vy::enum_complete(Priority, crate = "vy")]
pub fn label(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "!",
        Priority::Low => ".",
    }
}

/// Saves a note.
pub async fn save(pool: &sqlx::PgPool, body: &str) -> Result<(), sqlx::Error> {
    let _ = sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind(body)
        .execute(pool)
        .await?;
    Ok(())
}
