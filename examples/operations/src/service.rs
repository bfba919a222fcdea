//! The operations service, its factories, and the container the binary
//! builds at startup.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::PgPool;

use crate::checkpoints::{CheckpointReason, CheckpointService};
use crate::detector::OrphanDetector;
use crate::metrics::Metrics;
use crate::model::{NewOperation, Operation, OperationId, OperationStatus};
use crate::repository::{OperationsRepository, PgOperationsRepository};
use crate::settings::Settings;

/// Why an operation could not be carried out.
#[derive(Debug)]
pub enum ServiceError {
    /// The service was built without a repository: nothing can be stored.
    NoRepository,
    NotFound(OperationId),
    Database(sqlx::Error),
    /// The database cannot be reached, or it ended the connection: worth
    /// retrying later, not a bug in the request.
    Unavailable(sqlx::Error),
    /// The database did not answer within the configured query timeout.
    Timeout(Duration),
    /// The service could not connect at startup (the URL's password hidden).
    Connect {
        database: String,
        source: sqlx::Error,
    },
    Configuration(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::NoRepository => f.write_str("the operations service has no repository"),
            ServiceError::NotFound(id) => write!(f, "operation {id} not found"),
            ServiceError::Database(error) => write!(f, "database: {error}"),
            ServiceError::Unavailable(error) => write!(f, "the database is unavailable: {error}"),
            ServiceError::Timeout(limit) => write!(
                f,
                "the database did not answer within {} ms",
                limit.as_millis()
            ),
            ServiceError::Connect { database, source } => {
                write!(f, "cannot connect to the database at {database}: {source}")
            }
            ServiceError::Configuration(error) => write!(f, "configuration: {error}"),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        let unavailable = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // 57P: operator intervention (shutdown, terminated backend);
            // 08: connection exception.
            sqlx::Error::Database(database) => database
                .code()
                .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
            _ => false,
        };
        if unavailable {
            ServiceError::Unavailable(error)
        } else {
            ServiceError::Database(error)
        }
    }
}

/// Creates, tracks and cancels operations.
///
/// Dependencies are optional so they can be injected after construction,
/// the pattern that let a missing repository go unnoticed.
#[verily::wired(repository, metrics, checkpoints)]
pub struct OperationsService {
    repository: Option<Arc<dyn OperationsRepository>>,
    metrics: Option<Arc<Metrics>>,
    checkpoints: Option<Arc<CheckpointService>>,
    /// Status of operations as last seen, for the status endpoint.
    cache: Mutex<HashMap<OperationId, OperationStatus>>,
    /// How long one call may wait on the database (none: forever).
    query_timeout: Option<Duration>,
}

impl std::fmt::Debug for OperationsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationsService")
            .field("repository", &self.repository.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("checkpoints", &self.checkpoints.is_some())
            .finish_non_exhaustive()
    }
}

impl OperationsService {
    pub fn new(
        repository: Option<Arc<dyn OperationsRepository>>,
        metrics: Option<Arc<Metrics>>,
        checkpoints: Option<Arc<CheckpointService>>,
    ) -> Self {
        Self {
            repository,
            metrics,
            checkpoints,
            cache: Mutex::new(HashMap::new()),
            query_timeout: None,
        }
    }

    /// The service as the server runs it: its pool connected at startup
    /// (wrong credentials are an error here, naming the problem), every
    /// call bounded by the settings' query timeout.
    pub async fn connect(settings: &Settings) -> Result<Self, ServiceError> {
        let pool = if cfg!(feature = "bug-opaque-credentials-panic") {
            // The incident: the reason is thrown away so startup can "go
            // on", and the missing pool is unwrapped with nothing to tell.
            let pool: Option<PgPool> = settings.connect_pool().await.ok();
            pool.unwrap()
        } else {
            settings.connect_pool().await?
        };
        let repository = if cfg!(feature = "bug-pool-never-reestablished") {
            // The incident: one connection, taken from the pool at startup,
            // serves every query; once the server drops it, nothing
            // replaces it.
            PgOperationsRepository::pinned(pool.acquire().await?.detach(), pool.clone())
        } else {
            PgOperationsRepository::new(pool.clone())
        };
        let mut service = Self::new(
            Some(Arc::new(repository)),
            Some(Arc::new(Metrics::new())),
            Some(Arc::new(CheckpointService::new(Some(pool)))),
        );
        service.query_timeout = Some(settings.query_timeout);
        Ok(service)
    }

