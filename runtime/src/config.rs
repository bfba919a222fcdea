//! What a harness binary configures once, in `verily::main!`: where
//! migrations come from and which Docker images to start.

use std::path::{Path, PathBuf};

/// Where the template database's schema comes from.
#[derive(Debug)]
#[non_exhaustive]
pub enum Migrations {
    /// `migrations/` next to the harness crate's Cargo.toml; a run that
    /// needs PostgreSQL fails when it does not exist.
    Default,
    /// A folder of sqlx migrations, read when PostgreSQL starts.
    Dir(PathBuf),
    /// An embedded migrator, as `sqlx::migrate!()` builds it.
    Migrator(&'static sqlx::migrate::Migrator),
    /// An empty database.
    None,
}

/// Configuration of a harness binary.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    pub(crate) manifest_dir: Option<PathBuf>,
    pub(crate) migrations: Migrations,
    pub(crate) image: (String, String),
    pub(crate) reuse_databases: bool,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) redis_image: (String, String),
    /// The binary the `App` fixture starts, when named.
    pub(crate) app_binary: Option<PathBuf>,
    /// The harness crate's package name (from `main!`): the `App`
    /// fixture's default binary.
    pub(crate) package: Option<String>,
}

/// Image used when Docker provides PostgreSQL and nothing else is configured.
pub const DEFAULT_IMAGE: (&str, &str) = ("postgres", "15");

/// Image used when Docker provides Redis: 7.0 is what Debian ships, so
/// `.ci/redis-image.sh` can build it from this machine's redis-server.
pub const DEFAULT_REDIS_IMAGE: (&str, &str) = ("redis", "7.0");

impl Default for Config {
    fn default() -> Self {
        Self {
            manifest_dir: None,
            migrations: Migrations::Default,
            image: (DEFAULT_IMAGE.0.to_owned(), DEFAULT_IMAGE.1.to_owned()),
            reuse_databases: true,
            redis_image: (
                DEFAULT_REDIS_IMAGE.0.to_owned(),
                DEFAULT_REDIS_IMAGE.1.to_owned(),
            ),
            app_binary: None,
            package: None,
        }
    }
}

impl Config {
    /// The defaults, relative to the harness crate's directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set by `main!` to the harness crate's `CARGO_MANIFEST_DIR`.
    #[doc(hidden)]
    pub fn manifest_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.manifest_dir = Some(dir.into());
        self
    }

    /// Set by `main!` to the harness crate's `CARGO_PKG_NAME`.
    #[doc(hidden)]
    pub fn package(mut self, name: impl Into<String>) -> Self {
        self.package = Some(name.into());
        self
    }

    /// The binary the `App` fixture starts; by default the binary named
    /// like the harness crate's package. In `main!`:
    /// `Config::new().app_binary(env!("CARGO_BIN_EXE_my-api"))` (cargo sets
    /// that variable for integration tests of a package with that `[[bin]]`).
    pub fn app_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.app_binary = Some(path.into());
        self
    }

    /// Migrations from this folder (relative to the crate's Cargo.toml).
    pub fn migrations_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations = Migrations::Dir(dir.into());
        self
    }

    /// Migrations embedded with `sqlx::migrate!()`.
    pub fn migrator(mut self, migrator: &'static sqlx::migrate::Migrator) -> Self {
        self.migrations = Migrations::Migrator(migrator);
        self
    }

    /// No migrations: tests get an empty database.
    pub fn no_migrations(mut self) -> Self {
        self.migrations = Migrations::None;
        self
    }

    /// The Docker image (`name`, `tag`) to start; `VERILY_POSTGRES_IMAGE=name:tag` overrides it.
    pub fn postgres_image(mut self, name: &str, tag: &str) -> Self {
        self.image = (name.to_owned(), tag.to_owned());
        self
    }

    /// Whether a test's database is reused by a later test after a verified
    /// reset (the default), or dropped and replaced by a fresh clone of the
    /// template. `VERILY_DB_REUSE=0` (or `1`) overrides it.
    pub fn reuse_databases(mut self, reuse: bool) -> Self {
        self.reuse_databases = reuse;
        self
    }

    /// Whether databases are reused, with the environment's override applied.
    pub(crate) fn reuses_databases(&self) -> bool {
        crate::env::env().db_reuse.unwrap_or(self.reuse_databases)
    }

    /// The Redis image (`name`, `tag`) to start; `VERILY_REDIS_IMAGE=name:tag` overrides it.
    pub fn redis_image(mut self, name: &str, tag: &str) -> Self {
        self.redis_image = (name.to_owned(), tag.to_owned());
        self
    }

    /// The folder of migrations to apply, if any, resolved against the crate.
    pub(crate) fn migrations_path(&self) -> Option<PathBuf> {
        let resolve = |dir: &Path| match &self.manifest_dir {
            Some(root) if dir.is_relative() => root.join(dir),
            _ => dir.to_owned(),
        };
        match &self.migrations {
            Migrations::Dir(dir) => Some(resolve(dir)),
            Migrations::Default => {
                Some(resolve(Path::new("migrations"))).filter(|dir| dir.is_dir())
            }
            Migrations::Migrator(_) | Migrations::None => None,
        }
    }

    /// The migrations folder that was named, or the default `migrations/`
    /// that was left implied, when it does not exist: every test would get
    /// an empty database and fail on its first query.
    pub(crate) fn missing_migrations_dir(&self) -> Option<PathBuf> {
        let dir = match &self.migrations {
            Migrations::Dir(dir) => dir.as_path(),
            Migrations::Default => Path::new("migrations"),
            Migrations::Migrator(_) | Migrations::None => return None,
        };
        let resolved = match &self.manifest_dir {
            Some(root) if dir.is_relative() => root.join(dir),
            _ => dir.to_owned(),
        };
        (!resolved.is_dir()).then_some(resolved)
    }

    /// The image, with the environment's override applied.
    pub(crate) fn image(&self) -> (String, String) {
        crate::env::env()
            .postgres_image
            .clone()
            .unwrap_or_else(|| self.image.clone())
    }

    /// The Redis image, with the environment's override applied.
    #[cfg(feature = "redis")]
    pub(crate) fn redis_image_name(&self) -> (String, String) {
        crate::env::env()
            .redis_image
            .clone()
            .unwrap_or_else(|| self.redis_image.clone())
    }
}
