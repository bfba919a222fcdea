//! PostgreSQL provisioning, isolation and `#[persists]`, through real
//! harness binaries: every source, a failing migration, leftovers of a
//! killed run, and each persistence incident of the example.

use std::path::Path;
use std::process::Command;

use crate::support::{build_test_binary, cargo_test_example, run_with_env};

/// The harness of `tests/demo_db.rs`, built once per process.
pub fn demo_db() -> &'static Path {
    static DEMO_DB: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DEMO_DB.get_or_init(|| {
        build_test_binary(&["-p", "verily", "--test", "demo_db"]).expect("tests/demo_db.rs builds")
    })
}

#[verily::test(category = "e2e", timeout = "15m")]
fn each_persistence_incident_is_caught_by_its_test() {
    let healthy = cargo_test_example(
        "operations",
        &[],
        &["--category", "persistence", "--format", "json"],
        &[("VERILY_POSTGRES", "local")],
    );
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    assert_eq!(healthy.finished().len(), 7);
    for (feature, test, message) in [
        (
            "bug-cache-only-write",
            "create_operation_writes_a_row",
            "create_operation_writes_a_row: expected new rows in operations, found 0 (before 0, after 0): no committed row (the write was never made, or never committed)",
        ),
        (
            "bug-uncommitted-cancel",
            "cancel_marks_the_row_cancelled",
            "cancel_marks_the_row_cancelled: expected 1 new row in operations where status = 'CANCELLED', found 0 (before 0, after 0): no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)",
        ),
        (
            "bug-detector-cache-only",
            "orphan_is_marked_failed",
            "orphan_is_marked_failed: expected 1 new row in operations where status = 'FAILED', found 0 (before 0, after 0): no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)",
        ),
        (
            "bug-checkpoint-lost-on-cancel",
            "cancel_saves_a_checkpoint",
            "cancel_saves_a_checkpoint: expected 1 new row in checkpoints where reason = 'cancellation' AND epoch = 7, found 0 (before 0, after 0): no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)",
        ),
    ] {
        let broken = cargo_test_example(
            "operations",
            &[feature],
            &["--category", "persistence", "--format", "json"],
            &[("VERILY_POSTGRES", "local")],
        );
        assert_eq!(
            broken.code, 101,
            "{feature}: {}\n{}",
            broken.stdout, broken.stderr
        );
        let finished = broken.finished();
        let event = &finished[&format!("harness::{test}")];
        assert_eq!(event["outcome"], "failed", "{feature}");
        assert_eq!(event["message"], message, "{feature}");
    }
}

#[verily::test(category = "e2e", timeout = "10m")]
fn an_uncommitted_write_is_caught_and_tests_that_need_nothing_start_nothing() {
    let demo = demo_db();
    let run = run_with_env(
        demo,
        &["--skip", "waits_forever", "--format", "json"],
        &[("VERILY_POSTGRES", "local")],
    );
    assert_eq!(run.outcome("writes_a_thing"), "passed", "{}", run.stderr);
    assert_eq!(run.outcome("leaves_its_write_uncommitted"), "failed");
    let finished = run.finished();
    assert_eq!(
        finished["demo_db::leaves_its_write_uncommitted"]["message"],
        "leaves_its_write_uncommitted: expected new rows in things, found 0 (before 0, after 0): no committed row (the write was never made, or never committed)"
    );
    assert!(
        run.stderr
            .contains("postgres: local cluster (PostgreSQL 15"),
        "one line saying where PostgreSQL came from: {}",
        run.stderr
    );

    let nothing = run_with_env(
        demo,
        &["--category", "smoke"],
        &[("VERILY_POSTGRES", "local")],
    );
    assert_eq!(nothing.code, 0);
    assert!(
        !nothing.stderr.contains("postgres:"),
        "started PostgreSQL for nothing: {}",
        nothing.stderr
    );
}

