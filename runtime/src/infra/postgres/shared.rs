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

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::server::local::{self, Binaries, LocalCluster};
use crate::hash::stable_hash;
use crate::infra::InfraError;
use crate::infra::hosted::{self, Files};

/// Set in the keeper's environment: the key of the cluster it keeps.
const KEEPER: &str = "VERILY_SHARED_KEEPER";

/// In the keeper process (the harness re-executed), keeps the cluster and
/// never returns; elsewhere returns at once.
pub fn keep_if_keeper() {
    let Some(key) = &crate::env::env().shared_keeper else {
        return;
    };
    let code = match keep(key) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("verily keeper: {error}");
            1
        }
    };
    std::process::exit(code);
}

/// The files of one shared cluster, next to the ephemeral clusters:
/// `shared-<key>.*` (see `infra/hosted.rs`). What the keeper publishes is
/// `<socket dir>\n<binaries dir>\n<version>\n`.
fn files(key: &str) -> Result<Files, InfraError> {
    let root = crate::infra::dirs::runtime_root(super::server::binaries::server_account()?)?;
    Ok(Files::in_root(&root, "shared", key))
}

/// Where the keeper's server listens, if that keeper is alive.
fn address(files: &Files) -> Option<Address> {
    parse_address(files.published()?)
}

fn parse_address((keeper, published): (u32, String)) -> Option<Address> {
    let mut lines = published.lines();
    let socket_dir = PathBuf::from(lines.next()?);
    let port = lines.next()?.parse().ok()?;
    let binaries = Binaries {
        dir: PathBuf::from(lines.next()?),
        version: lines.next()?.to_owned(),
    };
    Some(Address {
        keeper,
        socket_dir,
        port,
        binaries,
    })
}

/// A running shared cluster, as its keeper published it.
struct Address {
    keeper: u32,
    socket_dir: PathBuf,
    port: u16,
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
    port: u16,
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
        let Ok(entries) = std::fs::read_dir(&root) else {
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
            let files = Files::in_root(&root, "shared", key);
            if address(&files).is_some()
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
        let files = files(&key)?;
        Ok(Self::attach_with(&files, Some(&key))?.expect("started when missing"))
    }

    /// With `start_as`, starts a keeper when none runs; without, returns
    /// `None` then.
    fn attach_with(files: &Files, start_as: Option<&str>) -> Result<Option<Self>, InfraError> {
        let (using, start) = files.enter()?;
        let address = match (address(files), start_as) {
            (Some(address), _) => address,
            (None, Some(key)) => {
                let published = files.start_keeper(
                    &[(KEEPER, key)],
                    "the shared cluster",
                    Duration::from_secs(60),
                )?;
                parse_address(published).ok_or_else(|| {
                    InfraError::new("the shared cluster's keeper published no address")
                })?
            }
            (None, None) => return Ok(None),
        };
        drop(start);
        Ok(Some(Self {
            socket_dir: address.socket_dir,
            port: address.port,
            binaries: address.binaries,
            keeper: address.keeper,
            _using: using,
        }))
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        local::socket_options(&self.socket_dir, self.port, database)
    }

    pub fn url_pattern(&self) -> String {
        local::socket_url_pattern(&self.socket_dir, self.port)
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

/// The keeper: starts the cluster, publishes its address, and stops it
/// once no process has used it for the idle time.
fn keep(key: &str) -> Result<(), InfraError> {
    let binaries = local::find_binaries()
        .filter(|binaries| self::key(binaries) == key)
        .ok_or_else(|| InfraError::new("the binaries the keeper was started for are gone"))?;
    let files = files(key)?;
    // Started on this (main) thread: the server dies with the thread that
    // started it, which is this process's only one.
    let cluster = LocalCluster::start(binaries)?;
    files.publish(&format!(
        "{}\n{}\n{}\n{}\n",
        cluster.socket_dir().display(),
        cluster.port(),
        cluster.binaries.dir.display(),
        cluster.binaries.version
    ))?;
    let _stopping = files.wait_until_idle(hosted::idle_limit())?;
    drop(cluster);
    let _ = std::fs::remove_file(&files.log);
    Ok(())
}
