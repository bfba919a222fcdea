//! Rows 2 and 6: N persistence tests over the schema's migrations,
//! verily's `#[persists]` against `#[sqlx::test(migrations)]`, both
//! against one throwaway cluster on tmpfs with the same --test-threads;
//! whole-process wall time and peak RSS, alternating, after a warm-up run
//! of each. Then what one test's database costs, timed with psql.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::generate::schema::{MIGRATIONS, migration_files};
use crate::leftovers;
use crate::measure::{self, Outcome, Watch, measured, median, percentile};
use crate::table::{Line, mib, ms, secs, times};
use crate::{Bench, BenchError};

const ROW: u8 = 2;
const MEMORY_ROW: u8 = 6;

/// One measured suite run.
struct SuiteRun {
    wall: f64,
    max_rss_kib: u64,
    /// verily only: each test's duration, and the template's migration time.
    durations: Vec<f64>,
    migrated: f64,
}

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let n = bench.args.persistence_tests();
    let runs = bench.args.runs(5);
    let (_, verily_exe, sqlx_exe) = bench.persistence_subjects()?;
    let before = leftovers::snapshot();
    eprintln!("starting the bench cluster on /dev/shm...");
    let mut cluster = Cluster::start(Path::new("/dev/shm"))?;
    bench.report.notes.push(format!(
        "rows 2 and 6: the bench cluster (PostgreSQL 15, unix socket, fsync=off) is on {}",
        crate::cluster::filesystem(cluster.root())
    ));
    let result = measure_suites(bench, &cluster, n, runs, &verily_exe, &sqlx_exe);
    let root = cluster.root().to_path_buf();
    cluster.stop();
    bench.leftovers.check_local(
        "the bench cluster (pg_ctl stop)",
        &before,
        &[],
        Duration::from_secs(5),
    );
    if root.exists() {
        bench
            .leftovers
            .found
            .push(format!("{} was not removed", root.display()));
    }
    result
}

