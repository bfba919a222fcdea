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

/// What a run on a URL server has made, as its databases show it.
#[derive(Debug, Clone, Copy)]
enum UrlMoment {
    /// The run's template exists (migrations applied or being applied).
    Template,
    /// A test's clone exists: tests are running.
    MidTest,
}

impl UrlMoment {
    /// Whether a database not in `before` shows this moment.
    fn reached(self, now: &[String], before: &[String]) -> bool {
        now.iter()
            .filter(|name| !before.contains(name))
            .any(|name| match self {
                UrlMoment::Template => name.ends_with("_template"),
                UrlMoment::MidTest => name
                    .rsplit_once('_')
                    .is_some_and(|(_, n)| n.bytes().all(|b| b.is_ascii_digit())),
            })
    }
}

/// The `vy_` databases on the server, sorted.
fn vy_databases(server: &crate::postgres::Server) -> Vec<String> {
    let mut names: Vec<String> = server
        .psql("SELECT datname FROM pg_database WHERE datname LIKE 'vy\\_%'")
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Issue 11 on a URL server: the operations example's harness killed with
/// SIGKILL, SIGTERM and SIGINT once its template exists and mid-test, then
/// one normal run: no database of the framework's and no session of its
/// runs is left on the server, and a user's `vy_...` database keeps its
/// data.
#[verily::test(category = "e2e", timeout = "5m")]
fn killed_runs_on_a_url_server_leave_no_database_or_session() {
    let binary = operations();
    let started = Instant::now();
    let server = crate::postgres::Server::start();
    server.psql("CREATE DATABASE vy_deadbeefdeadbeef");
    let user = server.url.replace("/postgres?", "/vy_deadbeefdeadbeef?");
    let psql = server.cluster.binaries.dir.join("psql");
    let made = Command::new(&psql)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-d", &user, "-c"])
        .arg("CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (7)")
        .output()
        .expect("psql runs");
    assert!(made.status.success(), "{made:?}");

    // Per-test servers, were any started, stay in directories of ours.
    let dirs = PrivateDirs::new("chaos-url");
    let mut env = dirs.env(false);
    env.push(("VERILY_POSTGRES".to_owned(), "url".to_owned()));
    env.push(("VERILY_DATABASE_URL".to_owned(), server.url.clone()));
    // One test at a time: the run lasts long enough to be caught mid-test.
    let args = ["--skip", "outages", "--test-threads", "1"];
    for moment in [UrlMoment::Template, UrlMoment::MidTest] {
        // SIGKILL last: what the last one leaves is the normal run's to
        // remove (each run's start sweeps the dead runs before it).
        for (signal, name) in [
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGKILL, "SIGKILL"),
        ] {
            // A run can finish before the poll sees the moment: try again.
            let mut caught = None;
            for _ in 0..5 {
                let before = vy_databases(&server);
                let mut harness = leftovers::spawn(binary, &args, &env);
                let deadline = Instant::now() + Duration::from_secs(20);
                let reached = loop {
                    if moment.reached(&vy_databases(&server), &before) {
                        break true;
                    }
                    if harness.try_wait().ok().flatten().is_some() {
                        break false;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{moment:?}: never reached: {}",
                        leftovers::stderr_of(&mut harness)
                    );
                };
                if reached {
                    leftovers::signal(&harness, signal);
                    caught = Some((harness, before));
                    break;
                }
                let _ = harness.wait();
            }
            let (mut harness, before) =
                caught.unwrap_or_else(|| panic!("{moment:?}: every run finished first"));
            let status = leftovers::wait_with_limit(&mut harness, Duration::from_secs(30));
            let stderr = leftovers::stderr_of(&mut harness);
            let expected = (signal != libc::SIGKILL).then_some(128 + signal);
            assert_eq!(
                status.and_then(|status| status.code()),
                expected,
                "{moment:?} {name}: {status:?}\n{stderr}"
            );
            // A signal it handles drops the run's own databases on its way out.
            if signal != libc::SIGKILL {
                let own: Vec<String> = vy_databases(&server)
                    .into_iter()
                    .filter(|name| !before.contains(name))
                    .collect();
                assert_eq!(own, Vec::<String>::new(), "{moment:?} {name}\n{stderr}");
            }
        }
    }
    // The last SIGKILLed run left its databases for the normal run. Its
    // server-side sessions outlive it until each notices its client is gone
    // (one may still be finishing a CREATE DATABASE); while any is left the
    // run counts as alive, by design, so wait for them to end first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'verily run vy\\_%'",
        )
        .trim()
        != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the killed run's sessions were still open after 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = vy_databases(&server);
    assert!(
        killed.len() > 1,
        "the killed runs left nothing to sweep: {killed:?}"
    );

    let normal = crate::support::run_with_env(
        binary,
        &["--exact", "harness::create_operation_writes_a_row"],
        &env.iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(normal.code, 0, "{}\n{}", normal.stdout, normal.stderr);

    assert_eq!(
        vy_databases(&server),
        ["vy_deadbeefdeadbeef"],
        "left on the server (before the normal run: {killed:?}; marks: {})\n{}",
        server.psql(
            "SELECT string_agg(datname || '=' || coalesce(shobj_description(oid, 'pg_database'), '-'), ', ') FROM pg_database"
        ),
        normal.stderr
    );
    let sessions = server
        .psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'verily run %'");
    assert_eq!(sessions.trim(), "0", "sessions of verily runs are left");
    let rows = Command::new(&psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-d",
            &user,
            "-c",
            "SELECT id FROM accounts",
        ])
        .output()
        .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "7");
    assert_eq!(dirs.leftover_files(), Vec::<String>::new());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(90), "took {took:?}");
    eprintln!("chaos on a URL server: {took:?}");
}

