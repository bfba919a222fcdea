//! Isolation on the run's Redis server: each test leases a logical database
//! of its own (`SELECT n`, `redis://host:port/n`), flushed when it is given
//! back. On a server the run started, every database is the run's; on a
//! server named by URL, the run claims a database only while it is empty
//! (or a killed run's), never database 0, and records its claims in
//! database 0 so that concurrent runs never share one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::MultiplexedConnection;
use tokio::sync::{Mutex, mpsc};

use crate::infra::InfraError;

/// How long a claim lives unless its run refreshes it (a killed run's
/// claims lapse after this).
const CLAIM_TTL: Duration = Duration::from_secs(30);

/// Whose databases these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The run started the server: every database is its own.
    Run,
    /// Someone else's server: claim, and only empty databases.
    Shared,
}

/// The run's pool of logical databases.
pub struct Databases {
    admin: MultiplexedConnection,
    ownership: Ownership,
    run: String,
    free: mpsc::UnboundedSender<u32>,
    waiting: Mutex<mpsc::UnboundedReceiver<u32>>,
    /// Databases still in the pool or leased (a claim refused by a URL
    /// server takes one out for good).
    in_circulation: AtomicUsize,
    /// On a shared server, the databases this run claimed (leased or in
    /// the pool), refreshed until the end of the run.
    claimed: Arc<std::sync::Mutex<BTreeSet<u32>>>,
    /// The databases tests hold now (checked out, not given back).
    leased: std::sync::Mutex<BTreeSet<u32>>,
    /// Set once the run shuts down; a claim holds it for reading, so none
    /// is half made (a claim without its owner record) when shutdown looks.
    closed: tokio::sync::RwLock<bool>,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases")
            .field("ownership", &self.ownership)
            .field("in_circulation", &self.in_circulation)
            .finish_non_exhaustive()
    }
}

fn claim_key(database: u32) -> String {
    format!("verily:lease:{database}")
}

/// The name of a run's connection, as `CLIENT LIST` shows it.
fn client_name(run: &str) -> String {
    format!("verily-run-{run}")
}

fn owner_key(database: u32) -> String {
    format!("verily:owner:{database}")
}

fn redis_error(what: &str) -> impl Fn(::redis::RedisError) -> InfraError + '_ {
    move |error| InfraError::new(format!("{what}: {error}"))
}

impl Databases {
    /// A pool of `range` on the server `admin` is connected to (database 0).
    pub fn new(
        admin: MultiplexedConnection,
        ownership: Ownership,
        range: std::ops::Range<u32>,
    ) -> Self {
        let (free, waiting) = mpsc::unbounded_channel();
        let count = range.len();
        for database in range {
            let _ = free.send(database);
        }
        let claimed = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let run = format!("{}-{}", std::process::id(), run_nonce());
        let refresher = (ownership == Ownership::Shared)
            .then(|| tokio::spawn(refresh_claims(admin.clone(), Arc::clone(&claimed))));
        Self {
            admin,
            ownership,
            run,
            free,
            waiting: Mutex::new(waiting),
            in_circulation: AtomicUsize::new(count),
            claimed,
            leased: std::sync::Mutex::new(BTreeSet::new()),
            closed: tokio::sync::RwLock::new(false),
            refresher,
        }
    }

    /// A database of the test's own, empty; waits while every database is
    /// leased by another test.
    pub async fn checkout(&self) -> Result<u32, InfraError> {
        loop {
            if self.in_circulation.load(Ordering::SeqCst) == 0 {
                return Err(InfraError::new(
                    "no database is free on VERILY_REDIS_URL: every one but 0 holds keys verily did not write or is claimed by another run; point it at a server (or raise its `databases`) with empty ones",
                ));
            }
            let database = {
                let mut waiting = self.waiting.lock().await;
                waiting.recv().await
            };
            let Some(database) = database else {
                return Err(InfraError::new("the run's Redis is shutting down"));
            };
            if self.is_claimed(database) {
                self.lease(database);
                return Ok(database);
            }
            if self.claim(database).await? {
                self.lease(database);
                return Ok(database);
            }
            self.in_circulation.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn lease(&self, database: u32) {
        self.leased
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(database);
    }

    fn is_claimed(&self, database: u32) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&database)
    }