fn measure_suites(
    bench: &mut Bench,
    cluster: &Cluster,
    n: usize,
    runs: usize,
    verily_exe: &PathBuf,
    sqlx_exe: &PathBuf,
) -> Result<(), BenchError> {
    let threads = bench.threads.to_string();
    let url = cluster.url();
    let watch = Watch {
        related: cluster.pid().into_iter().collect(),
        ..Watch::default()
    };

    let run_verily = |bench: &mut Bench| -> Result<(SuiteRun, Option<f64>), BenchError> {
        let databases = cluster.databases()?;
        let mut command = Command::new(verily_exe);
        Bench::clean_env(&mut command)
            .env("VERILY_DATABASE_URL", &url)
            .args(["--test-threads", &threads, "--format", "json"]);
        let outcome = measure::run(&mut command, &watch)?;
        let durations = super::verily_passed(&outcome, n)?;
        let (_, _, migrated) = super::harness_timings(&outcome.stderr)?;
        bench
            .leftovers
            .check_databases("verily", outcome.pid, &databases, &cluster.databases()?);
        Ok((suite_run(&outcome, durations, migrated), outcome.foreign))
    };
    let run_sqlx = |bench: &mut Bench| -> Result<(SuiteRun, Option<f64>), BenchError> {
        let databases = cluster.databases()?;
        let mut command = Command::new(sqlx_exe);
        Bench::clean_env(&mut command)
            .env("DATABASE_URL", &url)
            .args(["--test-threads", &threads]);
        let outcome = measure::run(&mut command, &watch)?;
        super::libtest_passed(&outcome, n)?;
        bench.leftovers.check_databases(
            "#[sqlx::test]",
            outcome.pid,
            &databases,
            &cluster.databases()?,
        );
        Ok((suite_run(&outcome, Vec::new(), 0.0), outcome.foreign))
    };

    eprintln!("warm-up run of each suite (not counted)...");
    let (warm_verily, _) = run_verily(bench)?;
    let (warm_sqlx, _) = run_sqlx(bench)?;
    eprintln!(
        "  verily {}, #[sqlx::test] {}",
        secs(warm_verily.wall),
        secs(warm_sqlx.wall)
    );
    let mut verily_runs = Vec::new();
    let mut sqlx_runs = Vec::new();
    for round in 0..runs {
        let mut disturbed = std::mem::take(&mut bench.disturbed);
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for verily in order {
            if verily {
                verily_runs.push(measured("persistence, verily", &mut disturbed, || {
                    run_verily(bench)
                })?);
            } else {
                sqlx_runs.push(measured(
                    "persistence, #[sqlx::test]",
                    &mut disturbed,
                    || run_sqlx(bench),
                )?);
            }
        }
        bench.disturbed = disturbed;
        eprintln!(
            "  run {}/{runs}: verily {}, #[sqlx::test] {}",
            round + 1,
            secs(verily_runs[round].wall),
            secs(sqlx_runs[round].wall)
        );
    }

    let verily_walls: Vec<f64> = verily_runs.iter().map(|r| r.wall).collect();
    let sqlx_walls: Vec<f64> = sqlx_runs.iter().map(|r| r.wall).collect();
    let (g, s) = (median(&verily_walls), median(&sqlx_walls));
    let report = &mut bench.report;
    report.lines.push(
        Line::new(
            ROW,
            format!(
                "run {n} persistence tests, {} migrations (wall)",
                MIGRATIONS.len()
            ),
        )
        .verily(secs(g))
        .peer(format!("#[sqlx::test] {}", secs(s)))
        .ratio(format!("sqlx/verily {}", times(s / g)))
        .target("sqlx/verily ≥ 5x", s / g >= 5.0),
    );
    let per_test = |wall: f64| ms(wall * bench.threads as f64 / n as f64);
    report.lines.push(
        Line::new(
            ROW,
            format!("  per test (wall x {} threads / {n})", bench.threads),
        )
        .verily(per_test(g))
        .peer(format!("#[sqlx::test] {}", per_test(s)))
        .ratio(format!("sqlx/verily {}", times(s / g))),
    );
    let durations: Vec<f64> = verily_runs
        .iter()
        .flat_map(|r| r.durations.iter().copied())
        .collect();
    report.lines.push(
        Line::new(ROW, "  verily test duration, median / p90 (json report)").verily(format!(
            "{:.1} / {:.1} ms",
            median(&durations) * 1000.0,
            percentile(&durations, 0.9) * 1000.0
        )),
    );
    let migrated: Vec<f64> = verily_runs.iter().map(|r| r.migrated).collect();
    report.lines.push(
        Line::new(ROW, "  verily: template migrated once per run (stderr)")
            .verily(secs(median(&migrated))),
    );
    report.raw(
        ROW,
        format!("{n} persistence tests, verily (s)"),
        &verily_walls,
        |v| format!("{v:.2}"),
    );
    report.raw(
        ROW,
        format!("{n} persistence tests, #[sqlx::test] (s)"),
        &sqlx_walls,
        |v| format!("{v:.2}"),
    );

    eprintln!("timing one test's database with psql...");
    provisioning(bench, cluster)?;

    let verily_rss: Vec<f64> = verily_runs.iter().map(|r| r.max_rss_kib as f64).collect();
    let sqlx_rss: Vec<f64> = sqlx_runs.iter().map(|r| r.max_rss_kib as f64).collect();
    let (gm, sm) = (median(&verily_rss), median(&sqlx_rss));
    bench.report.lines.push(
        Line::new(
            MEMORY_ROW,
            format!("peak RSS of the test process, {n} persistence tests"),
        )
        .verily(mib(gm))
        .peer(format!("#[sqlx::test] {}", mib(sm)))
        .ratio(format!("verily/sqlx {}", times(gm / sm))),
    );
    bench
        .report
        .raw(MEMORY_ROW, "peak RSS, verily (MiB)", &verily_rss, |v| {
            format!("{:.1}", v / 1024.0)
        });
    bench.report.raw(
        MEMORY_ROW,
        "peak RSS, #[sqlx::test] (MiB)",
        &sqlx_rss,
        |v| format!("{:.1}", v / 1024.0),
    );
    Ok(())
}

