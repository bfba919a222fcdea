//! Building the generated subject crates with cargo, into bench/target.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::BenchError;

/// A `cargo` command for the crate at `manifest_dir`, with the bench's
/// target dir and none of the variables that would change what sqlx or
/// verily do at build time.
pub fn cargo(manifest_dir: &Path, target: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    crate::Bench::clean_env(&mut command)
        .current_dir(manifest_dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("DATABASE_URL")
        .env_remove("SQLX_OFFLINE")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    command
}

/// Builds the crate's tests in the dev profile (as `cargo test` does) and
/// returns the executable of the test target `name`.
pub fn build_test(manifest_dir: &Path, target: &Path, name: &str) -> Result<PathBuf, BenchError> {
    eprintln!("building {} (dev profile)...", manifest_dir.display());
    let output = cargo(manifest_dir, target)
        .args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| BenchError::new(format!("cannot run cargo: {error}")))?;
    if !output.status.success() {
        return Err(BenchError::new(format!(
            "cargo test --no-run in {} failed ({}); its errors are above",
            manifest_dir.display(),
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["profile"]["test"] == true
                && message["target"]["name"] == name
        })
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next_back()
        .ok_or_else(|| {
            BenchError::new(format!(
                "cargo built no test executable named {name} in {}",
                manifest_dir.display()
            ))
        })
}
