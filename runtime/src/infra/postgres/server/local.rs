//! An ephemeral PostgreSQL cluster from the machine's own binaries: a copy
//! of a cached pristine data directory in a temp dir, `postgres` started
//! directly on a unix socket only, `fsync=off`, readiness polled from
//! `postmaster.pid`. As root, the server runs as the `postgres` user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;

use crate::infra::InfraError;
use crate::infra::process::{self, Account};
use crate::infra::reaper;

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

/// A running ephemeral cluster. Dropping it stops the server and removes
/// its directory.
#[derive(Debug)]
pub struct LocalCluster {
    root: PathBuf,
    socket_dir: PathBuf,
    child: Option<Child>,
    pub binaries: Binaries,
    /// Registered for removal at exit until stopped or kept: a signal that
    /// ends the run while the service is still starting (the template is
    /// being migrated) leaves no owner to stop the cluster otherwise.
    made: Option<reaper::MadeDir>,
}

pub(crate) const SUPERUSER: &str = "postgres";

/// How long an immediate shutdown (SIGQUIT) may take before the server is
/// killed: it ends every backend and removes its shared memory first.
pub(crate) const QUIT_GRACE: Duration = Duration::from_secs(5);

/// Dynamic shared memory in files of the data directory, not POSIX
/// segments in /dev/shm: a server killed with SIGKILL leaves its segments
/// behind, and nothing in them says whose they were; files in the data
/// directory go with it. On tmpfs (the usual runtime root) both are pages
/// of RAM.
pub(crate) const DYNAMIC_SHARED_MEMORY: [&str; 2] = ["-c", "dynamic_shared_memory_type=mmap"];

/// What every local server the harness starts runs: `postgres` on `data`,
/// its socket in `socket_dir`, settings for data thrown away with it, the
/// `settings` of its kind, its output to `log`, as `account`.
pub(crate) fn server_command(
    binaries: &Binaries,
    data: &Path,
    socket_dir: &Path,
    account: Option<Account>,
    settings: &[&str],
    log: fs::File,
) -> std::io::Result<Command> {
    let mut command = Command::new(binaries.dir.join("postgres"));
    command
        .arg("-D")
        .arg(data)
        .arg("-k")
        .arg(socket_dir)
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "unix_socket_permissions=0777",
        ])
        .args(DYNAMIC_SHARED_MEMORY)
        .args(settings.iter().flat_map(|setting| ["-c", setting]))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(account) = account {
        command.uid(account.uid).gid(account.gid);
    }
    Ok(command)
}

/// Whether the server of `pid_file` (its `postmaster.pid`) accepts
/// connections: the file's eighth line reads `ready` then.
pub(crate) fn is_ready(pid_file: &Path) -> bool {
    fs::read_to_string(pid_file).is_ok_and(|text| {
        text.lines()
            .nth(7)
            .is_some_and(|status| status.trim() == "ready")
    })
}

impl LocalCluster {
    /// Copies the pristine data directory (made once per version) and
    /// starts the server.
    pub fn start(binaries: Binaries) -> Result<Self, InfraError> {
        let account = server_account()?;
        let runtime_root = runtime_root(account)?;
        reaper::sweep_once();
        let root = runtime_root.join(format!(
            "cluster-{}-{}",
            reaper::owner_tag(),
            process::unique()
        ));
        let making = reaper::MadeDir::new(&root);
        make_dir(&root, account)?;
        let data = root.join("data");
        let socket_dir = root.join("socket");
        make_dir(&socket_dir, account)?;
        let pristine = pristine_data_dir(&binaries, account, &runtime_root)?;
        copy_dir(&pristine, &data)?;
        let log = fs::File::create(root.join("postgres.log")).map_err(|error| {
            InfraError::new(format!("cannot create {}: {error}", root.display()))
        })?;
        if let Some(account) = account {
            process::chown(&root.join("postgres.log"), account).map_err(io_error(&root))?;
        }
        let mut command = server_command(
            &binaries,
            &data,
            &socket_dir,
            account,
            &["listen_addresses=", "max_connections=500"],
            log,
        )
        .map_err(io_error(&root))?;
        // A kept cluster must outlive the run; any other dies with it.
        let child = reaper::gated(|| {
            if crate::infra::keep_requested() {
                command.spawn()
            } else {
                process::spawn_tied_to_harness(command, libc::SIGQUIT)
            }
        })
        .map_err(|error| {
            InfraError::new(format!(
                "cannot start {}: {error}",
                binaries.dir.join("postgres").display()
            ))
        })?;
        let mut cluster = LocalCluster {
            root,
            socket_dir,
            child: Some(child),
            binaries,
            made: Some(making),
        };
        cluster.wait_ready(&data)?;
        Ok(cluster)
    }

    /// Polls `postmaster.pid`, whose last line reads `ready` once the server
    /// accepts connections.
    fn wait_ready(&mut self, data: &Path) -> Result<(), InfraError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid_file = data.join("postmaster.pid");
        loop {
            if is_ready(&pid_file) {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(InfraError::new(format!(
                    "the local PostgreSQL exited at startup ({status}); its log:\n{}",
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                return Err(InfraError::new(format!(
                    "the local PostgreSQL was not ready after 30 s; its log:\n{}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Options to connect as the superuser to `database`.
    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(SUPERUSER)
            .database(database)
    }

    /// A URL to `{database}` over the unix socket.
    pub fn url_pattern(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{{database}}?host={}",
            self.socket_dir.display()
        )
    }

    /// One line for the start report.
    pub fn describe(&self) -> String {
        format!(
            "local cluster (PostgreSQL {}, {})",
            self.binaries.version,
            self.binaries.dir.display()
        )
    }

    /// How to reach a kept cluster, and how to remove it.
    pub fn keep_instructions(&mut self) -> String {
        if let Some(made) = self.made.take() {
            made.done();
        }
        let pid = self
            .child
            .take()
            .map(|child| child.id())
            .unwrap_or_default();
        // The sweep of dead runs leaves a kept cluster alone.
        let _ = fs::write(self.root.join(reaper::KEPT_MARKER), "");
        format!(
            "postgres: kept the local cluster: psql \"host={} user={SUPERUSER} dbname=DATABASE\"; stop it with `kill -QUIT {pid}` and remove {}",
            self.socket_dir.display(),
            self.root.display()
        )
    }

    /// Stops the server (immediate shutdown: the data is thrown away) and
    /// removes the directory.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, libc::SIGQUIT, QUIT_GRACE);
            let _ = fs::remove_dir_all(&self.root);
        }
        if let Some(made) = self.made.take() {
            made.done();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
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
    if let Some(dir) = std::env::var_os("VERILY_RUNTIME_DIR") {
        return PathBuf::from(dir);
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

/// `$VERILY_CACHE_DIR`, else `$XDG_CACHE_HOME/verily`, else
/// `~/.cache/verily`, else the temp dir.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VERILY_CACHE_DIR") {
        return PathBuf::from(dir);
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
    use super::parse_version;

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
