//! Configuration read at startup.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::service::ServiceError;

/// What the service needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub database_url: String,
    /// How long a running operation may stay silent before it is an orphan.
    pub orphan_timeout: Duration,
    /// How long one call may wait on the database before it fails.
    pub query_timeout: Duration,
}

impl Settings {
    /// Reads `DATABASE_URL`, `OPERATIONS_ORPHAN_TIMEOUT_SECS` (default: five
    /// minutes) and `OPERATIONS_QUERY_TIMEOUT_MS` (default: five seconds).
    pub fn from_env() -> Result<Self, String> {
        let database_url =
            std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
        let number = |name: &str, default: u64| match std::env::var(name) {
            Ok(raw) => raw
                .parse()
                .map_err(|_| format!("{name} must be a whole number, not `{raw}`")),
            Err(_) => Ok(default),
        };
        Ok(Self {
            orphan_timeout: Duration::from_secs(number("OPERATIONS_ORPHAN_TIMEOUT_SECS", 300)?),
            query_timeout: Duration::from_millis(number("OPERATIONS_QUERY_TIMEOUT_MS", 5000)?),
            ..Self::for_database(database_url)
        })
    }

    /// The defaults, on the database at `database_url`.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            orphan_timeout: Duration::from_secs(300),
            query_timeout: Duration::from_secs(5),
        }
    }

    /// The database URL without its password, for messages.
    pub fn redacted_url(&self) -> String {
        let url = &self.database_url;
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.clone(),
            },
            _ => url.clone(),
        }
    }

    /// A pool connected now, so that a wrong URL or wrong credentials fail
    /// at startup rather than at the first request.
    pub async fn connect_pool(&self) -> Result<PgPool, ServiceError> {
        PgPoolOptions::new()
            .max_connections(5)
            .connect(&self.database_url)
            .await
            .map_err(|source| ServiceError::Connect {
                database: self.redacted_url(),
                source,
            })
    }

    /// A pool that connects on first use.
    pub fn lazy_pool(&self) -> Result<PgPool, ServiceError> {
        PgPoolOptions::new()
            .max_connections(5)
            .connect_lazy(&self.database_url)
            .map_err(|error| ServiceError::Configuration(format!("DATABASE_URL: {error}")))
    }
}

// Wiring tests build their settings directly; nothing connects to this URL.
#[verily::fixture]
impl verily::Fixture for Settings {
    async fn setup(_ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
        Ok(Settings {
            database_url: "postgres://localhost/operations".to_owned(),
            orphan_timeout: Duration::from_secs(60),
            query_timeout: Duration::from_secs(5),
        })
    }
}
