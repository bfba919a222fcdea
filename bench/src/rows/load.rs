//! Row 7: what `#[verily::load]` itself costs. A trivial body at
//! concurrency 50: the framework's time per iteration (workers, timing,
//! panic catching, clones) against a bare tokio loop of the same shape;
//! and `SELECT 1` at concurrency 10 with the database sampler watching,
//! against the same loop by hand: the sampler's own time per sample and
//! its share of the run.

use std::process::Command;

use serde_json::Value;

use crate::generate::{CrateSpec, Workspace};
use crate::measure::{self, Watch, median, wait_quiet};
use crate::table::{Line, times};
use crate::{Bench, BenchError, cargo};

const ROW: u8 = 7;

/// Iterations of the trivial body, enough for the per-iteration figure to
/// dwarf the start and end of the run.
const TRIVIAL: u64 = 200_000;

/// How long the `SELECT 1` loops run.
const DB_SECONDS: u64 = 2;

fn harness() -> String {
    format!(
        r#"//! Load subjects: each verily load test beside a bare loop of the
//! same shape, which prints its figure.
use std::sync::Arc;
use std::sync::atomic::{{AtomicU64, Ordering}};
use std::time::{{Duration, Instant}};

verily::main!();

#[verily::load(concurrency = 50, iterations = {TRIVIAL})]
async fn trivial() {{}}

#[verily::test(category = "bench")]
async fn trivial_bare() {{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..50)
        .map(|_| {{
            let next = Arc::clone(&next);
            tokio::spawn(async move {{
                while next.fetch_add(1, Ordering::Relaxed) < {TRIVIAL} {{
                    std::hint::black_box(async {{}}).await;
                }}
            }})
        }})
        .collect();
    for worker in workers {{
        worker.await.unwrap();
    }}
    println!("bench-figure trivial_bare {{}}", started.elapsed().as_secs_f64());
}}

#[verily::load(concurrency = 10, duration = "{DB_SECONDS}s")]
async fn select_one(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {{
    sqlx::query("SELECT 1").execute(&pool).await.map(drop)
}}

#[verily::test(category = "bench")]
async fn select_one_bare(pool: sqlx::PgPool) {{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs({DB_SECONDS});
    let workers: Vec<_> = (0..10)
        .map(|_| {{
            let done = Arc::clone(&done);
            let pool = pool.clone();
            tokio::spawn(async move {{
                while Instant::now() < deadline {{
                    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }}
            }})
        }})
        .collect();
    for worker in workers {{
        worker.await.unwrap();
    }}
    let rate = done.load(Ordering::Relaxed) as f64 / {DB_SECONDS} as f64;
    println!("bench-figure select_one_bare {{rate}}");
}}
"#
    )
}

fn write(workspace: &Workspace) -> Result<std::path::PathBuf, BenchError> {
    workspace.write(CrateSpec {
        name: "verily_load",
        manifest_tail: format!(
            "[dev-dependencies]\n{}tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"time\"] }}\nsqlx = {{ version = \"0.9\", default-features = false, features = [\"postgres\", \"runtime-tokio\"] }}\n\n[[test]]\nname = \"harness\"\nharness = false\n",
            workspace.verily_dependency()
        ),
        files: vec![
            ("tests/harness.rs".to_owned(), harness()),
            (
                "migrations/20240101000001_nothing.sql".to_owned(),
                "SELECT 1;\n".to_owned(),
            ),
        ],
        migrations: false,
    })
}

/// One run's figures, read from the JSON report and the bare loops' lines.
struct Figures {
    /// Seconds per iteration: verily's, the bare loop's.
    trivial: (f64, f64),
    /// Iterations per second: verily's (sampled), the bare loop's.
    select: (f64, f64),
    /// Seconds per sample, and the sampler's share of the run.
    sample: (f64, f64),
}

