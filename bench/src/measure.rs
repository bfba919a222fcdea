//! Timed runs of one process: whole-process wall time, its peak memory and
//! CPU time (with its children's) from `wait4`, and the CPU that other
//! processes on the machine used meanwhile. The machine may be shared, so
//! each run first waits for the CPUs to be quiet, and a run that others
//! disturbed is run once more.

use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::BenchError;

/// What one run of a process gave.
#[derive(Debug)]
pub struct Outcome {
    /// What was run, for messages.
    pub command: String,
    pub pid: u32,
    pub wall: f64,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set of the process (or of its largest waited-for
    /// descendant), in KiB.
    pub max_rss_kib: u64,
    /// Cores that processes other than this run, its children and the
    /// `related` process trees used during the run; `None` when not
    /// accounted (short runs, Docker's processes that are not ours).
    pub foreign: Option<f64>,
}

impl Outcome {
    /// The run, or an error with the tail of its output when it failed.
    pub fn success(self) -> Result<Self, BenchError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(BenchError::new(format!(
                "{} exited with {}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
                self.command,
                self.status,
                tail(&self.stdout, 30),
                tail(&self.stderr, 30)
            )))
        }
    }
}

/// How a run is watched.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Keep stdout and stderr (otherwise they go to /dev/null).
    pub capture: bool,
    pub timeout: Duration,
    /// Account other processes' CPU; off for Docker, whose server runs
    /// under dockerd and cannot be told apart from strangers.
    pub account: bool,
    /// Process trees whose CPU counts as the run's (the bench cluster).
    pub related: Vec<u32>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            capture: true,
            timeout: Duration::from_secs(1800),
            account: true,
            related: Vec::new(),
        }
    }
}

/// Runs below this long are not accounted: ticks are 10 ms, so the
/// figure would be noise.
const ACCOUNT_ABOVE: f64 = 1.0;
/// A run during which others used more than this many cores is run again.
pub const FOREIGN_LIMIT: f64 = 0.25;
/// The CPUs are quiet when at least this fraction of their time is idle.
const QUIET_IDLE: f64 = 0.85;
/// How long to wait for quiet CPUs before running anyway.
const QUIET_WAIT: Duration = Duration::from_secs(60);
/// Waiting in all, past which runs no longer wait: on a machine that stays
/// busy the bench still ends, its disturbed runs named under the table.
static BUDGET_MS: AtomicU64 = AtomicU64::new(300_000);
static WAITED_MS: AtomicU64 = AtomicU64::new(0);
/// The window over which CPU idleness is sampled.
const SAMPLE: Duration = Duration::from_millis(500);

pub fn set_wait_budget(budget: Duration) {
    BUDGET_MS.store(budget.as_millis() as u64, Ordering::Relaxed);
}

fn budget() -> Duration {
    Duration::from_millis(BUDGET_MS.load(Ordering::Relaxed))
}

/// Seconds spent waiting for quiet CPUs, and whether the budget ran out.
pub fn waited() -> (f64, bool) {
    let waited = Duration::from_millis(WAITED_MS.load(Ordering::Relaxed));
    (waited.as_secs_f64(), waited >= budget())
}

/// Runs `command` to its end and measures it.
pub fn run(command: &mut Command, watch: &Watch) -> Result<Outcome, BenchError> {
    let described = describe(command);
    if watch.capture {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    // Its own process group, so a timeout kills what it started too.
    command.stdin(Stdio::null()).process_group(0);

    let busy_before = busy_ticks();
    let related_before = tree_ticks(&watch.related);
    let own_before = own_cpu();
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| BenchError::new(format!("cannot run {described}: {error}")))?;
    let pid = child.id();
    let readers = [
        child
            .stdout
            .take()
            .map(|pipe| thread::spawn(move || read_all(pipe))),
        child
            .stderr
            .take()
            .map(|pipe| thread::spawn(move || read_all(pipe))),
    ];
    let (done, finished) = mpsc::channel::<()>();
    let timeout = watch.timeout;
    let watchdog = thread::spawn(move || {
        if finished.recv_timeout(timeout).is_err() {
            // SAFETY: kill has no memory-safety preconditions; the group
            // is the child's, which is not reaped until this returns.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            true
        } else {
            false
        }
    });

    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; the pid is our child,
    // which std does not reap on its own (we never call Child::wait).
    let reaped = loop {
        let result = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
        if result == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        }
        break result;
    };
    let wall = started.elapsed().as_secs_f64();
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    if reaped != pid as i32 {
        return Err(BenchError::new(format!(
            "wait4 on {described}: {}",
            std::io::Error::last_os_error()
        )));
    }
    let [stdout, stderr] = readers.map(|reader| {
        reader
            .map(|handle| handle.join().unwrap_or_default())
            .unwrap_or_default()
    });
    if timed_out {
        return Err(BenchError::new(format!(
            "{described} did not finish in {} s and was killed\n--- stderr (tail)\n{}",
            timeout.as_secs(),
            tail(&stderr, 30)
        )));
    }

    let foreign = (watch.account && wall >= ACCOUNT_ABOVE).then(|| {
        let clock = clock_ticks();
        let busy = busy_ticks().saturating_sub(busy_before) as f64;
        let related = tree_ticks(&watch.related).saturating_sub(related_before) as f64;
        let ours = (seconds(usage.ru_utime) + seconds(usage.ru_stime)) * clock
            + (own_cpu() - own_before) * clock;
        ((busy - related - ours) / clock / wall).max(0.0)
    });
    Ok(Outcome {
        command: described,
        pid,
        wall,
        status: ExitStatus::from_raw(status),
        stdout,
        stderr,
        max_rss_kib: usage.ru_maxrss as u64,
        foreign,
    })
}

