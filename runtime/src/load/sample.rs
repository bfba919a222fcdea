//! What the load did to its surroundings: the connections the test's own
//! database saw (sampled from `pg_stat_activity` on a session of the
//! framework's own), the deadlocks PostgreSQL counted there, and the
//! process's resident memory.
//!
//! Deadlocks come from `pg_stat_database.deadlocks`. PostgreSQL 15 keeps a
//! backend's counts in that backend and flushes them at most once a second,
//! or up to 10 s later when it goes idle: reading the view right after the
//! run would miss a deadlock detected in its last second. A backend flushes
//! everything when it exits, and leaves `pg_stat_activity` only after that
//! (its statistics hook runs before its status entry is cleared), so
//! [`DbWatch::deadlocks`] ends the test's other sessions on the database,
//! waits for them to be gone, clears its own statistics snapshot and reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::fixtures::Db;

/// How often the connections are counted. A peak shorter than this can be
/// missed; a pool that exceeds its limit does so for far longer.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// How long the test's other sessions may take to exit before the
/// deadlock count is read anyway.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Connections of the test's database that are not the framework's own:
/// the sampler's and the run's observer session.
const OTHERS: &str = "FROM pg_stat_activity
     WHERE datname = current_database()
       AND backend_type = 'client backend'
       AND pid <> pg_backend_pid()
       AND pid <> ALL($1)";

/// The sampler's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    pub peak_connections: i64,
    pub samples: u64,
    /// Time the sampler spent in its queries.
    pub busy: Duration,
}

/// A session of the framework's own on the test's database.
pub(crate) struct DbWatch {
    database: String,
    /// Sessions of the run's own, not counted.
    excluded: Vec<i32>,
    baseline_deadlocks: i64,
    connection: Option<PgConnection>,
    sampler: Option<Sampler>,
}

/// The running sampler: told to stop, it hands back its session and figures.
struct Sampler {
    stop: Arc<Notify>,
    task: JoinHandle<(PgConnection, Sampled)>,
}

impl DbWatch {
    /// Opens the session and reads the deadlock count before the load.
    pub(crate) async fn open(db: &Db) -> Result<Self, String> {
        let cannot = |error: sqlx::Error| {
            format!(
                "load: cannot watch the test's database {}: {error}",
                db.name()
            )
        };
        let mut excluded = Vec::new();
        if let Some(observer) = db.observer.lock().await.as_mut()
            && let Ok(pid) = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .fetch_one(observer)
                .await
        {
            excluded.push(pid);
        }
        let mut connection = db.connect().await.map_err(cannot)?;
        let baseline_deadlocks = read_deadlocks(&mut connection).await.map_err(cannot)?;
        Ok(Self {
            database: db.name().to_owned(),
            excluded,
            baseline_deadlocks,
            connection: Some(connection),
            sampler: None,
        })
    }

    /// Starts counting connections every [`SAMPLE_INTERVAL`].
    pub(crate) fn start(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let excluded = self.excluded.clone();
        let task = tokio::spawn(async move {
            let mut sampled = Sampled::default();
            let count = format!("SELECT count(*) {OTHERS}");
            let mut next = tokio::time::Instant::now();
            loop {
                let started = Instant::now();
                if let Ok(now) = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count.as_str()))
                    .bind(&excluded)
                    .fetch_one(&mut connection)
                    .await
                {
                    sampled.peak_connections = sampled.peak_connections.max(now);
                    sampled.samples += 1;
                }
                sampled.busy += started.elapsed();
                next += SAMPLE_INTERVAL;
                tokio::select! {
                    () = stopped.notified() => break,
                    () = tokio::time::sleep_until(next) => {}
                }
            }
            (connection, sampled)
        });
        self.sampler = Some(Sampler { stop, task });
    }

    /// Stops the sampler and returns its figures.
    pub(crate) async fn stop(&mut self) -> Option<Sampled> {
        let sampler = self.sampler.take()?;
        sampler.stop.notify_one();
        let (connection, sampled) = sampler.task.await.ok()?;
        self.connection = Some(connection);
        Some(sampled)
    }

    /// Deadlocks PostgreSQL detected in the database since [`open`](Self::open):
    /// ends the test's other sessions so that they flush their statistics,
    /// then reads. Call it when the test no longer needs them.
    pub(crate) async fn deadlocks(&mut self) -> Result<i64, String> {
        let database = self.database.clone();
        let cannot =
            move |error: sqlx::Error| format!("load: cannot read deadlocks of {database}: {error}");
        let Some(connection) = self.connection.as_mut() else {
            return Err(format!("load: lost the session watching {}", self.database));
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) {OTHERS}"
        )))
        .bind(&self.excluded)
        .execute(&mut *connection)
        .await
        .map_err(cannot.clone())?;
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            let left: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) {OTHERS}")))
                    .bind(&self.excluded)
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(cannot.clone())?;
            if left == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let now = read_deadlocks(connection).await.map_err(cannot)?;
        Ok(now - self.baseline_deadlocks)
    }

    /// Closes the session.
    pub(crate) async fn close(mut self) {
        let _ = self.stop().await;
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }
}

/// `pg_stat_database.deadlocks` of the session's database, read after
/// dropping any statistics snapshot the session holds.
async fn read_deadlocks(connection: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *connection)
        .await?;
    sqlx::query_scalar(
        "SELECT coalesce(deadlocks, 0) FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(connection)
    .await
}

/// The process's resident memory in bytes (`/proc/self/statm`), or `None`
/// where there is no such file.
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
