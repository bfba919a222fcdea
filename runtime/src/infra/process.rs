//! Processes the harness starts (a local PostgreSQL or Redis): the user
//! they run as, signals, liveness, and dying with the harness, on Unix.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock, mpsc};

/// The account a server runs as when the harness runs as root (PostgreSQL
/// refuses to run as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Whether the harness runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Looks up a user by name in the system's user database.
pub fn account(name: &str) -> Option<Account> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam reads a NUL-terminated name and returns a pointer to
    // static storage or null; the fields are copied out before any other call.
    unsafe {
        let entry = libc::getpwnam(name.as_ptr());
        if entry.is_null() {
            return None;
        }
        Some(Account {
            uid: (*entry).pw_uid,
            gid: (*entry).pw_gid,
        })
    }
}

/// Gives a file or directory to `account`.
pub fn chown(path: &Path, account: Account) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))
}

/// Whether a process with this id exists.
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: sending a signal has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Waits up to `limit` for this process's child `pid` to exit, reaping
/// it; after the limit, kills it (SIGKILL) and reaps it.
pub fn reap_within(pid: u32, limit: std::time::Duration) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        // SAFETY: waitpid with WNOHANG on a pid; the status is discarded.
        let reaped = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        // The pid, or -1: not (or no longer) a child of this process.
        if reaped != 0 {
            return;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: as above; the child is killed first so the wait ends.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Ends a child the harness started: `signal` (its own clean or immediate
/// shutdown), then SIGKILL if it is still there after `grace`; reaped
/// either way. Whether it had to be killed is the answer.
pub fn terminate(child: &mut Child, signal: libc::c_int, grace: std::time::Duration) -> bool {
    self::signal(child.id(), signal);
    let deadline = std::time::Instant::now() + grace;
    while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let killed = matches!(child.try_wait(), Ok(None));
    if killed {
        let _ = child.kill();
        let _ = child.wait();
    }
    killed
}

/// A port on 127.0.0.1 that nothing listens on right now (another process
/// may take it before the server binds it: callers retry on another).
/// Runs blocking `work` (killing a server, waiting for it to exit) from
/// async code: handing the thread over on a multi-threaded runtime, inline
/// on a current-thread one (a test's own), where handing over is not
/// possible and the work takes milliseconds.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

pub fn free_port() -> Result<u16, super::InfraError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| {
            super::InfraError::new(format!("cannot find a free port on 127.0.0.1: {error}"))
        })
}

/// A per-process counter, so names made in one process never collide
/// (with the owner tag, they never collide across processes either).
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An id unlikely to collide with another process's, on this machine or
/// another sharing a server: time and process id, mixed (63 bits).
pub fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    let mixed = nanos ^ (u64::from(std::process::id()) << 40) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64's finalizer spreads the bits.
    let mut z = mixed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & 0x7fff_ffff_ffff_ffff
}

/// Starts `command` so that the kernel sends `signal` to the child when
/// the harness dies, however it dies: SIGQUIT for a postmaster (an
/// immediate shutdown that also removes its shared memory), SIGKILL
/// otherwise.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// and the runtime's threads come and go (tokio retires a thread idle for
/// 10 s, `block_in_place` hands threads over), so every such child is
/// forked by one thread that lives as long as the process.
pub fn spawn_tied_to_harness(command: Command, signal: libc::c_int) -> std::io::Result<Child> {
    type Request = (Command, libc::c_int, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("verily-spawner".to_owned())
            .spawn(move || {
                for (mut command, signal, reply) in requests {
                    // SAFETY: the closure only calls prctl and getppid,
                    // which are async-signal-safe.
                    unsafe {
                        command.pre_exec(move || signal_on_parent_death(signal));
                    }
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(sender)
    });
    let (reply, child) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, signal, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    child
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

#[cfg(target_os = "linux")]
fn signal_on_parent_death(signal: libc::c_int) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the calling
    // process; getppid and kill have no preconditions.
    unsafe {
        let parent = libc::getppid();
        if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The harness died between the fork and the prctl: nobody would
        // send the signal any more.
        if libc::getppid() != parent {
            libc::kill(libc::getpid(), signal);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn signal_on_parent_death(_signal: libc::c_int) -> std::io::Result<()> {
    Ok(())
}

/// The processes listed in `/proc` for which `keep(pid, /proc/<pid>)` holds.
#[cfg(target_os = "linux")]
pub(crate) fn processes_where(mut keep: impl FnMut(u32, &Path) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            keep(pid, &entry.path()).then_some(pid)
        })
        .collect()
}

/// Processes whose parent is `parent`: a postmaster's backends and
/// auxiliary processes.
#[cfg(target_os = "linux")]
pub fn children_of(parent: u32) -> Vec<u32> {
    let ppid = |proc: &Path| -> Option<u32> {
        let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
        // `pid (comm) state ppid ...`; comm may hold spaces and parens.
        let after = stat.get(stat.rfind(')')? + 1..)?;
        after.split_whitespace().nth(1)?.parse().ok()
    };
    processes_where(|_, proc| ppid(proc) == Some(parent))
}

#[cfg(not(target_os = "linux"))]
pub fn children_of(parent: u32) -> Vec<u32> {
    Command::new("pgrep")
        .args(["-P", &parent.to_string()])
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