#[verily::test(category = "e2e", timeout = "10m")]
fn a_failing_migration_stops_every_persistence_test_with_one_message() {
    let demo = demo_db();
    let run = run_with_env(
        demo,
        &["--skip", "waits_forever", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "local"),
            ("DEMO_MIGRATIONS", "tests/fixtures/migrations/broken"),
        ],
    );
    assert_eq!(run.code, 101);
    assert_eq!(
        run.outcome("needs_nothing"),
        "passed",
        "tests that need nothing still run"
    );
    let finished = run.finished();
    let first = finished["demo_db::writes_a_thing"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let second = finished["demo_db::leaves_its_write_uncommitted"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(first, second, "one message for every persistence test");
    assert!(
        first.contains("20240101000002_add_owner.sql")
            && first.contains("relation \"owners\" does not exist")
            && first.contains("42P01"),
        "names the file and PostgreSQL's error: {first}"
    );
    assert_eq!(
        first.lines().count(),
        1,
        "one line, not a stack trace: {first}"
    );
}

#[verily::test(category = "e2e", timeout = "10m")]
fn a_forced_source_that_is_unavailable_is_an_error_not_a_fallback() {
    let demo = demo_db();
    let run = run_with_env(
        demo,
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("DATABASE_URL", ""),
            ("VERILY_DATABASE_URL", ""),
        ],
    );
    assert_eq!(run.outcome("writes_a_thing"), "failed");
    let message = run.finished()["demo_db::writes_a_thing"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(
            "VERILY_POSTGRES=url, but neither VERILY_DATABASE_URL nor DATABASE_URL is set"
        ),
        "{message}"
    );
    let bogus = run_with_env(
        demo,
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[("VERILY_POSTGRES", "cloud")],
    );
    // A value that is no source stops the run before any test starts.
    assert_eq!(bogus.code, 101, "{}", bogus.stderr);
    assert!(
        bogus
            .stderr
            .contains("VERILY_POSTGRES=cloud: it takes `url`, `docker` or `local`"),
        "{}",
        bogus.stderr
    );
    assert!(bogus.finished().is_empty(), "nothing ran: {}", bogus.stdout);
}

/// A server this test starts itself, reached by URL: the run touches only
/// its own `vy_` databases, removes a dead run's, and never another's.
#[verily::test(category = "e2e", timeout = "10m")]
fn url_source_creates_and_drops_only_its_own_databases() {
    let server = Server::start();
    server.psql("CREATE DATABASE other_app");
    // A dead run's leftover: its name and mark, and no session of its run.
    server.psql("CREATE DATABASE vy_00000000deadbeef_3");
    server.psql("COMMENT ON DATABASE vy_00000000deadbeef_3 IS 'verily run vy_00000000deadbeef'");
    let demo = demo_db();
    let run = run_with_env(
        demo,
        &["--skip", "waits_forever", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &server.url),
        ],
    );
    assert_eq!(run.outcome("writes_a_thing"), "passed", "{}", run.stderr);
    assert!(
        run.stderr.contains("postgres: VERILY_DATABASE_URL"),
        "{}",
        run.stderr
    );
    let databases =
        server.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
    assert_eq!(databases.trim(), "other_app,postgres,template0,template1");

    server.psql("CREATE ROLE reader LOGIN");
    let reader = server
        .url
        .replace("postgres://postgres@", "postgres://reader@");
    let refused = run_with_env(
        demo,
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[("VERILY_POSTGRES", "url"), ("VERILY_DATABASE_URL", &reader)],
    );
    let message = refused.finished()["demo_db::writes_a_thing"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("the user `reader` of VERILY_DATABASE_URL cannot CREATE DATABASE")
            && message.contains("ALTER ROLE \"reader\" CREATEDB"),
        "{message}"
    );
}

/// tokio retires a thread that has idled for 10 s; the run's server was
/// tied to the thread that forked it, and died with it mid-run.
#[verily::test(category = "e2e", timeout = "5m")]
fn the_runs_server_outlives_the_threads_of_the_runtime() {
    let run = run_with_env(
        demo_db(),
        &[
            "--ignored",
            "--exact",
            "demo_db::reads_again_after_15_seconds",
            "--format",
            "json",
        ],
        &[("VERILY_POSTGRES", "local")],
    );
    assert_eq!(
        run.outcome("reads_again_after_15_seconds"),
        "passed",
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `kill -9` gives the harness no chance to clean up: its local server must
/// not outlive it, and the next run removes what is left.
#[verily::test(category = "e2e", timeout = "10m")]
fn a_killed_run_leaves_nothing_the_next_run_does_not_remove() {
    let demo = demo_db();
    let mut child = holding_a_database(demo);
    let harness = child.id();
    let servers_before = postgres_children_of(harness);
    assert_eq!(servers_before.len(), 1, "one postmaster for the run");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let server = servers_before[0];
    let gone = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        !Path::new(&format!("/proc/{server}")).exists()
    });
    assert!(
        gone,
        "the killed run's PostgreSQL (pid {server}) is still running"
    );

    let next = run_with_env(
        demo,
        &["--exact", "demo_db::writes_a_thing"],
        &[("VERILY_POSTGRES", "local")],
    );
    assert_eq!(next.code, 0, "{}", next.stderr);
    let leftovers = cluster_dirs_of(harness);
    assert_eq!(
        leftovers, 0,
        "the killed run's cluster directory was not removed"
    );
}

