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
}

impl Settings {
    /// Reads `DATABASE_URL` and `OPERATIONS_ORPHAN_TIMEOUT_SECS` (default: five minutes).
    pub fn from_env() -> Result<Self, String> {
        let database_url =
            std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
        let seconds = match std::env::var("OPERATIONS_ORPHAN_TIMEOUT_SECS") {
            Ok(raw) => raw.parse().map_err(|_| {
                format!("OPERATIONS_ORPHAN_TIMEOUT_SECS must be a number of seconds, not `{raw}`")
            })?,
            Err(_) => 300,
        };
        Ok(Self {
            database_url,
            orphan_timeout: Duration::from_secs(seconds),
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
#[groundtruth::fixture]
impl groundtruth::Fixture for Settings {
    async fn setup(_ctx: &mut groundtruth::TestContext) -> Result<Self, groundtruth::FixtureError> {
        Ok(Settings {
            database_url: "postgres://localhost/operations".to_owned(),
            orphan_timeout: Duration::from_secs(60),
        })
    }
}
