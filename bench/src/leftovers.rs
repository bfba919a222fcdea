//! What a run leaves behind: server processes, cluster directories,
//! containers, databases. The driver is a child subreaper, so a process
//! that any run started and that outlived it becomes the driver's child:
//! those are exactly the run's leftovers, whoever else uses the machine.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Makes orphaned descendants of the driver its children (see the module doc).
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Leftovers found so far; the bench fails at the end if there are any.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub found: Vec<String>,
}

/// The directories local clusters live in, as they were before a run.
#[derive(Debug, Clone)]
pub struct Snapshot {
    entries: BTreeSet<PathBuf>,
}

/// Roots where verily puts ephemeral clusters (`verily-<uid>` in
/// /dev/shm or the temp dir, or whatever else starts with `verily`).
fn cluster_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for base in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        let Ok(entries) = fs::read_dir(&base) else {
            continue;
        };
        roots.extend(
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("verily"))
                .map(|entry| entry.path()),
        );
    }
    roots
}

/// Every entry under the cluster roots (a root that is a plain directory
/// of clusters is not itself a leftover; what is in it may be).
pub fn snapshot() -> Snapshot {
    let mut entries = BTreeSet::new();
    for root in cluster_roots() {
        entries.insert(root.clone());
        if let Ok(inside) = fs::read_dir(&root) {
            entries.extend(inside.filter_map(Result::ok).map(|entry| entry.path()));
        }
    }
    Snapshot { entries }
}

/// The lock files of the cluster and the services nextest's processes
/// share (`shared-<key>.clients`, `shared-<key>.start`, and `hosted-` ones
/// for Redis and users' services): empty, and kept on
/// purpose, since removing a file another process may hold a lock on would
/// let two keepers start (the README's nextest section says so). Anything
/// else the keeper made (its address, its log, its cluster) must go.
fn kept_on_purpose(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|name| name.to_string_lossy()) else {
        return false;
    };
    (name.starts_with("shared-") || name.starts_with("hosted-"))
        && (name.ends_with(".clients") || name.ends_with(".start"))
}

/// A process that is the driver's child though the driver did not start
/// it directly (or did, and it outlived the run).
#[derive(Debug)]
struct Orphan {
    pid: u32,
    command: String,
}

/// The driver's children other than `expected` (its own live helpers, such
/// as the bench cluster's postmaster); zombies are reaped on the way.
fn orphans(expected: &[u32]) -> Vec<Orphan> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|end| &stat[end + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|parent| parent.parse::<u32>().ok()) != Some(me) {
            continue;
        }
        if fields.first() == Some(&"Z") {
            let mut status = 0;
            // SAFETY: reaps one exited child of ours by pid; no pointer but
            // the status, valid for the call.
            unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            continue;
        }
        if expected.contains(&pid) {
            continue;
        }
        let command = fs::read(entry.path().join("cmdline"))
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .replace('\0', " ")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        found.push(Orphan { pid, command });
    }
    found
}

/// Command lines of live processes anywhere on the machine that name `dir`.
fn users_of(dir: &Path) -> bool {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        fs::read(entry.path().join("cmdline"))
            .map(|bytes| String::from_utf8_lossy(&bytes).contains(&needle))
            .unwrap_or(false)
    })
}

impl Leftovers {
    /// After a run that provisioned its own PostgreSQL: waits up to `grace`
    /// for its servers to exit and its directories to go, then records and
    /// removes what is still there. A new directory that a live process
    /// outside this run still uses is another session's, not a leftover.
    pub fn check_local(&mut self, who: &str, before: &Snapshot, expected: &[u32], grace: Duration) {
        let deadline = Instant::now() + grace;
        loop {
            let processes = orphans(expected);
            let dirs: Vec<PathBuf> = snapshot()
                .entries
                .difference(&before.entries)
                .filter(|dir| !kept_on_purpose(dir))
                .filter(|dir| {
                    !users_of(dir)
                        || processes
                            .iter()
                            .any(|p| p.command.contains(&*dir.to_string_lossy()))
                })
                .cloned()
                .collect();
            if processes.is_empty() && dirs.is_empty() {
                return;
            }
            if Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            self.found.push(format!(
                "{who} left {} process(es) [{}] and {} director(ies) [{}] {:.0} s after it ended",
                processes.len(),
                processes
                    .iter()
                    .map(|p| format!("{} {}", p.pid, p.command))
                    .collect::<Vec<_>>()
                    .join("; "),
                dirs.len(),
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                grace.as_secs_f64()
            ));
            for process in &processes {
                // SIGQUIT: a postmaster's immediate shutdown; anything else dies too.
                // SAFETY: the pid is our child, not yet reaped.
                unsafe { libc::kill(process.pid as i32, libc::SIGQUIT) };
            }
            std::thread::sleep(Duration::from_millis(500));
            for process in orphans(expected) {
                // SAFETY: as above.
                unsafe { libc::kill(process.pid as i32, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
            orphans(expected);
            for dir in dirs {
                let _ = fs::remove_dir_all(&dir).or_else(|_| fs::remove_file(&dir));
            }
            return;
        }
    }

    /// Containers that a Docker run (`harness_pid`) left: verily labels
    /// each with its run's pid.
    pub fn check_docker(&mut self, who: &str, harness_pid: u32) {
        let ids = containers(&format!("label=verily.pid={harness_pid}"));
        if !ids.is_empty() {
            self.found
                .push(format!("{who} (pid {harness_pid}) left containers {ids:?}"));
            remove_containers(&ids);
        }
    }

    /// Databases a run left on the bench cluster.
    pub fn check_databases(
        &mut self,
        who: &str,
        pid: u32,
        before: &BTreeSet<String>,
        after: &BTreeSet<String>,
    ) {
        let left: Vec<&String> = after.difference(before).collect();
        if !left.is_empty() {
            self.found.push(format!(
                "{who} (pid {pid}) left databases {left:?} on the bench cluster"
            ));
        }
    }
}

/// Ids of containers (running or not) matching a `docker ps` filter.
pub fn containers(filter: &str) -> Vec<String> {
    Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub fn remove_containers(ids: &[String]) {
    if !ids.is_empty() {
        let _ = Command::new("docker").args(["rm", "-f"]).args(ids).output();
    }
}
