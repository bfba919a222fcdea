//! [`PgServer`]: a PostgreSQL of one test's own, never the run's shared
//! one, that the test may break and heal: stop and start, pause and resume,
//! restart, end every client's connection. The crate's migrations are
//! applied to its database `verily`.
//!
//! It comes from local binaries (a cluster copied from the cached pristine
//! data directory, ready in about 0.3 s) or, with the `docker` feature, a
//! container of its own; `VERILY_POSTGRES` chooses as it does for the
//! shared server. A server named by a URL cannot be one test's to break.
//!
//! Cleanup is synchronous, in Drop: a test that fails, panics or times out
//! (its task is aborted, which drops its fixtures) never leaves a server
//! paused, stopped or running.

mod cleanup;
#[cfg(feature = "docker")]
mod docker;
mod local;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgPool};

use super::migrations::Schema;
use super::server::{self, FORCE};
use crate::config::Config;
use crate::infra::InfraError;
use crate::infra::proxy::{ProxyTarget, TcpProxy, Upstream};
use crate::infra::source::{self, Source};

/// Password of the superuser `postgres` on every exclusive server.
pub(crate) const PASSWORD: &str = "verily";

/// The database the migrations are applied to, which `url()` names.
pub const DATABASE: &str = "verily";

/// The superuser `url()` connects as.
pub const USER: &str = "postgres";

/// A PostgreSQL server of the test's own, with the crate's migrations
/// applied to its database `verily`.
///
/// ```ignore
/// #[verily::test(category = "error")]
/// async fn a_stopped_database_is_an_error_not_a_panic(server: verily::PgServer) {
///     let service = MyService::connect(server.url()).await.unwrap();
///     server.stop().await.unwrap();
///     assert!(service.list().await.is_err());
///     server.start().await.unwrap();
///     service.list().await.unwrap();
/// }
/// ```
#[derive(Debug)]
pub struct PgServer {
    backend: Backend,
    migrations: usize,
    /// [`url`](Self::url), made once: the port survives a stop and start.
    url: String,
}

#[derive(Debug)]
enum Backend {
    Local(local::LocalServer),
    #[cfg(feature = "docker")]
    Docker(docker::DockerServer),
}

impl PgServer {
    /// Starts a server from the source `VERILY_POSTGRES` forces, else
    /// from local binaries when there are some (a server per test must
    /// start fast: about 0.3 s against 5 for a container), else
    /// Docker; and migrates its database with `config`'s migrations.
    pub async fn new(config: &Config) -> Result<Self, InfraError> {
        match choose(config)? {
            Source::Docker => Self::docker(config).await,
            _ => Self::local(config).await,
        }
    }

    /// A cluster from this machine's PostgreSQL binaries.
    pub async fn local(config: &Config) -> Result<Self, InfraError> {
        let binaries = server::local::find_binaries().ok_or_else(|| {
            InfraError::new(format!(
                "no PostgreSQL binaries for a server of the test's own: no initdb and postgres were found (looked in {}); install PostgreSQL's server package, or use Docker (VERILY_POSTGRES=docker)",
                server::local::SEARCHED
            ))
        })?;
        let server = local::LocalServer::start(binaries).await?;
        Self::prepare(Backend::Local(server), config).await
    }

    /// A container of the configured image (`VERILY_POSTGRES_IMAGE`
    /// overrides it), on a host port of its own.
    #[cfg(feature = "docker")]
    pub async fn docker(config: &Config) -> Result<Self, InfraError> {
        crate::infra::docker::engine().map_err(|why| {
            InfraError::new(format!(
                "a PostgreSQL container was asked for, but Docker is not reachable ({why}); start Docker, or use VERILY_POSTGRES=local"
            ))
        })?;
        let (name, tag) = config.image();
        let server = docker::DockerServer::start(&name, &tag).await?;
        Self::prepare(Backend::Docker(server), config).await
    }

    /// A container of the configured image (needs the `docker` feature).
    #[cfg(not(feature = "docker"))]
    pub async fn docker(_config: &Config) -> Result<Self, InfraError> {
        Err(InfraError::new(
            "a PostgreSQL container was asked for, but verily was built without its `docker` feature; enable it, or use VERILY_POSTGRES=local",
        ))
    }

