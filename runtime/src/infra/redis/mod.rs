//! Redis for a run, from the first source that is available:
//!
//! 1. `VERILY_REDIS_URL`: an existing server;
//! 2. Docker (feature `docker`): a container of the configured image;
//! 3. a local `redis-server`: on a free loopback port, no persistence.
//!
//! `VERILY_REDIS=url|docker|local` forces one; a forced source that is
//! unavailable is an error, never a silent fallback. Each test leases a
//! logical database of its own (see [`databases`]).

pub mod databases;
#[cfg(feature = "docker")]
pub mod docker;
pub mod local;
pub mod url;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::config::Config;
use crate::infra::source;
use crate::infra::{InfraError, Service};
use databases::{Databases, Ownership};

pub use crate::infra::source::Source;

/// The variable that forces a source.
const FORCE: &str = "VERILY_REDIS";

/// A server the harness started and controls: the run's shared one, or a
/// test's exclusive `RedisServer`.
#[derive(Debug)]
pub enum Instance {
    Local(local::LocalRedis),
    #[cfg(feature = "docker")]
    Docker(Box<docker::DockerRedis>),
}

impl Instance {
    /// A server from `source` (`Docker` or `Local`).
    async fn start(
        source: Source,
        config: &Config,
        fixed_port: bool,
    ) -> Result<Instance, InfraError> {
        match source {
            Source::Docker => start_docker(config, fixed_port).await,
            _ => {
                let binary = local::find_binary().ok_or_else(|| {
                    InfraError::new(format!(
                        "VERILY_REDIS=local, but no redis-server was found (looked in {}); install it (apt-get install redis-server, brew install redis)",
                        local::SEARCHED
                    ))
                })?;
                local::LocalRedis::start(binary).await.map(Instance::Local)
            }
        }
    }

    /// A server of a test's own: `VERILY_REDIS=docker|local` decides;
    /// else a local redis-server (it starts in milliseconds), else Docker.
    /// A URL cannot be stopped and started, so it never serves here.
    pub async fn start_exclusive(config: &Config) -> Result<Instance, InfraError> {
        let source = match Source::forced(FORCE)? {
            Some(Source::Docker) => Source::Docker,
            Some(Source::Local) => Source::Local,
            _ if local::find_binary().is_some() => Source::Local,
            _ => match source::docker_status(config.redis_image_name()) {
                Ok(_) => Source::Docker,
                Err(docker) => {
                    return Err(InfraError::new(format!(
                        "no Redis server of the test's own: no redis-server was found (looked in {}) and Docker is not usable ({docker}); install redis-server or start Docker",
                        local::SEARCHED
                    )));
                }
            },
        };
        Instance::start(source, config, true).await
    }

    /// `redis://host:port` (database 0).
    pub fn url(&self) -> String {
        match self {
            Instance::Local(server) => server.url(),
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.url(),
        }
    }

    /// Where the server listens (resolved once: its address survives a
    /// stop and start).
    pub fn addr(&self) -> Result<std::net::SocketAddr, InfraError> {
        use std::net::ToSocketAddrs;
        let (host, port) = match self {
            Instance::Local(server) => ("127.0.0.1".to_owned(), server.port()),
            #[cfg(feature = "docker")]
            Instance::Docker(container) => (container.host().to_owned(), container.port()),
        };
        (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| InfraError::new(format!("cannot resolve the Redis host {host}")))
    }

    fn describe(&self) -> String {
        match self {
            Instance::Local(server) => server.describe(),
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.describe(),
        }
    }

    /// Stops the server (killed, as in a crash); it keeps its address.
    pub async fn stop(&mut self) -> Result<(), InfraError> {
        match self {
            Instance::Local(server) => {
                crate::infra::process::blocking(|| server.kill());
                Ok(())
            }
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.stop().await,
        }
    }

    /// Starts a stopped server again, at the same address.
    pub async fn start_again(&mut self) -> Result<(), InfraError> {
        match self {
            Instance::Local(server) => server.restart().await,
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.start_again().await,
        }
    }

