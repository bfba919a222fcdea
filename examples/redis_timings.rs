//! What Redis costs a run on this machine, as medians: starting the run's
//! shared local Redis (server and database pool), a test's exclusive local
//! `RedisServer`, the shared Redis from Docker where an engine and the
//! image are here, and a `stop()`/`start()` cycle of an exclusive server.
//!
//! ```sh
//! cargo run --release --example redis_timings --features testing,redis 2>/dev/null
//! ```

use std::time::{Duration, Instant};

use verily_runtime::Config;
use verily_runtime::infra::Service;
use verily_runtime::infra::redis::{Instance, RedisService, Source};

const RUNS: usize = 20;
const DOCKER_RUNS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(measure());
}

async fn measure() {
    let config = Config::new();
    // The exclusive server's source follows VERILY_REDIS; these are
    // the local figures.
    if std::env::var_os("VERILY_REDIS").is_some() {
        eprintln!("unset VERILY_REDIS: the exclusive figures are for local servers");
        std::process::exit(2);
    }

    let shared_local = median_of(RUNS, || async {
        let started = Instant::now();
        let service = RedisService::start_from(Source::Local, &config)
            .await
            .expect("the shared local Redis starts");
        let elapsed = started.elapsed();
        service.shutdown(false).await;
        elapsed
    })
    .await;
    report(
        "shared local Redis, start (server + database pool)",
        RUNS,
        shared_local,
    );

    let exclusive = median_of(RUNS, || async {
        let started = Instant::now();
        let mut server = Instance::start_exclusive(&config)
            .await
            .expect("an exclusive local redis-server starts");
        let elapsed = started.elapsed();
        server.remove();
        elapsed
    })
    .await;
    report("exclusive local RedisServer, start", RUNS, exclusive);

    let mut server = Instance::start_exclusive(&config)
        .await
        .expect("an exclusive local redis-server starts");
    let mut cycles = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        server.stop().await.expect("stop");
        server.start_again().await.expect("start");
        cycles.push(started.elapsed());
    }
    server.remove();
    let cycle = median(cycles);
    report("exclusive local RedisServer, stop() + start()", RUNS, cycle);

    match docker_unavailable() {
        Some(why) => println!(
            "{:<56} not measured: {why}",
            "shared Redis from Docker, start"
        ),
        None => {
            let docker = median_of(DOCKER_RUNS, || async {
                let started = Instant::now();
                let service = RedisService::start_from(Source::Docker, &config)
                    .await
                    .expect("the Redis container starts");
                let elapsed = started.elapsed();
                service.shutdown(false).await;
                elapsed
            })
            .await;
            report(
                "shared Redis from Docker (redis:7.0), start",
                DOCKER_RUNS,
                docker,
            );
        }
    }
}

/// Why Docker cannot be measured here, if it cannot.
fn docker_unavailable() -> Option<String> {
    let image = std::process::Command::new("docker")
        .args(["image", "inspect", "redis:7.0"])
        .output();
    match image {
        Err(error) => Some(format!("no docker CLI ({error})")),
        Ok(output) if !output.status.success() => {
            Some("no engine, or no redis:7.0 image (build it with .ci/redis-image.sh)".to_owned())
        }
        Ok(_) => None,
    }
}

async fn median_of<F, Fut>(runs: usize, mut once: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(once().await);
    }
    median(samples)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn report(what: &str, runs: usize, median: Duration) {
    println!(
        "{what:<56} median {:>8.1} ms  ({runs} runs)",
        median.as_secs_f64() * 1000.0
    );
}