    /// Creates the database and applies the migrations.
    async fn prepare(backend: Backend, config: &Config) -> Result<Self, InfraError> {
        let mut server = PgServer {
            backend,
            migrations: 0,
            url: String::new(),
        };
        server.url = server.url_as(USER, PASSWORD);
        let mut admin = PgConnection::connect_with(&server.admin_options())
            .await
            .map_err(sql_error)?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            super::template::quote(DATABASE)
        )))
        .execute(&mut admin)
        .await
        .map_err(sql_error)?;
        let _ = admin.close().await;
        server.migrations = migrate(&server.options(), config).await?;
        Ok(server)
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/verily`: what a
    /// service's configuration would name. TCP, so a [`TcpProxy`] can stand
    /// in between.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same URL with other credentials: for testing what a service does
    /// when it is given wrong ones.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{DATABASE}",
            percent_encode(user),
            percent_encode(password),
            self.port()
        )
    }

    /// Connect options equivalent to [`url`](Self::url).
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port())
            .username(USER)
            .password(PASSWORD)
            .database(DATABASE)
    }

    /// Where the server listens: `127.0.0.1:PORT`, the same after a stop
    /// and start.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// A new pool of up to 5 connections to the database (each call makes
    /// its own; close it or drop it).
    pub async fn pool(&self) -> Result<PgPool, sqlx::Error> {
        PgPoolOptions::new()
            .max_connections(5)
            .connect_with(self.options())
            .await
    }

    /// A new connection to the database, outside every pool.
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options()).await
    }

    /// How many migrations were applied.
    pub fn migrations(&self) -> usize {
        self.migrations
    }

    /// One line saying what this server is, for messages.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(server) => server.describe(),
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.describe(),
        }
    }

    /// Stops the server as an operator would (fast shutdown: open
    /// transactions are rolled back, every session ends, the data is
    /// kept). Until [`start`](Self::start), connections are refused.
    pub async fn stop(&self) -> Result<(), InfraError> {
        match &self.backend {
            Backend::Local(server) => server.stop().await,
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.stop().await,
        }
    }

    /// Starts the stopped server again, with the same data at the same
    /// address, and returns once it accepts connections. Clients that
    /// reconnect find it there.
    pub async fn start(&self) -> Result<(), InfraError> {
        match &self.backend {
            Backend::Local(server) => server.start_again().await,
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.start_again().await,
        }
    }

    /// [`stop`](Self::stop) then [`start`](Self::start).
    pub async fn restart(&self) -> Result<(), InfraError> {
        self.stop().await?;
        self.start().await
    }

    /// Freezes the server: every process of it is stopped (SIGSTOP; `docker
    /// pause` for a container). Its port stays open, connections are
    /// accepted by the kernel, and nothing answers: a hung database.
    pub async fn pause(&self) -> Result<(), InfraError> {
        match &self.backend {
            Backend::Local(server) => server.pause().await,
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.pause().await,
        }
    }

    /// Lets a paused server go on, where it stopped.
    pub async fn resume(&self) -> Result<(), InfraError> {
        match &self.backend {
            Backend::Local(server) => server.resume().await,
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.resume().await,
        }
    }

    /// Ends every client's connection (`pg_terminate_backend`, from a
    /// superuser connection of the harness's own), as a failover or an
    /// administrator would, and returns how many it ended. The server
    /// stays up; clients see "terminating connection due to administrator
    /// command" and must reconnect.
    pub async fn terminate_connections(&self) -> Result<u64, InfraError> {
        let mut admin = PgConnection::connect_with(&self.admin_options())
            .await
            .map_err(sql_error)?;
        // Listed first: in one statement, nothing guarantees the filter on
        // our own pid runs before pg_terminate_backend does.
        let clients: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .map_err(sql_error)?;
        let ended: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM unnest($1::int[]) AS clients(pid) WHERE pg_terminate_backend(pid)",
        )
        .bind(&clients)
        .fetch_all(&mut admin)
        .await
        .map_err(sql_error)?;
        // Return once they are gone, so that a client's next query finds
        // its connection dead. (`pg_terminate_backend(pid, timeout)` waits
        // too, but in steps of 100 ms.)
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&ended)
                    .fetch_one(&mut admin)
                    .await
                    .map_err(sql_error)?;
            if left == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = admin.close().await;
        Ok(ended.len() as u64)
    }

    /// A [`TcpProxy`] in front of this server.
    pub async fn proxy(&self) -> Result<TcpProxy, InfraError> {
        TcpProxy::to(self).await
    }

    fn port(&self) -> u16 {
        match &self.backend {
            Backend::Local(server) => server.port(),
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.port(),
        }
    }

    fn admin_options(&self) -> PgConnectOptions {
        match &self.backend {
            Backend::Local(server) => server.admin_options(),
            #[cfg(feature = "docker")]
            Backend::Docker(server) => server.admin_options(),
        }
    }
}

impl ProxyTarget for PgServer {
    fn upstream(&self) -> Upstream {
        Upstream::Tcp(self.addr())
    }

    fn url_through(&self, proxy: SocketAddr) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@{}:{}/{DATABASE}",
            proxy.ip(),
            proxy.port()
        )
    }
}

/// The source of an exclusive server: `VERILY_POSTGRES` if set (a URL
/// is refused), else local binaries, else Docker. Unlike the shared server
/// (started once, so a container's seconds hardly matter), one starts per
/// test, so the fast source comes first.
fn choose(config: &Config) -> Result<Source, InfraError> {
    match Source::forced(FORCE)? {
        Some(Source::Url) => Err(InfraError::new(
            "VERILY_POSTGRES=url, but a server named by a URL is shared, and a PgServer must be the test's own to stop, pause and restart; set VERILY_POSTGRES=local (needs PostgreSQL's binaries) or docker (needs a Docker engine), or run only the other tests (--skip-category error)",
        )),
        Some(source) => Ok(source),
        None => {
            if server::local::find_binaries().is_some() {
                return Ok(Source::Local);
            }
            match source::docker_status(config.image()) {
                Ok(_) => Ok(Source::Docker),
                Err(docker) => Err(InfraError::new(format!(
                    "no PostgreSQL of the test's own: Docker is not usable ({docker}), and no initdb was found (looked in {}); install postgresql or start Docker (a URL names a shared server, which a test cannot stop)",
                    server::local::SEARCHED
                ))),
            }
        }
    }
}

/// Applies the configured migrations to the server's database; returns
/// how many.
async fn migrate(database: &PgConnectOptions, config: &Config) -> Result<usize, InfraError> {
    Schema::read(config).await?.apply(database).await
}

fn sql_error(error: sqlx::Error) -> InfraError {
    InfraError::new(format!("PostgreSQL: {error}"))
}

/// Userinfo of a URL: unreserved characters as they are, the rest escaped.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn credentials_are_escaped_in_urls() {
        assert_eq!(percent_encode("postgres"), "postgres");
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }
}