    /// Freezes the server: connections stay open, nothing is answered.
    pub async fn pause(&mut self) -> Result<(), InfraError> {
        match self {
            Instance::Local(server) => {
                server.pause();
                Ok(())
            }
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.pause().await,
        }
    }

    /// Thaws a paused server.
    pub async fn resume(&mut self) -> Result<(), InfraError> {
        match self {
            Instance::Local(server) => {
                server.resume();
                Ok(())
            }
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.resume().await,
        }
    }

    fn keep_instructions(&mut self) -> String {
        match self {
            Instance::Local(server) => server.keep_instructions(),
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.keep_instructions(),
        }
    }

    /// Kills and removes the server, synchronously (also from `Drop`).
    pub fn remove(&mut self) {
        match self {
            Instance::Local(server) => server.remove(),
            #[cfg(feature = "docker")]
            Instance::Docker(container) => container.remove(),
        }
    }
}

/// Docker or a local redis-server (`source::choose`), else one message
/// naming the three ways.
fn choose_unforced(config: &Config) -> Result<Source, InfraError> {
    source::choose(local::find_binary(), config.redis_image_name())
        .map(|chosen| chosen.source())
        .map_err(|docker| {
            InfraError::new(format!(
                "no Redis: VERILY_REDIS_URL is unset, Docker is not usable ({docker}), and no redis-server was found (looked in {}); install redis-server, start Docker, or set VERILY_REDIS_URL",
                local::SEARCHED
            ))
        })
}

async fn start_docker(config: &Config, fixed_port: bool) -> Result<Instance, InfraError> {
    source::docker_asked_for("Redis", FORCE, "VERILY_REDIS=local or VERILY_REDIS_URL")?;
    #[cfg(feature = "docker")]
    {
        let (name, tag) = config.redis_image_name();
        docker::DockerRedis::start(&name, &tag, fixed_port)
            .await
            .map(|container| Instance::Docker(Box::new(container)))
    }
    #[cfg(not(feature = "docker"))]
    unreachable!("docker_asked_for refuses without the `docker` feature ({config:?}, {fixed_port})")
}

/// Sends `PING` on a fresh TCP connection and expects `+PONG` within a
/// second: the server is up and serving (not loading, not paused).
pub(crate) async fn ping(host: &str, port: u16) -> Result<(), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|error| error.to_string())?;
        stream
            .write_all(b"PING\r\n")
            .await
            .map_err(|error| error.to_string())?;
        let mut reply = [0u8; 7];
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|error| error.to_string())?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&reply).into_owned())
        }
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .map_err(|_| "no answer within 1 s".to_owned())?
}

/// The server behind the run's Redis.
#[derive(Debug)]
enum Server {
    /// Someone else's, named by `VERILY_REDIS_URL`.
    Url(String),
    /// The run's own.
    Started(Instance),
}

/// Redis for a run: the server and the pool of databases the run's tests
/// lease on it.
#[derive(Debug)]
pub struct RedisService {
    server: Mutex<Server>,
    base_url: String,
    databases: Databases,
    kept: std::sync::Mutex<Vec<u32>>,
}

impl Service for RedisService {
    const NAME: &'static str = "redis";

    /// Starts (or connects to) the server from the first available source,
    /// or the one `VERILY_REDIS` forces.
    async fn start(config: &Config) -> Result<Self, InfraError> {
        let source = match Source::forced(FORCE)? {
            Some(source) => source,
            None if url::from_env().is_some() => Source::Url,
            None => choose_unforced(config)?,
        };
        Self::start_from(source, config).await
    }

    /// Gives back what tests left claimed (on a URL server) and stops the
    /// run's own server (unless kept).
    async fn shutdown(&self, keep: bool) {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        self.databases.shutdown(&kept).await;
        if let Server::Started(instance) = &mut *self.server.lock().await {
            if keep {
                eprintln!("{}", instance.keep_instructions());
            } else {
                crate::infra::process::blocking(|| instance.remove());
            }
        }
    }

    /// The server's URL (database 0): the processes of a nextest run share
    /// the server one of them started (see `infra/hosted.rs`).
    fn endpoint(&self) -> String {
        self.base_url.clone()
    }

