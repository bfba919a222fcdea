//! A small ledger: accounts, deposits, transfers and balance reads on
//! PostgreSQL, through one pool of `max_connections`. Its incidents (the
//! `bug-*` features) show only under many concurrent callers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

/// How the ledger reaches its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub database_url: String,
    /// The most connections the ledger may hold.
    pub max_connections: u32,
    /// How long a call may wait for a free connection before it fails.
    pub acquire_timeout: Duration,
}

impl Settings {
    /// Ten connections; a call waits at most three seconds for one.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// The ledger service. Cheap to clone; clones share one pool.
#[derive(Debug, Clone)]
pub struct Ledger {
    settings: Arc<Settings>,
    pool: PgPool,
    reads: Arc<AtomicU64>,
    /// Connections kept for the audit trail (only with `bug-connection-leak`).
    audit: Arc<Mutex<Vec<PoolConnection<Postgres>>>>,
}

impl Ledger {
    /// A ledger whose pool connects on first use.
    pub fn new(settings: Settings) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy(&settings.database_url)?;
        Ok(Self {
            settings: Arc::new(settings),
            pool,
            reads: Arc::new(AtomicU64::new(0)),
            audit: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// What the ledger was started with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The pool a call uses: the ledger's own.
    #[cfg(not(feature = "bug-pool-per-request"))]
    async fn pool(&self) -> Result<PgPool, sqlx::Error> {
        Ok(self.pool.clone())
    }

    /// The incident: a pool per call, each allowed `max_connections`.
    #[cfg(feature = "bug-pool-per-request")]
    async fn pool(&self) -> Result<PgPool, sqlx::Error> {
        PgPoolOptions::new()
            .max_connections(self.settings.max_connections)
            .acquire_timeout(self.settings.acquire_timeout)
            .connect(&self.settings.database_url)
            .await
    }

    /// Opens an account with a zero balance (again is a no-op). Done at
    /// startup, on the ledger's own pool.
    pub async fn open_account(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO accounts (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds `amount` to the account, atomically.
    #[cfg(not(feature = "bug-lost-update"))]
    pub async fn deposit(&self, account: i64, amount: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().await?.begin().await?;
        sqlx::query("UPDATE accounts SET balance = balance + $2 WHERE id = $1")
            .bind(account)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, account, amount).await?;
        tx.commit().await
    }

    /// The incident: read, add in Rust, write back, with nothing held in
    /// between; a deposit landing meanwhile is overwritten.
    #[cfg(feature = "bug-lost-update")]
    pub async fn deposit(&self, account: i64, amount: i64) -> Result<(), sqlx::Error> {
        let pool = self.pool().await?;
        let balance: i64 = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_one(&pool)
            .await?;
        sqlx::query("UPDATE accounts SET balance = $2 WHERE id = $1")
            .bind(account)
            .bind(balance + amount)
            .execute(&pool)
            .await?;
        let mut tx = pool.begin().await?;
        record(&mut tx, account, amount).await?;
        tx.commit().await
    }

    /// Moves `amount` from one account to the other in one transaction,
    /// locking both accounts in id order, whichever way the money goes.
    pub async fn transfer(&self, from: i64, to: i64, amount: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().await?.begin().await?;
        #[cfg(not(feature = "bug-deadlock"))]
        sqlx::query("SELECT id FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind([from, to])
            .fetch_all(&mut *tx)
            .await?;
        // With `bug-deadlock` the first update locks `from` and the second
        // `to`: opposite transfers take the two locks in opposite orders.
        sqlx::query("UPDATE accounts SET balance = balance - $2 WHERE id = $1")
            .bind(from)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, from, -amount).await?;
        sqlx::query("UPDATE accounts SET balance = balance + $2 WHERE id = $1")
            .bind(to)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, to, amount).await?;
        tx.commit().await
    }

    /// The account's balance.
    pub async fn balance(&self, account: i64) -> Result<i64, sqlx::Error> {
        let read = self.reads.fetch_add(1, Ordering::Relaxed);
        let pool = self.pool().await?;
        let mut connection = pool.acquire().await?;
        let balance = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_one(&mut *connection)
            .await?;
        // The incident: a sampled read keeps its connection "for the audit
        // trail", and nothing ever gives it back to the pool.
        if cfg!(feature = "bug-connection-leak") && read % 25 == 24 {
            self.audit
                .lock()
                .expect("the audit list is never poisoned")
                .push(connection);
        }
        Ok(balance)
    }

    /// The sum of every balance: transfers move money, they never make or
    /// lose any.
    pub async fn total(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT coalesce(sum(balance), 0)::bigint FROM accounts")
            .fetch_one(&self.pool().await?)
            .await
    }
}

async fn record(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    account: i64,
    amount: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO movements (account_id, amount) VALUES ($1, $2)")
        .bind(account)
        .bind(amount)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// Tests get a ledger on their own database, with accounts 1 and 2 open.
#[verily::fixture]
impl verily::Fixture for Ledger {
    async fn setup(ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
        let db = ctx.fixture::<verily::Db>().await?;
        let ledger = Ledger::new(Settings::for_database(db.url()))
            .map_err(|error| verily::FixtureError::new(format!("ledger settings: {error}")))?;
        for account in [1, 2] {
            ledger.open_account(account).await.map_err(|error| {
                verily::FixtureError::new(format!("cannot open account {account}: {error}"))
            })?;
        }
        Ok(ledger)
    }
}
