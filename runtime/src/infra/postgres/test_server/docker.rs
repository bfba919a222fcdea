//! A PostgreSQL container of one test's own, driven through the docker CLI
//! so that each control is one command whose end is the state the test
//! asked for (`docker stop`, `start`, `pause`, `unpause`), and so that Drop
//! removes the container synchronously (`docker rm -f -v`).
//!
//! Its port is published on an explicit host port of 127.0.0.1, so a
//! container stopped and started again keeps its address.

use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::process::Command;

use super::{PASSWORD, cleanup};
use crate::infra::InfraError;
use crate::infra::process::free_port;

/// Carries the harness's pid. Not the shared server's `verily.pid`:
/// a run checking that its shared container is gone must not see a test's
/// own container still at work.
pub(crate) const LABEL: &str = "verily.exclusive.pid";

/// How long a container may take to accept connections (a fresh one runs
/// initdb first).
const READY_LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct DockerServer {
    id: String,
    image: String,
    port: u16,
    paused: std::sync::atomic::AtomicBool,
    cleanup_key: u64,
}

impl std::fmt::Debug for DockerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerServer")
            .field("id", &self.id)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DockerServer {
    /// Runs a container of `name:tag` with its port on a free host port,
    /// and waits until it accepts TCP connections.
    pub(crate) async fn start(name: &str, tag: &str) -> Result<Self, InfraError> {
        crate::infra::reaper::sweep_containers_once();
        let image = format!("{name}:{tag}");
        let mut attempts = 0;
        loop {
            let port = free_port()?;
            let output = docker(&[
                "run",
                "--detach",
                "--label",
                &format!("{LABEL}={}", std::process::id()),
                "--label",
                &format!(
                    "{}={}",
                    crate::infra::reaper::OWNER_LABEL,
                    crate::infra::reaper::owner_tag()
                ),
                "--env",
                &format!("POSTGRES_PASSWORD={PASSWORD}"),
                // initdb's final sync is most of a fresh container's start,
                // for data thrown away with it.
                "--env",
                "POSTGRES_INITDB_ARGS=--no-sync",
                "--publish",
                &format!("127.0.0.1:{port}:5432"),
                &image,
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .await?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
                // The port was taken between choosing and publishing it.
                if stderr.contains("address already in use") && attempts < 3 {
                    attempts += 1;
                    continue;
                }
                return Err(InfraError::new(format!(
                    "cannot start a PostgreSQL container of {image}: {stderr}; with no registry reachable, build the image locally (.ci/postgres-image.sh), or set VERILY_POSTGRES=local"
                )));
            }
            let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let key = cleanup::next_key();
            cleanup::register_docker(key, id.clone());
            let server = DockerServer {
                id,
                image,
                port,
                paused: std::sync::atomic::AtomicBool::new(false),
                cleanup_key: key,
            };
            server.wait_ready().await?;
            return Ok(server);
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The superuser over TCP (the image trusts only its own socket).
    pub(crate) fn admin_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .password(PASSWORD)
            .database("postgres")
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "container {} ({}) on 127.0.0.1:{}",
            &self.id[..self.id.len().min(12)],
            self.image,
            self.port
        )
    }

    /// Connects until the server in the container answers: the port is
    /// published before the server listens, and a fresh container runs a
    /// temporary server on its socket only while it initializes.
    async fn wait_ready(&self) -> Result<(), InfraError> {
        let deadline = Instant::now() + READY_LIMIT;
        let options = self.admin_options();
        loop {
            let attempt =
                tokio::time::timeout(Duration::from_secs(2), PgConnection::connect_with(&options))
                    .await;
            if let Ok(Ok(connection)) = attempt {
                let _ = connection.close().await;
                return Ok(());
            }
            if !self.running().await {
                return Err(InfraError::new(format!(
                    "the PostgreSQL container {} exited at startup; its log:\n{}",
                    self.id,
                    self.logs().await
                )));
            }
            if Instant::now() > deadline {
                return Err(InfraError::new(format!(
                    "the PostgreSQL container {} did not accept connections within {} s; its log:\n{}",
                    self.id,
                    READY_LIMIT.as_secs(),
                    self.logs().await
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn running(&self) -> bool {
        docker(&["inspect", "--format", "{{.State.Running}}", &self.id])
            .await
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "true")
    }

    async fn logs(&self) -> String {
        match docker(&["logs", "--tail", "20", &self.id]).await {
            Ok(output) => format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => error.to_string(),
        }
    }

    /// `docker stop`: the image's entrypoint turns it into a fast shutdown.
    pub(crate) async fn stop(&self) -> Result<(), InfraError> {
        self.resume().await?;
        checked("stop", &["stop", "--time", "30", &self.id]).await
    }

    /// `docker start`, then waits until the server answers again.
    pub(crate) async fn start_again(&self) -> Result<(), InfraError> {
        if self.running().await {
            return Ok(());
        }
        checked("start", &["start", &self.id]).await?;
        self.wait_ready().await
    }

    /// `docker pause`: every process of the container is frozen.
    pub(crate) async fn pause(&self) -> Result<(), InfraError> {
        use std::sync::atomic::Ordering;
        if self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        checked("pause", &["pause", &self.id]).await?;
        self.paused.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub(crate) async fn resume(&self) -> Result<(), InfraError> {
        use std::sync::atomic::Ordering;
        if !self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        checked("unpause", &["unpause", &self.id]).await?;
        self.paused.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        super::remove_container(&self.id);
        cleanup::unregister(self.cleanup_key);
    }
}

async fn docker(args: &[&str]) -> Result<std::process::Output, InfraError> {
    Command::new("docker")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| InfraError::new(format!("cannot run the docker CLI: {error}")))
}

/// Runs `docker ARGS`; a failure is an error naming the action.
async fn checked(action: &str, args: &[&str]) -> Result<(), InfraError> {
    let output = docker(args).await?;
    if output.status.success() {
        Ok(())
    } else {
        Err(InfraError::new(format!(
            "docker {action} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