#[verily::test(category = "e2e", timeout = "15m")]
fn docker_source_runs_the_persistence_suite_and_removes_its_container() {
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    if !engine.is_ok_and(|output| output.status.success()) {
        verily::skip("no Docker engine answers on this machine");
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "postgres:15"])
        .output();
    if !image.is_ok_and(|output| output.status.success()) {
        verily::skip(
            "image postgres:15 is not here and no registry may be reachable: build it with .ci/postgres-image.sh",
        );
    }
    let run = cargo_test_example(
        "operations",
        &[],
        &["--category", "persistence", "--format", "json"],
        &[("VERILY_POSTGRES", "docker")],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.finished().len(), 7);
    assert!(
        run.stderr
            .contains("postgres: docker container (postgres:15"),
        "{}",
        run.stderr
    );
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=verily.pid"])
        .output()
        .expect("docker ps runs");
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "a container was left behind"
    );
}

/// The demo harness on a local cluster, running a test that holds its
/// database until the process is stopped; returns once it holds it.
fn holding_a_database(demo: &Path) -> std::process::Child {
    let mut child = Command::new(demo)
        .args(["--exact", "demo_db::waits_forever", "--nocapture"])
        .env("VERILY_POSTGRES", "local")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the demo harness starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let line = std::io::BufRead::lines(&mut stdout)
        .map_while(Result::ok)
        .find(|line| line.starts_with("holding "))
        .expect("the test says which database it holds");
    assert!(line.starts_with("holding vy_"), "{line}");
    child
}

/// Cluster directories a run with this pid made, in any user's runtime root.
fn cluster_dirs_of(harness: u32) -> usize {
    let prefix = format!("cluster-{harness}-");
    let base = verily_runtime::infra::dirs::runtime_base();
    let Ok(roots) = std::fs::read_dir(base) else {
        return 0;
    };
    roots
        .filter_map(Result::ok)
        .filter(|root| root.file_name().to_string_lossy().starts_with("verily-"))
        .filter_map(|root| std::fs::read_dir(root.path()).ok())
        .flat_map(|entries| entries.filter_map(Result::ok))
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

/// Pids of the processes running now.
fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .collect()
}

/// Pids of `postgres` processes whose parent is `parent`.
fn postgres_children_of(parent: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let Some(after) = stat.rsplit_once(')').map(|(_, after)| after.to_owned()) else {
                return false;
            };
            stat.contains("(postgres)")
                && after.split_whitespace().nth(1) == Some(&parent.to_string())
        })
        .collect()
}

/// A throwaway PostgreSQL server for the URL tests, started with the
/// runtime's own local-cluster code and stopped on drop.
pub(crate) struct Server {
    pub(crate) cluster: verily_runtime::infra::postgres::server::local::LocalCluster,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start() -> Self {
        use verily_runtime::infra::postgres::server::local;
        let binaries = local::find_binaries().expect("PostgreSQL binaries are installed");
        let cluster = local::LocalCluster::start(binaries).expect("a throwaway server starts");
        let url = cluster.url_pattern().replace("{database}", "postgres");
        Self { cluster, url }
    }

