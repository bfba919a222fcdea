//! A local PostgreSQL of one test's own: a copy of the cached pristine data
//! directory, listening on 127.0.0.1 on a free port (and on a unix socket
//! for the harness's own superuser connection), that the test may stop,
//! start, pause and resume. Dropping it kills every process of the server,
//! paused or not, and removes its directory.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Mutex;

use super::{PASSWORD, cleanup};
use crate::infra::InfraError;
use crate::infra::dirs::{self, io_error};
use crate::infra::postgres::server::local::{self, Binaries, QUIT_GRACE, SUPERUSER};
use crate::infra::postgres::server::{binaries, pristine};
use crate::infra::process::{self, Account};
use crate::infra::reaper;

/// How long a fast shutdown may take before the server is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// How long a server may take to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// Prefix of the directories of exclusive servers under the runtime root:
/// `exclusive-<harness pid>-<n>`.
const PREFIX: &str = "exclusive-";

/// Client authentication: the harness's superuser connection over the
/// socket needs no password; TCP clients (the service, a proxy) must give
/// one, so wrong credentials fail as they do in production.
const HBA: &str = "\
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
";

pub(crate) struct LocalServer {
    root: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    binaries: Binaries,
    account: Option<Account>,
    state: Mutex<Running>,
    /// Key of this server in the exit-time cleanup list.
    cleanup_key: u64,
}

