//! A template database migrated once per run, and a database per test
//! cloned from it, prepared ahead of demand in the background.
//!
//! Every database the run creates is named `gt_<run id>_...`, and the run
//! holds an advisory lock on its id for its whole life. A later run that
//! finds `gt_` databases of the same owner whose lock it can take knows
//! their run is dead (killed with `kill -9`) and drops them; databases of
//! other runs alive, of other users, or without the prefix are never touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgPool};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use crate::config::{Config, Migrations};
use crate::infra::InfraError;

/// Prefix of every database a groundtruth run creates.
pub const PREFIX: &str = "gt_";

/// How many databases are cloned ahead of the tests that will take them.
const PREFETCH: usize = 4;

/// How many clones are made at once: one at a time serializes a parallel
/// run on `CREATE DATABASE` (measured: bench/persistence.py).
const CLONING_AT_ONCE: usize = 2;

/// The run's databases on one server.
pub struct Databases {
    server: PgConnectOptions,
    /// The server's URL with `{database}` where the name goes.
    url_pattern: String,
    run: String,
    template: String,
    admin: PgPool,
    /// Holds the run's advisory lock until the run ends.
    lock: Mutex<Option<PgConnection>>,
    ready: Mutex<mpsc::Receiver<Result<String, InfraError>>>,
    cloners: Mutex<JoinSet<()>>,
    drops: Mutex<JoinSet<()>>,
    pub migrations: usize,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// A database cloned for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub options: PgConnectOptions,
}

impl Databases {
    /// Removes dead runs' leftovers, creates and migrates the template, and
    /// starts cloning ahead. `server` connects to the server's maintenance
    /// database.
    pub async fn prepare(
        server: PgConnectOptions,
        url_pattern: String,
        config: &Config,
    ) -> Result<Self, InfraError> {
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(server.clone())
            .await
            .map_err(|error| InfraError::new(format!("cannot connect to PostgreSQL: {error}")))?;
        let run_id = run_id();
        let run = format!("{PREFIX}{run_id:016x}");
        let mut lock = PgConnection::connect_with(&server)
            .await
            .map_err(sql_error)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(run_id as i64)
            .execute(&mut lock)
            .await
            .map_err(sql_error)?;
        remove_dead_runs(&admin, &run).await?;

        let template = format!("{run}_template");
        execute(&admin, &format!("CREATE DATABASE {}", quote(&template))).await?;
        let migrations = migrate(&server.clone().database(&template), config).await;
        let migrations = match migrations {
            Ok(count) => count,
            Err(error) => {
                let _ = execute(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&template)),
                )
                .await;
                return Err(error);
            }
        };

        let (sender, receiver) = mpsc::channel(PREFETCH);
        let next = Arc::new(AtomicU64::new(0));
        let mut cloners = JoinSet::new();
        for _ in 0..CLONING_AT_ONCE {
            cloners.spawn(clone_ahead(
                admin.clone(),
                run.clone(),
                template.clone(),
                Arc::clone(&next),
                sender.clone(),
            ));
        }
        Ok(Self {
            server,
            url_pattern,
            run,
            template,
            admin,
            lock: Mutex::new(Some(lock)),
            ready: Mutex::new(receiver),
            cloners: Mutex::new(cloners),
            drops: Mutex::new(JoinSet::new()),
            migrations,
        })
    }

    /// A fresh database for one test, usually already cloned.
    pub async fn checkout(&self) -> Result<TestDatabase, InfraError> {
        let next = self.ready.lock().await.recv().await;
        let name = next.unwrap_or_else(|| Err(InfraError::new("the run is shutting down")))?;
        Ok(TestDatabase {
            options: self.server.clone().database(&name),
            url: self.url_pattern.replace("{database}", &name),
            name,
        })
    }

    /// Drops a test's database in the background. Close its pools first:
    /// dropping a database with open connections is many times slower.
    pub async fn release(&self, database: TestDatabase) {
        let admin = self.admin.clone();
        self.drops.lock().await.spawn(async move {
            let _ = execute(
                &admin,
                &format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote(&database.name)
                ),
            )
            .await;
        });
    }

    /// Stops cloning, waits for pending drops, then drops every database of
    /// the run, except with `keep`, which keeps `kept` (failed tests').
    pub async fn shutdown(&self, keep: &[String]) {
        // Closing the channel stops the cloners at their next clone; waiting
        // for them (not aborting) lets a CREATE already sent finish first, so
        // the listing below sees its database and drops it.
        self.ready.lock().await.close();
        let mut cloners = std::mem::take(&mut *self.cloners.lock().await);
        while cloners.join_next().await.is_some() {}
        let mut drops = std::mem::take(&mut *self.drops.lock().await);
        while drops.join_next().await.is_some() {}
        let pattern = format!("{}\\_%", self.run);
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
                .bind(pattern)
                .fetch_all(&self.admin)
                .await
                .unwrap_or_default();
        let mut drops = JoinSet::new();
        for name in names.into_iter().filter(|name| !keep.contains(name)) {
            let admin = self.admin.clone();
            drops.spawn(async move {
                let _ = execute(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&name)),
                )
                .await;
            });
        }
        while drops.join_next().await.is_some() {}
        if let Some(lock) = self.lock.lock().await.take() {
            let _ = lock.close().await;
        }
        self.admin.close().await;
    }

    /// The template's name (for messages).
    pub fn template(&self) -> &str {
        &self.template
    }
}