    pub(crate) fn psql(&self, sql: &str) -> String {
        let psql = self.cluster.binaries.dir.join("psql");
        let output = Command::new(psql)
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// `VERILY_KEEP=1`: the server and the failed test's database outlive
/// the run, and the run says how to reach and remove them.
#[verily::test(category = "e2e", timeout = "10m")]
fn keep_leaves_the_failed_tests_database_reachable() {
    let demo = demo_db();
    let run = run_with_env(
        demo,
        &["--exact", "demo_db::leaves_its_write_uncommitted"],
        &[("VERILY_POSTGRES", "local"), ("VERILY_KEEP", "1")],
    );
    assert_eq!(run.code, 101);
    let database = run
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("postgres: kept database "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no kept database in: {}", run.stderr))
        .to_owned();
    let kept = run
        .stderr
        .lines()
        .find(|line| line.starts_with("postgres: kept the local cluster: psql \""))
        .unwrap_or_else(|| panic!("no connection hint in: {}", run.stderr))
        .to_owned();
    let connect = kept
        .split('"')
        .nth(1)
        .expect("the hint quotes the connection string");
    let pid: u32 = kept
        .split("kill -QUIT ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the hint names the server's pid");
    let dir = kept
        .rsplit("and remove ")
        .next()
        .expect("the hint names the directory")
        .trim()
        .to_owned();

    let psql = verily_runtime::infra::postgres::server::local::find_binaries()
        .expect("PostgreSQL binaries are installed")
        .dir
        .join("psql");
    let rows = Command::new(psql)
        .args(["-X", "-A", "-t", "-c", "SELECT count(*) FROM things"])
        .arg(connect.replace("DATABASE", &database))
        .output()
        .expect("psql runs");
    let cleanup = || {
        Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .status()
            .ok();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&dir);
    };
    if !rows.status.success() {
        cleanup();
        panic!(
            "the kept database is not reachable: {}",
            String::from_utf8_lossy(&rows.stderr)
        );
    }
    cleanup();
    // The uncommitted row is gone with its transaction; the table is there.
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "0");
}

/// Ctrl-C (SIGINT) stops the run, and its server and directory with it.
#[verily::test(category = "e2e", timeout = "10m")]
fn ctrl_c_tears_the_run_down() {
    let demo = demo_db();
    let mut child = holding_a_database(demo);
    let harness = child.id();
    let servers = postgres_children_of(harness);
    assert_eq!(servers.len(), 1);
    Command::new("kill")
        .args(["-INT", &harness.to_string()])
        .status()
        .expect("kill runs");
    let status = child.wait().expect("the harness exits");
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    assert!(
        !Path::new(&format!("/proc/{}", servers[0])).exists(),
        "the server outlived Ctrl-C"
    );
    assert_eq!(
        cluster_dirs_of(harness),
        0,
        "the cluster directory outlived Ctrl-C"
    );
}

/// The harness of `tests/demo_reuse.rs`, built once per process.
pub(crate) fn demo_reuse() -> &'static Path {
    static DEMO_REUSE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DEMO_REUSE.get_or_init(|| {
        build_test_binary(&["-p", "verily", "--test", "demo_reuse"])
            .expect("tests/demo_reuse.rs builds")
    })
}

/// "postgres: 13 test database(s): 4 cloned, 9 reused ..." → (4, 9).
fn clones_and_reuses(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|line| line.contains(" test database(s): "))
        .unwrap_or_else(|| panic!("no line on the run's databases in: {stderr}"));
    let number_before = |word: &str| -> usize {
        let end = line.find(word).expect(word);
        let start = line[..end - 1].rfind(' ').expect("a number") + 1;
        line[start..end - 1].parse().expect("a number")
    };
    (number_before("cloned"), number_before("reused"))
}

#[verily::test(category = "e2e", timeout = "10m")]
fn databases_are_reused_only_after_a_verified_reset() {
    // One thread, so that tests follow each other on few databases.
    let run = run_with_env(
        demo_reuse(),
        &["--test-threads", "1", "--format", "json"],
        &[("VERILY_POSTGRES", "local")],
    );
    // Every test checked, on a fresh connection, that it started from the
    // template's state, reused database or not.
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.finished().len(), 14);
    let (cloned, reused) = clones_and_reuses(&run.stderr);
    assert_eq!(cloned + reused, 14, "{}", run.stderr);
    // Which tests get a clone depends on timing (a ready clone is taken
    // rather than waiting for a reset); that databases are reused does not.
    assert!(reused >= 1, "nothing reused: {}", run.stderr);
    // The three tests whose database cannot be reset are refused, each time
    // (a task the test spawned is not one of them: it ends with its test).
    for refusal in [
        "3 dropped instead of reused",
        "the test changed the schema (1: demo_reuse::adds_a_column)",
        "the test changed or deleted rows the migrations left in public.currencies (1: demo_reuse::renames_a_currency)",
        // Named, not only counted.
        "1 session(s) or prepared transaction(s) of the test are still open (1: demo_reuse::leaves_a_session_open)",
    ] {
        assert!(run.stderr.contains(refusal), "{refusal}: {}", run.stderr);
    }

    let cloning = run_with_env(
        demo_reuse(),
        &["--test-threads", "1", "--format", "json"],
        &[("VERILY_POSTGRES", "local"), ("VERILY_DB_REUSE", "0")],
    );
    assert_eq!(cloning.code, 0, "{}\n{}", cloning.stdout, cloning.stderr);
    assert!(
        !cloning.stderr.contains("reused"),
        "VERILY_DB_REUSE=0 still reused: {}",
        cloning.stderr
    );
}