/// The server process, if it runs, and the processes a pause stopped.
#[derive(Default)]
struct Running {
    postmaster: Option<Child>,
    paused: Vec<u32>,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("root", &self.root)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Why a start failed: another process took the port between choosing it
/// and binding it (worth another port), or anything else.
enum StartError {
    PortTaken,
    Other(InfraError),
}

impl LocalServer {
    /// Copies the pristine data directory and starts the server on a free
    /// port; sets the superuser's password for TCP clients.
    pub(crate) async fn start(binaries: Binaries) -> Result<Self, InfraError> {
        let account = binaries::server_account()?;
        let runtime_root = dirs::runtime_root(account)?;
        reaper::sweep_once();
        let root = runtime_root.join(format!(
            "{PREFIX}{}-{}",
            reaper::owner_tag(),
            process::unique()
        ));
        let making = reaper::MadeDir::new(&root);
        let data = root.join("data");
        let socket_dir = root.join("socket");
        let prepared = {
            let (binaries, root, data, socket_dir) = (
                binaries.clone(),
                root.clone(),
                data.clone(),
                socket_dir.clone(),
            );
            // initdb (the first time) and the copy block; keep them off the
            // runtime's workers.
            tokio::task::spawn_blocking(move || {
                dirs::make_dir(&root, account)?;
                dirs::make_dir(&socket_dir, account)?;
                let pristine = pristine::pristine_data_dir(&binaries, account, &runtime_root)?;
                dirs::copy_dir(&pristine, &data)?;
                let hba = root.join("pg_hba.conf");
                fs::write(&hba, HBA).map_err(io_error(&hba))?;
                let log = root.join("postgres.log");
                fs::File::create(&log).map_err(io_error(&log))?;
                if let Some(account) = account {
                    process::chown(&log, account).map_err(io_error(&log))?;
                    process::chown(&hba, account).map_err(io_error(&hba))?;
                }
                Ok::<(), InfraError>(())
            })
            .await
            .map_err(|error| InfraError::new(format!("preparing the data directory: {error}")))
            .and_then(|prepared| prepared)
        };
        if let Err(error) = prepared {
            let _ = fs::remove_dir_all(&root);
            return Err(error);
        }
        let mut server = LocalServer {
            root,
            data,
            socket_dir,
            port: 0,
            binaries,
            account,
            state: Mutex::new(Running::default()),
            cleanup_key: cleanup::next_key(),
        };
        // A port chosen free may be taken before the server binds it.
        let mut attempts = 0;
        loop {
            server.port = process::free_port()?;
            let mut state = server.state.lock().await;
            match server.spawn(&mut state).await {
                Ok(()) => break,
                Err(StartError::PortTaken) if attempts < 3 => attempts += 1,
                Err(StartError::PortTaken) => {
                    return Err(InfraError::new(
                        "the local PostgreSQL could not bind a free port on 127.0.0.1 after 4 tries",
                    ));
                }
                Err(StartError::Other(error)) => return Err(error),
            }
        }
        let mut admin = PgConnection::connect_with(&server.admin_options())
            .await
            .map_err(|error| InfraError::new(format!("PostgreSQL: {error}")))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER ROLE {SUPERUSER} PASSWORD '{PASSWORD}'"
        )))
        .execute(&mut admin)
        .await
        .map_err(|error| InfraError::new(format!("PostgreSQL: {error}")))?;
        let _ = admin.close().await;
        making.done();
        Ok(server)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The superuser on the unix socket: answers whatever a test did to
    /// TCP clients (but not while the server is paused or stopped).
    pub(crate) fn admin_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(self.port)
            .username(SUPERUSER)
            .database("postgres")
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "local PostgreSQL {} on 127.0.0.1:{} ({})",
            self.binaries.version,
            self.port,
            self.root.display()
        )
    }

    /// Starts `postgres` on the data directory and waits until it accepts
    /// connections.
    async fn spawn(&self, state: &mut Running) -> Result<(), StartError> {
        let log_path = self.root.join("postgres.log");
        let log = fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|error| StartError::Other(io_error(&log_path)(error)))?;
        let log_offset = log.metadata().map(|meta| meta.len()).unwrap_or_default();
        let port = format!("port={}", self.port);
        let hba = format!("hba_file={}", self.root.join("pg_hba.conf").display());
        let command = local::server_command(
            &self.binaries,
            &self.data,
            &self.socket_dir,
            self.account,
            &[
                "listen_addresses=127.0.0.1",
                &port,
                &hba,
                "max_connections=100",
            ],
            log,
        )
        .map_err(|error| StartError::Other(io_error(&log_path)(error)))?;
        let child = reaper::gated(|| process::spawn_tied_to_harness(command, libc::SIGQUIT))
            .map_err(|error| {
                StartError::Other(InfraError::new(format!(
                    "cannot start {}: {error}",
                    self.binaries.dir.join("postgres").display()
                )))
            })?;
        cleanup::register_local(self.cleanup_key, child.id(), self.root.clone());
        state.postmaster = Some(child);
        let ready = self.wait_ready(state, log_offset).await;
        if ready.is_err()
            && let Some(mut child) = state.postmaster.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        ready
    }

    /// Polls `postmaster.pid`, whose eighth line reads `ready` once the
    /// server accepts connections.
    async fn wait_ready(&self, state: &mut Running, log_offset: u64) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_LIMIT;
        let pid_file = self.data.join("postmaster.pid");
        loop {
            if local::is_ready(&pid_file) {
                return Ok(());
            }
            if let Some(child) = &mut state.postmaster
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = self.log_since(log_offset);
                if log.contains("could not bind") || log.contains("Address already in use") {
                    return Err(StartError::PortTaken);
                }
                return Err(StartError::Other(InfraError::new(format!(
                    "the local PostgreSQL exited at startup ({status}); its log:\n{log}"
                ))));
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(InfraError::new(format!(
                    "the local PostgreSQL was not ready after {} s; its log:\n{}",
                    READY_LIMIT.as_secs(),
                    self.log_since(log_offset)
                ))));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The last lines the server wrote since `offset`.
    fn log_since(&self, offset: u64) -> String {
        let log = fs::read(self.root.join("postgres.log")).unwrap_or_default();
        let log = String::from_utf8_lossy(log.get(offset as usize..).unwrap_or_default());
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Fast shutdown (what `pg_ctl stop` does): sessions are ended, the data
    /// is kept; the port is closed until `start`.
    pub(crate) async fn stop(&self) -> Result<(), InfraError> {
        let mut state = self.state.lock().await;
        resume_all(&mut state);
        let Some(mut child) = state.postmaster.take() else {
            return Ok(());
        };
        process::signal(child.id(), libc::SIGINT);
        let deadline = Instant::now() + STOP_LIMIT;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(InfraError::new(format!(
                    "the local PostgreSQL did not stop within {} s of a fast shutdown and was killed; its log:\n{}",
                    STOP_LIMIT.as_secs(),
                    self.log_since(0)
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Starts the stopped server again: same data, same port and socket.
    pub(crate) async fn start_again(&self) -> Result<(), InfraError> {
        let mut state = self.state.lock().await;
        if let Some(child) = &mut state.postmaster
            && matches!(child.try_wait(), Ok(None))
        {
            return Ok(());
        }
        state.postmaster = None;
        match self.spawn(&mut state).await {
            Ok(()) => Ok(()),
            Err(StartError::PortTaken) => Err(InfraError::new(format!(
                "cannot start the local PostgreSQL again: another process took its port {} while it was stopped",
                self.port
            ))),
            Err(StartError::Other(error)) => Err(error),
        }
    }

    /// Stops (SIGSTOP) the postmaster, then every process it started: the
    /// sockets stay open, nothing answers.
    pub(crate) async fn pause(&self) -> Result<(), InfraError> {
        let mut state = self.state.lock().await;
        if !state.paused.is_empty() {
            return Ok(());
        }
        let Some(postmaster) = state.postmaster.as_ref().map(Child::id) else {
            return Err(InfraError::new(
                "cannot pause the local PostgreSQL: it is stopped (start it first)",
            ));
        };
        // The postmaster first, so that it forks nothing after the listing.
        process::signal(postmaster, libc::SIGSTOP);
        let mut paused = vec![postmaster];
        for child in process::children_of(postmaster) {
            process::signal(child, libc::SIGSTOP);
            paused.push(child);
        }
        state.paused = paused;
        Ok(())
    }

    /// Continues every process `pause` stopped.
    pub(crate) async fn resume(&self) -> Result<(), InfraError> {
        resume_all(&mut *self.state.lock().await);
        Ok(())
    }
}

/// SIGCONT to the processes a pause stopped and to the server's current
/// processes (a pause interrupted halfway leaves nothing stopped).
fn resume_all(state: &mut Running) {
    let mut processes = std::mem::take(&mut state.paused);
    if let Some(postmaster) = state.postmaster.as_ref().map(Child::id) {
        processes.extend(process::children_of(postmaster));
        processes.push(postmaster);
    }
    for pid in processes {
        process::signal(pid, libc::SIGCONT);
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        resume_all(state);
        if let Some(mut child) = state.postmaster.take() {
            // Immediate shutdown: the data is thrown away anyway.
            process::terminate(&mut child, libc::SIGQUIT, QUIT_GRACE);
        }
        let _ = fs::remove_dir_all(&self.root);
        cleanup::unregister(self.cleanup_key);
    }
}
