//! One instance of a service shared by every process of a nextest run.
//!
//! nextest runs each test in a process of its own; a server per process
//! would cost more than the test. Instead the first process that needs a
//! service starts a *keeper*: the same test binary, re-executed in a
//! session of its own with `VERILY_HOSTED_KEEPER` set, so that it outlives
//! that process and the signals sent to its group. The keeper starts the
//! service, publishes its [`Service::endpoint`], and stops it once no
//! process has used it for `VERILY_SHARED_IDLE_MS` (3 s by default): after
//! the run, also when the run was interrupted. The other processes
//! [`Service::attach`] to the endpoint and [`Service::detach`] at their end.
//!
//! The files of one keeper, in the run's runtime directory:
//!
//! - `<prefix>-<key>.clients`: each process holds a shared lock on it while
//!   it uses the service; the keeper is idle when it can take it
//!   exclusively;
//! - `<prefix>-<key>.start`: starting and stopping happen under it, taken
//!   after the clients lock, so that a process never attaches to a service
//!   the keeper is stopping;
//! - `<prefix>-<key>.address`: `<keeper pid>\n<endpoint>`, written once the
//!   service is ready, removed before it stops;
//! - `<prefix>-<key>.log`: the keeper's stderr, shown when it fails.
//!
//! The two lock files stay after the run (removing a file others may be
//! about to lock would let two keepers start); everything else goes.
//!
//! PostgreSQL's shared cluster (`postgres/shared.rs`) is built from the
//! same parts; Redis and a user's services marked `#[verily::service]` go
//! through [`attach`] and [`keep_if_keeper`].

use std::any::TypeId;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::hash::stable_hash;
use crate::infra::{InfraError, Service, process};

/// Set in a keeper's environment: the key of what it keeps.
const KEEPER: &str = "VERILY_HOSTED_KEEPER";
/// Set in a keeper's environment: the [`Service::NAME`] it keeps.
const KEEPER_SERVICE: &str = "VERILY_HOSTED_SERVICE";

/// How long a service outlives its last user, unless
/// `VERILY_SHARED_IDLE_MS` says otherwise.
const IDLE: Duration = Duration::from_secs(3);

/// How long a process waits for a keeper to publish its service.
const START_LIMIT: Duration = Duration::from_secs(120);

/// Whether this process shares services with the other processes of its
/// run: under nextest, or with `VERILY_SHARED=1`; `VERILY_SHARED=0` turns
/// it off.
pub fn requested() -> bool {
    crate::env::env().sharing()
}

/// How long a keeper waits after its last user before it stops.
pub(crate) fn idle_limit() -> Duration {
    crate::env::env().shared_idle.unwrap_or(IDLE)
}

/// A service whose one instance the processes of a run share, registered
/// by `#[verily::service]` on its `impl Service` (Redis is registered by
/// the runtime itself).
#[derive(Debug)]
pub struct HostedService {
    name: &'static str,
    type_id: fn() -> TypeId,
    keep: fn(&Config, &str) -> Result<(), InfraError>,
}

impl HostedService {
    /// The registration of `S`.
    pub const fn of<S: Service>() -> Self {
        Self {
            name: S::NAME,
            type_id: TypeId::of::<S>,
            keep: keep::<S>,
        }
    }
}

#[cfg(not(feature = "linkme"))]
inventory::collect!(HostedService);

/// The hosted services of every crate linked into the harness binary.
#[cfg(feature = "linkme")]
#[linkme::distributed_slice]
pub static HOSTED: [HostedService];

/// The services registered by users' `#[verily::service]`, and the
/// runtime's own.
fn registered() -> impl Iterator<Item = &'static HostedService> {
    static BUILTIN: &[HostedService] = &[
        #[cfg(feature = "redis")]
        HostedService::of::<crate::infra::redis::RedisService>(),
    ];
    #[cfg(not(feature = "linkme"))]
    let users = inventory::iter::<HostedService>.into_iter();
    #[cfg(feature = "linkme")]
    let users = HOSTED.iter();
    BUILTIN.iter().chain(users)
}

