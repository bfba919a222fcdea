//! Finds operations whose worker went silent and marks them failed.

use std::sync::Arc;
use std::time::Duration;

use crate::service::{OperationsService, ServiceError, operations_service};
use crate::settings::Settings;

/// Marks running operations as failed once they have been silent too long.
#[verily::wired(operations_service)]
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
    pub async fn sweep(&self) -> Result<usize, ServiceError> {
        let Some(service) = &self.operations_service else {
            return Err(ServiceError::NoRepository);
        };
        let orphans = service.stale_operations(self.timeout).await?;
        for orphan in &orphans {
            if cfg!(feature = "bug-detector-cache-only") {
                // The incident: the cache says FAILED, the row still RUNNING.
                service.mark_failed_in_cache(orphan.id);
            } else {
                service.mark_failed(orphan.id).await?;
            }
        }
        Ok(orphans.len())
    }
}

/// The detector the background task runs; its service's repository is
/// checked through it.
#[verily::wired]
pub fn get_orphan_detector(settings: Settings) -> Result<Arc<OrphanDetector>, ServiceError> {
    Ok(Arc::new(OrphanDetector::new(
        Some(Arc::new(operations_service(settings.lazy_pool()?))),
        settings.orphan_timeout,
    )))
}

/// The detector the server starts in the background; async, as the
/// server's startup is.
#[verily::wired]
pub async fn start_orphan_detector(
    settings: Settings,
) -> Result<Arc<OrphanDetector>, ServiceError> {
    let operations_service = Arc::new(operations_service(settings.lazy_pool()?));
    Ok(Arc::new(OrphanDetector::new(
        Some(operations_service),
        settings.orphan_timeout,
    )))
}
