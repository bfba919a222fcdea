//! PostgreSQL in a container, once per run (through the run's one Docker
//! mechanism, `infra::docker`). No pull happens when the image exists
//! locally; the container is removed at the end of the run, on panic
//! (drop) and on Ctrl-C, and by a later run's sweep if the harness was
//! killed.

use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::infra::InfraError;
use crate::infra::docker::{Container, Spec};

/// Password of the superuser `postgres` in every container.
pub(crate) const PASSWORD: &str = "verily";

/// The port PostgreSQL listens on in the image.
const PORT: u16 = 5432;

/// How long a container may take to accept connections (a fresh one runs
/// initdb first).
const READY_LIMIT: Duration = Duration::from_secs(60);

/// A container of `image` for a run's server (`pid_label` `verily.pid`) or
/// a test's own (`verily.exclusive.pid`), started, not yet ready.
pub(crate) async fn run(
    image: String,
    pid_label: &str,
    host_port: Option<u16>,
    env: &[&str],
    args: &[&str],
) -> Result<Container, InfraError> {
    let mut variables = vec![
        "POSTGRES_USER=postgres".to_owned(),
        "POSTGRES_DB=postgres".to_owned(),
        format!("POSTGRES_PASSWORD={PASSWORD}"),
    ];
    variables.extend(env.iter().map(|variable| (*variable).to_owned()));
    let spec = Spec {
        image,
        pid_label,
        env: variables,
        port: PORT,
        host_port,
        command: args.iter().map(|arg| (*arg).to_owned()).collect(),
    };
    Container::run(&spec).await.map_err(|error| {
        InfraError::new(format!(
            "{error}; with no registry reachable, build the image locally (.ci/postgres-image.sh), or set VERILY_POSTGRES=local"
        ))
    })
}

/// The superuser over TCP on the container's published port (the image
/// trusts only its own socket).
pub(crate) fn options(container: &Container) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(container.host())
        .port(container.port())
        .username("postgres")
        .password(PASSWORD)
        .database("postgres")
}

/// Connects until the server in the container answers: the port is
/// published before the server listens, and a fresh container runs a
/// temporary server on its socket only while it initializes.
pub(crate) async fn wait_ready(container: &Container) -> Result<(), InfraError> {
    let deadline = Instant::now() + READY_LIMIT;
    let options = options(container);
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(2), PgConnection::connect_with(&options))
                .await;
        if let Ok(Ok(connection)) = attempt {
            let _ = connection.close().await;
            return Ok(());
        }
        if !container.running().await {
            return Err(InfraError::new(format!(
                "the PostgreSQL container {} exited at startup; its log:\n{}",
                container.id(),
                container.logs().await
            )));
        }
        if Instant::now() > deadline {
            return Err(InfraError::new(format!(
                "the PostgreSQL container {} did not accept connections within {} s; its log:\n{}",
                container.id(),
                READY_LIMIT.as_secs(),
                container.logs().await
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The run's server in a container.
#[derive(Debug)]
pub struct DockerPostgres {
    container: Container,
}

impl DockerPostgres {
    pub async fn start(name: &str, tag: &str) -> Result<Self, InfraError> {
        // fsync off, as testcontainers' PostgreSQL image did: the data is
        // thrown away with the container.
        let container = run(
            format!("{name}:{tag}"),
            "verily.pid",
            None,
            &[],
            &["-c", "fsync=off"],
        )
        .await?;
        wait_ready(&container).await?;
        Ok(Self { container })
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        options(&self.container).database(database)
    }

    /// A URL to `{database}` on the container's published port.
    pub fn url_pattern(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{}:{}/{{database}}",
            self.container.host(),
            self.container.port()
        )
    }

    pub fn describe(&self) -> String {
        self.container.describe()
    }

    pub fn keep_instructions(&mut self) -> String {
        let (host, port) = (self.container.host().to_owned(), self.container.port());
        let id = self.container.keep().to_owned();
        format!(
            "postgres: kept container {id}: psql \"postgres://postgres:{PASSWORD}@{host}:{port}/DATABASE\"; remove it with `docker rm -f {id}`"
        )
    }

    /// Removes the container and waits for it to be gone.
    pub async fn stop(&mut self) {
        crate::infra::process::blocking(|| self.container.remove());
    }
}
