//! Where operations are stored: a trait the service talks to, and its
//! PostgreSQL implementation (with the read cache the service's reads use).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::model::{NewOperation, Operation, OperationId, OperationStatus};

/// Storage of operations.
#[async_trait]
pub trait OperationsRepository: Send + Sync {
    async fn insert(&self, new: &NewOperation) -> Result<Operation, sqlx::Error>;
    async fn get(&self, id: OperationId) -> Result<Option<Operation>, sqlx::Error>;
    async fn set_status(&self, id: OperationId, status: OperationStatus)
    -> Result<(), sqlx::Error>;
    /// Cancels a pending or running operation.
    async fn cancel(&self, id: OperationId) -> Result<(), sqlx::Error>;
    /// Running operations whose last heartbeat is older than `silence`.
    async fn stale(&self, silence: Duration) -> Result<Vec<Operation>, sqlx::Error>;
    async fn log_feature(
        &self,
        id: OperationId,
        feature: &str,
        value: f64,
    ) -> Result<(), sqlx::Error>;
    async fn delete(&self, id: OperationId) -> Result<(), sqlx::Error>;
}

/// Operations in PostgreSQL, with a cache of the rows it has seen.
#[derive(Debug)]
pub struct PgOperationsRepository {
    pool: PgPool,
    /// One connection kept for every query instead of the pool's.
    pinned: Option<tokio::sync::Mutex<PgConnection>>,
    cache: Mutex<HashMap<OperationId, Operation>>,
}

/// The connection one query runs on.
enum Handle<'a> {
    Pooled(PoolConnection<Postgres>),
    Pinned(tokio::sync::MutexGuard<'a, PgConnection>),
}

impl Deref for Handle<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Handle::Pooled(connection) => connection,
            Handle::Pinned(connection) => connection,
        }
    }
}

impl DerefMut for Handle<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Handle::Pooled(connection) => connection,
            Handle::Pinned(connection) => connection,
        }
    }
}

impl PgOperationsRepository {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            pinned: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Every query on `connection`, never on a fresh one from `pool`.
    pub fn pinned(connection: PgConnection, pool: PgPool) -> Self {
        Self {
            pinned: Some(tokio::sync::Mutex::new(connection)),
            ..Self::new(pool)
        }
    }

    async fn connection(&self) -> Result<Handle<'_>, sqlx::Error> {
        match &self.pinned {
            Some(connection) => Ok(Handle::Pinned(connection.lock().await)),
            None => Ok(Handle::Pooled(self.pool.acquire().await?)),
        }
    }

    fn remember(&self, operation: &Operation) {
        self.cache
            .lock()
            .expect("no thread panics while holding the cache")
            .insert(operation.id, operation.clone());
    }
}

type Row = (i64, String, String, String);

fn from_row((id, kind, symbol, status): Row) -> Operation {
    Operation {
        id: OperationId(id),
        kind,
        symbol,
        status: OperationStatus::parse(&status).unwrap_or(OperationStatus::Failed),
    }
}

#[async_trait]
impl OperationsRepository for PgOperationsRepository {
    async fn insert(&self, new: &NewOperation) -> Result<Operation, sqlx::Error> {
        if cfg!(feature = "bug-cache-only-write") {
            // The incident: the row is "created" in the cache only.
            let mut cache = self
                .cache
                .lock()
                .expect("no thread panics while holding the cache");
            let operation = Operation {
                id: OperationId(cache.len() as i64 + 1),
                kind: new.kind.clone(),
                symbol: new.symbol.clone(),
                status: OperationStatus::Pending,
            };
            cache.insert(operation.id, operation.clone());
            return Ok(operation);
        }
        let row: Row = sqlx::query_as(
            "INSERT INTO operations (kind, symbol) VALUES ($1, $2) RETURNING id, kind, symbol, status",
        )
        .bind(&new.kind)
        .bind(&new.symbol)
        .fetch_one(&mut *self.connection().await?)
        .await?;
        let operation = from_row(row);
        self.remember(&operation);
        Ok(operation)
    }

    async fn get(&self, id: OperationId) -> Result<Option<Operation>, sqlx::Error> {
        let row: Option<Row> =
            sqlx::query_as("SELECT id, kind, symbol, status FROM operations WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *self.connection().await?)
                .await?;
        Ok(row.map(from_row))
    }

    async fn set_status(
        &self,
        id: OperationId,
        status: OperationStatus,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE operations SET status = $2, last_heartbeat_at = now() WHERE id = $1")
            .bind(id.0)
            .bind(status.as_str())
            .execute(&mut *self.connection().await?)
            .await?;
        Ok(())
    }

    async fn cancel(&self, id: OperationId) -> Result<(), sqlx::Error> {
        let mut connection = self.connection().await?;
        let mut transaction = connection.begin().await?;
        sqlx::query("UPDATE operations SET status = 'CANCELLED' WHERE id = $1 AND status IN ('PENDING', 'RUNNING')")
            .bind(id.0)
            .execute(&mut *transaction)
            .await?;
        if cfg!(feature = "bug-uncommitted-cancel") {
            // The incident: the transaction is dropped, so rolled back.
            return Ok(());
        }
        transaction.commit().await
    }

    async fn stale(&self, silence: Duration) -> Result<Vec<Operation>, sqlx::Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, kind, symbol, status FROM operations
             WHERE status = 'RUNNING' AND last_heartbeat_at < now() - make_interval(secs => $1)",
        )
        .bind(silence.as_secs_f64())
        .fetch_all(&mut *self.connection().await?)
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    async fn log_feature(
        &self,
        id: OperationId,
        feature: &str,
        value: f64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO features_log (operation_id, feature, value) VALUES ($1, $2, $3)")
            .bind(id.0)
            .bind(feature)
            .bind(value)
            .execute(&mut *self.connection().await?)
            .await?;
        Ok(())
    }

    async fn delete(&self, id: OperationId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM operations WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.connection().await?)
            .await?;
        self.cache
            .lock()
            .expect("no thread panics while holding the cache")
            .remove(&id);
        Ok(())
    }
}
