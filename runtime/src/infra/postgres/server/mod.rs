//! Getting the run's PostgreSQL server from the first source that is
//! available (see the parent module), and what every kind of server
//! answers: options, a URL pattern, one line saying where it came from.

pub mod binaries;
#[cfg(feature = "docker")]
pub mod docker;
pub mod local;
pub(crate) mod pristine;
pub mod url;

use sqlx::postgres::PgConnectOptions;

use super::shared::SharedCluster;
use crate::config::Config;
use crate::infra::InfraError;
use crate::infra::source::{self, Chosen, Source};

/// The variable that forces a source.
pub(crate) const FORCE: &str = "VERILY_POSTGRES";

/// The server process (or the lack of one, for a URL).
#[derive(Debug)]
pub(super) enum Server {
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
    pub(super) fn options(&self, database: &str) -> PgConnectOptions {
        match self {
            Server::Url { options, .. } => (**options).clone().database(database),
            Server::Local(cluster) => cluster.options(database),
            Server::Shared(cluster) => cluster.options(database),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.options(database),
        }
    }

    /// The maintenance database to connect to for CREATE/DROP DATABASE.
    pub(super) fn admin_options(&self) -> PgConnectOptions {
        match self {
            Server::Url { options, .. } => (**options).clone(),
            _ => self.options("postgres"),
        }
    }

    /// A URL to `{database}` (the placeholder is replaced per test).
    pub(super) fn url_pattern(&self) -> String {
        match self {
            Server::Url { url, .. } => url::with_database(url, "{database}"),
            Server::Local(cluster) => cluster.url_pattern(),
            Server::Shared(cluster) => cluster.url_pattern(),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.url_pattern(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Server::Url { describe, .. } => describe.clone(),
            Server::Local(cluster) => cluster.describe(),
            Server::Shared(cluster) => cluster.describe(),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.describe(),
        }
    }

    pub(super) async fn start(config: &Config) -> Result<Server, InfraError> {
        let forced = Source::forced(FORCE)?;
        let url = url::from_env();
        // The processes of a nextest run after the first find the shared
        // cluster running, and need to look for nothing else.
        if url.is_none()
            && forced.is_none_or(|source| source == Source::Local)
            && crate::infra::hosted::requested()
            && let Some(cluster) = crate::infra::process::blocking(SharedCluster::attach_running)?
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
                if crate::infra::hosted::requested() {
                    crate::infra::process::blocking(|| SharedCluster::attach(binaries))
                        .map(Server::Shared)
                } else {
                    crate::infra::process::blocking(|| local::LocalCluster::start(binaries))
                        .map(Server::Local)
                }
            }
        }
    }

    pub(super) async fn stop(&mut self, keep: bool) {
        match self {
            Server::Url { .. } | Server::Shared(_) => {}
            Server::Local(cluster) if keep => eprintln!("{}", cluster.keep_instructions()),
            Server::Local(cluster) => crate::infra::process::blocking(|| cluster.stop()),
            #[cfg(feature = "docker")]
            Server::Docker(container) if keep => eprintln!("{}", container.keep_instructions()),
            #[cfg(feature = "docker")]
            Server::Docker(container) => container.stop().await,
        }
    }
}

/// Docker or local binaries (`source::choose`); processes that share a
/// cluster (nextest) take local binaries first: a container per process
/// would cost seconds per test, one local cluster is shared by all of them.
fn choose_unforced(config: &Config) -> Result<Chosen<local::Binaries>, InfraError> {
    let binaries = local::find_binaries();
    if let Some(binaries) = binaries
        .clone()
        .filter(|_| crate::infra::hosted::requested())
    {
        return Ok(Chosen::Local(binaries));
    }
    source::choose(binaries, config.image()).map_err(|docker| {
        InfraError::new(format!(
            "no PostgreSQL: DATABASE_URL is unset, Docker is not usable ({docker}), and no initdb was found (looked in {}); install postgresql, start Docker, or set DATABASE_URL",
            local::SEARCHED
        ))
    })
}

/// Starts a container; `check_engine` unless choosing just saw it answer.
async fn start_docker(config: &Config, check_engine: bool) -> Result<Server, InfraError> {
    if check_engine || cfg!(not(feature = "docker")) {
        source::docker_asked_for("PostgreSQL", FORCE, "VERILY_POSTGRES=local or DATABASE_URL")?;
    }
    #[cfg(feature = "docker")]
    {
        let (name, tag) = config.image();
        docker::DockerPostgres::start(&name, &tag)
            .await
            .map(|container| Server::Docker(Box::new(container)))
    }
    #[cfg(not(feature = "docker"))]
    unreachable!("docker_asked_for refuses without the `docker` feature ({config:?})")
}
