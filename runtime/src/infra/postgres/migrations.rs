//! The configured migrations: loaded once (a folder or an embedded
//! migrator), applied to the run's template and to a test's own server,
//! and a failed one said in PostgreSQL's words with its file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::{describe, sql_error};
use crate::config::{Config, Migrations};
use crate::infra::InfraError;

/// The configured migrations, read once.
pub(crate) struct Schema {
    migrator: Option<MigratorRef>,
    directory: Option<PathBuf>,
}

enum MigratorRef {
    Owned(sqlx::migrate::Migrator),
    Static(&'static sqlx::migrate::Migrator),
}

impl Schema {
    /// Reads the migrations folder (or takes the embedded migrator) for the
    /// run's template: a folder named, or the default `migrations/` left
    /// implied, that does not exist is an error.
    pub(crate) async fn load(config: &Config) -> Result<Self, InfraError> {
        if let Some(missing) = config.missing_migrations_dir() {
            return Err(InfraError::new(format!(
                "the migrations folder {} does not exist; point to yours with `Config::migrations_dir(..)` (or embed them with `Config::migrator(&sqlx::migrate!())`) in `verily::main!`, or say there are none with `Config::no_migrations()`",
                missing.display()
            )));
        }
        Self::read(config).await
    }

    /// The same for a test's own server, where a missing default
    /// `migrations/` means none (as it always has for `PgServer`).
    pub(crate) async fn read(config: &Config) -> Result<Self, InfraError> {
        let directory = config.migrations_path();
        let migrator = match (&config.migrations, &directory) {
            (Migrations::Migrator(migrator), _) => Some(MigratorRef::Static(migrator)),
            (_, Some(dir)) => Some(MigratorRef::Owned(
                sqlx::migrate::Migrator::new(dir.as_path())
                    .await
                    .map_err(|error| {
                        InfraError::new(format!(
                            "cannot read the migrations in {}: {error}",
                            dir.display()
                        ))
                    })?,
            )),
            (_, None) => None,
        };
        Ok(Self {
            migrator,
            directory,
        })
    }

    fn migrator(&self) -> Option<&sqlx::migrate::Migrator> {
        match &self.migrator {
            Some(MigratorRef::Owned(migrator)) => Some(migrator),
            Some(MigratorRef::Static(migrator)) => Some(migrator),
            None => None,
        }
    }

    /// How many migrations there are.
    pub(crate) fn count(&self) -> usize {
        self.migrator()
            .map_or(0, |migrator| migrator.iter().count())
    }

    /// A stable hash of every migration's version and checksum: runs with
    /// the same migrations may share a template.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut text = String::new();
        for migration in self.migrator().into_iter().flat_map(|m| m.iter()) {
            text.push_str(&format!(
                "{}:{:02x?};",
                migration.version,
                &migration.checksum[..]
            ));
        }
        crate::hash::stable_hash(&text)
    }

    /// Applies the migrations to the run's template; says how long it took.
    pub(crate) async fn migrate_template(
        &self,
        template: &PgConnectOptions,
    ) -> Result<usize, InfraError> {
        let started = Instant::now();
        let count = self.apply(template).await?;
        if self.migrator().is_some() {
            eprintln!(
                "postgres: template database migrated ({count} migrations) in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(count)
    }

    /// Applies the migrations to `database`; returns how many.
    pub(crate) async fn apply(&self, database: &PgConnectOptions) -> Result<usize, InfraError> {
        let Some(migrator) = self.migrator() else {
            return Ok(0);
        };
        // Through a one-connection pool: `Migrator::run(&mut PgConnection)`
        // makes the future's `Send` unprovable ("Acquire is not general enough").
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(database.clone())
            .await
            .map_err(sql_error)?;
        let result = migrator.run(&pool).await;
        // Cloning (a template) needs the database free of connections.
        pool.close().await;
        if let Err(error) = result {
            return Err(migration_error(error, migrator, self.directory.as_deref()));
        }
        Ok(migrator.iter().count())
    }
}

/// "migration migrations/0003_orders.sql failed: ..." with PostgreSQL's own
/// words, once, instead of a stack trace per test.
fn migration_error(
    error: sqlx::migrate::MigrateError,
    migrator: &sqlx::migrate::Migrator,
    dir: Option<&Path>,
) -> InfraError {
    use sqlx::migrate::MigrateError;
    match error {
        MigrateError::ExecuteMigration(cause, version) => {
            let file = migration_file(migrator, dir, version);
            let detail = describe(&cause);
            InfraError::new(format!(
                "migration {file} failed: {detail}; fix it and run again (no persistence test can run without the schema)"
            ))
        }
        other => InfraError::new(format!("migrations failed: {other}")),
    }
}

fn migration_file(migrator: &sqlx::migrate::Migrator, dir: Option<&Path>, version: i64) -> String {
    let prefix = format!("{version}_");
    if let Some(dir) = dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with(&prefix))
            })
            .collect();
        names.sort();
        if let Some(path) = names.first() {
            return path.display().to_string();
        }
    }
    migrator
        .iter()
        .find(|migration| migration.version == version)
        .map(|migration| format!("{version}_{}", migration.description))
        .unwrap_or_else(|| version.to_string())
}
