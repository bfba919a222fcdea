//! The simulated training jobs: each reports progress and saves a periodic
//! checkpoint as it goes, stops when cancelled, and is checkpointed when
//! the service shuts down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use operations::{
    CheckpointReason, CheckpointService, NewOperation, Operation, OperationId, OperationStatus,
    OperationsService, ServiceError,
};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::log;

/// Steps between two periodic checkpoints.
const CHECKPOINT_EVERY: u32 = 5;

/// Why a job is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    Cancelled,
    Shutdown,
}

/// What the API knows of one job while the process runs.
#[derive(Debug, Clone)]
pub struct JobState {
    pub operation: Operation,
    pub progress: u32,
    pub step: u32,
    pub steps: u32,
}

struct Job {
    state: JobState,
    stop: watch::Sender<Stop>,
}

/// The jobs of this process, and what they write with.
#[derive(Clone)]
pub struct Jobs {
    service: Arc<OperationsService>,
    checkpoints: Arc<CheckpointService>,
    pool: PgPool,
    step: Duration,
    jobs: Arc<Mutex<HashMap<OperationId, Job>>>,
    /// Ids the API hands out when it does not write rows (the incident).
    fake_ids: Arc<Mutex<i64>>,
}

impl Jobs {
    pub fn new(service: Arc<OperationsService>, pool: PgPool, step: Duration) -> Self {
        Self {
            service,
            checkpoints: Arc::new(CheckpointService::new(Some(pool.clone()))),
            pool,
            step,
            jobs: Arc::default(),
            fake_ids: Arc::new(Mutex::new(1_000_000)),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the operation and starts its job.
    pub async fn start(&self, new: NewOperation, steps: u32) -> Result<JobState, ServiceError> {
        let operation = if cfg!(feature = "bug-api-response-only") {
            // The incident: the answer is built, the row never written.
            let mut next = self.fake_ids.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            Operation {
                id: OperationId(*next),
                kind: new.kind,
                symbol: new.symbol,
                status: OperationStatus::Pending,
            }
        } else {
            self.service.create_operation(new).await?
        };
        let (stop, stopped) = watch::channel(Stop::Running);
        let state = JobState {
            operation: operation.clone(),
            progress: 0,
            step: 0,
            steps,
        };
        self.jobs().insert(
            operation.id,
            Job {
                state: state.clone(),
                stop,
            },
        );
        tokio::spawn(self.clone().run(operation.id, steps, stopped));
        log::info(format!("{}: started ({steps} steps)", operation.id));
        Ok(state)
    }

    /// The job's state, if this process runs or ran it.
    pub fn state(&self, id: OperationId) -> Option<JobState> {
        self.jobs().get(&id).map(|job| job.state.clone())
    }

    /// An operation from the table (one this process did not run).
    pub async fn stored(&self, id: OperationId) -> Result<Option<JobState>, ServiceError> {
        let operation = self.service.get(id).await?;
        let progress: i32 = sqlx::query_scalar("SELECT progress FROM operations WHERE id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(JobState {
            operation,
            progress: progress as u32,
            step: 0,
            steps: 0,
        }))
    }

    fn update(&self, id: OperationId, change: impl FnOnce(&mut JobState)) {
        if let Some(job) = self.jobs().get_mut(&id) {
            change(&mut job.state);
        }
    }

    /// Cancels the operation: the row, a checkpoint, and the job itself.
    pub async fn cancel(&self, id: OperationId) -> Result<(), ServiceError> {
        let step = self.state(id).map_or(0, |state| state.step);
        self.service.cancel_operation(id, step as i32).await?;
        self.update(id, |state| {
            state.operation.status = OperationStatus::Cancelled
        });
        // The incident (`bug-cancel-ignored`): the job is never told.
        if !cfg!(feature = "bug-cancel-ignored")
            && let Some(job) = self.jobs().get(&id)
        {
            let _ = job.stop.send(Stop::Cancelled);
        }
        Ok(())
    }

    /// Stops every running job and saves a checkpoint for each, marking
    /// it pending (to resume from its checkpoint); returns how many.
    pub async fn checkpoint_all(&self) -> usize {
        let running: Vec<(OperationId, u32)> = self
            .jobs()
            .values()
            .filter(|job| job.state.operation.status == OperationStatus::Running)
            .map(|job| {
                let _ = job.stop.send(Stop::Shutdown);
                (job.state.operation.id, job.state.step)
            })
            .collect();
        let mut saved = 0;
        for (id, step) in running {
            let checkpoint = self
                .checkpoints
                .save(id, CheckpointReason::Shutdown, step as i32)
                .await;
            let marked = sqlx::query(
                "UPDATE operations SET status = 'PENDING' WHERE id = $1 AND status = 'RUNNING'",
            )
            .bind(id.0)
            .execute(&self.pool)
            .await;
            match (checkpoint, marked) {
                (Ok(()), Ok(_)) => saved += 1,
                (Err(error), _) | (_, Err(error)) => {
                    log::error(format!("{id}: shutdown checkpoint not saved: {error}"))
                }
            }
        }
        saved
    }

    /// The job: `steps` steps, progress after each, a checkpoint every few.
    async fn run(self, id: OperationId, steps: u32, mut stopped: watch::Receiver<Stop>) {
        if let Err(error) = self.service.start(id).await {
            log::error(format!("{id}: cannot start: {error}"));
            return;
        }
        self.update(id, |state| {
            state.operation.status = OperationStatus::Running
        });
        for step in 1..=steps {
            tokio::select! {
                () = tokio::time::sleep(self.step) => {}
                why = stopped.wait_for(|stop| *stop != Stop::Running) => {
                    let why = why.map_or(Stop::Shutdown, |why| *why);
                    log::info(format!("{id}: stopped at step {}/{steps} ({why:?})", step - 1));
                    return;
                }
            }
            let progress = step * 100 / steps;
            self.update(id, |state| state.step = step);
            // The incident: progress is only reported once the job is done.
            if !cfg!(feature = "bug-progress-never-reported") {
                self.report(id, progress).await;
            }
            if step % CHECKPOINT_EVERY == 0
                && step < steps
                && let Err(error) = self
                    .checkpoints
                    .save(id, CheckpointReason::Periodic, step as i32)
                    .await
            {
                log::warn(format!("{id}: periodic checkpoint not saved: {error}"));
            }
        }
        self.report(id, 100).await;
        let completed = sqlx::query(
            "UPDATE operations SET status = 'COMPLETED' WHERE id = $1 AND status = 'RUNNING'",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await;
        if let Err(error) = completed {
            log::error(format!("{id}: cannot mark completed: {error}"));
        }
        self.update(id, |state| {
            if state.operation.status == OperationStatus::Running {
                state.operation.status = OperationStatus::Completed;
            }
        });
        log::info(format!("{id}: completed"));
    }

    /// Writes the progress (and the heartbeat) to memory and the row.
    async fn report(&self, id: OperationId, progress: u32) {
        self.update(id, |state| state.progress = progress);
        let written = sqlx::query(
            "UPDATE operations SET progress = $2, last_heartbeat_at = now() WHERE id = $1",
        )
        .bind(id.0)
        .bind(progress as i32)
        .execute(&self.pool)
        .await;
        if let Err(error) = written {
            log::warn(format!("{id}: progress not saved: {error}"));
        }
    }
}