/// The risk example's harness (its tests use Redis), built once.
fn risk() -> &'static Path {
    static BINARY: OnceLock<std::path::PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        build_test_binary(&["-p", "risk", "--test", "harness"]).expect("the risk example builds")
    })
}

/// A redis-server of the test's own on a free port, nothing persisted;
/// stopped on drop.
struct ThrowawayRedis {
    child: std::process::Child,
    url: String,
}

impl ThrowawayRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let up = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            Command::new("redis-cli")
                .args(["-u", &server.url, "PING"])
                .output()
                .is_ok_and(|output| output.stdout.starts_with(b"PONG"))
        });
        assert!(up, "the throwaway redis-server did not start");
        server
    }

    /// The `verily:*` keys of database 0, sorted.
    fn verily_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = crate::redis::cli(&self.url, 0, &["KEYS", "verily:*"])
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 11 on a URL Redis: the risk example's harness killed with
/// SIGKILL mid-test, then another run SIGTERMed mid-test at once (well
/// within the claims' 30 s TTL), then one normal run: no `verily:*` key and
/// no key in any database but 0 is left, and the user's key in database 0
/// is intact. The killed run's claims go because its connection is gone
/// (`CLIENT LIST`), not because their TTL lapsed.
#[verily::test(category = "e2e", timeout = "5m")]
fn killed_runs_on_a_url_redis_leave_no_claim_or_key() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        verily::skip("redis-server is not installed");
    }
    let binary = risk();
    let started = Instant::now();
    let redis = ThrowawayRedis::start();
    crate::redis::cli(&redis.url, 0, &["SET", "user:config", "keep me"]);
    let dirs = PrivateDirs::new("chaos-redis");
    let mut env = dirs.env(false);
    env.push(("VERILY_REDIS".to_owned(), "url".to_owned()));
    env.push(("VERILY_REDIS_URL".to_owned(), redis.url.clone()));
    let args = ["--test-threads", "2"];

    let mut killed_at = None;
    for (signal, name) in [(libc::SIGKILL, "SIGKILL"), (libc::SIGTERM, "SIGTERM")] {
        let mut caught = None;
        for _ in 0..5 {
            let before = redis.verily_keys();
            let mut harness = leftovers::spawn(binary, &args, &env);
            let deadline = Instant::now() + Duration::from_secs(20);
            // Mid-test: the run holds a claim of its own.
            let reached = loop {
                if redis
                    .verily_keys()
                    .iter()
                    .any(|key| key.starts_with("verily:lease:") && !before.contains(key))
                {
                    break true;
                }
                if harness.try_wait().ok().flatten().is_some() {
                    break false;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name}: no claim: {}",
                    leftovers::stderr_of(&mut harness)
                );
                std::thread::sleep(Duration::from_millis(5));
            };
            if reached {
                leftovers::signal(&harness, signal);
                caught = Some(harness);
                break;
            }
            let _ = harness.wait();
        }
        let mut harness = caught.unwrap_or_else(|| panic!("{name}: every run finished first"));
        let status = leftovers::wait_with_limit(&mut harness, Duration::from_secs(30));
        let stderr = leftovers::stderr_of(&mut harness);
        let expected = (signal != libc::SIGKILL).then_some(128 + signal);
        assert_eq!(
            status.and_then(|status| status.code()),
            expected,
            "{name}: {status:?}\n{stderr}"
        );
        if signal == libc::SIGKILL {
            killed_at = Some(Instant::now());
            assert!(
                redis
                    .verily_keys()
                    .iter()
                    .any(|key| key.starts_with("verily:lease:")),
                "the killed run left no claim to remove"
            );
        }
    }

    let normal = crate::support::run_with_env(
        binary,
        &[
            "--exact",
            "harness::reads_counters_written_by_another_client",
        ],
        &env.iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(normal.code, 0, "{}\n{}", normal.stdout, normal.stderr);
    // It ran its test, on the server (a name that matches nothing would run
    // none, start nothing and clean nothing).
    assert!(
        normal.stdout.contains("1 passed"),
        "{}\n{}",
        normal.stdout,
        normal.stderr
    );
    // Within the TTL of the killed run's claims: they went because their
    // run is gone, not because they lapsed.
    let since = killed_at.expect("a run was killed").elapsed();
    assert!(
        since < Duration::from_secs(25),
        "took {since:?} since the kill"
    );

    assert_eq!(redis.verily_keys(), Vec::<String>::new());
    for database in 1..16 {
        assert_eq!(
            crate::redis::cli(&redis.url, database, &["DBSIZE"]),
            "0",
            "database {database} was left with keys"
        );
    }
    assert_eq!(
        crate::redis::cli(&redis.url, 0, &["GET", "user:config"]),
        "keep me"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(90), "took {took:?}");
    eprintln!("chaos on a URL Redis: {took:?}");
}
