//! PostgreSQL in a container through testcontainers, once per run. No pull
//! happens when the image exists locally; the container is removed at the
//! end of the run, on panic (drop) and on Ctrl-C.

use sqlx::postgres::PgConnectOptions;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::postgres::Postgres as PostgresImage;

use crate::infra::{InfraError, reaper};

/// A running container.
pub struct DockerPostgres {
    container: Option<ContainerAsync<PostgresImage>>,
    host: String,
    port: u16,
    image: String,
}

impl std::fmt::Debug for DockerPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerPostgres")
            .field("image", &self.image)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

const PASSWORD: &str = "verily";

impl DockerPostgres {
    pub async fn start(name: &str, tag: &str) -> Result<Self, InfraError> {
        let image = format!("{name}:{tag}");
        let container = PostgresImage::default()
            .with_password(PASSWORD)
            .with_name(name)
            .with_tag(tag)
            .with_label("verily.pid", std::process::id().to_string())
            .with_label(reaper::OWNER_LABEL, reaper::owner_tag())
            .start()
            .await
            .map_err(|error| {
                InfraError::new(format!(
                    "cannot start the PostgreSQL container {image}: {error}; with no registry reachable, build the image locally (.ci/postgres-image.sh), or set VERILY_POSTGRES=local"
                ))
            })?;
        let host = container
            .get_host()
            .await
            .map_err(|error| InfraError::new(format!("cannot read the container's host: {error}")))?
            .to_string();
        let port = container.get_host_port_ipv4(5432).await.map_err(|error| {
            InfraError::new(format!("cannot read the container's port: {error}"))
        })?;
        Ok(Self {
            container: Some(container),
            host,
            port,
            image,
        })
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username("postgres")
            .password(PASSWORD)
            .database(database)
    }

    /// A URL to `{database}` on the container's mapped port.
    pub fn url_pattern(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{}:{}/{{database}}",
            self.host, self.port
        )
    }

    pub fn describe(&self) -> String {
        format!(
            "docker container ({}, {}:{})",
            self.image, self.host, self.port
        )
    }

    pub fn keep_instructions(&mut self) -> String {
        let id = self
            .container
            .take()
            .map(|container| {
                let id = container.id().to_owned();
                // Leaking the handle is how a container outlives the run.
                std::mem::forget(container);
                id
            })
            .unwrap_or_default();
        format!(
            "postgres: kept container {id}: psql \"postgres://postgres:{PASSWORD}@{}:{}/DATABASE\"; remove it with `docker rm -f {id}`",
            self.host, self.port
        )
    }

    /// Removes the container and waits for it to be gone.
    pub async fn stop(&mut self) {
        if let Some(container) = self.container.take() {
            let _ = container.rm().await;
        }
    }
}
