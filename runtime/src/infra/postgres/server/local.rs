//! An ephemeral PostgreSQL cluster from the machine's own binaries: a copy
//! of a cached pristine data directory in a temp dir, `postgres` started
//! directly on a unix socket only, `fsync=off`, readiness polled from
//! `postmaster.pid`. As root, the server runs as the `postgres` user.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;

use super::binaries::server_account;
pub use super::binaries::{Binaries, SEARCHED, find_binaries};
use super::pristine::pristine_data_dir;
use crate::infra::InfraError;
use crate::infra::dirs::{copy_dir, io_error, make_dir, runtime_root};
use crate::infra::process::{self, Account};
use crate::infra::reaper;

/// A running ephemeral cluster. Dropping it stops the server and removes
/// its directory.
#[derive(Debug)]
pub struct LocalCluster {
    root: PathBuf,
    socket_dir: PathBuf,
    /// The server's port: on 127.0.0.1, and in its socket's name.
    port: u16,
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
        .args(crate::infra::postgres::THROWAWAY_SETTINGS)
        .args(["-c", "unix_socket_permissions=0777"])
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
        let mut cluster = LocalCluster {
            root,
            socket_dir,
            port: 0,
            child: None,
            binaries,
            made: Some(making),
        };
        // It listens on loopback too, for clients that cannot take a socket
        // (`Db::tcp_url`), on a free port: another process may take that
        // port between our choosing it and the server binding it, so a
        // refused bind is tried again on another.
        let mut attempts = 0;
        loop {
            attempts += 1;
            cluster.port = process::free_port()?;
            cluster.spawn(account, &data)?;
            match cluster.wait_ready(&data) {
                Ok(()) => return Ok(cluster),
                Err(error) if attempts < 3 && cluster.log_tail().contains("could not bind") => {
                    let _ = error;
                    if let Some(mut child) = cluster.child.take() {
                        process::terminate(&mut child, libc::SIGQUIT, QUIT_GRACE);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Starts `postgres` on `data` at `self.port`.
    fn spawn(&mut self, account: Option<Account>, data: &Path) -> Result<(), InfraError> {
        let root = &self.root;
        let log = fs::File::create(root.join("postgres.log")).map_err(|error| {
            InfraError::new(format!("cannot create {}: {error}", root.display()))
        })?;
        if let Some(account) = account {
            process::chown(&root.join("postgres.log"), account).map_err(io_error(root))?;
        }
        let port = format!("port={}", self.port);
        let mut command = server_command(
            &self.binaries,
            data,
            &self.socket_dir,
            account,
            &["listen_addresses=127.0.0.1", &port, "max_connections=500"],
            log,
        )
        .map_err(io_error(root))?;
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
                self.binaries.dir.join("postgres").display()
            ))
        })?;
        self.child = Some(child);
        Ok(())
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

    /// The server's port (on 127.0.0.1, and in its socket's name).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Options to connect as the superuser to `database`.
    pub fn options(&self, database: &str) -> PgConnectOptions {
        socket_options(&self.socket_dir, self.port, database)
    }

    /// A URL to `{database}` over the unix socket.
    pub fn url_pattern(&self) -> String {
        socket_url_pattern(&self.socket_dir, self.port)
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
            "postgres: kept the local cluster: psql \"host={} port={} user={SUPERUSER} dbname=DATABASE\"; stop it with `kill -QUIT {pid}` and remove {}",
            self.socket_dir.display(),
            self.port,
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

/// Options to connect as the superuser to `database` through the socket
/// of a server on `port` in `socket_dir`.
pub(crate) fn socket_options(socket_dir: &Path, port: u16, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .socket(socket_dir)
        .port(port)
        .username(SUPERUSER)
        .database(database)
}

/// A URL to `{database}` over that socket (`host` and `port` in the query,
/// as libpq takes them).
pub(crate) fn socket_url_pattern(socket_dir: &Path, port: u16) -> String {
    format!(
        "postgres://{SUPERUSER}@localhost/{{database}}?host={}&port={port}",
        socket_dir.display()
    )
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
