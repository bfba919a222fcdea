//! A Redis server from this machine's `redis-server`: on a free loopback
//! port, no persistence (`--save '' --appendonly no`), its log and working
//! directory in a temp dir of its own, killed with the harness.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::infra::InfraError;
use crate::infra::{process, reaper};

/// Where `redis-server` was looked for, for the message when it is missing.
pub const SEARCHED: &str = "PATH, /usr/bin, /usr/local/bin, /opt/homebrew/bin";

/// Logical databases of a server the harness starts: enough for one per
/// concurrent test.
pub const DATABASES: u32 = 64;

/// A `redis-server` found on this machine.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// `7.0.15`, from `redis-server --version`.
    pub version: String,
}

/// Finds `redis-server` on PATH or in the usual places, once per process
/// (asking its version costs a process start, and exclusive servers start
/// often).
pub fn find_binary() -> Option<Binary> {
    static FOUND: std::sync::OnceLock<Option<Binary>> = std::sync::OnceLock::new();
    FOUND.get_or_init(search_binary).clone()
}

fn search_binary() -> Option<Binary> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    candidates.extend(["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"].map(PathBuf::from));
    let path = candidates
        .into_iter()
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file())?;
    // Not canonicalized: Debian's redis-server is a link to redis-check-rdb,
    // one binary that acts by the name it is run as.
    let output = Command::new(&path).arg("--version").output().ok()?;
    let version = parse_version(&String::from_utf8_lossy(&output.stdout))?;
    Some(Binary { path, version })
}

/// `7.0.15` from `Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 ...`.
fn parse_version(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .map(str::to_owned)
}

/// A running (or stopped, or paused) local server. Dropping it kills the
/// process and removes its directory.
#[derive(Debug)]
pub struct LocalRedis {
    binary: Binary,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    paused: bool,
    /// `VERILY_KEEP=1` kept it past the run: never killed nor removed.
    kept: bool,
}

impl LocalRedis {
    /// Starts a server on a free loopback port.
    pub async fn start(binary: Binary) -> Result<Self, InfraError> {
        reaper::sweep_once();
        let dir = std::env::temp_dir().join(format!(
            "{}{}-{}",
            reaper::REDIS_DIR,
            reaper::owner_tag(),
            process::unique()
        ));
        fs::create_dir_all(&dir)
            .map_err(|error| InfraError::new(format!("{}: {error}", dir.display())))?;
        let mut server = LocalRedis {
            binary,
            dir,
            port: 0,
            child: None,
            paused: false,
            kept: false,
        };
        // Another process may take the free port between the probe and the
        // bind; a new port fixes that.
        let mut attempts = 0;
        loop {
            attempts += 1;
            server.port = process::free_port()?;
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(_) if attempts < 5 && server.log().contains("Address already in use") => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Starts the process on the server's port and waits until it answers.
    async fn spawn(&mut self) -> Result<(), InfraError> {
        let log = fs::File::create(self.dir.join("redis.log"))
            .map_err(|error| InfraError::new(format!("{}: {error}", self.dir.display())))?;
        let mut command = Command::new(&self.binary.path);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--databases", &DATABASES.to_string()])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(&self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|error| InfraError::new(error.to_string()))?,
            )
            .stderr(log);
        // A kept server must outlive the run; any other dies with it.
        let child = if crate::infra::keep_requested() {
            command.spawn()
        } else {
            process::spawn_tied_to_harness(command, libc::SIGKILL)
        }
        .map_err(|error| {
            InfraError::new(format!(
                "cannot start {}: {error}",
                self.binary.path.display()
            ))
        })?;
        self.child = Some(child);
        self.paused = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if super::ping("127.0.0.1", self.port).await.is_ok() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(InfraError::new(format!(
                    "the local redis-server exited at startup ({status}); its log:\n{}",
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(InfraError::new(format!(
                    "the local redis-server did not answer PING within 10 s; its log:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// One line for the start report.
    pub fn describe(&self) -> String {
        format!(
            "local redis-server {} ({})",
            self.binary.version,
            self.binary.path.display()
        )
    }

    /// Starts the process again on the same port, after [`Self::kill`].
    pub async fn restart(&mut self) -> Result<(), InfraError> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn().await
    }

    /// SIGSTOP: the process holds its connections and answers nothing.
    pub fn pause(&mut self) {
        if let Some(child) = &self.child {
            process::signal(child.id(), libc::SIGSTOP);
            self.paused = true;
        }
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&mut self) {
        if let Some(child) = &self.child {
            process::signal(child.id(), libc::SIGCONT);
        }
        self.paused = false;
    }

    /// Stops the process and waits for it (the data is thrown away): a
    /// paused one is continued first, so that it can die.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if self.paused {
                process::signal(child.id(), libc::SIGCONT);
                self.paused = false;
            }
            let _ = child.wait();
        }
    }

    /// How to reach a kept server, and how to stop it.
    pub fn keep_instructions(&mut self) -> String {
        self.kept = true;
        let pid = self
            .child
            .take()
            .map(|child| child.id())
            .unwrap_or_default();
        format!(
            "redis: kept the local server: redis-cli -u {}/DATABASE; stop it with `kill {pid}` and remove {}",
            self.url(),
            self.dir.display()
        )
    }

    /// Kills the process and removes its directory.
    pub fn remove(&mut self) {
        if !self.kept {
            self.kill();
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn version_from_redis_server_output() {
        assert_eq!(
            parse_version(
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0\n"
            )
            .as_deref(),
            Some("7.0.15")
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
