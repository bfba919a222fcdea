//! A PostgreSQL server the run shares with other runs and other users:
//! whose databases a run may drop, what it says when the server does not
//! answer or has no room, and how it keeps under the server's limit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::{Server, demo_db, demo_reuse};
use crate::support::{Run, run_with_env};

/// Runs a harness binary, killing it after `limit`: a run that hangs
/// fails its test instead of holding the suite.
fn run_bounded(binary: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_RUN_ID")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("the harness binary runs");
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let output = child.wait_with_output().expect("the harness exits");
    let _ = killer.join();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The message of one finished test, by the last part of its name.
fn message_of(run: &Run, test: &str) -> String {
    let finished = run.finished();
    let (_, event) = finished
        .iter()
        .find(|(name, _)| name.rsplit("::").next() == Some(test))
        .unwrap_or_else(|| {
            panic!(
                "no test `{test}` in the run:\n{}\n{}",
                run.stdout, run.stderr
            )
        });
    event["message"].as_str().unwrap_or_default().to_owned()
}

/// The demo harness holding its database on `url`; returns once it does,
/// with the database's name.
fn holding_on(url: &str) -> (Child, String) {
    let mut child = Command::new(demo_db())
        .args(["--exact", "demo_db::waits_forever", "--nocapture"])
        .env("VERILY_POSTGRES", "url")
        .env("VERILY_DATABASE_URL", url)
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_RUN_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo harness starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let line = std::io::BufRead::lines(&mut stdout)
        .map_while(Result::ok)
        .find(|line| line.starts_with("holding "))
        .expect("the test says which database it holds");
    let name = line.trim_start_matches("holding ").trim().to_owned();
    (child, name)
}

fn databases(server: &Server) -> String {
    server
        .psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
        .trim()
        .to_owned()
}

/// Issue 11, point 2: a run connected to `/postgres` must see that a run
/// connected to `/app_dev` is alive, and leave its databases alone; once
/// that run is killed, the next run removes them.
#[verily::test(category = "e2e", timeout = "10m")]
fn runs_connected_to_different_databases_leave_each_other_alone() {
    let server = Server::start();
    server.psql("CREATE DATABASE app_dev");
    let app_dev = server.url.replace("/postgres?", "/app_dev?");
    assert_ne!(app_dev, server.url);
    let (mut first, held) = holding_on(&app_dev);
    let run = held.rsplit_once('_').expect("vy_<run>_<n>").0.to_owned();

    let second = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &server.url),
        ],
    );
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    let after = databases(&server);
    assert!(
        after.contains(&held) && after.contains(&format!("{run}_template")),
        "the second run dropped the live run's databases ({held}): {after}"
    );

    first.kill().expect("kill -9");
    let _ = first.wait();
    let third = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &server.url),
        ],
    );
    assert_eq!(third.code, 0, "{}\n{}", third.stdout, third.stderr);
    assert_eq!(
        databases(&server),
        "app_dev,postgres,template0,template1",
        "the killed run's databases were not removed by the next run"
    );
}

/// Issue 11, point 4: only databases the framework made (exact name and
/// its mark) are swept; a user's `vy_...` databases stay, with their data.
#[verily::test(category = "e2e", timeout = "10m")]
fn the_sweep_drops_only_databases_the_framework_made() {
    let server = Server::start();
    for user_database in [
        "vy_deadbeefdeadbeef",
        "vy_deadbeefdeadbeef_backup",
        "vy_00000000deadbeef_7",
    ] {
        server.psql(&format!("CREATE DATABASE {user_database}"));
    }
    let with_data = server.url.replace("/postgres?", "/vy_deadbeefdeadbeef?");
    let psql = server.cluster.binaries.dir.join("psql");
    let made = Command::new(&psql)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-d", &with_data, "-c"])
        .arg("CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1)")
        .output()
        .expect("psql runs");
    assert!(made.status.success(), "{made:?}");
    // What a killed run leaves: its name and its mark.
    server.psql("CREATE DATABASE vy_00000000deadbeef_3");
    server.psql("COMMENT ON DATABASE vy_00000000deadbeef_3 IS 'verily run vy_00000000deadbeef'");
    // A run killed between a clone's CREATE and its COMMENT: the clone has
    // no mark, but its run's template has.
    server.psql("CREATE DATABASE vy_00000000cafef00d_template");
    server.psql(
        "COMMENT ON DATABASE vy_00000000cafef00d_template IS 'verily run vy_00000000cafef00d'",
    );
    server.psql("CREATE DATABASE vy_00000000cafef00d_0");

    let run = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &server.url),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        databases(&server),
        "postgres,template0,template1,vy_00000000deadbeef_7,vy_deadbeefdeadbeef,vy_deadbeefdeadbeef_backup",
        "{}",
        run.stderr
    );
    let rows = Command::new(&psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-d",
            &with_data,
            "-c",
            "SELECT count(*) FROM accounts",
        ])
        .output()
        .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "1");
}

