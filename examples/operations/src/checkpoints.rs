//! Saved training state: periodically, and when an operation is cancelled
//! or fails, so it can resume.

use std::sync::Mutex;

use sqlx::PgPool;

use crate::model::OperationId;

/// Why a checkpoint was taken; stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointReason {
    Periodic,
    Cancellation,
    Failure,
    /// The service stopped (SIGTERM) with the operation still running.
    Shutdown,
}

impl CheckpointReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointReason::Periodic => "periodic",
            CheckpointReason::Cancellation => "cancellation",
            CheckpointReason::Failure => "failure",
            CheckpointReason::Shutdown => "shutdown",
        }
    }
}

/// Writes checkpoints.
#[verily::wired(pool)]
#[derive(Debug)]
pub struct CheckpointService {
    pool: Option<PgPool>,
    /// Checkpoints waiting for a batch write.
    pending: Mutex<Vec<(OperationId, CheckpointReason, i32)>>,
}

impl CheckpointService {
    pub fn new(pool: Option<PgPool>) -> Self {
        Self {
            pool,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Saves a checkpoint now.
    pub async fn save(
        &self,
        operation: OperationId,
        reason: CheckpointReason,
        epoch: i32,
    ) -> Result<(), sqlx::Error> {
        let Some(pool) = &self.pool else {
            return Err(sqlx::Error::Configuration(
                "the checkpoint service has no database".into(),
            ));
        };
        if reason == CheckpointReason::Cancellation
            && cfg!(feature = "bug-checkpoint-lost-on-cancel")
        {
            // The incident: queued for a batch write that never happens.
            self.pending
                .lock()
                .expect("no thread panics while holding the queue")
                .push((operation, reason, epoch));
            return Ok(());
        }
        sqlx::query("INSERT INTO checkpoints (operation_id, reason, epoch) VALUES ($1, $2, $3)")
            .bind(operation.0)
            .bind(reason.as_str())
            .bind(epoch)
            .execute(pool)
            .await?;
        Ok(())
    }
}
