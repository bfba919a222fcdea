//! A PostgreSQL container of one test's own (through the run's one Docker
//! mechanism, `infra::docker`), so that each control is one command whose
//! end is the state the test asked for (`docker stop`, `start`, `pause`,
//! `unpause`), and so that Drop removes the container synchronously
//! (`docker rm -f -v`).
//!
//! Its port is published on an explicit host port of 127.0.0.1, so a
//! container stopped and started again keeps its address.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::cleanup;
use crate::infra::InfraError;
use crate::infra::docker::Container;
use crate::infra::postgres::server::docker as container;
use crate::infra::process::free_port;

/// Carries the harness's pid. Not the shared server's `verily.pid`:
/// a run checking that its shared container is gone must not see a test's
/// own container still at work.
pub(crate) const LABEL: &str = "verily.exclusive.pid";

/// How long `docker stop` gives the server to shut down cleanly.
const STOP_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct DockerServer {
    container: Container,
    cleanup_key: u64,
}

impl DockerServer {
    /// Runs a container of `name:tag` with its port on a free host port,
    /// and waits until it accepts TCP connections.
    pub(crate) async fn start(name: &str, tag: &str) -> Result<Self, InfraError> {
        let container = container::run(
            format!("{name}:{tag}"),
            LABEL,
            Some(free_port()?),
            // initdb's final sync is most of a fresh container's start,
            // for data thrown away with it.
            &["POSTGRES_INITDB_ARGS=--no-sync"],
            &crate::infra::postgres::THROWAWAY_SETTINGS,
        )
        .await?;
        let key = cleanup::next_key();
        cleanup::register_docker(key, container.id().to_owned());
        let server = DockerServer {
            container,
            cleanup_key: key,
        };
        container::wait_ready(&server.container).await?;
        Ok(server)
    }

    pub(crate) fn port(&self) -> u16 {
        self.container.port()
    }

    /// The superuser over TCP (the image trusts only its own socket).
    pub(crate) fn admin_options(&self) -> PgConnectOptions {
        container::options(&self.container)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "container {} ({}) on {}:{}",
            &self.container.id()[..self.container.id().len().min(12)],
            self.container.image(),
            self.container.host(),
            self.container.port()
        )
    }

    /// `docker stop`: the image's entrypoint turns it into a fast shutdown.
    pub(crate) async fn stop(&self) -> Result<(), InfraError> {
        self.container.stop(STOP_LIMIT).await
    }

    /// `docker start`, then waits until the server answers again.
    pub(crate) async fn start_again(&self) -> Result<(), InfraError> {
        if self.container.running().await {
            return Ok(());
        }
        self.container.start().await?;
        container::wait_ready(&self.container).await
    }

    /// `docker pause`: every process of the container is frozen.
    pub(crate) async fn pause(&self) -> Result<(), InfraError> {
        self.container.pause().await
    }

    pub(crate) async fn resume(&self) -> Result<(), InfraError> {
        self.container.resume().await
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        self.container.remove();
        cleanup::unregister(self.cleanup_key);
    }
}