/// Whether `S` is shared across the processes of a run (it is registered).
pub(crate) fn is_hosted<S: Service>() -> bool {
    registered().any(|hosted| (hosted.type_id)() == TypeId::of::<S>())
}

/// `S`'s key: one keeper per service per test binary (another binary may
/// configure the service differently).
fn key<S: Service>() -> Result<String, InfraError> {
    let exe = std::env::current_exe()
        .map_err(|error| InfraError::new(format!("cannot find the harness binary: {error}")))?;
    let name: String = S::NAME
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok(format!(
        "{name}-{:016x}",
        stable_hash(&format!("{}\n{}", S::NAME, exe.display()))
    ))
}

/// The files of one keeper.
#[derive(Debug)]
pub(crate) struct Files {
    pub clients: PathBuf,
    pub start: PathBuf,
    pub address: PathBuf,
    pub log: PathBuf,
}

impl Files {
    /// `<root>/<prefix>-<key>.*`.
    pub fn in_root(root: &Path, prefix: &str, key: &str) -> Self {
        let file = |suffix: &str| root.join(format!("{prefix}-{key}.{suffix}"));
        Self {
            clients: file("clients"),
            start: file("start"),
            address: file("address"),
            log: file("log"),
        }
    }

    fn hosted(key: &str) -> Result<Self, InfraError> {
        let root = crate::infra::dirs::runtime_root(None)?;
        Ok(Self::in_root(&root, "hosted", key))
    }

    /// The keeper's pid and what it published, if that keeper is alive.
    pub fn published(&self) -> Option<(u32, String)> {
        let text = fs::read_to_string(&self.address).ok()?;
        let (pid, published) = text.split_once('\n')?;
        let pid: u32 = pid.parse().ok()?;
        process::is_alive(pid).then(|| (pid, published.to_owned()))
    }

    /// Publishes `published` as this (the keeper) process's, atomically.
    pub fn publish(&self, published: &str) -> Result<(), InfraError> {
        let staged = self.address.with_extension("staged");
        fs::write(&staged, format!("{}\n{published}", std::process::id()))
            .and_then(|()| fs::rename(&staged, &self.address))
            .map_err(|error| {
                InfraError::new(format!("cannot write {}: {error}", self.address.display()))
            })
    }

    /// A process's use: the shared lock on the clients file, then the start
    /// lock, held until the caller drops it (after attaching).
    pub fn enter(&self) -> Result<(File, File), InfraError> {
        let using = open_lock(&self.clients)?;
        lock(&using, libc::LOCK_SH, &self.clients)?;
        let start = open_lock(&self.start)?;
        lock(&start, libc::LOCK_EX, &self.start)?;
        Ok((using, start))
    }

