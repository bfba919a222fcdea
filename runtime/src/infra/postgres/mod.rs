//! PostgreSQL for a run, from the first source that is available:
//!
//! 1. `VERILY_DATABASE_URL` or `DATABASE_URL`: an existing server;
//! 2. Docker (feature `docker`): a container of the configured image;
//! 3. local binaries: an ephemeral cluster in a temp dir.
//!
//! `VERILY_POSTGRES=url|docker|local` forces one; a forced source that
//! is unavailable is an error, never a silent fallback.

mod budget;
#[cfg(feature = "docker")]
pub mod docker;
pub mod exclusive;
pub mod local;
mod reset;
pub mod shared;
pub mod template;
pub mod url;

use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::infra::InfraError;
use shared::{SharedCluster, SharedDatabases};
use template::{Databases, TestDatabase};

/// Where the server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Url,
    Docker,
    Local,
}

impl Source {
    /// `VERILY_POSTGRES`, if set.
    pub(crate) fn forced() -> Result<Option<Source>, InfraError> {
        match std::env::var("VERILY_POSTGRES").as_deref() {
            Err(_) | Ok("") => Ok(None),
            Ok("url") => Ok(Some(Source::Url)),
            Ok("docker") => Ok(Some(Source::Docker)),
            Ok("local") => Ok(Some(Source::Local)),
            Ok(other) => Err(InfraError::new(format!(
                "VERILY_POSTGRES={other} is not a source; use `url`, `docker` or `local`, or unset it"
            ))),
        }
    }
}

/// The server process (or the lack of one, for a URL).
#[derive(Debug)]
enum Server {
    Url {
        options: Box<PgConnectOptions>,
        url: String,
        describe: String,
    },
    Local(local::LocalCluster),
    /// A local cluster the processes of a nextest run share.
    Shared(SharedCluster),
    #[cfg(feature = "docker")]
    Docker(Box<docker::DockerPostgres>),
}

impl Server {
    fn options(&self, database: &str) -> PgConnectOptions {
        match self {
            Server::Url { options, .. } => (**options).clone().database(database),
            Server::Local(cluster) => cluster.options(database),
            Server::Shared(cluster) => cluster.options(database),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.options(database),
        }
    }

    /// The maintenance database to connect to for CREATE/DROP DATABASE.
    fn admin_options(&self) -> PgConnectOptions {
        match self {
            Server::Url { options, .. } => (**options).clone(),
            _ => self.options("postgres"),
        }
    }

