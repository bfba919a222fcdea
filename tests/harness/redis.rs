//! Redis provisioning, isolation and the risk example's incident, through
//! real cargo and the example's harness: the local and Docker sources, a
//! URL server shared with data that is not the run's, and a forced source
//! that is unavailable.

use std::process::Command;

use crate::support::{Run, cargo_test_example};

/// The example's harness on `VERILY_REDIS=source`.
fn risk(features: &[&str], args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    cargo_test_example("risk", features, &args, env)
}

#[verily::test(category = "e2e", timeout = "15m")]
fn the_bytes_mode_decoding_incident_is_caught_by_its_named_test() {
    let healthy = risk(&[], &[], &[("VERILY_REDIS", "local")]);
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    let finished = healthy.finished();
    assert_eq!(finished.len(), 4, "{:?}", finished.keys());
    assert!(finished.values().all(|event| event["outcome"] == "passed"));
    assert!(
        finished
            .values()
            .all(|event| event["needs"] == serde_json::json!(["redis"])),
        "every test lists its need"
    );
    let report = healthy
        .stderr
        .lines()
        .filter(|line| line.starts_with("redis: "))
        .collect::<Vec<_>>();
    assert_eq!(report.len(), 1, "one line about Redis: {}", healthy.stderr);
    assert!(
        report[0].starts_with("redis: local redis-server 7.") && report[0].contains(", ready in "),
        "{}",
        report[0]
    );

    let broken = risk(
        &["bug-decode-assumes-strings"],
        &[],
        &[("VERILY_REDIS", "local")],
    );
    assert_eq!(broken.code, 101, "{}\n{}", broken.stdout, broken.stderr);
    let finished = broken.finished();
    let caught = &finished["harness::reads_counters_written_by_another_client"];
    assert_eq!(caught["outcome"], "failed");
    assert_eq!(caught["category"], "contract");
    assert_eq!(
        caught["message"],
        "panicked: the reader cannot read acct-7: risk:acct-7: field `limit` is not UTF-8 text (invalid utf-8 sequence of 1 bytes from index 6)"
    );
    let others: Vec<_> = finished
        .iter()
        .filter(|(_, event)| event["outcome"] != "passed")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        others,
        ["harness::reads_counters_written_by_another_client"]
    );
}

#[verily::test(category = "e2e", timeout = "15m")]
fn docker_source_runs_the_risk_suite_and_removes_its_containers() {
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    if !engine.is_ok_and(|output| output.status.success()) {
        verily::skip("no Docker engine answers on this machine");
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "redis:7.0"])
        .output();
    if !image.is_ok_and(|output| output.status.success()) {
        verily::skip(
            "image redis:7.0 is not here and no registry may be reachable: build it with .ci/redis-image.sh",
        );
    }
    let run = risk(&[], &[], &[("VERILY_REDIS", "docker")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.finished().len(), 4);
    assert!(
        run.stderr.contains("redis: docker container (redis:7.0, "),
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
        "a container was left behind (the shared one or a RedisServer)"
    );
}

#[verily::test(category = "e2e", timeout = "15m")]
fn a_forced_redis_source_that_is_unavailable_is_an_error_not_a_fallback() {
    let exact = [
        "--exact",
        "harness::reads_counters_written_by_another_client",
    ];
    let run = risk(
        &[],
        &exact,
        &[("VERILY_REDIS", "url"), ("VERILY_REDIS_URL", "")],
    );
    assert_eq!(run.code, 101, "{}", run.stderr);
    let message = run.finished()["harness::reads_counters_written_by_another_client"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        message,
        "fixture failed: VERILY_REDIS=url, but VERILY_REDIS_URL is not set"
    );
    // A value that is no source stops the run before any test starts.
    let bogus = risk(&[], &exact, &[("VERILY_REDIS", "cloud")]);
    assert_eq!(bogus.code, 101, "{}", bogus.stderr);
    assert!(
        bogus
            .stderr
            .contains("VERILY_REDIS=cloud: it takes `url`, `docker` or `local`"),
        "{}",
        bogus.stderr
    );
    assert!(bogus.finished().is_empty(), "nothing ran: {}", bogus.stdout);
}