/// Issue 11, point 6a: a server that accepts TCP connections but never
/// answers fails the run after the connect timeout, with a message that
/// names PostgreSQL and the URL (without its password).
#[verily::test(category = "e2e", timeout = "5m")]
fn a_url_server_that_never_answers_fails_fast_and_is_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        // Accepted and held, never answered.
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let url = format!("postgres://app:s3cret@127.0.0.1:{port}/app");
    let started = Instant::now();
    let run = run_bounded(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &url),
            ("VERILY_CONNECT_TIMEOUT", "2"),
        ],
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    let message = message_of(&run, "writes_a_thing");
    assert!(took < Duration::from_secs(30), "took {took:?}: {message}");
    assert!(
        message.contains("PostgreSQL")
            && message.contains(&format!("postgres://app:***@127.0.0.1:{port}/app"))
            && message.contains("did not answer within 2 s")
            && message.contains("VERILY_CONNECT_TIMEOUT"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

/// Issue 11, point 6e: PostgreSQL's own C source line ("at line 334") is
/// not part of a message; the SQLSTATE is.
#[verily::test(category = "e2e", timeout = "5m")]
fn messages_carry_no_postgres_source_line() {
    let server = Server::start();
    let missing = server.url.replace("/postgres?", "/no_such_app?");
    let run = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &missing),
        ],
    );
    let message = message_of(&run, "writes_a_thing");
    assert!(
        message.contains("database \"no_such_app\" does not exist")
            && message.contains("SQLSTATE 3D000"),
        "{message}"
    );
    assert!(!message.contains(" at line "), "{message}");
}

/// Issue 11, point 6b: a migrations folder that does not exist is an error
/// naming it and saying how to configure migrations, both when it was
/// named and when the default `migrations/` is missing.
#[verily::test(category = "e2e", timeout = "10m")]
fn a_missing_migrations_folder_is_an_error_that_names_it() {
    let named = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "local"),
            ("DEMO_MIGRATIONS", "tests/fixtures/migrations/absent"),
        ],
    );
    let message = message_of(&named, "writes_a_thing");
    let absent = crate::support::workspace().join("tests/fixtures/migrations/absent");
    assert!(
        message.contains(&format!(
            "the migrations folder {} does not exist",
            absent.display()
        )) && message.contains("Config::migrations_dir")
            && message.contains("Config::no_migrations()"),
        "{message}"
    );

    let default = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[("VERILY_POSTGRES", "local"), ("DEMO_MIGRATIONS", "default")],
    );
    let message = message_of(&default, "writes_a_thing");
    let folder = crate::support::workspace().join("migrations");
    assert!(
        message.contains(&format!(
            "the migrations folder {} does not exist",
            folder.display()
        )) && message.contains("Config::no_migrations()"),
        "{message}"
    );
}

/// A server of the test's own with a small `max_connections`, as a user's
/// shared server may have; stopped and removed on drop.
struct SmallServer {
    dir: PathBuf,
    url: String,
    child: Child,
}

impl SmallServer {
    fn start(max_connections: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let bin = verily_runtime::infra::postgres::server::local::find_binaries()
            .expect("PostgreSQL binaries are installed")
            .dir;
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vy-small-{}-{next}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let data = dir.join("data");
        let as_postgres = |program: &Path| {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        };
        let initdb = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(initdb.status.success(), "{initdb:?}");
        let child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .args(["-c", &format!("max_connections={max_connections}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let url = format!(
            "postgres://postgres@localhost/postgres?host={}",
            dir.display()
        );
        let server = Self { dir, url, child };
        let ready = (0..300).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            server.try_psql("SELECT 1").is_some()
        });
        assert!(ready, "the small server did not start");
        server
    }