fn figures(stdout: &str) -> Result<Figures, BenchError> {
    let mut load = std::collections::HashMap::new();
    let mut bare = std::collections::HashMap::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("bench-figure ") {
            if let Some((name, value)) = rest.split_once(' ')
                && let Ok(value) = value.parse::<f64>()
            {
                bare.insert(name.to_owned(), value);
            }
            continue;
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["type"] == "test" && event["load"].is_object() {
            let name = event["name"].as_str().unwrap_or_default();
            let short = name.rsplit("::").next().unwrap_or_default().to_owned();
            load.insert(short, event["load"].clone());
        }
    }
    let missing = || BenchError::new(format!("the load subjects printed no figures:\n{stdout}"));
    let trivial = load.get("trivial").ok_or_else(missing)?;
    let select = load.get("select_one").ok_or_else(missing)?;
    let per_iteration = trivial["duration"].as_f64().unwrap_or(f64::NAN)
        / trivial["iterations"].as_f64().unwrap_or(f64::NAN);
    let bare_trivial = bare.get("trivial_bare").ok_or_else(missing)? / TRIVIAL as f64;
    let samples = select["samples"].as_f64().unwrap_or(f64::NAN);
    let sampling = select["sampling"].as_f64().unwrap_or(f64::NAN);
    let elapsed = select["duration"].as_f64().unwrap_or(f64::NAN);
    Ok(Figures {
        trivial: (per_iteration, bare_trivial),
        select: (
            select["throughput"].as_f64().unwrap_or(f64::NAN),
            *bare.get("select_one_bare").ok_or_else(missing)?,
        ),
        sample: (sampling / samples, sampling / elapsed),
    })
}

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let runs = bench.args.runs(5);
    let dir = write(&bench.workspace)?;
    let exe = cargo::build_test(&dir, &bench.target, "harness")?;
    let watch = Watch::default();
    let mut all = Vec::new();
    for round in 0..runs {
        wait_quiet("load");
        eprintln!("  run {}/{runs}", round + 1);
        let mut command = Command::new(&exe);
        // One test at a time: the bare loops must not share the CPUs either.
        Bench::clean_env(&mut command).args(["--format", "json", "--test-threads", "1"]);
        let outcome = measure::run(&mut command, &watch)?;
        super::verily_passed(&outcome, 4)?;
        all.push(figures(&outcome.stdout)?);
    }
    let pick = |f: fn(&Figures) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
    let (verily, bare) = (pick(|f| f.trivial.0), pick(|f| f.trivial.1));
    let micros = |seconds: f64| format!("{:.2} µs", seconds * 1e6);
    bench.report.lines.push(
        Line::new(
            ROW,
            "load: time per iteration, trivial body, concurrency 50",
        )
        .verily(micros(verily))
        .peer(format!("{} (bare tokio loop)", micros(bare)))
        .ratio(times(verily / bare))
        .target("< 5 µs", verily < 5e-6),
    );
    let (sampled, by_hand) = (pick(|f| f.select.0), pick(|f| f.select.1));
    bench.report.lines.push(
        Line::new(
            ROW,
            "load: SELECT 1 at concurrency 10, sampler on (ratio: bare/verily)",
        )
        .verily(format!("{sampled:.0}/s"))
        .peer(format!("{by_hand:.0}/s (bare loop)"))
        .ratio(times(by_hand / sampled)),
    );
    let (per_sample, share) = (pick(|f| f.sample.0), pick(|f| f.sample.1));
    bench.report.lines.push(
        Line::new(ROW, "load: database sampling (every 10 ms), wall time").verily(format!(
            "{:.2} ms per sample, in a query {:.1}% of the run",
            per_sample * 1e3,
            share * 100.0
        )),
    );
    let raw = |f: fn(&Figures) -> f64| all.iter().map(f).collect::<Vec<_>>();
    bench.report.raw(
        ROW,
        "load trivial verily s/iteration",
        &raw(|f| f.trivial.0),
        |s| format!("{:.3}µs", s * 1e6),
    );
    bench.report.raw(
        ROW,
        "load trivial bare s/iteration",
        &raw(|f| f.trivial.1),
        |s| format!("{:.3}µs", s * 1e6),
    );
    bench
        .report
        .raw(ROW, "load SELECT 1 verily /s", &raw(|f| f.select.0), |v| {
            format!("{v:.0}")
        });
    bench
        .report
        .raw(ROW, "load SELECT 1 bare /s", &raw(|f| f.select.1), |v| {
            format!("{v:.0}")
        });
    Ok(())
}
