//! Infrastructure a run provides to its tests: started by the first test
//! that needs it, shared by the run, torn down at the end (also on panic
//! and on Ctrl-C).

pub mod postgres;
mod process;
pub mod proxy;

use std::fmt;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::Config;
use crate::fixture::FixtureError;

/// Infrastructure that could not be provided; every test that needs it
/// fails with this message, tests that need nothing still run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraError {
    message: String,
}

impl InfraError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InfraError {}

/// `GROUNDTRUTH_KEEP=1`: keep servers and the databases of failed tests.
pub fn keep_requested() -> bool {
    std::env::var("GROUNDTRUTH_KEEP").is_ok_and(|value| value == "1" || value == "true")
}

/// The run's infrastructure, started lazily.
pub struct Infrastructure {
    config: Config,
    postgres: OnceCell<Result<Arc<postgres::Postgres>, InfraError>>,
}

impl fmt::Debug for Infrastructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Infrastructure")
            .field("postgres_started", &self.postgres.initialized())
            .finish()
    }
}

impl Infrastructure {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            postgres: OnceCell::new(),
        }
    }

    /// The harness's configuration (migrations, image).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// PostgreSQL for this run, started (and migrated) on first call.
    pub async fn postgres(&self) -> Result<Arc<postgres::Postgres>, FixtureError> {
        let result = self
            .postgres
            .get_or_init(|| async {
                let started = postgres::Postgres::start(&self.config).await.map(Arc::new);
                if let Err(error) = &started {
                    eprintln!("postgres: {error}");
                }
                started
            })
            .await;
        result
            .clone()
            .map_err(|error| FixtureError::new(error.to_string()))
    }

    /// Tears everything down; with `GROUNDTRUTH_KEEP=1`, says how to reach
    /// what was kept instead.
    pub async fn shutdown(&self) {
        if let Some(Ok(postgres)) = self.postgres.get() {
            postgres.shutdown(keep_requested()).await;
        }
    }
}

/// The run's infrastructure as the context of a test sees it.
pub type SharedInfrastructure = Arc<Infrastructure>;
