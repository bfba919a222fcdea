//! A template database migrated once per run, and a database per test
//! cloned from it, prepared ahead of demand in the background. A database
//! a test has finished with is reset and verified (see `reset.rs`) and
//! handed to a later test; one that cannot be is dropped.
//!
//! Every database the run creates is named `vy_<run id>_template` or
//! `vy_<run id>_<n>` and carries the comment `verily run vy_<run id>`, and
//! every session of the run carries the application name `verily run
//! vy_<run id>`. `pg_stat_activity` shows every session of the server to
//! every user, whichever database it is connected to, so a run is alive
//! while a session of it is listed there. A later run drops a database only
//! when its name matches exactly, it (or its run's template) carries that
//! run's comment, that run has no session left, and it
//! belongs to the same user: the databases of other
//! runs alive, of other users, and every database verily did not make are
//! never touched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, mpsc};
use tokio::task::JoinSet;

use super::budget::{self, Budget};
use super::reset::{Baseline, Unusable};
use super::sweep::{mark, owner_mark, remove_dead_runs};
use crate::config::Config;
use crate::infra::InfraError;
use crate::infra::postgres::migrations::Schema;
// `quote` is named by the fixtures through this module.
pub(crate) use crate::infra::postgres::sql::quote;
use crate::infra::postgres::sql::{describe, execute, sql_error};
use crate::infra::process::run_id;

/// Prefix of every database a verily run creates.
pub const PREFIX: &str = "vy_";

/// How many databases are cloned ahead of the tests that will take them.
const PREFETCH: usize = 4;

/// The same, when databases are reused after a reset.
const PREFETCH_REUSING: usize = 2;

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
    /// The run's session that says it is alive, held until the run ends.
    lock: Mutex<Option<PgConnection>>,
    budget: Arc<Budget>,
    ready: Mutex<mpsc::Receiver<Result<String, InfraError>>>,
    cloners: Mutex<JoinSet<()>>,
    drops: Mutex<JoinSet<()>>,
    pub migrations: usize,
    /// The template's state, when databases are reused.
    baseline: Option<Arc<Baseline>>,
    /// Reset and verified databases, each with the session that reset it
    /// and that session's place in the budget.
    reusable: Arc<std::sync::Mutex<Vec<Reusable>>>,
    /// Resets under way, and a signal each time one ends.
    resetting: Arc<AtomicUsize>,
    reset_done: Arc<Notify>,
    counts: Arc<Counts>,
}

/// A reset and verified database, its session, and the session's room in
/// the connection budget.
type Reusable = (String, PgConnection, OwnedSemaphorePermit);

