//! One run of an app's process: started in a process group of its own,
//! tied to the harness (it dies with it, even on kill -9), its output read
//! line by line into [`Logs`], and stopped with its whole group.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::logs::Logs;
use crate::infra::process::{signal, spawn_tied_to_harness};

/// How often a wait for the process's exit looks again.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// A started process of an app.
pub struct Running {
    child: Child,
    /// Its status, once reaped.
    exited: Option<ExitStatus>,
    /// Kills the app's group when the harness dies (see [`GroupKeeper`]).
    keeper: Option<GroupKeeper>,
}

/// A `sh` that waits for end of input on a pipe only the harness holds,
/// then kills the app's process group. The parent-death signal reaches
/// only the app itself; after kill -9 of the harness this also stops what
/// the app started.
struct GroupKeeper {
    child: Child,
}

impl GroupKeeper {
    fn start(group: u32) -> std::io::Result<Self> {
        let child = Command::new("sh")
            .args([
                "-c",
                "read _; kill -9 -\"$0\" 2>/dev/null",
                &group.to_string(),
            ])
            // std's pipes are close-on-exec: no other child holds this one.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's group: Ctrl-C must not end it first.
            .process_group(0)
            .spawn()?;
        Ok(Self { child })
    }

    /// Closes its input (it kills a group already gone) and reaps it.
    fn retire(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `command` with its output captured into `logs`.
    pub fn spawn(mut command: Command, logs: &Arc<Logs>) -> std::io::Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: stopping it stops what it started too.
            .process_group(0);
        let mut child = spawn_tied_to_harness(command, libc::SIGKILL)?;
        for stream in [
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = Arc::clone(logs);
            logs.stream_opened();
            let ended = Arc::clone(&logs);
            std::thread::Builder::new()
                .name("verily-app-output".to_owned())
                .spawn(move || {
                    let mut reader = std::io::BufReader::new(stream);
                    let mut line = Vec::new();
                    // Ends at end of stream: when the process and every
                    // child holding the pipe are gone.
                    while reader
                        .read_until(b'\n', &mut line)
                        .is_ok_and(|read| read > 0)
                    {
                        logs.push(&String::from_utf8_lossy(&line));
                        line.clear();
                    }
                    logs.stream_ended();
                })
                .inspect_err(|_| ended.stream_ended())?;
        }
        let keeper = match GroupKeeper::start(child.id()) {
            Ok(keeper) => Some(keeper),
            Err(error) => {
                eprintln!(
                    "warning: no keeper for the app's process group ({error}): if the harness is killed, processes the app started may outlive it"
                );
                None
            }
        };
        Ok(Self {
            child,
            exited: None,
            keeper,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited (reaping it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Sends `signal` to the process (not its group).
    pub fn signal(&mut self, number: libc::c_int) {
        if self.try_exit().is_none() {
            signal(self.pid(), number);
        }
    }

    /// Kills every process left in the group (the app's children).
    pub fn kill_group(&self) {
        if let Ok(group) = libc::pid_t::try_from(self.pid()) {
            // SAFETY: killpg only sends a signal; a group that is gone is ESRCH.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }

    /// Kills the process and its group now and reaps it.
    pub fn kill_now(&mut self) -> Option<ExitStatus> {
        self.kill_group();
        let _ = self.child.kill();
        self.exited = self.exited.or_else(|| self.child.wait().ok());
        if let Some(keeper) = self.keeper.take() {
            keeper.retire();
        }
        self.exited
    }
}

/// Waits up to `limit` for `running` to exit, without blocking the
/// runtime; `None` if it is still alive.
pub async fn wait_exit(
    running: &std::sync::Mutex<Option<Running>>,
    limit: Duration,
) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        let status = running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_mut()
            .and_then(Running::try_exit);
        if status.is_some() || Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}
