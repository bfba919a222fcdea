//! One local PostgreSQL shared by every process of a nextest run.
//!
//! nextest runs each test in a process of its own; a cluster, a migrated
//! template and a database per process would cost more than the test.
//! Instead:
//!
//! - The first process that needs PostgreSQL starts a *keeper*: the same
//!   test binary, re-executed in a session of its own with
//!   `VERILY_SHARED_KEEPER` set, so it outlives that process and the
//!   signals sent to its group. The keeper starts the cluster (which dies
//!   with it), writes where it listens, and stops it and removes everything
//!   once no process has used it for `VERILY_SHARED_IDLE_MS` (3 s by
//!   default): after the run, also when the run was interrupted.
//! - Each process holds a shared lock on `shared-<key>.clients` while it
//!   runs; the keeper is idle when it can take that lock exclusively.
//!   Starting and stopping happen under `shared-<key>.start`, taken after
//!   the clients lock, so a process never attaches to a cluster the keeper
//!   is stopping.
//! - The databases on it are shared the same way: see
//!   `databases/shared.rs`.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;

use super::server::local::{self, Binaries, LocalCluster};
use crate::hash::stable_hash;
use crate::infra::InfraError;
use crate::infra::process;

/// Set in the keeper's environment: the key of the cluster it keeps.
const KEEPER: &str = "VERILY_SHARED_KEEPER";

/// How long the cluster outlives its last user, unless
/// `VERILY_SHARED_IDLE_MS` says otherwise.
const IDLE: Duration = Duration::from_secs(3);

/// Whether this process should use the shared cluster: under nextest, or
/// with `VERILY_SHARED=1`; `VERILY_SHARED=0` turns it off.
pub fn requested() -> bool {
    match std::env::var("VERILY_SHARED").as_deref() {
        Ok("1" | "true") => true,
        Ok("0" | "false") => false,
        _ => crate::config::under_nextest(),
    }
}

/// In the keeper process (the harness re-executed), keeps the cluster and
/// never returns; elsewhere returns at once.
pub fn keep_if_keeper() {
    let Some(key) = std::env::var_os(KEEPER) else {
        return;
    };
    let key = key.to_string_lossy().into_owned();
    let code = match keep(&key) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("verily keeper: {error}");
            1
        }
    };
    std::process::exit(code);
}

/// The files of one shared cluster, next to the ephemeral clusters.
struct Files {
    clients: PathBuf,
    start: PathBuf,
    /// `<keeper pid>\n<socket dir>\n<binaries dir>\n<version>\n`, written
    /// once the server is ready.
    address: PathBuf,
    log: PathBuf,
}

impl Files {
    fn new(key: &str) -> Result<Self, InfraError> {
        let root = crate::infra::dirs::runtime_root(super::server::binaries::server_account()?)?;
        Ok(Self::in_root(&root, key))
    }

    fn in_root(root: &Path, key: &str) -> Self {
        let file = |suffix: &str| root.join(format!("shared-{key}.{suffix}"));
        Self {
            clients: file("clients"),
            start: file("start"),
            address: file("address"),
            log: file("log"),
        }
    }

    /// Where the keeper's server listens, if that keeper is alive.
    fn address(&self) -> Option<Address> {
        let text = fs::read_to_string(&self.address).ok()?;
        let mut lines = text.lines();
        let keeper: u32 = lines.next()?.parse().ok()?;
        let socket_dir = PathBuf::from(lines.next()?);
        let binaries = Binaries {
            dir: PathBuf::from(lines.next()?),
            version: lines.next()?.to_owned(),
        };
        process::is_alive(keeper).then_some(Address {
            keeper,
            socket_dir,
            binaries,
        })
    }
}

/// A running shared cluster, as its keeper published it.
struct Address {
    keeper: u32,
    socket_dir: PathBuf,
    binaries: Binaries,
}

/// A key per set of binaries: processes of different PostgreSQL versions
/// do not share.
fn key(binaries: &Binaries) -> String {
    format!("{:016x}", stable_hash(&binaries.dir.to_string_lossy()))
}

/// This process's use of the shared cluster: it stays up while any exists.
#[derive(Debug)]
pub struct SharedCluster {
    socket_dir: PathBuf,
    binaries: Binaries,
    keeper: u32,
    /// Holds the shared lock on the clients file.
    _using: File,
}

impl SharedCluster {
    /// Attaches to a shared cluster that is running already, if there is
    /// one: without looking for binaries or asking Docker, so the processes
    /// after the first start in milliseconds.
    pub fn attach_running() -> Result<Option<Self>, InfraError> {
        let root = crate::infra::dirs::runtime_root(super::server::binaries::server_account()?)?;
        let Ok(entries) = fs::read_dir(&root) else {
            return Ok(None);
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name
                .strip_prefix("shared-")
                .and_then(|rest| rest.strip_suffix(".address"))
            else {
                continue;
            };
            let files = Files::in_root(&root, key);
            if files.address().is_some()
                && let Some(cluster) = Self::attach_with(&files, None)?
            {
                return Ok(Some(cluster));
            }
        }
        Ok(None)
    }

