//! PostgreSQL for a run, from the first source that is available:
//!
//! 1. `VERILY_DATABASE_URL` or `DATABASE_URL`: an existing server;
//! 2. Docker (feature `docker`): a container of the configured image;
//! 3. local binaries: an ephemeral cluster in a temp dir.
//!
//! `VERILY_POSTGRES=url|docker|local` forces one; a forced source that
//! is unavailable is an error, never a silent fallback.

pub mod databases;
pub mod migrations;
pub mod server;
pub mod shared;
pub mod sql;
pub mod test_server;

// Paths the fixtures name (fixtures/{context,db}.rs); they move with the
// lead's lease work.
pub(crate) use databases::template;

use std::time::Instant;

use tokio::sync::Mutex;

use crate::config::Config;
use crate::infra::InfraError;
use databases::shared::SharedDatabases;
use databases::template::{Databases, TestDatabase};
use server::Server;

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

/// Settings of a server whose data is thrown away with it: durability off,
/// for the local cluster and a test's own container alike.
pub(crate) const THROWAWAY_SETTINGS: [&str; 6] = [
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
];