/// What happened to the run's databases, said once at the end.
#[derive(Debug, Default)]
struct Counts {
    cloned: AtomicUsize,
    /// Clones that failed (a full disk, the server's limits): not cloned.
    failed: AtomicUsize,
    reused: AtomicUsize,
    /// Why databases were dropped instead of reused, and whose.
    refusals: std::sync::Mutex<Vec<(String, Vec<&'static str>)>>,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// A database for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub options: PgConnectOptions,
    /// The run's own session on the database (the one that reset it), if
    /// it has one: `#[persists]` counts on it before the body.
    pub observer: Observer,
    /// The most connections the test's pool may open.
    pub pool_size: u32,
    /// The test it was checked out for (`module::fn`), named in the run's
    /// summary when its database cannot be reused.
    pub test: &'static str,
    /// The test's place in the run's connection budget, given back once its
    /// database is reset or dropped.
    #[expect(dead_code, reason = "held, never read: dropping it frees the slot")]
    pub(crate) slot: Option<Arc<OwnedSemaphorePermit>>,
}

/// A session of the run's own on a test's database, outside the test's
/// pools; empty for a fresh clone.
pub type Observer = Arc<Mutex<Option<PgConnection>>>;

impl Databases {
    /// Removes dead runs' leftovers, creates and migrates the template, and
    /// starts cloning ahead. `server` connects to the server's maintenance
    /// database; `shared_server` (a URL) says other clients use it, so the
    /// run keeps under its connection limit.
    pub async fn prepare(
        server: PgConnectOptions,
        url_pattern: String,
        config: &Config,
        shared_server: Option<&str>,
    ) -> Result<Self, InfraError> {
        let run_id = run_id();
        let run = format!("{PREFIX}{run_id:016x}");
        let own = owner_mark(&run);
        let server = server.application_name(&own);
        let admin = PgPoolOptions::new()
            .max_connections(budget::ADMIN_POOL)
            .connect_with(server.clone())
            .await
            .map_err(|error| {
                InfraError::new(format!(
                    "cannot connect to PostgreSQL: {}",
                    describe(&error)
                ))
            })?;
        let budget = match shared_server {
            Some(described) => Budget::read(&admin, &own, described).await?,
            None => Budget::unlimited(),
        };
        // Connected before any database of the run exists: another run that
        // sees one of them sees this session too.
        let lock = PgConnection::connect_with(&server)
            .await
            .map_err(sql_error)?;
        remove_dead_runs(&admin, &run).await?;

        let template = format!("{run}_template");
        let schema = Schema::load(config).await?;
        // Until `Self` exists (it drops the template in `shutdown`), a
        // signal's teardown finds the template here.
        *preparing() = Some((admin.clone(), template.clone()));
        execute(&admin, &format!("CREATE DATABASE {}", quote(&template))).await?;
        mark(&admin, &template, &own).await?;
        let migrations = schema
            .migrate_template(&server.clone().database(&template))
            .await;
        let migrations = match migrations {
            Ok(count) => count,
            Err(error) => {
                let _ = execute(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&template)),
                )
                .await;
                *preparing() = None;
                return Err(error);
            }
        };

        let baseline = if config.reuses_databases() {
            match capture(&server.clone().database(&template)).await {
                Ok(baseline) => Some(Arc::new(baseline)),
                Err(error) => {
                    eprintln!(
                        "postgres: databases will not be reused (the template's state could not be read: {error})"
                    );
                    None
                }
            }
        } else {
            None
        };