/// A server this test starts, holding data that is not the run's in
/// database 0 and database 1: the run uses only empty databases, flushes
/// only those, and leaves no claim behind.
#[verily::test(category = "e2e", timeout = "15m")]
async fn url_source_uses_only_empty_databases_and_leaves_the_rest_alone() {
    use verily_runtime::infra::redis::local;
    let binary = local::find_binary().expect("redis-server is installed");
    let server = local::LocalRedis::start(binary)
        .await
        .expect("a throwaway server starts");
    let url = server.url();
    cli(&url, 0, &["SET", "app:config", "production"]);
    cli(&url, 1, &["SET", "sessions:42", "alice"]);

    let run = risk(
        &[],
        &[],
        &[("VERILY_REDIS", "url"), ("VERILY_REDIS_URL", &url)],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("redis: VERILY_REDIS_URL ({url}), ready in")),
        "{}",
        run.stderr
    );
    assert_eq!(cli(&url, 0, &["KEYS", "*"]), "app:config");
    assert_eq!(cli(&url, 1, &["KEYS", "*"]), "sessions:42");
    for database in 2..64 {
        assert_eq!(
            cli(&url, database, &["DBSIZE"]),
            "0",
            "database {database} was left with keys"
        );
    }
}

/// `redis-cli` on `database` of the server at `url`; its output, trimmed.
pub(crate) fn cli(url: &str, database: u32, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-u", &format!("{url}/{database}")])
        .args(args)
        .output()
        .expect("redis-cli (redis-tools) is installed");
    assert!(
        output.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The risk example's production build takes redis from its own
/// dependency, and nothing of verily's test side: the facade's `redis`
/// feature lives in [dev-dependencies] and reaches the runtime only with
/// `testing`.
#[verily::test(category = "e2e", timeout = "10m")]
fn redis_support_stays_out_of_production_builds() {
    let tree = crate::support::cargo()
        .args([
            "tree",
            "-e",
            "normal,no-proc-macro",
            "-p",
            "risk",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.lines().any(|line| line.starts_with("redis v1.")),
        "{tree}"
    );
    for test_only in [
        "verily-runtime",
        "testcontainers",
        "inventory",
        "serde_json",
    ] {
        assert!(
            !tree
                .lines()
                .any(|line| line.starts_with(&format!("{test_only} "))),
            "`{test_only}` reaches the production build:\n{tree}"
        );
    }
}

/// A killed run's claim lapses (its run no longer refreshes it), but its
/// owner record and its database's keys stayed until some later run
/// happened to claim that very database: the next run removes them, and
/// leaves a live run's claim alone.
#[verily::test(category = "e2e", timeout = "15m")]
async fn a_killed_runs_lapsed_claims_are_removed_by_the_next_run() {
    use verily_runtime::infra::redis::local;
    let binary = local::find_binary().expect("redis-server is installed");
    let server = local::LocalRedis::start(binary)
        .await
        .expect("a throwaway server starts");
    let url = server.url();
    // What a killed run leaves once its claim's TTL has passed.
    cli(&url, 0, &["SET", "verily:owner:40", "4242-1"]);
    cli(&url, 40, &["SET", "cache:left", "by a killed run"]);
    // A live run's claim, refreshed by that run, which is connected.
    let mut live = named_connection(&url, "verily-run-4343-1");
    cli(
        &url,
        0,
        &["SET", "verily:lease:41", "4343-1", "PX", "600000"],
    );
    cli(&url, 0, &["SET", "verily:owner:41", "4343-1"]);
    cli(&url, 41, &["SET", "cache:live", "in use"]);

    let run = risk(
        &[],
        &[],
        &[("VERILY_REDIS", "url"), ("VERILY_REDIS_URL", &url)],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let mut left: Vec<String> = cli(&url, 0, &["KEYS", "verily:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    left.sort();
    assert_eq!(left, ["verily:lease:41", "verily:owner:41"]);
    assert_eq!(
        cli(&url, 40, &["DBSIZE"]),
        "0",
        "the killed run's keys stayed"
    );
    assert_eq!(cli(&url, 41, &["KEYS", "*"]), "cache:live");
    let _ = live.kill();
    let _ = live.wait();
}

/// A `redis-cli` session to `url` named `name`, open until killed: a run's
/// connection as `CLIENT LIST` shows it.
pub(crate) fn named_connection(url: &str, name: &str) -> std::process::Child {
    use std::io::Write;
    let mut session = Command::new("redis-cli")
        .args(["-u", url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli runs");
    let mut stdin = session.stdin.take().expect("piped");
    writeln!(stdin, "CLIENT SETNAME {name}").expect("redis-cli reads");
    // Kept open with the child: redis-cli ends at the end of its input.
    session.stdin = Some(stdin);
    let named = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        cli(url, 0, &["CLIENT", "LIST"]).contains(&format!("name={name} "))
    });
    assert!(named, "the named session did not connect");
    session
}
