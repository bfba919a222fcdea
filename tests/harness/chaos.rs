//! The example's harness killed with SIGKILL, SIGTERM and SIGINT at
//! several moments (first start, a copy, mid-test, a paused per-test
//! server), then one normal run: nothing of the framework's may be left on
//! the machine. Every run shares a runtime and cache directory of this
//! test's own, so other runs on the machine cannot confuse the checks.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::leftovers::{self, PrivateDirs};
use crate::support::build_test_binary;

/// The operations example's harness, built once through real cargo.
fn operations() -> &'static Path {
    static BINARY: OnceLock<std::path::PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        build_test_binary(&["-p", "operations", "--test", "harness"])
            .expect("the operations example builds")
    })
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    /// initdb runs (the cache is empty).
    FirstStart,
    /// `cp` copies a data directory (a cluster's, a per-test server's, or
    /// the pristine one into the cache).
    Copy,
    /// The run's cluster and a per-test server both accept connections.
    MidTest,
    /// A per-test server's processes are stopped (SIGSTOP).
    Paused,
}

impl Moment {
    fn args(self) -> &'static [&'static str] {
        match self {
            Moment::Paused => &[
                "--exact",
                "harness::outages::a_hung_database_times_out_within_the_query_timeout",
            ],
            _ => &["--test-threads", "4"],
        }
    }

    /// Whether the run of harness `pid` is at this moment (leftovers of
    /// runs killed before do not count).
    fn reached(self, dirs: &PrivateDirs, pid: u32) -> bool {
        let root = dirs.root();
        let ours = |prefix: &str| {
            let prefix = format!("{prefix}{pid}-");
            names_in(&root)
                .into_iter()
                .filter(move |name| name.starts_with(&prefix))
        };
        let children = || leftovers::process_table(&[&dirs.base, &dirs.cache]);
        match self {
            Moment::FirstStart => ours("initdb-").next().is_some(),
            Moment::Copy => children()
                .iter()
                .any(|process| process.comm == "cp" && process.ppid == pid),
            Moment::MidTest => {
                let ready = |prefix: &str| {
                    ours(prefix).any(|name| {
                        std::fs::read_to_string(root.join(name).join("data/postmaster.pid"))
                            .is_ok_and(|text| text.lines().nth(7).map(str::trim) == Some("ready"))
                    })
                };
                ready("cluster-") && ready("exclusive-")
            }
            // The pause stops the postmaster (the harness's child) first.
            Moment::Paused => children().iter().any(|process| {
                process.comm == "postgres" && process.state == "T" && process.ppid == pid
            }),
        }
    }
}

#[verily::test(category = "e2e", timeout = "15m")]
fn killed_runs_at_any_moment_leave_nothing_after_the_next_run() {
    let dirs = PrivateDirs::new("chaos");
    let mut env = dirs.env(true);
    env.push(("VERILY_POSTGRES".to_owned(), "local".to_owned()));
    let mut segments = Vec::new();
    let mut owners = Vec::new();
    for moment in [
        Moment::FirstStart,
        Moment::Copy,
        Moment::MidTest,
        Moment::Paused,
    ] {
        // SIGKILL last: what it leaves must be removed by the normal run
        // (which starts no per-test server), not by the next chaos run.
        for (signal, name) in [
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGKILL, "SIGKILL"),
        ] {
            // Every first start must find the cache empty.
            if matches!(moment, Moment::FirstStart) {
                let _ = std::fs::remove_dir_all(&dirs.cache);
                std::fs::create_dir_all(&dirs.cache).expect("the cache dir");
            }
            let mut harness = leftovers::spawn(operations(), moment.args(), &env);
            owners.push(harness.id());
            let deadline = Instant::now() + Duration::from_secs(120);
            while !moment.reached(&dirs, harness.id()) {
                let exited = harness.try_wait().ok().flatten();
                assert!(
                    exited.is_none() && Instant::now() < deadline,
                    "{moment:?}: never reached ({exited:?}): {}",
                    leftovers::stderr_of(&mut harness)
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            segments.extend(system_v_segments(&dirs.root()));
            leftovers::signal(&harness, signal);
            let status = leftovers::wait_with_limit(&mut harness, Duration::from_secs(90));
            let expected = if signal == libc::SIGKILL {
                None
            } else {
                Some(128 + signal)
            };
            let stderr = leftovers::stderr_of(&mut harness);
            assert_eq!(
                status.and_then(|status| status.code()),
                expected,
                "{moment:?} {name}: {status:?}\n{stderr}"
            );
            // A signal it handles leaves nothing of its own, even mid-start
            // or mid-copy; only SIGKILL leaves work for the next run.
            if signal != libc::SIGKILL {
                let tag = format!("-{}-", harness.id());
                let own: Vec<String> = dirs
                    .leftover_files()
                    .into_iter()
                    .filter(|name| name.contains(&tag))
                    .collect();
                assert_eq!(own, Vec::<String>::new(), "{moment:?} {name}\n{stderr}");
            }
        }
    }
    let normal = crate::support::run_with_env(
        operations(),
        &["--exact", "harness::create_operation_writes_a_row"],
        &env.iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(normal.code, 0, "{}\n{}", normal.stdout, normal.stderr);

    assert_eq!(
        dirs.leftover_files(),
        Vec::<String>::new(),
        "left in {} or {}",
        dirs.root().display(),
        dirs.cache.display()
    );
    assert_eq!(dirs.leftover_processes(), Vec::<String>::new());
    // Servers were up at the mid-test and paused moments: the check below
    // looks at their segments, not at nothing.
    assert!(!segments.is_empty(), "no server's segment was seen");
    let live = live_segments();
    let left: Vec<&i32> = segments.iter().filter(|id| live.contains(id)).collect();
    assert!(left.is_empty(), "System V segments left: {left:?}");
    assert_eq!(containers_of(&owners), Vec::<String>::new());
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The shmids servers under `root` named in their `postmaster.pid`.
fn system_v_segments(root: &Path) -> Vec<i32> {
    names_in(root)
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(root.join(name).join("data/postmaster.pid")).ok()?;
            text.lines().nth(6)?.split_whitespace().nth(1)?.parse().ok()
        })
        .collect()
}

/// The shmids of the System V segments that exist now.
fn live_segments() -> Vec<i32> {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// Containers labelled with one of these harness pids (none are expected:
/// the runs use local binaries; this checks they started none either).
fn containers_of(owners: &[u32]) -> Vec<String> {
    let mut found = Vec::new();
    for label in ["verily.pid", "verily.exclusive.pid"] {
        for owner in owners {
            let Ok(output) = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("label={label}={owner}")])
                .output()
            else {
                return found;
            };
            found.extend(
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    found
}
