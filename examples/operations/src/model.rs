//! Operations: long-running jobs (training, backtests) and their states.

use std::fmt;

/// Identifier of an operation (the row's id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationId(pub i64);

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op-{}", self.0)
    }
}

/// Where an operation is in its life; stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Pending,
    Running,
    Completed,
    Cancelled,
    Failed,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Pending => "PENDING",
            OperationStatus::Running => "RUNNING",
            OperationStatus::Completed => "COMPLETED",
            OperationStatus::Cancelled => "CANCELLED",
            OperationStatus::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            OperationStatus::Pending,
            OperationStatus::Running,
            OperationStatus::Completed,
            OperationStatus::Cancelled,
            OperationStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperation {
    pub kind: String,
    pub symbol: String,
}

impl NewOperation {
    /// A training run on `symbol`.
    pub fn training(symbol: &str) -> Self {
        Self {
            kind: "training".to_owned(),
            symbol: symbol.to_owned(),
        }
    }
}

/// A stored operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: OperationId,
    pub kind: String,
    pub symbol: String,
    pub status: OperationStatus,
}
