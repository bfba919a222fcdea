//! The one sweep of dead runs: everything the framework makes on this
//! machine carries its owner's pid and start time in its name
//! (`cluster-<pid>-s<start>-<n>`), and a run that starts a server first
//! removes what owners that are gone left behind (a `kill -9`, a second
//! signal during teardown, a machine that lost power).
//!
//! It knows every kind of thing a run makes outside a database server:
//!
//! - under the runtime root: the run's clusters (`cluster-`), initdb's
//!   scratch directories (`initdb-`), per-test servers (`exclusive-`),
//!   running, stopped or paused; each one's processes are continued, asked
//!   to quit (a postmaster then removes its own shared memory), killed
//!   after a grace period, and its System V segment (named on line 7 of
//!   `postmaster.pid`) removed once nothing is attached;
//! - in the cache: pristine copies staged and never renamed (`pristine.tmp-`);
//! - in the temp dir: local Redis servers' directories (`verily-redis-`).
//!
//! Servers run with `dynamic_shared_memory_type=mmap`, so their dynamic
//! shared memory lives in their data directory and goes with it; POSIX
//! segments (`/dev/shm/PostgreSQL.*`) name no owner and could not be
//! attributed after a kill. Containers are swept by label where Docker is
//! used (`postgres::docker::remove_orphans`).
//!
//! A pid alone is not proof of life: a reused pid would keep a dead run's
//! leftovers forever. The start time (`/proc/<pid>/stat`, field 22) must
//! match too. Names without one (made before it was recorded) go by pid.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use super::process;

/// Prefixes of what runs make under the runtime root.
const IN_RUNTIME_ROOT: [&str; 3] = ["cluster-", "exclusive-", "initdb-"];

/// Prefix of a pristine copy staged in a version's cache directory.
const STAGED_PRISTINE: &str = "pristine.tmp-";

/// Prefix of a local Redis server's directory in the temp dir.
pub(crate) const REDIS_DIR: &str = "verily-redis-";

/// Marks a cluster `VERILY_KEEP=1` kept past its run: never swept.
pub(crate) const KEPT_MARKER: &str = "kept-by-VERILY_KEEP";

/// Label of every container a run starts: its owner, `<pid>-s<start>`.
/// Containers also carry the pid alone (`verily.pid`, or
/// `verily.exclusive.pid` for per-test servers), which older runs set.
#[cfg(feature = "docker")]
pub(crate) const OWNER_LABEL: &str = "verily.owner";

/// The pid labels the two kinds of container carry.
#[cfg(feature = "docker")]
const PID_LABELS: [&str; 2] = ["verily.pid", "verily.exclusive.pid"];

/// How long a dead run's server may take to quit before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(3);

/// `<pid>-s<start time>`: this process, as names record their owner.
pub(crate) fn owner_tag() -> String {
    let pid = std::process::id();
    match start_time(pid) {
        Some(start) => format!("{pid}-s{start}"),
        None => pid.to_string(),
    }
}

/// The owner a name records after its prefix: `<pid>[-s<start>]-...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pid: u32,
    start: Option<u64>,
}

impl Owner {
    pub(crate) fn parse(rest: &str) -> Option<Owner> {
        let mut parts = rest.split('-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts
            .next()
            .and_then(|part| part.strip_prefix('s'))
            .and_then(|start| start.parse().ok());
        Some(Owner { pid, start })
    }

    /// Whether the process that made the name still runs: same pid and,
    /// when recorded, the same start time.
    pub(crate) fn is_alive(self) -> bool {
        if !process::is_alive(self.pid) {
            return false;
        }
        match (self.start, start_time(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        }
    }
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock
/// ticks since boot.
#[cfg(target_os = "linux")]
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parens.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn start_time(_pid: u32) -> Option<u64> {
    None
}

/// Where a sweep looks.
#[derive(Debug, Clone)]
pub struct Places {
    /// `<runtime base>/verily-<uid>`.
    pub runtime_root: PathBuf,
    /// The cache directory (`VERILY_CACHE_DIR`, ...).
    pub cache: PathBuf,
    /// Where local Redis servers keep their directories.
    pub temp: PathBuf,
}

impl Places {
    /// This machine's, as this process's environment names them.
    pub fn of_this_run() -> Self {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        Self {
            runtime_root: super::dirs::runtime_base().join(format!("verily-{uid}")),
            cache: super::dirs::cache_dir(),
            temp: std::env::temp_dir(),
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Directories removed.
    pub directories: Vec<PathBuf>,
    /// Processes signalled.
    pub processes: usize,
    /// System V shared-memory segments removed.
    pub segments: usize,
}

/// Sweeps once per process, before its first server: later starts in the
/// same run find nothing new (its own things are alive).
pub(crate) fn sweep_once() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| {
        sweep(&Places::of_this_run());
    });
}

/// Removes what runs that are gone left in `places`.
pub fn sweep(places: &Places) -> Swept {
    let mut swept = Swept::default();
    for (name, path) in entries(&places.runtime_root) {
        let Some(rest) = IN_RUNTIME_ROOT
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix))
        else {
            continue;
        };
        if dead(rest) && !path.join(KEPT_MARKER).exists() {
            remove_server_dir(&path, &mut swept);
        }
    }
    for (name, version) in entries(&places.cache) {
        if !name.starts_with("postgres-") {
            continue;
        }
        for (name, path) in entries(&version) {
            if name.strip_prefix(STAGED_PRISTINE).is_some_and(dead) {
                remove_server_dir(&path, &mut swept);
            }
        }
    }
    for (name, path) in entries(&places.temp) {
        if name.strip_prefix(REDIS_DIR).is_some_and(dead) && is_dir(&path) {
            remove_server_dir(&path, &mut swept);
        }
    }
    swept
}

fn dead(rest: &str) -> bool {
    Owner::parse(rest).is_some_and(|owner| !owner.is_alive())
}

fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .collect()
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir())
}

