//! The operations service, its factory, and the container the binary
//! builds at startup.

use std::sync::{Arc, OnceLock};

use crate::detector::OrphanDetector;
use crate::metrics::Metrics;
use crate::model::{NewOperation, Operation, OperationId, OperationStatus};
use crate::repository::{InMemoryRepository, OperationsRepository, RepositoryError};
use crate::settings::Settings;

/// Why an operation could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// The service was built without a repository: nothing can be stored.
    NoRepository,
    Repository(RepositoryError),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::NoRepository => f.write_str("the operations service has no repository"),
            ServiceError::Repository(error) => write!(f, "repository: {error}"),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<RepositoryError> for ServiceError {
    fn from(error: RepositoryError) -> Self {
        ServiceError::Repository(error)
    }
}

/// Creates, tracks and cancels operations.
///
/// Dependencies are optional so they can be injected after construction,
/// the pattern that let a missing repository go unnoticed.
#[groundtruth::wired(repository, metrics)]
pub struct OperationsService {
    repository: Option<Arc<dyn OperationsRepository>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for OperationsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationsService")
            .field("repository", &self.repository.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl OperationsService {
    pub fn new(
        repository: Option<Arc<dyn OperationsRepository>>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            repository,
            metrics,
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

    pub fn create_operation(&self, new: NewOperation) -> Result<Operation, ServiceError> {
        let operation = self.repository()?.insert(&new)?;
        self.count("operations_created");
        Ok(operation)
    }

    pub fn get(&self, id: OperationId) -> Result<Operation, ServiceError> {
        Ok(self.repository()?.get(id)?)
    }

    pub fn cancel(&self, id: OperationId) -> Result<(), ServiceError> {
        self.repository()?
            .set_status(id, OperationStatus::Cancelled)?;
        self.count("operations_cancelled");
        Ok(())
    }

    pub fn mark_failed(&self, id: OperationId) -> Result<(), ServiceError> {
        self.repository()?.set_status(id, OperationStatus::Failed)?;
        self.count("operations_failed");
        Ok(())
    }

    pub fn stale_operations(&self, seconds: u64) -> Result<Vec<Operation>, ServiceError> {
        Ok(self.repository()?.stale(seconds)?)
    }
}

/// The operations service the API handlers use.
#[groundtruth::wired]
pub fn get_operations_service() -> OperationsService {
    let metrics = Some(Arc::new(Metrics::new()));
    if cfg!(feature = "bug-unwired-repository") {
        // The incident: the repository was never injected.
        return OperationsService::new(None, metrics);
    }
    let repository: Arc<dyn OperationsRepository> = Arc::new(InMemoryRepository::new());
    OperationsService::new(Some(repository), metrics)
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
    let operations = Arc::new(get_operations_service());
    let services = Services {
        operations: Arc::clone(&operations),
        detector: OnceLock::new(),
    };
    let detector = OrphanDetector::new(Some(operations), settings.orphan_timeout);
    let _ = services.detector.set(Arc::new(detector));
    Ok(services)
}
