//! The Redis fixtures: [`Redis`] (the test's own database on the run's
//! server: its URL, a connection, helpers), `redis::aio::MultiplexedConnection`
//! and `redis::aio::ConnectionManager` on that database, and [`RedisServer`]
//! (a server of the test's own, which the test can stop, pause and restart).

use ::redis::aio::{ConnectionManager, MultiplexedConnection};
use ::redis::{AsyncCommands, Client, RedisResult};
use tokio::sync::Mutex;

use crate::fixture::{Fixture, FixtureError, TestContext};
use crate::infra::redis::{Instance, RedisService};
use crate::registry::Needs;

/// The test's own logical database on the run's Redis, empty at the start
/// and flushed at the end. Cheap to clone; every clone is the same
/// database and shares one connection.
#[derive(Clone)]
pub struct Redis {
    database: u32,
    url: String,
    client: Client,
    connection: MultiplexedConnection,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("database", &self.database)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A URL naming the test's database (`redis://127.0.0.1:PORT/3`), for
    /// code that builds its own client from configuration.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The logical database's number (`SELECT n`).
    pub fn database(&self) -> u32 {
        self.database
    }

    /// A client for the test's database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The test's shared connection (the one the `MultiplexedConnection`
    /// fixture gets).
    pub fn connection(&self) -> MultiplexedConnection {
        self.connection.clone()
    }

    /// A new connection of its own, as another process would open.
    pub async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        self.client.get_multiplexed_async_connection().await
    }

    /// Every key in the test's database, sorted (read with SCAN, on a
    /// fresh connection).
    pub async fn keys(&self) -> RedisResult<Vec<String>> {
        let mut connection = self.connect().await?;
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// How many keys the test's database holds (`DBSIZE`).
    pub async fn len(&self) -> RedisResult<u64> {
        let mut connection = self.connection();
        ::redis::cmd("DBSIZE").query_async(&mut connection).await
    }

    /// Whether the test's database holds no key.
    pub async fn is_empty(&self) -> RedisResult<bool> {
        Ok(self.len().await? == 0)
    }

    /// The value at `key` as the server holds it, bytes (`GET`).
    pub async fn get_bytes(&self, key: &str) -> RedisResult<Option<Vec<u8>>> {
        let mut connection = self.connection();
        connection.get(key).await
    }

    /// The test's database, leased on first use; shared by every fixture
    /// of the test.
    async fn for_test(ctx: &mut TestContext) -> Result<Redis, FixtureError> {
        if let Some(redis) = ctx.held::<Redis>() {
            return Ok(redis);
        }
        let service = ctx
            .service::<RedisService>()
            .await
            .map_err(|error| FixtureError::new(error.to_string()))?;
        let database = service.checkout().await.map_err(|error| {
            FixtureError::new(format!("no Redis database for the test: {error}"))
        })?;
        let giving_back = std::sync::Arc::clone(&service);
        ctx.at_end(move |keep| async move { giving_back.release(database, keep).await });
        let url = service.url(database);
        let unreachable = |error: ::redis::RedisError| {
            FixtureError::new(format!(
                "cannot connect to the test's Redis database {database}: {error}"
            ))
        };
        let client = Client::open(url.as_str()).map_err(unreachable)?;
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(unreachable)?;
        let redis = Redis {
            database,
            url,
            client,
            connection,
        };
        ctx.hold(redis.clone());
        Ok(redis)
    }
}

impl Fixture for Redis {
    const NEEDS: Needs = Needs::REDIS;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        Redis::for_test(ctx).await
    }
}

impl Fixture for MultiplexedConnection {
    const NEEDS: Needs = Needs::REDIS;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        Ok(Redis::for_test(ctx).await?.connection())
    }
}

impl Fixture for ConnectionManager {
    const NEEDS: Needs = Needs::REDIS;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        let redis = Redis::for_test(ctx).await?;
        ConnectionManager::new(redis.client.clone())
            .await
            .map_err(|error| {
                FixtureError::new(format!(
                    "cannot open a ConnectionManager on the test's Redis database {}: {error}",
                    redis.database
                ))
            })
    }
}

/// A Redis server of the test's own (a local redis-server, or a container
/// with `VERILY_REDIS=docker`), for tests of what a service does when
/// Redis goes away. Stopped, paused or running, it is killed and removed
/// when the test ends, however it ends (drop), and never outlives the run.
pub struct RedisServer {
    instance: Mutex<Instance>,
    url: String,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// `redis://HOST:PORT`; the address survives `stop`/`start` and
    /// `restart`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection to database 0.
    pub async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await
    }

    /// Kills the server, as a crash would: connections drop, new ones are
    /// refused, and the data is gone. Panics (failing the test) if it
    /// cannot.
    pub async fn stop(&self) {
        let mut instance = self.instance.lock().await;
        instance
            .stop()
            .await
            .unwrap_or_else(|error| panic!("RedisServer::stop: {error}"));
    }

    /// Starts the stopped server again at the same address, empty, and
    /// waits until it answers.
    pub async fn start(&self) {
        let mut instance = self.instance.lock().await;
        instance
            .start_again()
            .await
            .unwrap_or_else(|error| panic!("RedisServer::start: {error}"));
    }

    /// `stop` then `start`.
    pub async fn restart(&self) {
        self.stop().await;
        self.start().await;
    }

    /// Freezes the server (SIGSTOP, or `docker pause`): connections stay
    /// open and nothing is answered, as with a stalled host.
    pub async fn pause(&self) {
        let mut instance = self.instance.lock().await;
        instance
            .pause()
            .await
            .unwrap_or_else(|error| panic!("RedisServer::pause: {error}"));
    }

    /// Thaws a paused server (SIGCONT, or `docker unpause`).
    pub async fn resume(&self) {
        let mut instance = self.instance.lock().await;
        instance
            .resume()
            .await
            .unwrap_or_else(|error| panic!("RedisServer::resume: {error}"));
    }

    /// Closes every client connection (`CLIENT KILL TYPE normal`, sparing
    /// the one that asks); returns how many were closed.
    pub async fn terminate_connections(&self) -> RedisResult<u64> {
        let mut connection = self.connect().await?;
        ::redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut connection)
            .await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.instance.get_mut().remove();
    }
}

impl Fixture for RedisServer {
    const NEEDS: Needs = Needs::REDIS;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        let instance = Instance::start_exclusive(ctx.config())
            .await
            .map_err(|error| FixtureError::new(error.to_string()))?;
        let url = instance.url();
        Ok(RedisServer {
            instance: Mutex::new(instance),
            url,
        })
    }
}