    /// A URL to `{database}` (the placeholder is replaced per test).
    fn url_pattern(&self) -> String {
        match self {
            Server::Url { url, .. } => url::with_database(url, "{database}"),
            Server::Local(cluster) => cluster.url_pattern(),
            Server::Shared(cluster) => cluster.url_pattern(),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.url_pattern(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Server::Url { describe, .. } => describe.clone(),
            Server::Local(cluster) => cluster.describe(),
            Server::Shared(cluster) => cluster.describe(),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.describe(),
        }
    }

    async fn start(config: &Config) -> Result<Server, InfraError> {
        let forced = Source::forced()?;
        let url = url::from_env();
        // The processes of a nextest run after the first find the shared
        // cluster running, and need to look for nothing else.
        if url.is_none()
            && forced.is_none_or(|source| source == Source::Local)
            && shared::requested()
            && let Some(cluster) = tokio::task::block_in_place(SharedCluster::attach_running)?
        {
            return Ok(Server::Shared(cluster));
        }
        // What choosing found out (binaries, a live engine) is not asked
        // again.
        let (source, chosen) = match forced {
            Some(source) => (source, None),
            None if url.is_some() => (Source::Url, None),
            None => {
                let chosen = choose_unforced(config)?;
                (chosen.source(), Some(chosen))
            }
        };
        match source {
            Source::Url => {
                let (variable, url) = url.ok_or_else(|| {
                    InfraError::new(
                        "VERILY_POSTGRES=url, but neither VERILY_DATABASE_URL nor DATABASE_URL is set",
                    )
                })?;
                let options = url::connect(variable, &url).await?;
                Ok(Server::Url {
                    options: Box::new(options),
                    describe: format!("{variable} ({})", url::redacted(&url)),
                    url,
                })
            }
            Source::Docker => start_docker(config, chosen.is_none()).await,
            Source::Local => {
                let found = match chosen {
                    Some(Chosen::Local(binaries)) => Some(binaries),
                    _ => local::find_binaries(),
                };
                let binaries = found.ok_or_else(|| {
                    InfraError::new(format!(
                        "VERILY_POSTGRES=local, but no initdb and postgres were found (looked in {}); install PostgreSQL's server package",
                        local::SEARCHED
                    ))
                })?;
                if shared::requested() {
                    tokio::task::block_in_place(|| SharedCluster::attach(binaries))
                        .map(Server::Shared)
                } else {
                    tokio::task::block_in_place(|| local::LocalCluster::start(binaries))
                        .map(Server::Local)
                }
            }
        }
    }

    async fn stop(&mut self, keep: bool) {
        match self {
            Server::Url { .. } | Server::Shared(_) => {}
            Server::Local(cluster) if keep => eprintln!("{}", cluster.keep_instructions()),
            Server::Local(cluster) => tokio::task::block_in_place(|| cluster.stop()),
            #[cfg(feature = "docker")]
            Server::Docker(container) if keep => eprintln!("{}", container.keep_instructions()),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.stop().await,
        }
    }
}

/// Docker when an engine answers and the image is here (or there are no
/// local binaries to fall back on, so pulling is worth it); else local
/// binaries; else one message naming the three ways. Processes that share
/// a cluster (nextest) take local binaries first.
fn choose_unforced(config: &Config) -> Result<Chosen, InfraError> {
    let binaries = local::find_binaries();
    // A container per process would cost seconds per test under nextest;
    // one local cluster is shared by all of them.
    if let Some(binaries) = binaries.clone().filter(|_| shared::requested()) {
        return Ok(Chosen::Local(binaries));
    }
    let docker = docker_status(config);
    match (&docker, binaries) {
        (Ok(true), _) | (Ok(false), None) => return Ok(Chosen::Docker),
        (_, Some(binaries)) => return Ok(Chosen::Local(binaries)),
        (Err(_), None) => {}
    }
    let docker = docker.err().unwrap_or_default();
    Err(InfraError::new(format!(
        "no PostgreSQL: DATABASE_URL is unset, Docker is not usable ({docker}), and no initdb was found (looked in {}); install postgresql, start Docker, or set DATABASE_URL",
        local::SEARCHED
    )))
}

/// The source chosen when none is forced, with what was found on the way.
enum Chosen {
    /// The engine answered.
    Docker,
    Local(local::Binaries),
}

impl Chosen {
    fn source(&self) -> Source {
        match self {
            Chosen::Docker => Source::Docker,
            Chosen::Local(_) => Source::Local,
        }
    }
}

/// `Ok(image present)` when an engine answers, `Err(why not)` otherwise.
#[cfg(feature = "docker")]
pub(crate) fn docker_status(config: &Config) -> Result<bool, String> {
    docker::engine()?;
    let (name, tag) = config.image();
    Ok(docker::image_present(&name, &tag))
}

#[cfg(not(feature = "docker"))]
pub(crate) fn docker_status(_config: &Config) -> Result<bool, String> {
    Err("verily was built without its `docker` feature".to_owned())
}

/// Starts a container; `check_engine` unless choosing just saw it answer.
#[cfg(feature = "docker")]
async fn start_docker(config: &Config, check_engine: bool) -> Result<Server, InfraError> {
    if check_engine {
        docker::engine().map_err(|why| {
            InfraError::new(format!(
                "PostgreSQL from Docker was asked for, but Docker is not reachable ({why}); start Docker, or use VERILY_POSTGRES=local or DATABASE_URL"
            ))
        })?;
    }
    crate::infra::reaper::sweep_containers_once();
    let (name, tag) = config.image();
    docker::DockerPostgres::start(&name, &tag)
        .await
        .map(|container| Server::Docker(Box::new(container)))
}

#[cfg(not(feature = "docker"))]
async fn start_docker(_config: &Config, _check_engine: bool) -> Result<Server, InfraError> {
    Err(InfraError::new(
        "VERILY_POSTGRES=docker, but verily was built without its `docker` feature; enable it, or use VERILY_POSTGRES=local or DATABASE_URL",
    ))
}

/// The databases of a run: its own template and clones, or those every
/// process of a nextest run shares.
#[derive(Debug)]
enum RunDatabases {
    Own(Databases),
    Shared(SharedDatabases),
}

/// PostgreSQL for a run: the server and the run's databases on it.
#[derive(Debug)]
pub struct Postgres {
    server: Mutex<Server>,
    databases: RunDatabases,
    kept: Mutex<Vec<String>>,
}

impl Postgres {
    /// Starts (or connects to) the server and migrates the template; says
    /// in one line where PostgreSQL came from and how long it took.
    pub async fn start(config: &Config) -> Result<Self, InfraError> {
        let started = Instant::now();
        let server = Server::start(config).await?;
        eprintln!(
            "postgres: {}, ready in {:.2} s",
            server.describe(),
            started.elapsed().as_secs_f64()
        );
        let prepared = if matches!(server, Server::Shared(_)) {
            SharedDatabases::prepare(server.admin_options(), server.url_pattern(), config)
                .await
                .map(RunDatabases::Shared)
        } else {
            // Other clients share a server named by URL: the run keeps
            // under its connection limit there.
            let shared_server = matches!(server, Server::Url { .. }).then(|| server.describe());
            Databases::prepare(
                server.admin_options(),
                server.url_pattern(),
                config,
                shared_server.as_deref(),
            )
            .await
            .map(RunDatabases::Own)
        };
        let databases = match prepared {
            Ok(databases) => databases,
            Err(error) => {
                let mut server = server;
                server.stop(false).await;
                return Err(error);
            }
        };
        Ok(Self {
            server: Mutex::new(server),
            databases,
            kept: Mutex::new(Vec::new()),
        })
    }

