//! Finds operations whose worker went silent and marks them failed.

use std::sync::Arc;
use std::time::Duration;

use crate::service::{OperationsService, ServiceError, get_operations_service};
use crate::settings::Settings;

/// Marks running operations as failed once they have been silent too long.
#[groundtruth::wired(operations_service)]
pub struct OrphanDetector {
    pub operations_service: Option<Arc<OperationsService>>,
    timeout: Duration,
}

impl OrphanDetector {
    pub fn new(operations_service: Option<Arc<OperationsService>>, timeout: Duration) -> Self {
        Self {
            operations_service,
            timeout,
        }
    }

    /// Marks every orphan failed; returns how many.
    pub fn sweep(&self) -> Result<usize, ServiceError> {
        let Some(service) = &self.operations_service else {
            return Err(ServiceError::NoRepository);
        };
        let orphans = service.stale_operations(self.timeout.as_secs())?;
        for orphan in &orphans {
            service.mark_failed(orphan.id)?;
        }
        Ok(orphans.len())
    }
}

/// The detector the background task runs; its service's repository is
/// checked through it.
#[groundtruth::wired]
pub fn get_orphan_detector() -> Arc<OrphanDetector> {
    Arc::new(OrphanDetector::new(
        Some(Arc::new(get_operations_service())),
        Duration::from_secs(300),
    ))
}

/// The detector the server starts in the background, configured from the
/// settings; async, as the server's startup is.
#[groundtruth::wired]
pub async fn start_orphan_detector(
    settings: Settings,
) -> Result<Arc<OrphanDetector>, ServiceError> {
    let operations_service = Arc::new(get_operations_service());
    Ok(Arc::new(OrphanDetector::new(
        Some(operations_service),
        settings.orphan_timeout,
    )))
}
