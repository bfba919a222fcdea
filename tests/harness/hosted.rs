//! A service of the user's own, added from outside the framework
//! (examples/hosted: `python3 -m http.server` as one `impl Service` marked
//! `#[verily::service]`), shared by the processes of a nextest run as the
//! run's Redis is: one instance for every process, gone after the run,
//! also when a process was killed with -9.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{Run, build_test_binary, cargo, run_with_env};

fn hosted_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        build_test_binary(&["-p", "hosted", "--test", "harness"])
            .unwrap_or_else(|error| panic!("{error}"))
    })
}

fn require_python() {
    let found = Command::new("python3").arg("--version").output();
    if !found.is_ok_and(|output| output.status.success()) {
        verily::skip("python3 is not installed: the example's service is `python3 -m http.server`");
    }
}

/// A runtime directory of the test's own.
fn private_runtime_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a runtime dir");
    dir
}

/// The value after `marker` up to the next space or comma, on each line
/// that has it.
fn values_after(text: &str, marker: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split(marker).nth(1))
        .filter_map(|rest| rest.split([' ', ',']).next())
        .map(str::to_owned)
        .collect()
}

/// The hosted files a keeper left: anything but the two lock files, which
/// stay on purpose (see runtime/src/infra/hosted.rs).
fn hosted_leftovers(base: &Path) -> Vec<String> {
    let Ok(roots) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    roots
        .filter_map(Result::ok)
        .filter_map(|root| std::fs::read_dir(root.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("hosted-"))
        .filter(|name| !name.ends_with(".clients") && !name.ends_with(".start"))
        .collect()
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// Waits until the keepers are gone and with them what they kept.
fn wait_until_gone(base: &Path, pids: &[String], limit: Duration) -> (Vec<String>, Vec<String>) {
    let deadline = Instant::now() + limit;
    loop {
        let left = hosted_leftovers(base);
        let running: Vec<String> = pids.iter().filter(|pid| alive(pid)).cloned().collect();
        if (left.is_empty() && running.is_empty()) || Instant::now() > deadline {
            return (left, running);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn only(mut values: Vec<String>, what: &str, runs: &str) -> String {
    values.sort();
    values.dedup();
    assert_eq!(
        values.len(),
        1,
        "one {what} for every process: {values:?}\n{runs}"
    );
    values.remove(0)
}

/// A process per test, as nextest runs them (`VERILY_SHARED=1` is what
/// nextest's variables turn on): one file server and one Redis serve every
/// process; after the run, and after a process killed with -9 mid-test,
/// no server, keeper or file is left.
#[verily::test(category = "e2e", timeout = "10m")]
fn a_users_own_service_is_shared_by_every_process_and_leaves_nothing() {
    require_python();
    let base = private_runtime_dir("hosted");
    let base_text = base.to_string_lossy().into_owned();
    let env = [
        ("VERILY_SHARED", "1"),
        ("VERILY_RUNTIME_DIR", base_text.as_str()),
        ("VERILY_SHARED_IDLE_MS", "500"),
        ("VERILY_REDIS", "local"),
    ];
    let mut runs = String::new();
    for test in [
        "a_document_put_on_the_shelf_is_served",
        "a_missing_document_is_none",
        "redis_is_shared_too",
        "a_document_put_on_the_shelf_is_served",
    ] {
        let run: Run = run_with_env(
            hosted_binary(),
            &["--exact", &format!("harness::{test}")],
            &env,
        );
        assert_eq!(run.code, 0, "{test}: {}\n{}", run.stdout, run.stderr);
        runs.push_str(&run.stderr);
    }
    let file_keeper = only(
        values_after(
            &runs
                .lines()
                .filter(|l| l.starts_with("file-server:"))
                .collect::<Vec<_>>()
                .join("\n"),
            "kept by process ",
        ),
        "file-server keeper",
        &runs,
    );
    let python = only(
        values_after(&runs, "served by pid "),
        "python3 server",
        &runs,
    );
    assert_eq!(
        values_after(&runs, "served by pid ").len(),
        3,
        "each shelf test says which server it used:\n{runs}"
    );
    let redis_keeper = only(
        values_after(
            &runs
                .lines()
                .filter(|l| l.starts_with("redis:"))
                .collect::<Vec<_>>()
                .join("\n"),
            "kept by process ",
        ),
        "redis keeper",
        &runs,
    );
    assert!(
        !runs.contains("file-server: python3 -m http.server"),
        "no test process started a server of its own (the keeper did):\n{runs}"
    );

    let pids = [file_keeper.clone(), python.clone(), redis_keeper];
    let (left, running) = wait_until_gone(&base, &pids, Duration::from_secs(20));
    assert!(left.is_empty(), "left after the run: {left:?}");
    assert!(
        running.is_empty(),
        "still running after the run: {running:?}"
    );
    let served = std::env::temp_dir().join(format!("file-server-{file_keeper}"));
    assert!(
        !served.exists(),
        "the server's directory is left: {}",
        served.display()
    );

    // Interrupted: a process killed -9 while it holds the server.
    let mut holder = Command::new(hosted_binary())
        .args([
            "--ignored",
            "--exact",
            "harness::holds_the_server_until_killed",
            "--nocapture",
        ])
        .envs(env)
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_RUN_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example's harness starts");
    let stdout = std::io::BufReader::new(holder.stdout.take().expect("piped"));
    let mut served_by = None;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(pid) = line.strip_prefix("served by pid ") {
            served_by = Some(pid.to_owned());
        }
        if line.starts_with("holding ") {
            break;
        }
    }
    let python = served_by.expect("the holder used a server");
    assert!(alive(&python), "the server runs while a test holds it");
    holder.kill().expect("kill -9");
    let _ = holder.wait();
    let (left, running) = wait_until_gone(&base, &[python], Duration::from_secs(20));
    assert!(left.is_empty(), "left after a killed run: {left:?}");
    assert!(
        running.is_empty(),
        "still running after a killed run: {running:?}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// What a test needs is derived from the services it asked for: the
/// example's fixtures declare nothing, a fixture built from two others
/// included, and the JSON report names each test's services.
#[verily::test(category = "e2e", timeout = "10m")]
fn needs_are_the_services_a_test_asked_for() {
    require_python();
    let run = run_with_env(
        hosted_binary(),
        &["--format", "json"],
        &[("VERILY_SHARED", "0"), ("VERILY_REDIS", "local")],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let finished = run.finished();
    let needs = |test: &str| finished[&format!("harness::{test}")]["needs"].clone();
    assert_eq!(
        needs("a_missing_document_is_none"),
        serde_json::json!(["file-server"])
    );
    assert_eq!(needs("redis_is_shared_too"), serde_json::json!(["redis"]));
    assert_eq!(
        needs("a_cached_document_is_served_and_cached"),
        serde_json::json!(["file-server", "redis"])
    );
    let source = std::fs::read_to_string(
        crate::support::workspace().join("examples/hosted/tests/harness.rs"),
    )
    .expect("the example's source");
    assert!(
        !source.contains("NEEDS"),
        "nothing in the example declares its needs"
    );
}

/// Under real `cargo nextest run`: every test of the example passes, and
/// the file server was started once for all of its processes.
#[verily::test(category = "e2e", timeout = "15m")]
fn under_nextest_the_example_starts_one_file_server() {
    require_python();
    let nextest = cargo().args(["nextest", "--version"]).output();
    if !nextest.is_ok_and(|output| output.status.success()) {
        verily::skip(
            "cargo-nextest is not installed: `cargo install cargo-nextest` to run this check",
        );
    }
    let base = private_runtime_dir("hosted-nextest");
    let output = cargo()
        .args(["nextest", "run", "-p", "hosted", "--test", "harness"])
        .args([
            "--success-output",
            "final",
            "--color",
            "never",
            "--no-fail-fast",
        ])
        .env("VERILY_RUNTIME_DIR", &base)
        .env("VERILY_SHARED_IDLE_MS", "500")
        .output()
        .expect("cargo nextest runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("4 tests run: 4 passed, 1 skipped"), "{text}");
    only(
        values_after(&text, "served by pid "),
        "python3 server",
        &text,
    );
    let file_keepers = values_after(
        &text
            .lines()
            .filter(|l| l.contains("file-server: shared"))
            .collect::<Vec<_>>()
            .join("\n"),
        "kept by process ",
    );
    let keeper = only(file_keepers, "file-server keeper", &text);
    let (left, running) = wait_until_gone(&base, &[keeper], Duration::from_secs(20));
    assert!(left.is_empty(), "left after the run: {left:?}");
    assert!(
        running.is_empty(),
        "still running after the run: {running:?}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