    /// A database of the test's own, cloned from the migrated template.
    pub async fn checkout(&self) -> Result<TestDatabase, InfraError> {
        match &self.databases {
            RunDatabases::Own(databases) => databases.checkout().await,
            RunDatabases::Shared(databases) => databases.checkout().await,
        }
    }

    /// Drops a test's database, or keeps it (a failed test's, with
    /// `VERILY_KEEP=1`) and says how to reach it.
    pub async fn release(&self, database: TestDatabase, keep: bool) {
        if keep {
            eprintln!("postgres: kept database {} of a failed test", database.name);
            self.kept.lock().await.push(database.name);
        } else {
            match &self.databases {
                RunDatabases::Own(databases) => databases.release(database).await,
                RunDatabases::Shared(databases) => databases.release(database).await,
            }
        }
    }

    /// Drops the run's databases and stops the server (unless kept).
    pub async fn shutdown(&self, keep: bool) {
        let kept = self.kept.lock().await.clone();
        let server_goes_too = !keep && matches!(*self.server.lock().await, Server::Local(_));
        match &self.databases {
            RunDatabases::Own(databases) => databases.shutdown(&kept, server_goes_too).await,
            RunDatabases::Shared(databases) => databases.shutdown().await,
        }
        self.server.lock().await.stop(keep).await;
    }
}

impl crate::infra::Service for Postgres {
    const NAME: &'static str = "postgres";

    async fn start(config: &Config) -> Result<Self, InfraError> {
        Postgres::start(config).await
    }

    async fn shutdown(&self, keep: bool) {
        Postgres::shutdown(self, keep).await;
    }
}