    /// Attaches to the shared cluster of these binaries, starting a keeper
    /// if there is none.
    pub fn attach(binaries: Binaries) -> Result<Self, InfraError> {
        let key = key(&binaries);
        let files = Files::new(&key)?;
        Ok(Self::attach_with(&files, Some(&key))?.expect("started when missing"))
    }

    /// With `start_as`, starts a keeper when none runs; without, returns
    /// `None` then.
    fn attach_with(files: &Files, start_as: Option<&str>) -> Result<Option<Self>, InfraError> {
        let using = open_lock(&files.clients)?;
        lock(&using, libc::LOCK_SH, &files.clients)?;
        let start = open_lock(&files.start)?;
        lock(&start, libc::LOCK_EX, &files.start)?;
        let address = match (files.address(), start_as) {
            (Some(address), _) => address,
            (None, Some(key)) => start_keeper(key, files)?,
            (None, None) => return Ok(None),
        };
        drop(start);
        Ok(Some(Self {
            socket_dir: address.socket_dir,
            binaries: address.binaries,
            keeper: address.keeper,
            _using: using,
        }))
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(local::SUPERUSER)
            .database(database)
    }

    pub fn url_pattern(&self) -> String {
        format!(
            "postgres://{}@localhost/{{database}}?host={}",
            local::SUPERUSER,
            self.socket_dir.display()
        )
    }

    pub fn describe(&self) -> String {
        format!(
            "shared local cluster (PostgreSQL {}, {}, kept by process {} for this run's processes)",
            self.binaries.version,
            self.binaries.dir.display(),
            self.keeper
        )
    }
}

/// Starts a keeper and waits until its server is ready.
fn start_keeper(key: &str, files: &Files) -> Result<Address, InfraError> {
    let _ = fs::remove_file(&files.address);
    let exe = std::env::current_exe()
        .map_err(|error| InfraError::new(format!("cannot find the harness binary: {error}")))?;
    let log = File::create(&files.log).map_err(|error| {
        InfraError::new(format!("cannot create {}: {error}", files.log.display()))
    })?;
    let mut command = Command::new(exe);
    command
        .env(KEEPER, key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the keeper leaves the test's
    // process group and session, so nothing aimed at the test reaches it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut keeper = command
        .spawn()
        .map_err(|error| InfraError::new(format!("cannot start the keeper: {error}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(address) = files.address() {
            // Reaped by init once this process is gone; nothing waits for it.
            std::mem::forget(keeper);
            return Ok(address);
        }
        if let Ok(Some(status)) = keeper.try_wait() {
            let log = fs::read_to_string(&files.log).unwrap_or_default();
            return Err(InfraError::new(format!(
                "the shared cluster's keeper exited ({status}): {}",
                log.trim()
            )));
        }
        if Instant::now() > deadline {
            let _ = keeper.kill();
            return Err(InfraError::new(
                "the shared cluster was not ready after 60 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The keeper: starts the cluster, publishes its address, and stops it
/// once no process has used it for the idle time.
fn keep(key: &str) -> Result<(), InfraError> {
    let binaries = local::find_binaries()
        .filter(|binaries| self::key(binaries) == key)
        .ok_or_else(|| InfraError::new("the binaries the keeper was started for are gone"))?;
    let files = Files::new(key)?;
    let idle = std::env::var("VERILY_SHARED_IDLE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(IDLE, Duration::from_millis);
    // Started on this (main) thread: the server dies with the thread that
    // started it, which is this process's only one.
    let cluster = LocalCluster::start(binaries)?;
    let address = format!(
        "{}\n{}\n{}\n{}\n",
        std::process::id(),
        cluster.socket_dir().display(),
        cluster.binaries.dir.display(),
        cluster.binaries.version
    );
    let staged = files.address.with_extension("staged");
    fs::write(&staged, address)
        .and_then(|()| fs::rename(&staged, &files.address))
        .map_err(|error| {
            InfraError::new(format!("cannot write {}: {error}", files.address.display()))
        })?;
    let clients = open_lock(&files.clients)?;
    let start = open_lock(&files.start)?;
    let mut idle_since: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if !try_lock(&clients, libc::LOCK_EX) {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < idle {
            unlock(&clients);
            continue;
        }
        // Idle long enough. Under the start lock no process is attaching;
        // holding the clients lock exclusively, none is attached.
        unlock(&clients);
        lock(&start, libc::LOCK_EX, &files.start)?;
        if try_lock(&clients, libc::LOCK_EX) {
            let _ = fs::remove_file(&files.address);
            drop(cluster);
            let _ = fs::remove_file(&files.log);
            return Ok(());
        }
        unlock(&start);
        idle_since = None;
    }
}

fn open_lock(path: &Path) -> Result<File, InfraError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|error| InfraError::new(format!("cannot open {}: {error}", path.display())))
}

fn lock(file: &File, operation: libc::c_int, path: &Path) -> Result<(), InfraError> {
    loop {
        // SAFETY: flock on a descriptor this File owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(InfraError::new(format!(
                "cannot lock {}: {error}",
                path.display()
            )));
        }
    }
}

fn try_lock(file: &File, operation: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor this File owns.
    unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) == 0 }
}

fn unlock(file: &File) {
    // SAFETY: flock on a descriptor this File owns.
    unsafe {
        libc::flock(file.as_raw_fd(), libc::LOCK_UN);
    }
}