    fn try_psql(&self, sql: &str) -> Option<String> {
        let bin = verily_runtime::infra::postgres::server::local::find_binaries()?.dir;
        let output = Command::new(bin.join("psql"))
            .args(["-X", "-A", "-t", "-d", &self.url, "-c", sql])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `count` sessions that sleep until killed: other users of the server.
    fn occupy(&self, count: usize) -> Vec<Child> {
        let bin = verily_runtime::infra::postgres::server::local::find_binaries()
            .expect("binaries")
            .dir;
        let sessions: Vec<Child> = (0..count)
            .map(|_| {
                Command::new(bin.join("psql"))
                    .args(["-X", "-d", &self.url, "-c", "SELECT pg_sleep(600)"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("psql runs")
            })
            .collect();
        let want = count.to_string();
        let all_in = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            self.try_psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'",
            )
            .is_some_and(|seen| seen == want)
        });
        assert!(all_in, "the other sessions did not connect");
        sessions
    }
}

impl Drop for SmallServer {
    fn drop(&mut self) {
        // The postmaster, not runuser: runuser need not pass a signal on.
        let postmaster = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned));
        for pid in postmaster.into_iter().chain([self.child.id().to_string()]) {
            let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The connection budget: on a server with `max_connections = 20` where
/// other clients hold 7 sessions, a run of 14 tests at once queues them
/// under what the server allows instead of failing them with "too many
/// clients".
#[verily::test(category = "e2e", timeout = "10m")]
fn a_small_server_queues_tests_instead_of_refusing_them() {
    let server = SmallServer::start(20);
    let mut others = server.occupy(7);
    let run = run_bounded(
        demo_reuse(),
        &["--test-threads", "14", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &server.url),
        ],
        Duration::from_secs(240),
    );
    for other in &mut others {
        let _ = other.kill();
        let _ = other.wait();
    }
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.finished().len(), 14);
    assert!(
        run.stderr.contains("at most") && run.stderr.contains("max_connections = 20"),
        "the run says how it fits the server: {}",
        run.stderr
    );
    assert_eq!(
        server.try_psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'vy%'"),
        Some("0".to_owned())
    );
}

/// Issue 11, point 6d: a server with no room for the run says so with the
/// numbers, and what to change.
#[verily::test(category = "e2e", timeout = "10m")]
fn a_full_server_is_named_with_its_numbers() {
    let server = SmallServer::start(20);
    let mut others = server.occupy(15);
    let run = run_bounded(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "url"),
            ("VERILY_DATABASE_URL", &server.url),
        ],
        Duration::from_secs(120),
    );
    for other in &mut others {
        let _ = other.kill();
        let _ = other.wait();
    }
    let message = message_of(&run, "writes_a_thing");
    assert!(
        message.contains("max_connections = 20")
            && message.contains("3 reserved for superusers")
            && message.contains("in use")
            && message.contains("raise max_connections"),
        "{message}"
    );
}

/// Issue 11, point 6c: a runtime directory that fills up gives one line
/// saying which directory and what to set, not a `cp:` line per file.
#[verily::test(category = "e2e", timeout = "5m")]
fn a_full_runtime_disk_is_one_line_that_names_it() {
    let dir = std::env::temp_dir().join(format!("vy-full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs"])
        .arg(&dir)
        .output();
    if !mounted.is_ok_and(|output| output.status.success()) {
        let _ = std::fs::remove_dir(&dir);
        verily::skip("cannot mount a small tmpfs here (needs root)");
    }
    let dir_text = dir.to_string_lossy().into_owned();
    let run = run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing", "--format", "json"],
        &[
            ("VERILY_POSTGRES", "local"),
            ("VERILY_RUNTIME_DIR", &dir_text),
        ],
    );
    let _ = Command::new("umount").arg(&dir).status();
    let _ = std::fs::remove_dir(&dir);
    let message = message_of(&run, "writes_a_thing");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("no space left")
            && message.contains(&dir_text)
            && message.contains("VERILY_RUNTIME_DIR"),
        "{message}"
    );
    assert!(!message.contains("cp: "), "{message}");
    assert!(!run.stderr.contains("cp: "), "{}", run.stderr);
}
