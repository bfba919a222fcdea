//! What a harness binary configures once, in `groundtruth::main!`: where
//! migrations come from and which Docker image to start.

use std::path::{Path, PathBuf};

/// Where the template database's schema comes from.
#[derive(Debug)]
pub enum Migrations {
    /// `migrations/` next to the harness crate's Cargo.toml, when it exists.
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
pub struct Config {
    pub(crate) manifest_dir: Option<PathBuf>,
    pub(crate) migrations: Migrations,
    pub(crate) image: (String, String),
    pub(crate) reuse_databases: bool,
}

/// Image used when Docker provides PostgreSQL and nothing else is configured.
pub const DEFAULT_IMAGE: (&str, &str) = ("postgres", "15");

impl Default for Config {
    fn default() -> Self {
        Self {
            manifest_dir: None,
            migrations: Migrations::Default,
            image: (DEFAULT_IMAGE.0.to_owned(), DEFAULT_IMAGE.1.to_owned()),
            reuse_databases: true,
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

    /// The Docker image (`name`, `tag`) to start; `GROUNDTRUTH_POSTGRES_IMAGE=name:tag` overrides it.
    pub fn postgres_image(mut self, name: &str, tag: &str) -> Self {
        self.image = (name.to_owned(), tag.to_owned());
        self
    }

    /// Whether a test's database is reused by a later test after a verified
    /// reset (the default), or dropped and replaced by a fresh clone of the
    /// template. `GROUNDTRUTH_DB_REUSE=0` (or `1`) overrides it.
    pub fn reuse_databases(mut self, reuse: bool) -> Self {
        self.reuse_databases = reuse;
        self
    }

    /// Whether databases are reused, with the environment's override applied.
    pub(crate) fn reuses_databases(&self) -> bool {
        match std::env::var("GROUNDTRUTH_DB_REUSE").as_deref() {
            Ok("0" | "false") => false,
            Ok("1" | "true") => true,
            _ => self.reuse_databases,
        }
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

    /// The image, with the environment's override applied.
    #[cfg(feature = "docker")]
    pub(crate) fn image(&self) -> (String, String) {
        match std::env::var("GROUNDTRUTH_POSTGRES_IMAGE") {
            Ok(image) => match image.rsplit_once(':') {
                Some((name, tag)) => (name.to_owned(), tag.to_owned()),
                None => (image, "latest".to_owned()),
            },
            Err(_) => self.image.clone(),
        }
    }
}