/// What is left in a runtime directory: cluster directories, published
/// addresses and logs (the two empty lock files are meant to stay).
fn shared_leftovers(base: &Path) -> Vec<String> {
    let Ok(roots) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    roots
        .filter_map(Result::ok)
        .filter_map(|root| std::fs::read_dir(root.path()).ok())
        .flat_map(|entries| entries.filter_map(Result::ok))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".clients") && !name.ends_with(".start"))
        .collect()
}

/// Whether any process still runs with `text` in its command line.
fn processes_mentioning(text: &str) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(text))
        })
        .collect()
}

/// Waits up to `limit` for the runtime directory to empty and its servers
/// to exit; returns what is still there.
fn wait_until_gone(base: &Path, limit: std::time::Duration) -> (Vec<String>, Vec<u32>) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = shared_leftovers(base);
        let running = processes_mentioning(&base.to_string_lossy());
        if (left.is_empty() && running.is_empty()) || std::time::Instant::now() > deadline {
            return (left, running);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A runtime directory of the test's own, readable by the server's account.
fn private_runtime_dir(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("vy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a runtime dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// nextest's way: a process per test. The processes share one cluster and
/// one migrated template, reuse each other's databases, and the cluster is
/// gone after the run, also when a process was killed mid-test.
#[verily::test(category = "e2e", timeout = "10m")]
fn processes_of_a_nextest_run_share_one_cluster_and_leave_nothing() {
    let base = private_runtime_dir("shared");
    let base_text = base.to_string_lossy().into_owned();
    let env = [
        ("VERILY_SHARED", "1"),
        ("VERILY_RUNTIME_DIR", base_text.as_str()),
        ("VERILY_SHARED_IDLE_MS", "500"),
    ];
    let mut keepers = Vec::new();
    let mut migrated = 0;
    for test in ["writes_1", "adds_a_currency", "writes_2", "writes_3"] {
        let run = run_with_env(
            demo_reuse(),
            &["--exact", &format!("demo_reuse::{test}")],
            &env,
        );
        assert_eq!(run.code, 0, "{test}: {}\n{}", run.stdout, run.stderr);
        let line = run
            .stderr
            .lines()
            .find(|line| line.starts_with("postgres: shared local cluster"))
            .unwrap_or_else(|| panic!("{test} did not use the shared cluster: {}", run.stderr));
        let keeper = line.split("kept by process ").nth(1);
        keepers.push(
            keeper
                .and_then(|rest| rest.split(' ').next())
                .map(str::to_owned),
        );
        migrated += run.stderr.matches("template database migrated").count();
    }
    keepers.dedup();
    assert_eq!(
        keepers.len(),
        1,
        "one keeper for every process: {keepers:?}"
    );
    assert_eq!(migrated, 1, "the template is migrated once per run");

    let (left, running) = wait_until_gone(&base, std::time::Duration::from_secs(20));
    assert!(left.is_empty(), "left after the run: {left:?}");
    assert!(running.is_empty(), "still running: {running:?}");

    // Interrupted: a process killed while it holds a database.
    let mut holder = Command::new(demo_db())
        .args(["--exact", "demo_db::waits_forever", "--nocapture"])
        .envs(env)
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_RUN_ID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the demo harness starts");
    let mut stdout = std::io::BufReader::new(holder.stdout.take().expect("piped"));
    let holding = std::io::BufRead::lines(&mut stdout)
        .map_while(Result::ok)
        .find(|line| line.starts_with("holding "));
    assert!(holding.is_some(), "the test never held its database");
    assert!(
        !shared_leftovers(&base).is_empty(),
        "no cluster while a test runs"
    );
    holder.kill().expect("kill -9");
    let _ = holder.wait();
    let (left, running) = wait_until_gone(&base, std::time::Duration::from_secs(20));
    assert!(left.is_empty(), "left after a killed run: {left:?}");
    assert!(
        running.is_empty(),
        "still running after a killed run: {running:?}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
