//! The bench's own throwaway PostgreSQL cluster: both persistence suites
//! run against it. On tmpfs (/dev/shm), unix socket only, fsync off; as
//! root, initdb and the server run as the `postgres` user.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::BenchError;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const PG_USER: &str = "postgres";

/// `cmd` run as the `postgres` account.
pub fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", PG_USER, "--"]).arg(program);
    command
}

pub fn pg_bin(tool: &str) -> PathBuf {
    Path::new(PG_BIN).join(tool)
}

/// A unique, empty directory `parent/prefix-<pid>-<n>`, owned by `postgres`.
pub fn scratch_dir(parent: &Path, prefix: &str) -> Result<PathBuf, BenchError> {
    for n in 0.. {
        let dir = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => {
                chown_postgres(&dir)?;
                return Ok(dir);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(BenchError::new(format!("{}: {error}", dir.display()))),
        }
    }
    unreachable!("some scratch name is free")
}

/// uid and gid of the `postgres` account.
fn postgres_account() -> Result<(u32, u32), BenchError> {
    let name = std::ffi::CString::new(PG_USER).expect("no NUL in the name");
    // SAFETY: getpwnam takes a NUL-terminated name and returns a pointer to
    // static storage or null; it is read at once, before any other call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(BenchError::new(format!(
            "no `{PG_USER}` user to run PostgreSQL as (it refuses root); create one (useradd --system {PG_USER})"
        )));
    }
    // SAFETY: non-null, so it points to a valid passwd entry.
    let entry = unsafe { &*entry };
    Ok((entry.pw_uid, entry.pw_gid))
}

fn chown_postgres(path: &Path) -> Result<(), BenchError> {
    let status = Command::new("chown")
        .arg(format!("{PG_USER}:{PG_USER}"))
        .arg(path)
        .status()
        .map_err(|error| BenchError::new(format!("cannot run chown: {error}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::new(format!(
            "chown {} failed: {status}",
            path.display()
        )))
    }
}

/// Runs a helper command to its end; its output on failure.
pub fn checked(command: &mut Command) -> Result<String, BenchError> {
    let output = command.stdin(Stdio::null()).output().map_err(|error| {
        BenchError::new(format!("cannot run {:?}: {error}", command.get_program()))
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(BenchError::new(format!(
            "{:?} {:?} failed ({}): {}{}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// A running cluster. `stop` (or drop) shuts it down and removes it.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    server: Option<Child>,
}

impl Cluster {
    pub fn start(parent: &Path) -> Result<Self, BenchError> {
        let root = scratch_dir(parent, "vy-bench-pg")?;
        let socket = root.join("sock");
        fs::create_dir(&socket)
            .map_err(|error| BenchError::new(format!("{}: {error}", socket.display())))?;
        chown_postgres(&socket)?;
        let data = root.join("data");
        checked(as_postgres(&pg_bin("initdb")).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        let log = fs::File::create(root.join("postgres.log"))
            .map_err(|error| BenchError::new(format!("{}: {error}", root.display())))?;
        let (uid, gid) = postgres_account()?;
        let mut command = Command::new(pg_bin("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&socket)
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=500"])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|error| BenchError::new(error.to_string()))?,
            )
            .stderr(log)
            .uid(uid)
            .gid(gid);
        // The server dies with the driver, however the driver ends.
        // SAFETY: the closure only calls prctl, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let server = command
            .spawn()
            .map_err(|error| BenchError::new(format!("cannot start postgres: {error}")))?;
        let mut cluster = Cluster {
            root,
            data,
            socket,
            server: Some(server),
        };
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// Polls `postmaster.pid`, whose eighth line reads `ready` once the
    /// server accepts connections.
    fn wait_ready(&mut self) -> Result<(), BenchError> {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let status = fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
            if status
                .lines()
                .nth(7)
                .is_some_and(|line| line.trim() == "ready")
            {
                return Ok(());
            }
            let exited = self
                .server
                .as_mut()
                .and_then(|server| server.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default();
                return Err(BenchError::new(format!(
                    "the bench cluster did not start ({exited:?}); its log:\n{log}"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The postmaster, root of the server's process tree.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}",
            self.socket.display()
        )
    }

    /// Runs a psql script on `database`; its unaligned output.
    pub fn psql(&self, script: &str, database: &str) -> Result<String, BenchError> {
        let mut child = Command::new(pg_bin("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-U",
                "postgres",
                "-h",
            ])
            .arg(&self.socket)
            .args(["-d", database])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| BenchError::new(format!("cannot run psql: {error}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = script.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|error| BenchError::new(format!("psql: {error}")))?;
        let _ = writer.join();
        if !output.status.success() {
            return Err(BenchError::new(format!(
                "psql on {database} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Databases other than the built-in ones.
    pub fn databases(&self) -> Result<BTreeSet<String>, BenchError> {
        Ok(self
            .psql(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres';",
                "postgres",
            )?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// psql's `\timing` of each statement, in milliseconds.
    pub fn timings(&self, statements: &[String], database: &str) -> Result<Vec<f64>, BenchError> {
        let out = self.psql(
            &format!("\\timing on\n{}\n", statements.join("\n")),
            database,
        )?;
        let times: Vec<f64> = out
            .lines()
            .filter_map(|line| line.strip_prefix("Time: "))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect();
        if times.len() != statements.len() {
            return Err(BenchError::new(format!(
                "expected {} timings from psql, got: {out}",
                statements.len()
            )));
        }
        Ok(times)
    }

    /// Wall time of a psql script, in milliseconds.
    pub fn timed_script(&self, script: &str, database: &str) -> Result<f64, BenchError> {
        let started = Instant::now();
        self.psql(script, database)?;
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    }

    /// Fast shutdown (SIGINT), then removes the directory.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SAFETY: the pid is our child's, not yet reaped.
            unsafe { libc::kill(server.id() as i32, libc::SIGINT) };
            let _ = server.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tmpfs on /dev/shm (rw,nosuid,...)`: the mount holding `path`.
pub fn filesystem(path: &Path) -> String {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let best = mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (mount, kind, options) = (*fields.get(1)?, *fields.get(2)?, *fields.get(3)?);
            let inside = path == Path::new(mount) || path.starts_with(mount);
            inside.then(|| (mount.len(), format!("{kind} on {mount} ({options})")))
        })
        .max_by_key(|(length, _)| *length);
    best.map_or_else(|| "an unknown file system".to_owned(), |(_, text)| text)
}