    /// On a shared server: whether `database` is now the run's. It is when
    /// no live run claims it and it is empty, or was left by a killed run
    /// (then it is flushed first).
    async fn claim(&self, database: u32) -> Result<bool, InfraError> {
        if self.ownership == Ownership::Run {
            return Ok(true);
        }
        let closed = self.closed.read().await;
        if *closed {
            return Err(InfraError::new("the run's Redis is shutting down"));
        }
        let mut admin = self.admin.clone();
        let claimed: Option<String> = ::redis::cmd("SET")
            .arg(claim_key(database))
            .arg(&self.run)
            .arg("NX")
            .arg("PX")
            .arg(CLAIM_TTL.as_millis() as u64)
            .query_async(&mut admin)
            .await
            .map_err(redis_error("cannot claim a database"))?;
        if claimed.is_none() {
            return Ok(false);
        }
        let (size, previous_owner): (u64, Option<String>) = ::redis::pipe()
            .cmd("SELECT")
            .arg(database)
            .ignore()
            .cmd("DBSIZE")
            .cmd("SELECT")
            .arg(0)
            .ignore()
            .get(owner_key(database))
            .query_async(&mut admin)
            .await
            .map_err(|error| {
                InfraError::new(format!("cannot read database {database}: {error}"))
            })?;
        if size > 0 && previous_owner.is_none() {
            let _: Result<(), _> = admin.del(claim_key(database)).await;
            return Ok(false);
        }
        if size > 0 {
            self.flush(database).await?;
        }
        let _: () = admin
            .set(owner_key(database), &self.run)
            .await
            .map_err(redis_error("cannot record a claim"))?;
        // Recorded before the guard goes, so that shutdown sees it (as
        // leased: its caller hands it to a test).
        self.claimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(database);
        self.lease(database);
        drop(closed);
        Ok(true)
    }

    /// On a shared server: names the run's admin connection
    /// `verily-run-<run>`, the run id its claims and owner records hold, so
    /// that another run can see in `CLIENT LIST` whether this one lives.
    pub async fn name_connection(&self) {
        if self.ownership == Ownership::Run {
            return;
        }
        let mut admin = self.admin.clone();
        let _: Result<(), _> = ::redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(client_name(&self.run))
            .query_async(&mut admin)
            .await;
    }

    /// The runs with a connection to the server now, by the names
    /// `name_connection` gives; `None` when `CLIENT LIST` is refused (an
    /// ACL), and then only lapsed claims are dead.
    async fn live_runs(&self) -> Option<BTreeSet<String>> {
        let mut admin = self.admin.clone();
        let list: String = ::redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut admin)
            .await
            .ok()?;
        Some(
            list.lines()
                .flat_map(str::split_whitespace)
                .filter_map(|field| field.strip_prefix("name=verily-run-"))
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Drops the claim on `database` when the run that holds it has no
    /// connection to the server (it was killed): the claim need not lapse.
    /// Only that run's claim goes, compared and deleted in one script.
    async fn release_dead_claim(&self, database: u32, live: &BTreeSet<String>) {
        let mut admin = self.admin.clone();
        let Ok(Some(holder)) = admin.get::<_, Option<String>>(claim_key(database)).await else {
            return;
        };
        if holder == self.run || live.contains(&holder) {
            return;
        }
        let _: Result<i64, _> = ::redis::cmd("EVAL")
            .arg(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
            .arg(1)
            .arg(claim_key(database))
            .arg(&holder)
            .query_async(&mut admin)
            .await;
    }

    /// On a shared server: removes what killed runs left once their claims
    /// lapsed (a run refreshes its claims while it lives), or at once when
    /// their run has no connection left (`CLIENT LIST`): the owner record
    /// of a database nobody claims, and that database's keys. A database a
    /// live run claims, or that holds keys without a verily owner, is left.
    pub async fn remove_lapsed_claims(&self) {
        if self.ownership == Ownership::Run {
            return;
        }
        let mut admin = self.admin.clone();
        let mut owners: Vec<String> = Vec::new();
        {
            let Ok(mut keys) = admin.scan_match::<_, String>("verily:owner:*").await else {
                return;
            };
            while let Some(Ok(key)) = keys.next_item().await {
                owners.push(key);
            }
        }
        let live = self.live_runs().await;
        for owner in owners {
            let Some(database) = owner
                .strip_prefix("verily:owner:")
                .and_then(|number| number.parse::<u32>().ok())
                .filter(|database| *database != 0)
            else {
                continue;
            };
            if let Some(live) = &live {
                self.release_dead_claim(database, live).await;
            }
            // Claimed for a moment, as a test's would be: flushed when it
            // holds a dead run's keys; a live run's claim makes it fail.
            if matches!(self.claim(database).await, Ok(true)) {
                let _: Result<(), _> = admin.del(&[owner_key(database), claim_key(database)]).await;
                self.claimed
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&database);
                self.leased
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&database);
            }
        }
        // A run killed between claiming a database and recording itself its
        // owner left a claim with no owner record: drop it too when its run
        // is gone (the claim names its run).
        let Some(live) = live else {
            return;
        };
        let mut claims: Vec<String> = Vec::new();
        {
            let Ok(mut keys) = admin.scan_match::<_, String>("verily:lease:*").await else {
                return;
            };
            while let Some(Ok(key)) = keys.next_item().await {
                claims.push(key);
            }
        }
        for claim in claims {
            if let Some(database) = claim
                .strip_prefix("verily:lease:")
                .and_then(|number| number.parse::<u32>().ok())
            {
                self.release_dead_claim(database, &live).await;
            }
        }
    }