fn suite_run(outcome: &Outcome, durations: Vec<f64>, migrated: f64) -> SuiteRun {
    SuiteRun {
        wall: outcome.wall,
        max_rss_kib: outcome.max_rss_kib,
        durations,
        migrated,
    }
}

/// What one test's database costs on the bench cluster, in psql's own
/// timing: verily clones a migrated template (`CREATE DATABASE ...
/// TEMPLATE`), sqlx::test creates an empty database and applies every
/// migration; both drop it afterwards.
fn provisioning(bench: &mut Bench, cluster: &Cluster) -> Result<(), BenchError> {
    let reps = if bench.args.quick { 3 } else { 7 };
    let before = cluster.databases()?;
    let script: String = migration_files()
        .iter()
        .map(|(_, sql)| format!("BEGIN;\n{sql}\nCOMMIT;\n"))
        .collect();
    cluster.psql("CREATE DATABASE bench_template;", "postgres")?;
    cluster.psql(&script, "bench_template")?;
    let mut clone = Vec::new();
    let mut file_copy = Vec::new();
    let mut drop = Vec::new();
    let mut empty = Vec::new();
    let mut migrate = Vec::new();
    for r in 0..reps {
        measure::wait_quiet("psql timings");
        let created = cluster.timings(
            &[
                format!("CREATE DATABASE bench_w{r} TEMPLATE bench_template;"),
                format!("CREATE DATABASE bench_f{r} TEMPLATE bench_template STRATEGY FILE_COPY;"),
                format!("CREATE DATABASE bench_e{r};"),
            ],
            "postgres",
        )?;
        migrate.push(cluster.timed_script(&script, &format!("bench_e{r}"))?);
        let dropped = cluster.timings(
            &[
                format!("DROP DATABASE bench_w{r};"),
                format!("DROP DATABASE bench_f{r};"),
                format!("DROP DATABASE bench_e{r};"),
            ],
            "postgres",
        )?;
        clone.push(created[0]);
        file_copy.push(created[1]);
        empty.push(created[2]);
        drop.push(dropped[0]);
    }
    cluster.psql("DROP DATABASE bench_template;", "postgres")?;
    let left: Vec<String> = cluster.databases()?.difference(&before).cloned().collect();
    if !left.is_empty() {
        return Err(BenchError::new(format!(
            "the psql timings left databases {left:?}"
        )));
    }
    let (c, f, d, e, m) = (
        median(&clone),
        median(&file_copy),
        median(&drop),
        median(&empty),
        median(&migrate),
    );
    let msf = |v: f64| format!("{v:.1} ms");
    let report = &mut bench.report;
    report.lines.push(
        Line::new(
            ROW,
            format!(
                "  one test's database: clone vs create + {} migrations (psql)",
                MIGRATIONS.len()
            ),
        )
        .verily(format!("clone {}", msf(c)))
        .peer(format!("create {} + migrate {}", msf(e), msf(m)))
        .ratio(format!("sqlx/verily {}", times((e + m) / c))),
    );
    report.lines.push(
        Line::new(
            ROW,
            "  CREATE DATABASE ... TEMPLATE, STRATEGY FILE_COPY (psql)",
        )
        .verily(msf(f)),
    );
    report.lines.push(
        Line::new(ROW, "  DROP DATABASE of a test's database (psql)")
            .verily(msf(d))
            .peer(format!("#[sqlx::test] {}", msf(d))),
    );
    report.raw(
        ROW,
        "CREATE DATABASE ... TEMPLATE, WAL_LOG (ms)",
        &clone,
        |v| format!("{v:.1}"),
    );
    report.raw(
        ROW,
        "CREATE DATABASE ... TEMPLATE, FILE_COPY (ms)",
        &file_copy,
        |v| format!("{v:.1}"),
    );
    report.raw(ROW, "CREATE DATABASE from template1 (ms)", &empty, |v| {
        format!("{v:.1}")
    });
    report.raw(ROW, "apply the migrations with psql (ms)", &migrate, |v| {
        format!("{v:.1}")
    });
    report.raw(ROW, "DROP DATABASE (ms)", &drop, |v| format!("{v:.1}"));
    Ok(())
}
