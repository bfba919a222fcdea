//! Where the servers the harness starts keep their files: the runtime
//! root (tmpfs when it has room), the cache, and making and copying
//! directories so that a run interrupted meanwhile leaves nothing behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::infra::InfraError;
use crate::infra::process::{self, Account};
use crate::infra::reaper;

/// `<base>/verily-<uid>`: clusters of this user's runs, one
/// subdirectory each, readable by the server's account.
pub(crate) fn runtime_root(account: Option<Account>) -> Result<PathBuf, InfraError> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let root = runtime_base().join(format!("verily-{uid}"));
    fs::create_dir_all(&root).map_err(io_error(&root))?;
    let mode = if account.is_some() { 0o755 } else { 0o700 };
    fs::set_permissions(&root, fs::Permissions::from_mode(mode)).map_err(io_error(&root))?;
    Ok(root)
}

/// Where ephemeral clusters live: `VERILY_RUNTIME_DIR`, else tmpfs
/// (`/dev/shm`) when it has room, else the temp dir. The data is thrown
/// away, and on a disk file system each test database's create and drop
/// costs many times more (ext4 searches recently deleted inodes:
/// bench/persistence.py measured 19 ms on tmpfs against up to 200 ms).
pub fn runtime_base() -> PathBuf {
    if let Some(dir) = &crate::env::env().runtime_dir {
        return dir.clone();
    }
    let shm = Path::new("/dev/shm");
    if available_bytes(shm).is_some_and(|bytes| bytes >= TMPFS_NEEDED) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// Room a cluster and a run's databases want before tmpfs is chosen (a
/// container's default /dev/shm is 64 MiB: too small).
const TMPFS_NEEDED: u64 = 1 << 30;

fn available_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs writes the struct for a NUL-terminated path and
    // returns 0 only when it did.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    // The fields are u64 on 64-bit Linux but narrower on other targets.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(stats.f_bavail) * u64::from(stats.f_frsize))
}

/// `$VERILY_CACHE_DIR`, else `$XDG_CACHE_HOME/verily`, else
/// `~/.cache/verily`, else the temp dir.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(dir) = crate::env::env().cache_dir.clone() {
        return dir;
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("verily");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/verily");
    }
    std::env::temp_dir().join("verily-cache")
}

pub(crate) fn make_dir(dir: &Path, account: Option<Account>) -> Result<(), InfraError> {
    reaper::gated(|| fs::create_dir_all(dir)).map_err(io_error(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
    if let Some(account) = account {
        process::chown(dir, account).map_err(io_error(dir))?;
    }
    Ok(())
}

/// `cp -a`: a data directory's modes and owner must survive the copy.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<(), InfraError> {
    let mut cp = Command::new("cp");
    cp.arg("-a")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Tied to the harness, and never started once it is exiting: a `cp`
    // that outlived the run would make a directory nobody removes.
    let output = reaper::gated(|| process::spawn_tied_to_harness(cp, libc::SIGKILL))
        .and_then(|child| child.wait_with_output())
        .map_err(|error| InfraError::new(format!("cannot run cp: {error}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(copy_error(
            from,
            to,
            &String::from_utf8_lossy(&output.stderr),
        ))
    }
}

/// One line for a failed copy: `cp` says it once per file (hundreds of
/// lines for a full disk), and a full disk needs a place to say what to set.
fn copy_error(from: &Path, to: &Path, stderr: &str) -> InfraError {
    let copying = format!("cannot copy {} to {}", from.display(), to.display());
    if stderr.contains("No space left on device") {
        let full = to.parent().unwrap_or(to);
        return InfraError::new(format!(
            "{copying}: no space left on the disk that holds {}; free space there, or set VERILY_RUNTIME_DIR to a directory on a disk with room",
            full.display()
        ));
    }
    let mut lines = stderr.lines().filter(|line| !line.trim().is_empty());
    let first = lines.next().unwrap_or("cp failed").trim();
    match lines.count() {
        0 => InfraError::new(format!("{copying}: {first}")),
        more => InfraError::new(format!("{copying}: {first} (and {more} more lines)")),
    }
}

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> InfraError + '_ {
    move |error| InfraError::new(format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_copy_is_one_line() {
        use std::path::Path;
        let full =
            "cp: error writing '/run/vy/cluster-1-0/data/base/1/1249': No space left on device\n"
                .repeat(240);
        let error = super::copy_error(
            Path::new("/cache/pristine"),
            Path::new("/run/vy/cluster-1-0/data"),
            &full,
        )
        .to_string();
        assert_eq!(
            error,
            "cannot copy /cache/pristine to /run/vy/cluster-1-0/data: no space left on the disk that holds /run/vy/cluster-1-0; free space there, or set VERILY_RUNTIME_DIR to a directory on a disk with room"
        );
        let other = super::copy_error(
            Path::new("/a"),
            Path::new("/b/c"),
            "cp: cannot open 'x': Permission denied\ncp: cannot open 'y': Permission denied\n",
        )
        .to_string();
        assert_eq!(
            other,
            "cannot copy /a to /b/c: cp: cannot open 'x': Permission denied (and 1 more lines)"
        );
    }
}
