//! How many connections a run may hold on a server it shares (a URL): read
//! once at the start from `max_connections`, `superuser_reserved_connections`
//! and the client sessions already there, and spent as test slots, so that
//! tests queue for a slot instead of failing with "too many clients".
//!
//! What a slot covers: the test's pool (`pool_size` connections), one
//! connection of its own outside the pool (`Db::connect`, `Db::count`, a
//! `PgConnection` fixture, `#[persists]`'s count), the session that resets
//! its database after it, and one idle reset session kept with a reusable
//! database. Besides the slots, the run holds `FIXED` connections: its
//! admin pool, the session that marks it alive, and the one that migrates
//! the template. Connections a test opens itself from `Db::url()` are not
//! counted.

use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::infra::InfraError;

/// The admin pool's connections, the run's own session, and the one that
/// migrates (then reads) the template.
pub(crate) const FIXED: u32 = ADMIN_POOL + 2;

/// Connections of the admin pool: clones, drops, the sweep.
pub(crate) const ADMIN_POOL: u32 = 4;

/// The pool each test gets when the server has room.
pub(crate) const POOL_SIZE: u32 = 10;

/// Per slot beyond its pool: one connection outside it, the reset session,
/// and an idle reusable database's session.
const BESIDES_POOL: u32 = 3;

/// The server's numbers, as read at the start.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: i64,
    reserved: i64,
    in_use: i64,
    tests_at_once: usize,
}

/// The run's limits, for messages about "too many clients".
static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Test slots and idle sessions the run may hold at once.
#[derive(Debug)]
pub(crate) struct Budget {
    slots: Arc<Semaphore>,
    idle_sessions: Arc<Semaphore>,
    pub(crate) pool_size: u32,
}

impl Budget {
    /// No limit: a server the run started for itself.
    pub(crate) fn unlimited() -> Self {
        Self {
            slots: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            idle_sessions: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            pool_size: POOL_SIZE,
        }
    }

    /// Reads the server's limits on `admin` (whose sessions carry
    /// `application_name = own`) and divides what is left into slots; an
    /// error naming the numbers when not even one test fits. Without
    /// pg_read_all_stats, other users' sessions show no `backend_type`:
    /// sessions on a database are counted then (autovacuum workers too,
    /// which errs on the safe side).
    pub(crate) async fn read(admin: &PgPool, own: &str, server: &str) -> Result<Self, InfraError> {
        let (max_connections, reserved, in_use): (i64, i64, i64) = sqlx::query_as(
            "SELECT current_setting('max_connections')::bigint,
                    current_setting('superuser_reserved_connections')::bigint,
                    (SELECT count(*) FROM pg_stat_activity
                     WHERE datname IS NOT NULL
                       AND (backend_type = 'client backend' OR backend_type IS NULL)
                       AND application_name IS DISTINCT FROM $1)",
        )
        .bind(own)
        .fetch_one(admin)
        .await
        .map_err(|error| {
            InfraError::new(format!(
                "cannot read the connection limits of {server}: {}",
                crate::infra::postgres::sql::describe(&error)
            ))
        })?;
        let free = max_connections - reserved - in_use - i64::from(FIXED);
        let smallest = i64::from(1 + BESIDES_POOL);
        if free < smallest {
            return Err(InfraError::new(format!(
                "{server} has no room for this run: max_connections = {max_connections}, {reserved} reserved for superusers, {in_use} in use by other sessions, and a run needs at least {}; close some of those sessions or raise max_connections",
                i64::from(FIXED) + smallest
            )));
        }
        let per_slot = i64::from(POOL_SIZE + BESIDES_POOL);
        let (pool_size, tests_at_once) = if free >= per_slot {
            (POOL_SIZE, (free / per_slot) as usize)
        } else {
            ((free - i64::from(BESIDES_POOL)) as u32, 1)
        };
        let limits = Limits {
            max_connections,
            reserved,
            in_use,
            tests_at_once,
        };
        let _ = LIMITS.set(limits);
        eprintln!(
            "postgres: the server allows max_connections = {max_connections} ({reserved} reserved for superusers, {in_use} in use by others): at most {tests_at_once} test(s) at once on it, with pools of {pool_size}"
        );
        Ok(Self {
            slots: Arc::new(Semaphore::new(tests_at_once)),
            idle_sessions: Arc::new(Semaphore::new(tests_at_once)),
            pool_size,
        })
    }

    /// Waits for a test slot; the slot is free again when the permit drops.
    pub(crate) async fn slot(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Room to keep one more idle reset session, if there is any.
    pub(crate) fn idle_session(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.idle_sessions).try_acquire_owned().ok()
    }
}

/// "; ...: lower --test-threads or raise max_connections", with the
/// numbers read at the start when there are some.
pub(crate) fn too_many_hint() -> String {
    match LIMITS.get() {
        Some(limits) => format!(
            "; the server allows max_connections = {} ({} reserved for superusers, {} were in use by others when the run started, and it ran at most {} test(s) at once): lower --test-threads or raise max_connections",
            limits.max_connections, limits.reserved, limits.in_use, limits.tests_at_once
        ),
        None => {
            "; the server has no connection left: lower --test-threads or raise max_connections"
                .to_owned()
        }
    }
}