/// Keeps up to `PREFETCH` clones ready (with its siblings); the bounded
/// channel is the back-pressure, and its closing the signal to stop.
async fn clone_ahead(
    admin: PgPool,
    run: String,
    template: String,
    next: Arc<AtomicU64>,
    ready: mpsc::Sender<Result<String, InfraError>>,
) {
    loop {
        let Ok(permit) = ready.reserve().await else {
            return;
        };
        let name = format!("{run}_{}", next.fetch_add(1, Ordering::Relaxed));
        let created = execute(
            &admin,
            &format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote(&name),
                quote(&template)
            ),
        )
        .await
        .map(|()| name);
        permit.send(created);
    }
}

/// Drops the databases of runs that died without cleaning up: `gt_` names
/// owned by the current user whose run's advisory lock is free.
async fn remove_dead_runs(admin: &PgPool, own_run: &str) -> Result<(), InfraError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database
         WHERE datname LIKE 'gt\\_%' AND datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_all(admin)
    .await
    .map_err(sql_error)?;
    let mut runs: Vec<(String, i64)> = Vec::new();
    for name in &names {
        let Some(run) = name.get(..PREFIX.len() + 16) else {
            continue;
        };
        let Ok(id) = u64::from_str_radix(&run[PREFIX.len()..], 16) else {
            continue;
        };
        if run != own_run && !runs.iter().any(|(seen, _)| seen == run) {
            runs.push((run.to_owned(), id as i64));
        }
    }
    let mut connection = admin.acquire().await.map_err(sql_error)?;
    for (run, id) in runs {
        let dead: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(id)
            .fetch_one(&mut *connection)
            .await
            .map_err(sql_error)?;
        if !dead {
            continue;
        }
        for name in names.iter().filter(|name| name.starts_with(&run)) {
            execute(
                admin,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name)),
            )
            .await?;
        }
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(id)
            .execute(&mut *connection)
            .await;
    }
    Ok(())
}

/// Applies the configured migrations to the template; returns how many.
async fn migrate(template: &PgConnectOptions, config: &Config) -> Result<usize, InfraError> {
    let started = Instant::now();
    let directory = config.migrations_path();
    let owned;
    let migrator = match (&config.migrations, &directory) {
        (Migrations::Migrator(migrator), _) => *migrator,
        (_, Some(dir)) => {
            owned = sqlx::migrate::Migrator::new(dir.as_path())
                .await
                .map_err(|error| {
                    InfraError::new(format!(
                        "cannot read the migrations in {}: {error}",
                        dir.display()
                    ))
                })?;
            &owned
        }
        (_, None) => return Ok(0),
    };
    // Through a one-connection pool: `Migrator::run(&mut PgConnection)`
    // makes the future's `Send` unprovable ("Acquire is not general enough").
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(template.clone())
        .await
        .map_err(sql_error)?;
    let result = migrator.run(&pool).await;
    // Cloning needs the template free of connections.
    pool.close().await;
    if let Err(error) = result {
        return Err(migration_error(error, migrator, directory.as_deref()));
    }
    let count = migrator.iter().count();
    eprintln!(
        "postgres: template database migrated ({count} migrations) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(count)
}

/// "migration migrations/0003_orders.sql failed: ..." with PostgreSQL's own
/// words, once, instead of a stack trace per test.
pub(crate) fn migration_error(
    error: sqlx::migrate::MigrateError,
    migrator: &sqlx::migrate::Migrator,
    dir: Option<&Path>,
) -> InfraError {
    use sqlx::migrate::MigrateError;
    match error {
        MigrateError::ExecuteMigration(cause, version) => {
            let file = migration_file(migrator, dir, version);
            let detail = match &cause {
                sqlx::Error::Database(database) => format!(
                    "{} (SQLSTATE {})",
                    database.message(),
                    database.code().unwrap_or_default()
                ),
                other => other.to_string(),
            };
            InfraError::new(format!(
                "migration {file} failed: {detail}; fix it and run again (no persistence test can run without the schema)"
            ))
        }
        other => InfraError::new(format!("migrations failed: {other}")),
    }
}

fn migration_file(migrator: &sqlx::migrate::Migrator, dir: Option<&Path>, version: i64) -> String {
    let prefix = format!("{version}_");
    if let Some(dir) = dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with(&prefix))
            })
            .collect();
        names.sort();
        if let Some(path) = names.first() {
            return path.display().to_string();
        }
    }
    migrator
        .iter()
        .find(|migration| migration.version == version)
        .map(|migration| format!("{version}_{}", migration.description))
        .unwrap_or_else(|| version.to_string())
}

/// Runs one statement built at run time from names this module made.
async fn execute(admin: &PgPool, statement: &str) -> Result<(), InfraError> {
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(admin)
        .await
        .map(drop)
        .map_err(sql_error)
}

fn sql_error(error: sqlx::Error) -> InfraError {
    InfraError::new(format!("PostgreSQL: {error}"))
}

/// A quoted identifier: `"name"`, with inner quotes doubled.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A run id unlikely to collide with another run's: time and process id,
/// mixed.
fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    let mixed = nanos ^ (u64::from(std::process::id()) << 40) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64's finalizer spreads the bits.
    let mut z = mixed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & 0x7fff_ffff_ffff_ffff
}
