//! The pristine data directory: made once per PostgreSQL version by
//! `initdb` and cached, then copied for every local server, which is most of
//! a cached start.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::binaries::Binaries;
use super::local::SUPERUSER;
use crate::infra::InfraError;
use crate::infra::dirs::{cache_dir, copy_dir, io_error, make_dir};
use crate::infra::process::{self, Account};
use crate::infra::reaper;

/// The cached, freshly initdb'd data directory for this version, made on
/// first use. Concurrent runs race to create it; the first rename wins.
pub(crate) fn pristine_data_dir(
    binaries: &Binaries,
    account: Option<Account>,
    runtime_root: &Path,
) -> Result<PathBuf, InfraError> {
    // `-wal1`: made with 1 MB WAL segments (see below), not initdb's 16 MB.
    let cache = cache_dir().join(format!("postgres-{}-wal1", binaries.version));
    let pristine = cache.join("pristine");
    if pristine.join("PG_VERSION").is_file() {
        return Ok(pristine);
    }
    fs::create_dir_all(&cache).map_err(io_error(&cache))?;
    // initdb runs as the server's account, which may not reach the cache
    // (root's home), so it writes under the runtime root first.
    let scratch = runtime_root.join(format!(
        "initdb-{}-{}",
        reaper::owner_tag(),
        process::unique()
    ));
    let _making_scratch = reaper::MadeDir::new(&scratch);
    make_dir(&scratch, account)?;
    let data = scratch.join("data");
    let mut initdb = Command::new(binaries.dir.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            // A 1 MB WAL segment instead of 16 MB: the pristine directory
            // shrinks from 39 MB to 23 MB, and copying it is most of a
            // cached start.
            "--wal-segsize=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(account) = account {
        initdb.uid(account.uid).gid(account.gid);
    }
    // Tied to the harness: a run killed during its first start must not
    // leave initdb writing into a directory the next run removes.
    let output = reaper::gated(|| process::spawn_tied_to_harness(initdb, libc::SIGKILL))
        .and_then(|child| child.wait_with_output())
        .map_err(|error| {
            InfraError::new(format!(
                "cannot run {}: {error}",
                binaries.dir.join("initdb").display()
            ))
        })?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&scratch);
        return Err(InfraError::new(format!(
            "initdb failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let staged = cache.join(format!(
        "pristine.tmp-{}-{}",
        reaper::owner_tag(),
        process::unique()
    ));
    let _making_staged = reaper::MadeDir::new(&staged);
    copy_dir(&data, &staged)?;
    let _ = fs::remove_dir_all(&scratch);
    if fs::rename(&staged, &pristine).is_err() {
        // Another run made it first; theirs is as good as ours.
        let _ = fs::remove_dir_all(&staged);
    }
    Ok(pristine)
}
