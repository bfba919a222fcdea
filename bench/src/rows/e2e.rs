//! Row 8: the end-to-end tier on the operations example: the wall time of
//! its e2e suite (7 tests, each starting `operations-api`), the app's
//! start-to-ready median per test under the `App` fixture, and the same
//! binary started by hand on a migrated database and polled until
//! `GET /health` answers: the fixture's overhead as a ratio.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::measure::{self, Watch, median, wait_quiet};
use crate::table::{Line, ms, secs, times};
use crate::{Bench, BenchError, cargo};

const ROW: u8 = 8;
/// Tests in the example's e2e category.
const TESTS: usize = 7;

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let runs = bench.args.runs(3);
    let example = bench.workspace.repo.join("examples/operations");
    // A member of the repository's workspace: built where `cargo test`
    // builds it, rather than a second copy of the whole tree in bench/target.
    let harness = cargo::build_test(&example, &bench.workspace.repo.join("target"), "harness")?;
    let api = harness
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("operations-api"))
        .filter(|api| api.is_file())
        .ok_or_else(|| BenchError::new("the build left no operations-api next to the harness"))?;

    let watch = Watch::default();
    let mut suite_walls = Vec::new();
    let mut fixture_ready = Vec::new();
    for round in 0..runs {
        wait_quiet("e2e suite");
        eprintln!("  run {}/{runs}", round + 1);
        let mut command = Command::new(&harness);
        Bench::clean_env(&mut command)
            .args(["--category", "e2e", "--format", "json"])
            .args(["--test-threads", &bench.threads.to_string()])
            .env("VERILY_POSTGRES", "local")
            .env("VERILY_APP_TIMINGS", "1");
        let outcome = measure::run(&mut command, &watch)?;
        super::verily_passed(&outcome, TESTS)?;
        suite_walls.push(outcome.wall);
        let ready = ready_lines(&outcome.stderr);
        if ready.len() < TESTS {
            return Err(BenchError::new(format!(
                "{} `app: ... ready in` lines for {TESTS} tests:\n{}",
                ready.len(),
                measure::tail(&outcome.stderr, 20)
            )));
        }
        fixture_ready.extend(ready);
    }

    // By hand: one database migrated with psql, the binary started with
    // its URL and a port, `GET /health` polled every millisecond.
    std::fs::create_dir_all(&bench.workspace.work)
        .map_err(|error| BenchError::new(format!("{}: {error}", bench.workspace.work.display())))?;
    let mut cluster = Cluster::start(&bench.workspace.work)?;
    let by_hand = by_hand(&cluster, &example, &api, runs.max(3) * TESTS);
    cluster.stop();
    let by_hand = by_hand?;

    let wall = median(&suite_walls);
    let (fixture, hand) = (median(&fixture_ready), median(&by_hand));
    bench.report.lines.push(
        Line::new(
            ROW,
            format!("e2e suite of the operations example ({TESTS} tests, wall)"),
        )
        .verily(secs(wall)),
    );
    bench.report.lines.push(
        Line::new(ROW, "operations-api start to ready, median per test")
            .verily(ms(fixture))
            .peer(format!("by hand {}", ms(hand)))
            .ratio(format!("App fixture/by hand {}", times(fixture / hand)))
            .target("ready < 150 ms", fixture < 0.150),
    );
    bench
        .report
        .raw(ROW, "e2e suite wall (s)".to_owned(), &suite_walls, |v| {
            format!("{v:.2}")
        });
    bench.report.raw(
        ROW,
        "start to ready under the App fixture (ms)".to_owned(),
        &fixture_ready,
        |v| format!("{:.1}", v * 1000.0),
    );
    bench.report.raw(
        ROW,
        "start to ready by hand (ms)".to_owned(),
        &by_hand,
        |v| format!("{:.1}", v * 1000.0),
    );
    Ok(())
}

/// `app: operations-api ready in X ms (...)` lines, in seconds.
fn ready_lines(stderr: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("app: operations-api ready in ")?;
            let (millis, _) = rest.split_once(" ms")?;
            Some(millis.parse::<f64>().ok()? / 1000.0)
        })
        .collect()
}

fn by_hand(
    cluster: &Cluster,
    example: &Path,
    api: &Path,
    starts: usize,
) -> Result<Vec<f64>, BenchError> {
    let mut migrations: Vec<_> = std::fs::read_dir(example.join("migrations"))
        .map_err(|error| BenchError::new(format!("migrations: {error}")))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    migrations.sort();
    cluster.psql("CREATE DATABASE e2e_by_hand;", "postgres")?;
    for migration in &migrations {
        let sql = std::fs::read_to_string(migration)
            .map_err(|error| BenchError::new(format!("{}: {error}", migration.display())))?;
        cluster.psql(&sql, "e2e_by_hand")?;
    }
    let url = cluster.url().replace("/postgres?", "/e2e_by_hand?");
    let mut times = Vec::with_capacity(starts);
    for _ in 0..starts {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|error| BenchError::new(format!("no free port: {error}")))?
            .port();
        let started = Instant::now();
        let mut child = Command::new(api)
            .env("DATABASE_URL", &url)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| BenchError::new(format!("{}: {error}", api.display())))?;
        let ready = loop {
            if health(port) {
                break Ok(started.elapsed().as_secs_f64());
            }
            if let Ok(Some(status)) = child.try_wait() {
                break Err(BenchError::new(format!(
                    "operations-api exited ({status}) before it answered GET /health"
                )));
            }
            if started.elapsed() > Duration::from_secs(30) {
                break Err(BenchError::new("operations-api did not answer within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = child.wait();
        times.push(ready?);
    }
    Ok(times)
}

/// Whether `GET /health` answers 200.
fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}