    /// `FLUSHDB` on `database`, from the admin connection (the pipeline
    /// goes out whole, so nothing else runs between its SELECTs).
    async fn flush(&self, database: u32) -> Result<(), InfraError> {
        let mut admin = self.admin.clone();
        ::redis::pipe()
            .cmd("SELECT")
            .arg(database)
            .ignore()
            .cmd("FLUSHDB")
            .ignore()
            .cmd("SELECT")
            .arg(0)
            .ignore()
            .query_async::<()>(&mut admin)
            .await
            .map_err(|error| InfraError::new(format!("cannot flush database {database}: {error}")))
    }

    /// Flushes a test's database and gives it to the next test; a failed
    /// test's is kept instead (`VERILY_KEEP=1`).
    pub async fn release(&self, database: u32, keep: bool) {
        if keep {
            return;
        }
        self.leased
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&database);
        if let Err(error) = self.flush(database).await {
            eprintln!("redis: {error}; the database leaves the pool");
            self.in_circulation.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let _ = self.free.send(database);
    }

    /// On a shared server: flushes every database the run claimed (a
    /// timed-out test still holds its own) and drops the claims; kept
    /// databases keep theirs.
    pub async fn shutdown(&self, kept: &[u32]) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
        if self.ownership == Ownership::Run {
            return;
        }
        // Waits for a claim under way, and refuses those that come later.
        *self.closed.write().await = true;
        let claimed: Vec<u32> = self
            .claimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .copied()
            .filter(|database| !kept.contains(database))
            .collect();
        let leased = self
            .leased
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut admin = self.admin.clone();
        for database in claimed {
            if self.flush(database).await.is_err() {
                continue;
            }
            if leased.contains(&database) {
                // A test still holds it (stopped at its timeout, or running
                // while a signal ends the run) and may write after this
                // flush: the owner record stays, so the next run flushes
                // it before anyone uses it; the claim goes.
                let _: Result<(), _> = admin.del(claim_key(database)).await;
            } else {
                let _: Result<(), _> = admin.del(&[owner_key(database), claim_key(database)]).await;
            }
        }
    }
}

/// Keeps the run's claims alive while it runs.
async fn refresh_claims(
    mut admin: MultiplexedConnection,
    claimed: Arc<std::sync::Mutex<BTreeSet<u32>>>,
) {
    loop {
        tokio::time::sleep(CLAIM_TTL / 3).await;
        let databases: Vec<u32> = claimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .copied()
            .collect();
        for database in databases {
            let _: Result<(), _> = admin
                .pexpire(claim_key(database), CLAIM_TTL.as_millis() as i64)
                .await;
        }
    }
}

/// Distinguishes runs that reuse a pid (containers, pid wrap-around).
fn run_nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default()
}
