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