/// Ends every process of a dead run's directory (a server, paused or not,
/// initdb, a `cp` still copying), removes the server's System V segment,
/// then the directory.
fn remove_server_dir(dir: &Path, swept: &mut Swept) {
    let segment = system_v_segment(dir);
    let processes = processes_touching(dir);
    swept.processes += processes.len();
    // A stopped process handles no signal but SIGKILL until continued.
    for &pid in &processes {
        process::signal(pid, libc::SIGCONT);
    }
    // SIGQUIT: a postmaster ends its backends and removes its shared
    // memory; anything else just ends.
    for &pid in &processes {
        process::signal(pid, libc::SIGQUIT);
    }
    let deadline = Instant::now() + QUIT_GRACE;
    let mut left = processes;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        left.retain(|&pid| still_touching(pid, dir));
    }
    for &pid in &left {
        process::signal(pid, libc::SIGKILL);
    }
    // Processes started while we looked (a postmaster forks until it
    // quits): anything still there now is killed outright.
    for pid in processes_touching(dir) {
        process::signal(pid, libc::SIGKILL);
    }
    if let Some(id) = segment
        && remove_unattached_segment(id)
    {
        swept.segments += 1;
    }
    // A killed process may still be finishing the file it was writing
    // (initdb's children, a `cp`), so a removal can meet a file made after
    // it listed the directory: try again until they are gone.
    let deadline = Instant::now() + QUIT_GRACE;
    loop {
        if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            swept.directories.push(dir.to_path_buf());
            return;
        }
        if Instant::now() > deadline {
            return;
        }
        for pid in processes_touching(dir) {
            process::signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Containers of runs that are gone (run servers, per-test servers,
/// Redis), paused or not: unpaused, then removed with their volumes. Once
/// per process, and only by runs that use Docker: asking it costs a
/// process start.
#[cfg(feature = "docker")]
pub(crate) fn sweep_containers_once() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| {
        sweep_containers();
    });
}

/// The ids of the containers it removed.
#[cfg(feature = "docker")]
pub fn sweep_containers() -> Vec<String> {
    let docker = super::docker::listing;
    let mut removed = Vec::new();
    for label in PID_LABELS {
        let format =
            format!("{{{{.ID}}}} {{{{.Label \"{label}\"}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
        let Some(listing) = docker(&[
            "ps",
            "--all",
            "--filter",
            &format!("label={label}"),
            "--format",
            &format,
        ]) else {
            return removed;
        };
        for line in listing.lines() {
            let mut fields = line.split_whitespace();
            let (Some(id), Some(pid)) = (fields.next(), fields.next()) else {
                continue;
            };
            let owner = fields
                .next()
                .and_then(Owner::parse)
                .or_else(|| Owner::parse(pid));
            if owner.is_some_and(|owner| !owner.is_alive()) && super::docker::remove(id) {
                removed.push(id.to_owned());
            }
        }
    }
    removed
}

/// A directory being made (a cluster starting, a copy, initdb's scratch):
/// removed, with whatever still works in it, if the process exits before
/// [`MadeDir::done`] (a signal's teardown ends in `exit`, which drops
/// nothing), or if the guard is dropped (the start failed).
#[derive(Debug)]
pub(crate) struct MadeDir {
    key: u64,
}

static MAKING: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());

