//! Figures for `PgServer`, the PostgreSQL of a test's own: how long one
//! takes to start (local binaries with an empty cache, from the cache, a
//! Docker container) and what each control costs. Prints medians over
//! several runs; a script, not a timed test.
//!
//! ```sh
//! cargo run --release --example outage_timings --features testing
//! RUNS=11 cargo run --release --example outage_timings --features testing
//! ```
//!
//! Each start applies the operations example's 3 migrations. The cold
//! starts use a cache directory of their own (`VERILY_CACHE_DIR`),
//! emptied before each. Docker is measured when an engine answers and the
//! image (`VERILY_POSTGRES_IMAGE`, default `postgres:15`) is here.

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use verily::{Config, PgServer};

fn main() {
    let cache = std::env::temp_dir().join(format!("vy-outage-timings-{}", std::process::id()));
    // SAFETY: no other thread exists yet (the runtime is built below).
    unsafe {
        std::env::set_var("VERILY_CACHE_DIR", &cache);
    }
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(measure(&cache, runs));
    let _ = std::fs::remove_dir_all(&cache);
}

fn config() -> Config {
    Config::new().migrations_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/operations/migrations"
    ))
}

async fn measure(cache: &Path, runs: usize) {
    let described = PgServer::local(&config())
        .await
        .expect("a local server")
        .describe();
    let mut table = Table::default();
    let cold_runs = runs.min(3);
    table.row(
        "start, empty cache (initdb)",
        Some(
            timed(cold_runs, || async {
                let _ = std::fs::remove_dir_all(cache);
                PgServer::local(&config()).await.expect("a local server")
            })
            .await,
        ),
        None,
    );
    table.row(
        "start, from the cache",
        Some(
            timed(runs, || async {
                PgServer::local(&config()).await.expect("a local server")
            })
            .await,
        ),
        None,
    );
    let local = controls(runs, || async {
        PgServer::local(&config()).await.expect("a local server")
    })
    .await;

    let image = std::env::var("VERILY_POSTGRES_IMAGE").unwrap_or_else(|_| "postgres:15".to_owned());
    let docker = docker_available(&image);
    let docker_runs = runs.min(3);
    let (container_start, container) = if docker {
        let start = timed(docker_runs, || async {
            PgServer::docker(&config()).await.expect("a container")
        })
        .await;
        let controls = controls(docker_runs, || async {
            PgServer::docker(&config()).await.expect("a container")
        })
        .await;
        (Some(start), Some(controls))
    } else {
        (None, None)
    };
    table.row("start, fresh container", None, container_start);
    for (index, (name, local)) in local.into_iter().enumerate() {
        let container = container.as_ref().map(|rows| rows[index].1.clone());
        table.row(name, Some(local), container);
    }

    println!(
        "PgServer timings: medians (min-max), {runs} runs ({cold_runs} for cold starts, {docker_runs} for Docker); each start applies 3 migrations"
    );
    println!("local: {described}");
    if !docker {
        println!("docker: not measured (no engine answers, or no image {image})");
    } else {
        println!("docker: image {image}");
    }
    println!();
    table.print();
}

/// Each control on a server of its own, `runs` times: stop, start again,
/// stop and start, pause and resume, restart, terminating one client's
/// connection, and dropping the server (its cleanup).
async fn controls<F, Fut>(runs: usize, start: F) -> Vec<(&'static str, Vec<Duration>)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = PgServer>,
{
    let names = [
        "stop()",
        "start() after stop()",
        "pause() + resume()",
        "restart()",
        "terminate_connections(), 1 client",
        "drop (cleanup)",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..runs {
        let server = start().await;
        let mut client = server.connect().await.expect("a connection");
        let clock = Instant::now();
        server.stop().await.expect("stop");
        samples[0].push(clock.elapsed());
        let clock = Instant::now();
        server.start().await.expect("start");
        samples[1].push(clock.elapsed());
        let clock = Instant::now();
        server.pause().await.expect("pause");
        server.resume().await.expect("resume");
        samples[2].push(clock.elapsed());
        let clock = Instant::now();
        server.restart().await.expect("restart");
        samples[3].push(clock.elapsed());
        client = match sqlx::Connection::ping(&mut client).await {
            Ok(()) => client,
            Err(_) => server.connect().await.expect("a connection"),
        };
        let clock = Instant::now();
        server.terminate_connections().await.expect("terminate");
        samples[4].push(clock.elapsed());
        drop(client);
        let clock = Instant::now();
        drop(server);
        samples[5].push(clock.elapsed());
    }
    names.into_iter().zip(samples).collect()
}

/// Starts `runs` servers one after the other, timing each start; each is
/// dropped before the next starts.
async fn timed<F, Fut>(runs: usize, start: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = PgServer>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let clock = Instant::now();
        let server = start().await;
        samples.push(clock.elapsed());
        drop(server);
    }
    samples
}

fn docker_available(image: &str) -> bool {
    let ok = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    ok(&["version", "--format", "{{.Server.Version}}"]) && ok(&["image", "inspect", image])
}

/// Samples of one measurement, when it was made.
type Samples = Option<Vec<Duration>>;

#[derive(Default)]
struct Table {
    rows: Vec<(&'static str, Samples, Samples)>,
}

impl Table {
    fn row(
        &mut self,
        name: &'static str,
        local: Option<Vec<Duration>>,
        docker: Option<Vec<Duration>>,
    ) {
        self.rows.push((name, local, docker));
    }

    fn print(&self) {
        println!(
            "{:<36} {:>24} {:>24}",
            "", "local cluster", "docker container"
        );
        for (name, local, docker) in &self.rows {
            println!(
                "{name:<36} {:>24} {:>24}",
                summary(local.as_deref()),
                summary(docker.as_deref())
            );
        }
    }
}

/// `0.123 s (0.100-0.150)`, or `-` when not measured.
fn summary(samples: Option<&[Duration]>) -> String {
    let Some(samples) = samples.filter(|samples| !samples.is_empty()) else {
        return "-".to_owned();
    };
    let mut sorted = samples.to_vec();
    sorted.sort();
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2
    };
    format!(
        "{:.3} s ({:.3}-{:.3})",
        median.as_secs_f64(),
        sorted[0].as_secs_f64(),
        sorted[sorted.len() - 1].as_secs_f64()
    )
}