    /// Runs one call under the query timeout, if one is set.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        match self.query_timeout {
            // The incident: the configured timeout is never applied, so a
            // hung database hangs every caller.
            Some(_) if cfg!(feature = "bug-no-query-timeout") => call.await,
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(ServiceError::Timeout(limit))),
            None => call.await,
        }
    }

    fn repository(&self) -> Result<&dyn OperationsRepository, ServiceError> {
        self.repository.as_deref().ok_or(ServiceError::NoRepository)
    }

    fn count(&self, name: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.increment(name);
        }
    }

    fn cache(&self, id: OperationId, status: OperationStatus) {
        self.cache
            .lock()
            .expect("no thread panics while holding the cache")
            .insert(id, status);
    }

    /// The status as last seen by this service (not read from the table).
    pub fn cached_status(&self, id: OperationId) -> Option<OperationStatus> {
        self.cache
            .lock()
            .expect("no thread panics while holding the cache")
            .get(&id)
            .copied()
    }

    pub async fn create_operation(&self, new: NewOperation) -> Result<Operation, ServiceError> {
        let operation = self
            .bounded(async { Ok(self.repository()?.insert(&new).await?) })
            .await?;
        self.cache(operation.id, operation.status);
        self.count("operations_created");
        Ok(operation)
    }

    pub async fn get(&self, id: OperationId) -> Result<Operation, ServiceError> {
        self.bounded(async {
            self.repository()?
                .get(id)
                .await?
                .ok_or(ServiceError::NotFound(id))
        })
        .await
    }

    pub async fn start(&self, id: OperationId) -> Result<(), ServiceError> {
        self.bounded(async {
            Ok(self
                .repository()?
                .set_status(id, OperationStatus::Running)
                .await?)
        })
        .await?;
        self.cache(id, OperationStatus::Running);
        Ok(())
    }

    /// Cancels the operation and saves a checkpoint to resume from.
    pub async fn cancel_operation(&self, id: OperationId, epoch: i32) -> Result<(), ServiceError> {
        self.bounded(async {
            self.repository()?.cancel(id).await?;
            self.cache(id, OperationStatus::Cancelled);
            if let Some(checkpoints) = &self.checkpoints {
                checkpoints
                    .save(id, CheckpointReason::Cancellation, epoch)
                    .await?;
            }
            Ok(())
        })
        .await?;
        self.count("operations_cancelled");
        Ok(())
    }

    pub async fn mark_failed(&self, id: OperationId) -> Result<(), ServiceError> {
        self.bounded(async {
            Ok(self
                .repository()?
                .set_status(id, OperationStatus::Failed)
                .await?)
        })
        .await?;
        self.mark_failed_in_cache(id);
        self.count("operations_failed");
        Ok(())
    }

    /// Updates only what this service remembers, for callers that know the
    /// row is already failed.
    pub fn mark_failed_in_cache(&self, id: OperationId) {
        self.cache(id, OperationStatus::Failed);
    }

    pub async fn stale_operations(
        &self,
        silence: std::time::Duration,
    ) -> Result<Vec<Operation>, ServiceError> {
        self.bounded(async { Ok(self.repository()?.stale(silence).await?) })
            .await
    }

    pub async fn log_feature(
        &self,
        id: OperationId,
        feature: &str,
        value: f64,
    ) -> Result<(), ServiceError> {
        self.bounded(async { Ok(self.repository()?.log_feature(id, feature, value).await?) })
            .await
    }

    pub async fn delete(&self, id: OperationId) -> Result<(), ServiceError> {
        self.bounded(async { Ok(self.repository()?.delete(id).await?) })
            .await
    }
}

/// The operations service on `pool`, as the server builds it.
pub fn operations_service(pool: PgPool) -> OperationsService {
    let metrics = Some(Arc::new(Metrics::new()));
    let checkpoints = Some(Arc::new(CheckpointService::new(Some(pool.clone()))));
    if cfg!(feature = "bug-unwired-repository") {
        // The incident: the repository was never injected.
        return OperationsService::new(None, metrics, checkpoints);
    }
    let repository: Arc<dyn OperationsRepository> = Arc::new(PgOperationsRepository::new(pool));
    OperationsService::new(Some(repository), metrics, checkpoints)
}

/// The operations service the API handlers use, from the settings. Its
/// pool connects on first use, so checking its wiring needs no database.
#[verily::wired]
pub fn get_operations_service(settings: Settings) -> Result<OperationsService, ServiceError> {
    Ok(operations_service(settings.lazy_pool()?))
}

/// Everything the binary starts with. The detector is set once the
/// operations service exists.
pub struct Services {
    pub operations: Arc<OperationsService>,
    pub detector: OnceLock<Arc<OrphanDetector>>,
}

/// Builds the services from the settings, as `main` does.
#[verily::wired(detector.operations_service)]
pub fn build_services(settings: Settings) -> Result<Services, ServiceError> {
    let operations = Arc::new(operations_service(settings.lazy_pool()?));
    let services = Services {
        operations: Arc::clone(&operations),
        detector: OnceLock::new(),
    };
    let detector = OrphanDetector::new(Some(operations), settings.orphan_timeout);
    let _ = services.detector.set(Arc::new(detector));
    Ok(services)
}

// Tests build the service on their own database.
#[verily::fixture]
impl verily::Fixture for OperationsService {
    async fn setup(ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
        Ok(operations_service(ctx.fixture::<PgPool>().await?))
    }
}