impl MadeDir {
    pub(crate) fn new(dir: &Path) -> Self {
        static HOOK: Once = Once::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        HOOK.call_once(|| {
            // SAFETY: `remove_unfinished` is a plain function that never
            // unwinds.
            unsafe {
                libc::atexit(remove_unfinished);
            }
        });
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut making) = MAKING.lock() {
            making.insert(key, dir.to_path_buf());
        }
        Self { key }
    }

    /// The directory is made, and its owner removes it from now on.
    pub(crate) fn done(self) {
        if let Ok(mut making) = MAKING.lock() {
            making.remove(&self.key);
        }
        std::mem::forget(self);
    }
}

impl Drop for MadeDir {
    fn drop(&mut self) {
        let dir = MAKING
            .lock()
            .ok()
            .and_then(|mut making| making.remove(&self.key));
        if let Some(dir) = dir.filter(|dir| dir.exists()) {
            remove_server_dir(&dir, &mut Swept::default());
        }
    }
}

/// Runs `make` (a `mkdir`, or the spawn of what fills a directory being
/// made: `cp`, initdb, a server) unless the process is exiting. Other
/// threads run on while `exit` calls its hooks, so without this gate one
/// could create a directory or start a `cp` just after the hook removed
/// what it knew of; once the hook holds the gate, they never pass it.
pub(crate) fn gated<T>(make: impl FnOnce() -> T) -> T {
    let _gate = MAKING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    make()
}

extern "C" fn remove_unfinished() {
    // Waits for a `make` under way (a mkdir or a spawn: short), then keeps
    // the gate shut for the rest of the process's life.
    let mut making = MAKING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for dir in std::mem::take(&mut *making).into_values() {
        remove_server_dir(&dir, &mut Swept::default());
    }
    std::mem::forget(making);
}

/// The shmid on line 7 of the data directory's `postmaster.pid`
/// (`<key> <shmid>`), wherever the data directory is in `dir`.
fn system_v_segment(dir: &Path) -> Option<i32> {
    let text = fs::read_to_string(dir.join("data/postmaster.pid"))
        .or_else(|_| fs::read_to_string(dir.join("postmaster.pid")))
        .ok()?;
    text.lines().nth(6)?.split_whitespace().nth(1)?.parse().ok()
}

