//! Redis in a container through testcontainers-modules' `redis` module. No
//! pull happens when the image exists locally; the container is removed at
//! the end of the run (or of the test, for an exclusive server), on panic
//! (drop) and on Ctrl-C, and by the next run if the harness was killed.

use std::process::Command;
use std::time::{Duration, Instant};

use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::redis::{REDIS_PORT, Redis as RedisImage};

use super::local::DATABASES;
use crate::infra::InfraError;

/// A running (or stopped, or paused) container.
pub struct DockerRedis {
    container: Option<ContainerAsync<RedisImage>>,
    id: String,
    host: String,
    port: u16,
    image: String,
}

impl std::fmt::Debug for DockerRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRedis")
            .field("image", &self.image)
            .field("id", &self.id)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DockerRedis {
    /// Starts a container of `name:tag`. With `fixed_port`, the host port
    /// is chosen here and mapped explicitly, so that stopping and starting
    /// the container keeps its address (Docker gives an ephemeral mapping a
    /// new port on every start).
    pub async fn start(name: &str, tag: &str, fixed_port: bool) -> Result<Self, InfraError> {
        let image = format!("{name}:{tag}");
        let request = RedisImage::default()
            .with_name(name)
            .with_tag(tag)
            .with_cmd([
                "redis-server",
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                &DATABASES.to_string(),
            ])
            .with_label("verily.pid", std::process::id().to_string())
            .with_label(
                crate::infra::reaper::OWNER_LABEL,
                crate::infra::reaper::owner_tag(),
            );
        let request = if fixed_port {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|address| address.port())
                .map_err(|error| {
                    InfraError::new(format!("cannot find a free loopback port: {error}"))
                })?;
            request.with_mapped_port(port, REDIS_PORT.tcp())
        } else {
            request
        };
        let container = request.start().await.map_err(|error| {
            InfraError::new(format!(
                "cannot start the Redis container {image}: {error}; with no registry reachable, build the image locally (.ci/redis-image.sh), or set VERILY_REDIS=local"
            ))
        })?;
        let host = container
            .get_host()
            .await
            .map_err(|error| InfraError::new(format!("cannot read the container's host: {error}")))?
            .to_string();
        let port = container
            .get_host_port_ipv4(REDIS_PORT)
            .await
            .map_err(|error| {
                InfraError::new(format!("cannot read the container's port: {error}"))
            })?;
        let id = container.id().to_owned();
        Ok(Self {
            container: Some(container),
            id,
            host,
            port,
            image,
        })
    }

    /// `redis://HOST:PORT` on the container's mapped port.
    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.host, self.port)
    }

    /// One line for the start report.
    pub fn describe(&self) -> String {
        format!(
            "docker container ({}, {}:{})",
            self.image, self.host, self.port
        )
    }

    fn container(&self) -> Result<&ContainerAsync<RedisImage>, InfraError> {
        self.container
            .as_ref()
            .ok_or_else(|| InfraError::new("the container was already removed"))
    }

    /// Stops the container (SIGKILL after no grace: an outage, not a
    /// shutdown); it keeps its port.
    pub async fn stop(&self) -> Result<(), InfraError> {
        self.container()?
            .stop_with_timeout(Some(0))
            .await
            .map_err(|error| InfraError::new(format!("cannot stop container {}: {error}", self.id)))
    }

    /// Starts the stopped container again and waits until it answers.
    pub async fn start_again(&self) -> Result<(), InfraError> {
        self.container()?.start().await.map_err(|error| {
            InfraError::new(format!("cannot start container {}: {error}", self.id))
        })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while super::ping(&self.host, self.port).await.is_err() {
            if Instant::now() > deadline {
                return Err(InfraError::new(format!(
                    "container {} did not answer PING within 30 s of starting again",
                    self.id
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// `docker pause`: the processes are frozen, connections stay open.
    pub async fn pause(&self) -> Result<(), InfraError> {
        self.container()?.pause().await.map_err(|error| {
            InfraError::new(format!("cannot pause container {}: {error}", self.id))
        })
    }

    /// `docker unpause`.
    pub async fn resume(&self) -> Result<(), InfraError> {
        self.container()?.unpause().await.map_err(|error| {
            InfraError::new(format!("cannot unpause container {}: {error}", self.id))
        })
    }

    /// How to reach a kept container, and how to remove it.
    pub fn keep_instructions(&mut self) -> String {
        if let Some(container) = self.container.take() {
            // Leaking the handle is how a container outlives the run.
            std::mem::forget(container);
        }
        format!(
            "redis: kept container {}: redis-cli -u {}/DATABASE; remove it with `docker rm -f {}`",
            self.id,
            self.url(),
            self.id
        )
    }

    /// Removes the container, paused or not, and waits for it: `docker rm
    /// -f` from a plain process, so it works from `Drop` on any thread.
    pub fn remove(&mut self) {
        if let Some(container) = self.container.take() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &self.id])
                .output();
            // Already removed: its own drop would only try again.
            std::mem::forget(container);
        }
    }
}

impl Drop for DockerRedis {
    fn drop(&mut self) {
        self.remove();
    }
}
