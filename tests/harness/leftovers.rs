//! What a harness run left on this machine, in a runtime and cache
//! directory of the test's own, so that other runs on the machine (other
//! people's, other tests') cannot confuse the assertions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A private `VERILY_RUNTIME_DIR` (and `VERILY_CACHE_DIR`), removed on drop.
pub struct PrivateDirs {
    pub base: PathBuf,
    pub cache: PathBuf,
}

impl PrivateDirs {
    pub fn new(label: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = PathBuf::from(format!(
            "/dev/shm/vy-suite-{}-{label}-{n}",
            std::process::id()
        ));
        let cache = base.with_extension("cache");
        for dir in [&base, &cache] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).expect("a private directory");
            // The server's account must reach the runtime root inside.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .expect("chmod a private directory");
        }
        Self { base, cache }
    }

    /// The run's runtime root: `<base>/verily-<uid>`.
    pub fn root(&self) -> PathBuf {
        // SAFETY: getuid has no preconditions.
        self.base
            .join(format!("verily-{}", unsafe { libc::getuid() }))
    }

    /// Environment for a harness: the private runtime dir; the private
    /// cache too when `cold` (initdb runs), else the machine's.
    pub fn env(&self, cold: bool) -> Vec<(String, String)> {
        let mut env = vec![(
            "VERILY_RUNTIME_DIR".to_owned(),
            self.base.display().to_string(),
        )];
        if cold {
            env.push((
                "VERILY_CACHE_DIR".to_owned(),
                self.cache.display().to_string(),
            ));
        }
        env
    }

    /// Entries under the runtime root, and under the cache other than the
    /// finished pristine data directory.
    pub fn leftover_files(&self) -> Vec<String> {
        let mut left = names_in(&self.root());
        for version in names_in(&self.cache) {
            for name in names_in(&self.cache.join(&version)) {
                if name != "pristine" {
                    left.push(format!("{version}/{name}"));
                }
            }
        }
        left
    }

    /// Processes that work in, or name, a directory of ours.
    pub fn leftover_processes(&self) -> Vec<String> {
        processes_touching(&[&self.base, &self.cache])
    }
}

impl Drop for PrivateDirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `pid (comm) state: cmdline` of each live process whose working
/// directory is under one of `dirs` or whose command line names one.
pub fn processes_touching(dirs: &[&Path]) -> Vec<String> {
    process_table(dirs)
        .into_iter()
        .map(|process| {
            format!(
                "{} ({}) {}: {}",
                process.pid, process.comm, process.state, process.cmdline
            )
        })
        .collect()
}

/// A process, as `/proc` shows it.
#[derive(Debug)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    pub state: String,
    pub ppid: u32,
    pub cmdline: String,
}

/// Live (not zombie) processes that touch one of `dirs`.
pub fn process_table(dirs: &[&Path]) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
            .unwrap_or_default();
        let touches = dirs
            .iter()
            .any(|dir| cwd.starts_with(dir) || cmdline.contains(dir.to_string_lossy().as_ref()));
        if !touches {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, after)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head
            .split_once(" (")
            .map(|(_, comm)| comm)
            .unwrap_or_default();
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or_default().to_owned();
        let ppid = fields
            .next()
            .and_then(|ppid| ppid.parse().ok())
            .unwrap_or_default();
        // A zombie holds nothing; its parent reaps it.
        if state != "Z" {
            found.push(Process {
                pid,
                comm: comm.to_owned(),
                state,
                ppid,
                cmdline: cmdline.trim().to_owned(),
            });
        }
    }
    found
}

/// Starts `binary` with `args` and `env`, stdout piped, stderr to a file
/// in `dirs`' cache parent so a failure can show it.
pub fn spawn(binary: &Path, args: &[&str], env: &[(String, String)]) -> Child {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_RUN_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("the harness starts")
}

/// Reads the child's stdout until a line starts with `prefix`, on a thread,
/// within `limit`; the rest of stdout is drained so the child never blocks.
pub fn wait_for_line(child: &mut Child, prefix: &str, limit: Duration) -> Option<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut sent = false;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if !sent && line.starts_with(&prefix) {
                let _ = sender.send(line);
                sent = true;
            }
        }
    });
    receiver.recv_timeout(limit).ok()
}

/// Waits up to `limit` for the child to exit; kills it (SIGKILL) after.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// The stderr a finished child wrote.
pub fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
    }
    text
}