    /// The server another process of the run keeps, used as a server named
    /// by URL: each process claims the databases it leases, so that two
    /// processes never share one.
    async fn attach(endpoint: &str, _config: &Config) -> Result<Self, InfraError> {
        let server = Server::Url(endpoint.to_owned());
        let databases = prepare(&server, endpoint).await?;
        Ok(Self {
            server: Mutex::new(server),
            base_url: endpoint.to_owned(),
            databases,
            kept: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Gives back the databases this process claimed on the shared server.
    async fn detach(&self) {
        self.shutdown(false).await;
    }
}

/// Connects to database 0 and sizes the pool: every database of a server
/// the run started; 1 to N-1 of a URL server (N from `CONFIG GET databases`,
/// else Redis's default 16).
async fn prepare(server: &Server, base_url: &str) -> Result<Databases, InfraError> {
    let (what, ownership) = match server {
        Server::Url(_) => (
            format!("{} ({})", url::VARIABLE, url::redacted(base_url)),
            Ownership::Shared,
        ),
        Server::Started(_) => ("the run's Redis".to_owned(), Ownership::Run),
    };
    let client = url::parse(&url::with_database(base_url, 0))?;
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|error| {
            InfraError::new(format!(
                "cannot connect to {what}: {error}; start that server, fix the URL, or unset it to let verily start its own Redis"
            ))
        })?;
    let range = match ownership {
        Ownership::Run => 0..local::DATABASES,
        Ownership::Shared => {
            let count = ::redis::cmd("CONFIG")
                .arg("GET")
                .arg("databases")
                .query_async::<Vec<String>>(&mut admin)
                .await
                .ok()
                .and_then(|reply| reply.get(1)?.parse::<u32>().ok())
                .unwrap_or(16);
            if count < 2 {
                return Err(InfraError::new(format!(
                    "{what} has {count} database, and verily gives each test a database of its own and never touches database 0; raise its `databases` setting, or unset the URL to let verily start its own Redis"
                )));
            }
            1..count
        }
    };
    let databases = Databases::new(admin, ownership, range);
    databases.name_connection().await;
    databases.remove_lapsed_claims().await;
    Ok(databases)
}

impl RedisService {
    /// Starts (or connects to) the server from `source`; says in one line
    /// where Redis came from and how long it took.
    pub async fn start_from(source: Source, config: &Config) -> Result<Self, InfraError> {
        let started = Instant::now();
        let (server, describe) = match source {
            Source::Url => {
                let url = url::from_env().ok_or_else(|| {
                    InfraError::new("VERILY_REDIS=url, but VERILY_REDIS_URL is not set")
                })?;
                url::parse(&url)?;
                let describe = format!("{} ({})", url::VARIABLE, url::redacted(&url));
                (Server::Url(url), describe)
            }
            source => {
                let instance = Instance::start(source, config, false).await?;
                let describe = instance.describe();
                (Server::Started(instance), describe)
            }
        };
        let base_url = match &server {
            Server::Started(instance) => instance.url(),
            Server::Url(url) => url.clone(),
        };
        let databases = match prepare(&server, &base_url).await {
            Ok(databases) => databases,
            Err(error) => {
                if let Server::Started(mut instance) = server {
                    instance.remove();
                }
                return Err(error);
            }
        };
        eprintln!(
            "redis: {describe}, ready in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Self {
            server: Mutex::new(server),
            base_url,
            databases,
            kept: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A database of the test's own, empty.
    pub async fn checkout(&self) -> Result<u32, InfraError> {
        self.databases.checkout().await
    }

    /// The URL of `database` on the run's server.
    pub fn url(&self, database: u32) -> String {
        url::with_database(&self.base_url, database)
    }

    /// Flushes a test's database for the next test, or keeps it (a failed
    /// test's, with `VERILY_KEEP=1`) and says how to reach it.
    pub async fn release(&self, database: u32, keep: bool) {
        if keep {
            eprintln!(
                "redis: kept database {database} of a failed test: redis-cli -u {}",
                url::redacted(&self.url(database))
            );
            self.kept
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(database);
        }
        self.databases.release(database, keep).await;
    }
}
