//! PostgreSQL's binaries on this machine (`initdb`, `postgres` and their
//! version) and the account a server runs as.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::infra::InfraError;
use crate::infra::process::{self, Account};

/// PostgreSQL binaries found on this machine.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    /// `15.18`, from `postgres --version`.
    pub version: String,
}

/// Where the binaries were looked for, for the message when none are found.
pub const SEARCHED: &str = "PATH, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin, /opt/homebrew/opt/postgresql@*/bin, /usr/local/opt/postgresql@*/bin";

/// Finds `initdb` and `postgres`: on PATH, then in the usual Debian and
/// Homebrew places (newest major version first).
pub fn find_binaries() -> Option<Binaries> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    for pattern_root in ["/usr/lib/postgresql", "/opt/homebrew/opt", "/usr/local/opt"] {
        let Ok(entries) = fs::read_dir(pattern_root) else {
            continue;
        };
        let mut versioned: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name.strip_prefix("postgresql@").unwrap_or(&name);
                let major = version.split('.').next()?.parse().ok()?;
                Some((major, entry.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
        candidates.extend(versioned.into_iter().map(|(_, dir)| dir));
    }
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .and_then(|dir| {
            // Links on PATH (/usr/local/bin/postgres) stand for the real
            // directory, which is what the report should name.
            let dir = fs::canonicalize(dir.join("postgres"))
                .ok()
                .and_then(|real| real.parent().map(Path::to_path_buf))
                .filter(|real| real.join("initdb").is_file())
                .unwrap_or(dir);
            let output = Command::new(dir.join("postgres"))
                .arg("--version")
                .output()
                .ok()?;
            let version = parse_version(&String::from_utf8_lossy(&output.stdout))?;
            Some(Binaries { dir, version })
        })
}

/// `15.18` from `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn parse_version(output: &str) -> Option<String> {
    let mut words = output.split_whitespace();
    words.find(|word| *word == "(PostgreSQL)")?;
    words.next().map(str::to_owned)
}

/// As root, the `postgres` account (PostgreSQL refuses root); otherwise the
/// current user (`None`: no change).
pub(crate) fn server_account() -> Result<Option<Account>, InfraError> {
    if !process::is_root() {
        return Ok(None);
    }
    process::account("postgres").map(Some).ok_or_else(|| {
        InfraError::new(
            "running as root, and PostgreSQL refuses to run as root, but there is no `postgres` user to run it as; create one (useradd --system postgres) or run the tests as another user",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn version_from_postgres_output() {
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
            Some("15.18")
        );
        assert_eq!(
            parse_version("postgres (PostgreSQL) 16.2\n").as_deref(),
            Some("16.2")
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
