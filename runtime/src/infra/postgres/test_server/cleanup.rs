//! Exclusive servers still alive when the harness exits. A test stuck in
//! blocking code past its timeout is abandoned, and the process exits
//! without dropping its fixtures; an exit hook continues and stops what
//! they left, so no server outlives the run paused or running.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use crate::infra::process;

enum Live {
    Local {
        postmaster: u32,
        root: PathBuf,
    },
    #[cfg(feature = "docker")]
    Docker {
        id: String,
    },
}

static LIVE: Mutex<BTreeMap<u64, Live>> = Mutex::new(BTreeMap::new());
static HOOK: Once = Once::new();

/// A key for one server's entry.
pub(crate) fn next_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Records (or updates, after a restart) a local server's postmaster.
pub(crate) fn register_local(key: u64, postmaster: u32, root: PathBuf) {
    insert(key, Live::Local { postmaster, root });
}

/// Records a container.
#[cfg(feature = "docker")]
pub(crate) fn register_docker(key: u64, id: String) {
    insert(key, Live::Docker { id });
}

/// Forgets a server its owner cleaned up.
pub(crate) fn unregister(key: u64) {
    if let Ok(mut live) = LIVE.lock() {
        live.remove(&key);
    }
}

fn insert(key: u64, server: Live) {
    HOOK.call_once(|| {
        // SAFETY: `at_exit` is a plain function that never unwinds.
        unsafe {
            libc::atexit(at_exit);
        }
    });
    if let Ok(mut live) = LIVE.lock() {
        live.insert(key, server);
    }
}

extern "C" fn at_exit() {
    // A thread that held the lock when `exit` was called will never let
    // go of it; leave those servers to the next run's sweep.
    let Ok(mut live) = LIVE.try_lock() else {
        return;
    };
    for server in std::mem::take(&mut *live).into_values() {
        match server {
            Live::Local { postmaster, root } => {
                for child in process::children_of(postmaster) {
                    process::signal(child, libc::SIGCONT);
                }
                process::signal(postmaster, libc::SIGCONT);
                process::signal(postmaster, libc::SIGQUIT);
                // Its files go only once it is gone: it removes its shared
                // memory and lock files on the way out.
                process::reap_within(postmaster, std::time::Duration::from_secs(5));
                let _ = std::fs::remove_dir_all(root);
            }
            #[cfg(feature = "docker")]
            Live::Docker { id } => {
                crate::infra::docker::remove(&id);
            }
        }
    }
}