        // Reused databases serve most tests: a couple of clones ahead cover
        // the first ones and the databases that could not be reset.
        let prefetch = if baseline.is_some() {
            PREFETCH_REUSING
        } else {
            PREFETCH
        };
        let (sender, receiver) = mpsc::channel(prefetch);
        let next = Arc::new(AtomicU64::new(0));
        let mut cloners = JoinSet::new();
        for _ in 0..CLONING_AT_ONCE {
            cloners.spawn(clone_ahead(
                admin.clone(),
                run.clone(),
                own.clone(),
                template.clone(),
                Arc::clone(&next),
                sender.clone(),
            ));
        }
        *preparing() = None;
        Ok(Self {
            server,
            url_pattern,
            run,
            template,
            admin,
            lock: Mutex::new(Some(lock)),
            budget: Arc::new(budget),
            ready: Mutex::new(receiver),
            cloners: Mutex::new(cloners),
            drops: Mutex::new(JoinSet::new()),
            migrations,
            baseline,
            reusable: Arc::default(),
            resetting: Arc::default(),
            reset_done: Arc::default(),
            counts: Arc::default(),
        })
    }

    /// A database in the template's state for one test: one a previous test
    /// used, reset and verified; else a clone made ahead, if one is ready;
    /// else, while a reset is under way, that database (a few milliseconds
    /// away) rather than waiting for a `CREATE DATABASE`. Once the run has a
    /// spare database or two, resets happen while other tests run and no
    /// test waits for one.
    pub async fn checkout(&self) -> Result<TestDatabase, InfraError> {
        let slot = self.budget.slot().await;
        let name = loop {
            let done = self.reset_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            let reused = self.reusable.lock().expect("poisoned").pop();
            if let Some((name, resetter, _idle)) = reused {
                self.counts.reused.fetch_add(1, Ordering::Relaxed);
                break (name, Some(resetter));
            }
            let mut ready = self.ready.lock().await;
            let clone = match ready.try_recv() {
                Ok(clone) => Some(clone),
                Err(_) if self.resetting.load(Ordering::Acquire) == 0 => {
                    let next = ready.recv().await;
                    Some(next.unwrap_or_else(|| Err(InfraError::new("the run is shutting down"))))
                }
                Err(_) => None,
            };
            drop(ready);
            if let Some(clone) = clone {
                let counter = match &clone {
                    Ok(_) => &self.counts.cloned,
                    Err(_) => &self.counts.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                break (clone?, None);
            }
            done.await;
        };
        let (name, observer) = name;
        Ok(TestDatabase {
            options: self.server.clone().database(&name),
            url: self.url_pattern.replace("{database}", &name),
            name,
            observer: Arc::new(Mutex::new(observer)),
            pool_size: self.budget.pool_size,
            test: "",
            slot: Some(Arc::new(slot)),
        })
    }

    /// Takes a test's database back, in the background: resets and
    /// verifies it for a later test, or drops it when it cannot be reused.
    /// Close its pools first: the reset waits for the test's sessions to
    /// end, and dropping a database with open connections is many times
    /// slower.
    pub async fn release(&self, database: TestDatabase) {
        let admin = self.admin.clone();
        let baseline = self.baseline.clone();
        let resetter = database.observer.lock().await.take();
        let reusable = Arc::clone(&self.reusable);
        let counts = Arc::clone(&self.counts);
        let resetting = Arc::clone(&self.resetting);
        let reset_done = Arc::clone(&self.reset_done);
        let budget = Arc::clone(&self.budget);
        if baseline.is_some() {
            resetting.fetch_add(1, Ordering::AcqRel);
        }
        self.drops.lock().await.spawn(async move {
            if let Some(baseline) = baseline {
                let result = reset(&baseline, &database, resetter).await;
                let reused = match (result, budget.idle_session()) {
                    (Ok(resetter), Some(idle)) => {
                        reusable.lock().expect("poisoned").push((
                            database.name.clone(),
                            resetter,
                            idle,
                        ));
                        true
                    }
                    (Ok(resetter), None) => {
                        let _ = resetter.close().await;
                        counts.refuse(
                            Unusable(
                                "the connection budget had no room for its session".to_owned(),
                            ),
                            database.test,
                        );
                        false
                    }
                    (Err(unusable), _) => {
                        counts.refuse(unusable, database.test);
                        false
                    }
                };
                resetting.fetch_sub(1, Ordering::AcqRel);
                reset_done.notify_waiters();
                if reused {
                    return;
                }
            }
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
    /// With `server_goes_too` (an ephemeral cluster about to be thrown
    /// away), nothing is dropped: dropping would only cost the run's end
    /// time.
    pub async fn shutdown(&self, keep: &[String], server_goes_too: bool) {
        // Closing the channel stops the cloners at their next clone; waiting
        // for them (not aborting) lets a CREATE already sent finish first, so
        // the listing below sees its database and drops it.
        self.ready.lock().await.close();
        let mut cloners = std::mem::take(&mut *self.cloners.lock().await);
        while cloners.join_next().await.is_some() {}
        let mut drops = std::mem::take(&mut *self.drops.lock().await);
        while drops.join_next().await.is_some() {}
        self.report();
        if server_goes_too {
            return;
        }
        // Their sessions end first: a database with none drops many times faster.
        let sessions: Vec<PgConnection> = {
            let mut reusable = self.reusable.lock().expect("poisoned");
            reusable.drain(..).map(|(_, session, _)| session).collect()
        };
        for session in sessions {
            let _ = session.close().await;
        }
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

    /// One line on how the run's databases were provided, when reused.
    fn report(&self) {
        if self.baseline.is_none() {
            return;
        }
        let cloned = self.counts.cloned.load(Ordering::Relaxed);
        let reused = self.counts.reused.load(Ordering::Relaxed);
        let failed = match self.counts.failed.load(Ordering::Relaxed) {
            0 => String::new(),
            failed => format!("; {failed} could not be cloned (see the tests' messages)"),
        };
        if cloned + reused == 0 && failed.is_empty() {
            return;
        }
        eprintln!(
            "postgres: {} test database(s): {cloned} cloned, {reused} reused after a verified reset{}{failed}",
            cloned + reused,
            self.counts.refusals()
        );
    }

    /// The template's name (for messages).
    pub fn template(&self) -> &str {
        &self.template
    }
}

impl Counts {
    fn refuse(&self, Unusable(why): Unusable, test: &'static str) {
        let mut refusals = self.refusals.lock().expect("poisoned");
        match refusals.iter_mut().find(|(seen, _)| *seen == why) {
            Some((_, tests)) => tests.push(test),
            None => refusals.push((why, vec![test])),
        }
    }

    /// "; 2 dropped instead of reused: the test changed the schema (1), ..."
    fn refusals(&self) -> String {
        /// Reasons named; the rest are counted.
        const NAMED: usize = 4;
        let refusals = self.refusals.lock().expect("poisoned");
        let total: usize = refusals.iter().map(|(_, tests)| tests.len()).sum();
        if total == 0 {
            return String::new();
        }
        let mut reasons: Vec<String> = refusals
            .iter()
            .take(NAMED)
            .map(|(why, tests)| format!("{why} ({})", count_and_names(tests)))
            .collect();
        if refusals.len() > NAMED {
            reasons.push(format!("{} other reasons", refusals.len() - NAMED));
        }
        format!(
            "; {total} dropped instead of reused: {}",
            reasons.join(", ")
        )
    }
}

/// `2: a::b, c::d`: how many tests, and the first few by name (a test that
/// left a session open is told so by name, not only counted).
fn count_and_names(tests: &[&'static str]) -> String {
    /// Tests named per reason; the rest are counted.
    const NAMED: usize = 3;
    let mut names: Vec<&str> = tests
        .iter()
        .copied()
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut said = names
        .iter()
        .take(NAMED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED {
        said.push_str(&format!(" and {} more", names.len() - NAMED));
    }
    if said.is_empty() {
        tests.len().to_string()
    } else {
        format!("{}: {said}", tests.len())
    }
}

/// The template of a run whose `prepare` has not returned yet, with the
/// pool that made it.
fn preparing() -> std::sync::MutexGuard<'static, Option<(PgPool, String)>> {
    static PREPARING: std::sync::Mutex<Option<(PgPool, String)>> = std::sync::Mutex::new(None);
    PREPARING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For the teardown: drops the template of a `prepare` that a signal cut
/// short (no clone of it exists yet); nothing once `prepare` returned.
pub async fn abandon_preparation() {
    let Some((admin, template)) = preparing().take() else {
        return;
    };
    let _ = execute(
        &admin,
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&template)),
    )
    .await;
}

/// The template's state, read on a session of its own that is closed
/// before cloning starts (a template with a session cannot be cloned).
pub(crate) async fn capture(template: &PgConnectOptions) -> Result<Baseline, sqlx::Error> {
    let mut connection = PgConnection::connect_with(template).await?;
    let baseline = Baseline::capture(&mut connection).await;
    let _ = connection.close().await;
    baseline
}

/// Resets a test's database on the session kept for it (opened on its
/// first reset) and returns the session for the next one.
pub(crate) async fn reset(
    baseline: &Baseline,
    database: &TestDatabase,
    resetter: Option<PgConnection>,
) -> Result<PgConnection, Unusable> {
    let mut resetter = match resetter {
        Some(resetter) => resetter,
        None => PgConnection::connect_with(&database.options)
            .await
            .map_err(|error| Unusable(format!("cannot connect to reset it: {error}")))?,
    };
    match baseline.reset(&mut resetter).await {
        Ok(()) => Ok(resetter),
        Err(unusable) => {
            let _ = resetter.close().await;
            Err(unusable)
        }
    }
}

/// Keeps up to `PREFETCH` clones ready (with its siblings); the bounded
/// channel is the back-pressure, and its closing the signal to stop.
async fn clone_ahead(
    admin: PgPool,
    run: String,
    own: String,
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
        .await;
        let created = match created {
            Ok(()) => mark(&admin, &name, &own).await.map(|()| name),
            Err(error) => Err(error),
        };
        permit.send(created);
    }
}
