//! Row 4: the persistence crate's N tests under `cargo nextest run` (a
//! process per test) against its harness binary run directly (what
//! `cargo test --test harness` runs), both with verily's own local
//! cluster (no DATABASE_URL) and the same --test-threads, after a warm
//! build so compile time is excluded. After each run, no server process
//! and no cluster directory may be left once a short grace has passed.

use std::process::Command;
use std::time::Duration;

use crate::leftovers;
use crate::measure::{self, Outcome, Watch, measured, median, tail};
use crate::table::{Line, secs, times};
use crate::{Bench, BenchError, cargo};

const ROW: u8 = 4;
/// Time a shared cluster may take to shut down once idle.
const GRACE: Duration = Duration::from_secs(10);

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let n = bench.args.persistence_tests();
    let runs = bench.args.runs(3);
    let (crate_dir, verily_exe, _) = bench.persistence_subjects()?;
    let threads = bench.threads.to_string();
    let watch = Watch::default();

    let nextest = |bench: &mut Bench| -> Result<(f64, Option<f64>), BenchError> {
        let before = leftovers::snapshot();
        let mut command = cargo::cargo(&crate_dir, &bench.target);
        Bench::clean_env(&mut command)
            .env("VERILY_POSTGRES", "local")
            .args(["nextest", "run", "--manifest-path"])
            .arg(crate_dir.join("Cargo.toml"))
            .args([
                "--test",
                "harness",
                "--no-fail-fast",
                "--test-threads",
                &threads,
            ]);
        let outcome = measure::run(&mut command, &watch)?;
        bench
            .leftovers
            .check_local("cargo nextest run", &before, &[], GRACE);
        nextest_passed(&outcome, n)?;
        Ok((outcome.wall, outcome.foreign))
    };
    let direct = |bench: &mut Bench| -> Result<(f64, Option<f64>), BenchError> {
        let before = leftovers::snapshot();
        let mut command = Command::new(&verily_exe);
        Bench::clean_env(&mut command)
            .env("VERILY_POSTGRES", "local")
            .args(["--test-threads", &threads, "--format", "json"]);
        let outcome = measure::run(&mut command, &watch)?;
        bench
            .leftovers
            .check_local("the harness run directly", &before, &[], GRACE);
        super::verily_passed(&outcome, n)?;
        Ok((outcome.wall, outcome.foreign))
    };

    // A warm build: nextest builds (a no-op after row 2's build) and lists.
    let mut list = cargo::cargo(&crate_dir, &bench.target);
    list.args(["nextest", "list", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .args(["--test", "harness"]);
    crate::cluster::checked(&mut list)?;
    let mut under_nextest = Vec::new();
    let mut run_directly = Vec::new();
    let mut disturbed = std::mem::take(&mut bench.disturbed);
    for round in 0..runs {
        if round % 2 == 0 {
            under_nextest.push(measured("nextest", &mut disturbed, || nextest(bench))?);
            run_directly.push(measured("harness directly", &mut disturbed, || {
                direct(bench)
            })?);
        } else {
            run_directly.push(measured("harness directly", &mut disturbed, || {
                direct(bench)
            })?);
            under_nextest.push(measured("nextest", &mut disturbed, || nextest(bench))?);
        }
        eprintln!(
            "  run {}/{runs}: nextest {}, directly {}",
            round + 1,
            secs(under_nextest[round]),
            secs(run_directly[round])
        );
    }
    bench.disturbed = disturbed;
    let (x, d) = (median(&under_nextest), median(&run_directly));
    bench.report.lines.push(
        Line::new(
            ROW,
            format!("{n} persistence tests, own local cluster (wall)"),
        )
        .verily(format!("nextest {}", secs(x)))
        .peer(format!("harness directly {}", secs(d)))
        .ratio(format!("nextest/direct {}", times(x / d)))
        .target("nextest/direct ≤ 2x", x / d <= 2.0),
    );
    let per_test = |wall: f64| crate::table::ms(wall * bench.threads as f64 / n as f64);
    bench.report.lines.push(
        Line::new(
            ROW,
            format!("  per test (wall x {} threads / {n})", bench.threads),
        )
        .verily(format!("nextest {}", per_test(x)))
        .peer(format!("harness directly {}", per_test(d))),
    );
    bench
        .report
        .raw(ROW, "cargo nextest run (s)", &under_nextest, |v| {
            format!("{v:.2}")
        });
    bench
        .report
        .raw(ROW, "harness run directly (s)", &run_directly, |v| {
            format!("{v:.2}")
        });
    Ok(())
}

/// nextest's summary line: `N tests run: N passed, ...`.
fn nextest_passed(outcome: &Outcome, n: usize) -> Result<(), BenchError> {
    let expected = format!("{n} tests run: {n} passed");
    let text = format!("{}\n{}", outcome.stdout, outcome.stderr);
    if outcome.status.success() && text.contains(&expected) {
        Ok(())
    } else {
        Err(BenchError::new(format!(
            "{}: no `{expected}` ({})\n--- output (tail)\n{}",
            outcome.command,
            outcome.status,
            tail(&text, 40)
        )))
    }
}