/// Runs `attempt` after waiting for quiet CPUs; runs it once more if other
/// processes disturbed it, and keeps the less disturbed of the two. Once the
/// wait budget is spent the machine is known to stay busy, and a disturbed
/// run is kept at once (repeating it would only double the bench's time).
/// Kept disturbed runs are recorded as `(label, cores used by others)`.
pub fn measured<T>(
    label: &str,
    disturbed: &mut Vec<(String, f64)>,
    mut attempt: impl FnMut() -> Result<(T, Option<f64>), BenchError>,
) -> Result<T, BenchError> {
    wait_quiet(label);
    let (first, foreign) = attempt()?;
    let Some(foreign) = foreign.filter(|&cores| cores > FOREIGN_LIMIT) else {
        return Ok(first);
    };
    if waited().1 {
        disturbed.push((label.to_owned(), foreign));
        return Ok(first);
    }
    eprintln!("  {label}: other processes used {foreign:.2} cores meanwhile; running it again");
    wait_quiet(label);
    let (second, again) = attempt()?;
    match again.filter(|&cores| cores > FOREIGN_LIMIT) {
        None => Ok(second),
        Some(again) => {
            disturbed.push((label.to_owned(), again.min(foreign)));
            Ok(if again <= foreign { second } else { first })
        }
    }
}

/// Waits until the CPUs are mostly idle, or `QUIET_WAIT` has passed.
pub fn wait_quiet(label: &str) {
    let (_, spent) = waited();
    if spent {
        return;
    }
    let started = Instant::now();
    let deadline = started + QUIET_WAIT;
    let mut announced = false;
    loop {
        let idle = idle_fraction(SAMPLE);
        if idle >= QUIET_IDLE {
            WAITED_MS.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            return;
        }
        let (total, _) = waited();
        if total + started.elapsed().as_secs_f64() >= budget().as_secs_f64() {
            WAITED_MS.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            eprintln!(
                "  {label}: CPUs still busy ({:.0}% idle); {} s of waiting spent, measuring from now on without waiting",
                idle * 100.0,
                budget().as_secs()
            );
            return;
        }
        if Instant::now() > deadline {
            WAITED_MS.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            eprintln!(
                "  {label}: CPUs still busy ({:.0}% idle) after {} s; running anyway",
                idle * 100.0,
                QUIET_WAIT.as_secs()
            );
            return;
        }
        if !announced {
            eprintln!(
                "  {label}: waiting for other processes to leave the CPUs ({:.0}% idle)...",
                idle * 100.0
            );
            announced = true;
        }
    }
}

/// The median; the mean of the two middle values for an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The value below which `fraction` of the values lie (nearest rank).
pub fn percentile(values: &[f64], fraction: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_all(mut pipe: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn seconds(time: libc::timeval) -> f64 {
    time.tv_sec as f64 + time.tv_usec as f64 / 1e6
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// CPU seconds this process has used (the driver's own share of a run).
fn own_cpu() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The first line of /proc/stat: ticks per state, all CPUs together.
fn cpu_line() -> Vec<u64> {
    fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect()
}

/// Ticks spent in anything but idle and iowait.
fn busy_ticks() -> u64 {
    let fields = cpu_line();
    if fields.len() < 5 {
        return 0;
    }
    fields.iter().sum::<u64>() - fields[3] - fields[4]
}

fn idle_fraction(window: Duration) -> f64 {
    let sample = || {
        let fields = cpu_line();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        (idle, fields.iter().sum::<u64>())
    };
    let (idle0, total0) = sample();
    thread::sleep(window);
    let (idle1, total1) = sample();
    (idle1 - idle0) as f64 / (total1 - total0).max(1) as f64
}

/// pid -> (parent, ticks of the process and its reaped children).
fn process_table() -> Vec<(u32, u32, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let parent = fields.get(1)?.parse().ok()?;
            let ticks = fields
                .get(11..15)?
                .iter()
                .filter_map(|field| field.parse::<u64>().ok())
                .sum();
            Some((pid, parent, ticks))
        })
        .collect()
}

/// Ticks of the process trees under `roots`, and of the kernel's threads
/// (writeback of the run's files is the run's cost).
fn tree_ticks(roots: &[u32]) -> u64 {
    let table = process_table();
    let mut stack: Vec<u32> = roots.to_vec();
    stack.push(2);
    let mut total = 0;
    while let Some(pid) = stack.pop() {
        for &(child, parent, ticks) in &table {
            if child == pid {
                total += ticks;
            }
            if parent == pid {
                stack.push(child);
            }
        }
    }
    total
}