    /// Starts a keeper (this binary, re-executed with `env`, in a session
    /// of its own) and waits until it publishes.
    pub fn start_keeper(
        &self,
        env: &[(&str, &str)],
        what: &str,
        limit: Duration,
    ) -> Result<(u32, String), InfraError> {
        let _ = fs::remove_file(&self.address);
        let exe = std::env::current_exe()
            .map_err(|error| InfraError::new(format!("cannot find the harness binary: {error}")))?;
        let log = File::create(&self.log).map_err(|error| {
            InfraError::new(format!("cannot create {}: {error}", self.log.display()))
        })?;
        let mut command = Command::new(exe);
        command
            .envs(env.iter().copied())
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
        let deadline = Instant::now() + limit;
        loop {
            if let Some(published) = self.published() {
                // Reaped by init once this process is gone; nothing waits for it.
                std::mem::forget(keeper);
                return Ok(published);
            }
            if let Ok(Some(status)) = keeper.try_wait() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                let _ = fs::remove_file(&self.log);
                return Err(InfraError::new(format!(
                    "the keeper of {what} exited ({status}) before it was ready: {}",
                    log.trim()
                )));
            }
            if Instant::now() > deadline {
                let _ = keeper.kill();
                let _ = keeper.wait();
                return Err(InfraError::new(format!(
                    "{what} was not ready after {} s (its keeper's log: {})",
                    limit.as_secs(),
                    self.log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// In the keeper, once it has published: returns when no process has
    /// used the service for `idle`, with the address removed and the start
    /// lock held (no process can attach until the keeper exits).
    pub fn wait_until_idle(&self, idle: Duration) -> Result<File, InfraError> {
        let clients = open_lock(&self.clients)?;
        let start = open_lock(&self.start)?;
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
            // Idle long enough. Under the start lock no process is
            // attaching; holding the clients lock exclusively, none is
            // attached.
            unlock(&clients);
            lock(&start, libc::LOCK_EX, &self.start)?;
            if try_lock(&clients, libc::LOCK_EX) {
                let _ = fs::remove_file(&self.address);
                return Ok(start);
            }
            unlock(&start);
            idle_since = None;
        }
    }
}

/// This process's use of a service another process keeps: the shared lock
/// that keeps the keeper from stopping it.
#[derive(Debug)]
pub(crate) struct Attached {
    _using: File,
}

/// Attaches to the instance of `S` that this run's keeper keeps, starting
/// the keeper when there is none.
pub(crate) async fn attach<S: Service>(config: &Config) -> Result<(S, Attached), InfraError> {
    let key = key::<S>()?;
    let files = Files::hosted(&key)?;
    let (using, pid, endpoint) = tokio::task::spawn_blocking(move || {
        let (using, start) = files.enter()?;
        let (pid, endpoint) = match files.published() {
            Some(published) => published,
            None => files.start_keeper(
                &[(KEEPER, key.as_str()), (KEEPER_SERVICE, S::NAME)],
                S::NAME,
                START_LIMIT,
            )?,
        };
        drop(start);
        Ok::<_, InfraError>((using, pid, endpoint))
    })
    .await
    .map_err(|error| InfraError::new(format!("attaching to {}: {error}", S::NAME)))??;
    let service = S::attach(&endpoint, config).await?;
    eprintln!(
        "{}: shared instance at {}, kept by process {pid} for this run's processes",
        S::NAME,
        endpoint.replace('\n', " ")
    );
    Ok((service, Attached { _using: using }))
}

/// In a keeper (the harness re-executed), keeps its service and never
/// returns; elsewhere returns at once.
pub fn keep_if_keeper(config: &Config) {
    let Some((key, name)) = &crate::env::env().hosted_keeper else {
        return;
    };
    let result = match registered().find(|hosted| hosted.name == name) {
        Some(hosted) => (hosted.keep)(config, key),
        None => Err(InfraError::new(format!(
            "no service named `{name}` is registered in this binary"
        ))),
    };
    std::process::exit(match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("verily keeper of {name}: {error}");
            1
        }
    })
}

/// The keeper of `S`: starts it, publishes its endpoint, and stops it once
/// no process has used it for the idle time.
fn keep<S: Service>(config: &Config, key: &str) -> Result<(), InfraError> {
    let files = Files::hosted(key)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| InfraError::new(format!("cannot start a tokio runtime: {error}")))?;
    let service = runtime.block_on(S::start(config))?;
    let published = files.publish(&service.endpoint());
    let stopping = published.and_then(|()| files.wait_until_idle(idle_limit()));
    runtime.block_on(service.shutdown(crate::infra::keep_requested()));
    // What the service's start spawned into the keeper's group and did not
    // stop: the keeper leads its own session, so the group is its own.
    // SAFETY: a signal to this process's own group, which it ignores for a
    // moment.
    unsafe {
        let previous = libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::kill(0, libc::SIGTERM);
        libc::signal(libc::SIGTERM, previous);
    }
    drop(stopping?);
    let _ = fs::remove_file(&files.log);
    Ok(())
}

pub(crate) fn open_lock(path: &Path) -> Result<File, InfraError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|error| InfraError::new(format!("cannot open {}: {error}", path.display())))
}

pub(crate) fn lock(file: &File, operation: libc::c_int, path: &Path) -> Result<(), InfraError> {
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
