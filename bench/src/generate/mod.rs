//! The subject crates the rows measure, generated under bench/work/: each
//! verily crate beside its peer written the way the peer is used.
//! Files are rewritten only when their content changes, so cargo does not
//! rebuild what is already built.

pub mod compile;
pub mod overhead;
pub mod persistence;
pub mod schema;

use std::fs;
use std::path::{Path, PathBuf};

use crate::BenchError;

/// Where the generated crates go and what they depend on.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The verily checkout under test (the bench crate's parent).
    pub repo: PathBuf,
    /// bench/work
    pub work: PathBuf,
}

/// One generated crate: its manifest's dependencies and its files.
pub struct CrateSpec<'a> {
    pub name: &'a str,
    /// `[dev-dependencies]` lines and anything after them.
    pub manifest_tail: String,
    /// `(path relative to the crate, content)`.
    pub files: Vec<(String, String)>,
    /// Copy the schema's migrations into `migrations/`.
    pub migrations: bool,
}

impl Workspace {
    /// The dev-dependency line for verily with its test feature.
    pub fn verily_dependency(&self) -> String {
        format!(
            "verily = {{ path = \"{}\", features = [\"testing\"] }}\n",
            self.repo.display()
        )
    }

    /// Writes the crate; returns its directory.
    pub fn write(&self, spec: CrateSpec<'_>) -> Result<PathBuf, BenchError> {
        let dir = self.work.join(spec.name);
        let manifest = format!(
            "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n{}",
            spec.name, spec.manifest_tail
        );
        write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
        write_if_changed(&dir.join("src/lib.rs"), "")?;
        // Files a previous generation wrote but this one does not (fewer
        // modules in --quick) would otherwise linger as extra test targets.
        let tests = dir.join("tests");
        let wanted: Vec<PathBuf> = spec.files.iter().map(|(path, _)| dir.join(path)).collect();
        remove_unwanted(&tests, &wanted)?;
        for (path, content) in &spec.files {
            write_if_changed(&dir.join(path), content)?;
        }
        if spec.migrations {
            let migrations = dir.join("migrations");
            let files = schema::migration_files();
            let wanted: Vec<PathBuf> = files
                .iter()
                .map(|(name, _)| migrations.join(name))
                .collect();
            remove_unwanted(&migrations, &wanted)?;
            for (name, sql) in &files {
                write_if_changed(&migrations.join(name), sql)?;
            }
        }
        // The root workspace's lock pins the same versions verily is
        // tested with; cargo drops what this crate does not use.
        let lock = dir.join("Cargo.lock");
        if !lock.exists() {
            fs::copy(self.repo.join("Cargo.lock"), &lock)
                .map_err(|error| BenchError::new(format!("{}: {error}", lock.display())))?;
        }
        Ok(dir)
    }
}

pub fn write_if_changed(path: &Path, content: &str) -> Result<(), BenchError> {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|error| BenchError::new(format!("{}: {error}", parent.display())))?;
    }
    fs::write(path, content)
        .map_err(|error| BenchError::new(format!("{}: {error}", path.display())))
}

/// Removes files under `dir` (recursively) that are not in `wanted`.
fn remove_unwanted(dir: &Path, wanted: &[PathBuf]) -> Result<(), BenchError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            remove_unwanted(&path, wanted)?;
        } else if !wanted.contains(&path) {
            fs::remove_file(&path)
                .map_err(|error| BenchError::new(format!("{}: {error}", path.display())))?;
        }
    }
    Ok(())
}