/// Removes a System V segment nothing is attached to.
#[cfg(target_os = "linux")]
fn remove_unattached_segment(id: i32) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::shmid_ds>::uninit();
    // SAFETY: IPC_STAT writes the struct for a valid id and returns 0 only
    // when it did; IPC_RMID takes no buffer.
    unsafe {
        if libc::shmctl(id, libc::IPC_STAT, stat.as_mut_ptr()) != 0 {
            return false;
        }
        if stat.assume_init().shm_nattch != 0 {
            return false;
        }
        libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn remove_unattached_segment(_id: i32) -> bool {
    false
}

/// Processes that work in `dir` (a server's processes work in their data
/// directory) or name it on their command line (initdb, `cp`).
#[cfg(target_os = "linux")]
pub(crate) fn processes_touching(dir: &Path) -> Vec<u32> {
    process::processes_where(|pid, _| still_touching(pid, dir))
}

#[cfg(target_os = "linux")]
fn still_touching(pid: u32, dir: &Path) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if fs::read_link(proc.join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) {
        return true;
    }
    let Ok(cmdline) = fs::read(proc.join("cmdline")) else {
        return false;
    };
    let dir = dir.as_os_str().as_encoded_bytes();
    cmdline
        .split(|&byte| byte == 0)
        .any(|arg| arg.starts_with(dir) && matches!(arg.get(dir.len()), None | Some(b'/')))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn processes_touching(_dir: &Path) -> Vec<u32> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
fn still_touching(pid: u32, _dir: &Path) -> bool {
    process::is_alive(pid)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::{Owner, Places, sweep};

    /// Empty places of a test's own, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("vy-reaper-test-{}-{label}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for place in ["root", "cache", "temp"] {
                std::fs::create_dir_all(dir.join(place)).unwrap();
            }
            Self(dir)
        }

        fn places(&self) -> Places {
            Places {
                runtime_root: self.0.join("root"),
                cache: self.0.join("cache"),
                temp: self.0.join("temp"),
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A pid that no process has any more.
    fn dead_pid() -> u32 {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_dead_runs_paused_process_is_ended_and_its_directory_removed() {
        let scratch = Scratch::new("paused");
        let places = scratch.places();
        let dir = places
            .runtime_root
            .join(format!("exclusive-{}-0", dead_pid()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut server = Command::new("sleep")
            .arg("600")
            .current_dir(dir.join("data"))
            .spawn()
            .unwrap();
        super::process::signal(server.id(), libc::SIGSTOP);
        let live = places
            .runtime_root
            .join(format!("cluster-{}-0", super::owner_tag()));
        std::fs::create_dir_all(&live).unwrap();
        let staged = places.cache.join("postgres-15.18-wal1");
        std::fs::create_dir_all(staged.join(format!("pristine.tmp-{}-1", dead_pid()))).unwrap();
        std::fs::create_dir_all(staged.join("pristine")).unwrap();
        let redis = places.temp.join(format!("verily-redis-{}-2", dead_pid()));
        std::fs::create_dir_all(&redis).unwrap();

        let swept = sweep(&places);

        assert_eq!(swept.processes, 1);
        let status = server.wait().unwrap();
        assert!(!status.success(), "the paused process ended: {status:?}");
        assert!(!dir.exists());
        assert!(!redis.exists());
        assert!(
            !staged
                .join(format!("pristine.tmp-{}-1", dead_pid()))
                .exists()
        );
        assert_eq!(swept.directories.len(), 3, "{swept:?}");
        assert!(live.exists(), "a live run's cluster was removed");
        assert!(staged.join("pristine").exists());
    }

    /// A container of postgres:15 that sleeps, with these labels.
    #[cfg(feature = "docker")]
    fn container(labels: &[String]) -> Option<String> {
        let mut command = Command::new("docker");
        command.args(["run", "--detach"]);
        for label in labels {
            command.args(["--label", label]);
        }
        let output = command
            .args(["postgres:15", "sleep", "600"])
            .output()
            .ok()
            .filter(|output| output.status.success())?;
        Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    #[cfg(feature = "docker")]
    #[test]
    fn containers_of_dead_runs_go_paused_or_not_and_a_reused_pid_does_not_save_them() {
        let me = std::process::id();
        let start = Owner::parse(&super::owner_tag()).and_then(|owner| owner.start);
        let Some(dead) = container(&[format!("verily.pid={}", dead_pid())]) else {
            eprintln!("skipped: no Docker engine or no postgres:15 image");
            return;
        };
        Command::new("docker")
            .args(["pause", &dead])
            .output()
            .unwrap();
        let reused = container(&[
            format!("verily.exclusive.pid={me}"),
            format!("verily.owner={me}-s{}", start.unwrap_or_default() + 1),
        ])
        .unwrap();
        let live = container(&[
            format!("verily.pid={me}"),
            format!("verily.owner={}", super::owner_tag()),
        ])
        .unwrap();

        let removed = super::sweep_containers();

        let _ = Command::new("docker").args(["rm", "-f", &live]).output();
        assert!(
            removed.iter().any(|id| dead.starts_with(id.as_str())),
            "{removed:?}"
        );
        assert!(
            removed.iter().any(|id| reused.starts_with(id.as_str())),
            "{removed:?}"
        );
        assert!(
            !removed.iter().any(|id| live.starts_with(id.as_str())),
            "{removed:?}"
        );
    }

    #[test]
    // What a sweep costs is a figure for the bench, not an assertion that
    // fails on a slow machine.
    fn a_sweep_with_nothing_dead_touches_nothing() {
        let scratch = Scratch::new("cheap");
        let places = scratch.places();
        for n in 0..20 {
            let name = format!("exclusive-{}-{n}", super::owner_tag());
            std::fs::create_dir_all(places.runtime_root.join(name)).unwrap();
        }
        let swept = sweep(&places);
        assert_eq!(swept, Default::default());
        assert_eq!(std::fs::read_dir(&places.runtime_root).unwrap().count(), 20);
    }

    #[test]
    fn owners_from_names() {
        assert_eq!(
            Owner::parse("123-s456-7"),
            Some(Owner {
                pid: 123,
                start: Some(456)
            })
        );
        // Made before start times were recorded: the pid only.
        assert_eq!(
            Owner::parse("123-7"),
            Some(Owner {
                pid: 123,
                start: None
            })
        );
        assert_eq!(Owner::parse("shared"), None);
    }

    #[test]
    fn a_reused_pid_is_not_its_old_owner() {
        let me = std::process::id();
        let tag = super::owner_tag();
        let owner = Owner::parse(&tag).expect("our own tag parses");
        assert!(owner.is_alive());
        let start = owner.start.expect("Linux records the start time");
        let impostor = Owner::parse(&format!("{me}-s{}-0", start + 1)).expect("parses");
        assert!(!impostor.is_alive());
    }
}
