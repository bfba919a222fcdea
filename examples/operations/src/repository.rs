//! Where operations are stored. The service talks to the trait; the
//! in-memory store here is what the service uses until a database backs it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::model::{NewOperation, Operation, OperationId, OperationStatus};

/// Why the store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryError {
    NotFound(OperationId),
}

impl std::fmt::Display for RepositoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepositoryError::NotFound(id) => write!(f, "operation {id} not found"),
        }
    }
}

impl std::error::Error for RepositoryError {}

/// Storage of operations.
pub trait OperationsRepository: Send + Sync {
    fn insert(&self, new: &NewOperation) -> Result<Operation, RepositoryError>;
    fn get(&self, id: OperationId) -> Result<Operation, RepositoryError>;
    fn set_status(&self, id: OperationId, status: OperationStatus) -> Result<(), RepositoryError>;
    /// Running operations idle for at least `seconds`.
    fn stale(&self, seconds: u64) -> Result<Vec<Operation>, RepositoryError>;
}

/// Operations kept in memory.
#[derive(Debug, Default)]
pub struct InMemoryRepository {
    rows: Mutex<BTreeMap<OperationId, Operation>>,
}

impl InMemoryRepository {
    pub fn new() -> Self {
        Self::default()
    }
}

impl OperationsRepository for InMemoryRepository {
    fn insert(&self, new: &NewOperation) -> Result<Operation, RepositoryError> {
        let mut rows = self
            .rows
            .lock()
            .expect("no thread panics while holding the lock");
        let id = OperationId(rows.len() as u64 + 1);
        let operation = Operation {
            id,
            kind: new.kind.clone(),
            symbol: new.symbol.clone(),
            status: OperationStatus::Pending,
            idle_seconds: 0,
        };
        rows.insert(id, operation.clone());
        Ok(operation)
    }

    fn get(&self, id: OperationId) -> Result<Operation, RepositoryError> {
        let rows = self
            .rows
            .lock()
            .expect("no thread panics while holding the lock");
        rows.get(&id).cloned().ok_or(RepositoryError::NotFound(id))
    }

    fn set_status(&self, id: OperationId, status: OperationStatus) -> Result<(), RepositoryError> {
        let mut rows = self
            .rows
            .lock()
            .expect("no thread panics while holding the lock");
        let row = rows.get_mut(&id).ok_or(RepositoryError::NotFound(id))?;
        row.status = status;
        Ok(())
    }

    fn stale(&self, seconds: u64) -> Result<Vec<Operation>, RepositoryError> {
        let rows = self
            .rows
            .lock()
            .expect("no thread panics while holding the lock");
        Ok(rows
            .values()
            .filter(|row| row.status == OperationStatus::Running && row.idle_seconds >= seconds)
            .cloned()
            .collect())
    }
}
