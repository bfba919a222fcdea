//! Redis in a container (through the run's one Docker mechanism,
//! `infra::docker`). No pull happens when the image exists locally; the
//! container is removed at the end of the run (or of the test, for an
//! exclusive server), on panic (drop) and on Ctrl-C, and by the next run if
//! the harness was killed.

use std::time::{Duration, Instant};

use super::local::DATABASES;
use crate::infra::InfraError;
use crate::infra::docker::{Container, Spec};

/// The port Redis listens on in the image.
const PORT: u16 = 6379;

/// How long a container may take to answer PING.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// A running (or stopped, or paused) container.
#[derive(Debug)]
pub struct DockerRedis {
    container: Container,
}

impl DockerRedis {
    /// Starts a container of `name:tag` and waits until it answers. With
    /// `fixed_port`, the host port is chosen here and published
    /// explicitly, so that stopping and starting the container keeps its
    /// address (Docker gives an ephemeral mapping a new port on every
    /// start).
    pub async fn start(name: &str, tag: &str, fixed_port: bool) -> Result<Self, InfraError> {
        let host_port = match fixed_port {
            true => Some(crate::infra::process::free_port()?),
            false => None,
        };
        let spec = Spec {
            image: format!("{name}:{tag}"),
            pid_label: "verily.pid",
            env: Vec::new(),
            port: PORT,
            host_port,
            command: [
                "redis-server",
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                &DATABASES.to_string(),
            ]
            .map(str::to_owned)
            .to_vec(),
        };
        let container = Container::run(&spec).await.map_err(|error| {
            InfraError::new(format!(
                "{error}; with no registry reachable, build the image locally (.ci/redis-image.sh), or set VERILY_REDIS=local"
            ))
        })?;
        let server = Self { container };
        server.wait_ready("starting").await?;
        Ok(server)
    }

    /// PING until the server answers.
    async fn wait_ready(&self, after: &str) -> Result<(), InfraError> {
        let deadline = Instant::now() + READY_LIMIT;
        while super::ping(self.container.host(), self.container.port())
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err(InfraError::new(format!(
                    "container {} did not answer PING within {} s of {after}; its log:\n{}",
                    self.container.id(),
                    READY_LIMIT.as_secs(),
                    self.container.logs().await
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// `redis://HOST:PORT` on the container's published port.
    pub fn url(&self) -> String {
        format!(
            "redis://{}:{}",
            self.container.host(),
            self.container.port()
        )
    }

    /// The host its port is published on.
    pub fn host(&self) -> &str {
        self.container.host()
    }

    /// The published port.
    pub fn port(&self) -> u16 {
        self.container.port()
    }

    /// One line for the start report.
    pub fn describe(&self) -> String {
        self.container.describe()
    }

    /// Stops the container (SIGKILL after no grace: an outage, not a
    /// shutdown); it keeps its port.
    pub async fn stop(&self) -> Result<(), InfraError> {
        self.container.stop(Duration::ZERO).await
    }

    /// Starts the stopped container again and waits until it answers.
    pub async fn start_again(&self) -> Result<(), InfraError> {
        self.container.start().await?;
        self.wait_ready("starting again").await
    }

    /// `docker pause`: the processes are frozen, connections stay open.
    pub async fn pause(&self) -> Result<(), InfraError> {
        self.container.pause().await
    }

    /// `docker unpause`.
    pub async fn resume(&self) -> Result<(), InfraError> {
        self.container.resume().await
    }

    /// How to reach a kept container, and how to remove it.
    pub fn keep_instructions(&mut self) -> String {
        let url = self.url();
        let id = self.container.keep().to_owned();
        format!(
            "redis: kept container {id}: redis-cli -u {url}/DATABASE; remove it with `docker rm -f {id}`"
        )
    }

    /// Removes the container, paused or not, and waits for it.
    pub fn remove(&mut self) {
        self.container.remove();
    }
}
