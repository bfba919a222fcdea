//! An operations service as the teams behind verily write theirs: a
//! repository behind a trait on PostgreSQL, a metrics collector,
//! checkpoints, and an orphan detector that holds the operations service.
//! Its factories carry `#[wired]`; its writes are proven by `#[persists]`
//! tests in `tests/`.

pub mod checkpoints;
pub mod detector;
pub mod metrics;
pub mod model;
pub mod repository;
pub mod service;
pub mod settings;

pub use checkpoints::{CheckpointReason, CheckpointService};
pub use detector::{OrphanDetector, get_orphan_detector, start_orphan_detector};
pub use metrics::Metrics;
pub use model::{NewOperation, Operation, OperationId, OperationStatus};
pub use repository::{OperationsRepository, PgOperationsRepository};
pub use service::{
    OperationsService, ServiceError, Services, build_services, get_operations_service,
    operations_service,
};
pub use settings::Settings;
