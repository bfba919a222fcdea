//! The operations service, its factories, and the container the binary
//! builds at startup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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
    Configuration(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::NoRepository => f.write_str("the operations service has no repository"),
            ServiceError::NotFound(id) => write!(f, "operation {id} not found"),
            ServiceError::Database(error) => write!(f, "database: {error}"),
            ServiceError::Configuration(error) => write!(f, "configuration: {error}"),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        ServiceError::Database(error)
    }
}

/// Creates, tracks and cancels operations.
///
/// Dependencies are optional so they can be injected after construction,
/// the pattern that let a missing repository go unnoticed.
#[groundtruth::wired(repository, metrics, checkpoints)]
pub struct OperationsService {
    repository: Option<Arc<dyn OperationsRepository>>,
    metrics: Option<Arc<Metrics>>,
    checkpoints: Option<Arc<CheckpointService>>,
    /// Status of operations as last seen, for the status endpoint.
    cache: Mutex<HashMap<OperationId, OperationStatus>>,
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
        let operation = self.repository()?.insert(&new).await?;
        self.cache(operation.id, operation.status);
        self.count("operations_created");
        Ok(operation)
    }

    pub async fn get(&self, id: OperationId) -> Result<Operation, ServiceError> {
        self.repository()?
            .get(id)
            .await?
            .ok_or(ServiceError::NotFound(id))
    }

    pub async fn start(&self, id: OperationId) -> Result<(), ServiceError> {
        self.repository()?
            .set_status(id, OperationStatus::Running)
            .await?;
        self.cache(id, OperationStatus::Running);
        Ok(())
    }

    /// Cancels the operation and saves a checkpoint to resume from.
    pub async fn cancel_operation(&self, id: OperationId, epoch: i32) -> Result<(), ServiceError> {
        self.repository()?.cancel(id).await?;
        self.cache(id, OperationStatus::Cancelled);
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints
                .save(id, CheckpointReason::Cancellation, epoch)
                .await?;
        }
        self.count("operations_cancelled");
        Ok(())
    }

    pub async fn mark_failed(&self, id: OperationId) -> Result<(), ServiceError> {
        self.repository()?
            .set_status(id, OperationStatus::Failed)
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
        Ok(self.repository()?.stale(silence).await?)
    }

    pub async fn log_feature(
        &self,
        id: OperationId,
        feature: &str,
        value: f64,
    ) -> Result<(), ServiceError> {
        Ok(self.repository()?.log_feature(id, feature, value).await?)
    }

    pub async fn delete(&self, id: OperationId) -> Result<(), ServiceError> {
        Ok(self.repository()?.delete(id).await?)
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
#[groundtruth::wired]
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
#[groundtruth::wired(detector.operations_service)]
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
#[groundtruth::fixture]
impl groundtruth::Fixture for OperationsService {
    const NEEDS: groundtruth::Needs = <PgPool as groundtruth::Fixture>::NEEDS;

    async fn setup(ctx: &mut groundtruth::TestContext) -> Result<Self, groundtruth::FixtureError> {
        Ok(operations_service(ctx.fixture::<PgPool>().await?))
    }
}
