//! Row 5: compile time of a crate of N annotated tests against the same
//! checks written by hand as plain `#[test]` functions. Dependencies are
//! built once; each measured build is `cargo test --no-run` right after
//! `cargo clean -p <crate>` (clean), or right after touching one of the
//! test modules (incremental).

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::generate::compile::{self, PLAIN_CRATE, TESTS_PER_MODULE, VERILY_CRATE};
use crate::measure::{self, Watch, measured, median};
use crate::table::{Line, secs, times};
use crate::{Bench, BenchError, cargo};

const ROW: u8 = 5;

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let modules = bench.args.compile_modules();
    let n = modules * TESTS_PER_MODULE;
    let runs = bench.args.runs(3);
    let (verily, plain) = compile::write(&bench.workspace, modules)?;

    // Dependencies (and the crates once), then the test counts.
    let verily_exe = cargo::build_test(&verily, &bench.target, "harness")?;
    let plain_exe = cargo::build_test(&plain, &bench.target, "harness")?;
    let watch = Watch::default();
    for exe in [&verily_exe, &plain_exe] {
        let listed = measure::run(
            Command::new(exe).args(["--list", "--format", "terse"]),
            &watch,
        )?
        .success()?;
        let count = listed
            .stdout
            .lines()
            .filter(|line| line.ends_with(": test"))
            .count();
        if count != n {
            return Err(BenchError::new(format!(
                "{} lists {count} tests, expected {n}",
                exe.display()
            )));
        }
    }

    let target = bench.target.clone();
    let build = |dir: &Path| -> Result<(f64, Option<f64>), BenchError> {
        let mut command = cargo::cargo(dir, &target);
        Bench::clean_env(&mut command).args(["test", "--no-run"]);
        let outcome = measure::run(&mut command, &watch)?.success()?;
        Ok((outcome.wall, outcome.foreign))
    };
    let clean = |dir: &Path, name: &str| -> Result<(f64, Option<f64>), BenchError> {
        crate::cluster::checked(cargo::cargo(dir, &target).args(["clean", "-p", name]))?;
        build(dir)
    };
    let touched = |dir: &Path| -> Result<(f64, Option<f64>), BenchError> {
        let module = dir.join("tests/harness/m00.rs");
        File::options()
            .write(true)
            .open(&module)
            .and_then(|file| file.set_modified(SystemTime::now()))
            .map_err(|error| {
                BenchError::new(format!("cannot touch {}: {error}", module.display()))
            })?;
        build(dir)
    };

    let mut clean_verily = Vec::new();
    let mut clean_plain = Vec::new();
    let mut incr_verily = Vec::new();
    let mut incr_plain = Vec::new();
    let mut disturbed = std::mem::take(&mut bench.disturbed);
    for round in 0..runs {
        let sides: [(&Path, &str, &mut Vec<f64>, &mut Vec<f64>); 2] = [
            (&verily, VERILY_CRATE, &mut clean_verily, &mut incr_verily),
            (&plain, PLAIN_CRATE, &mut clean_plain, &mut incr_plain),
        ];
        let order: Vec<_> = if round % 2 == 0 {
            sides.into_iter().collect()
        } else {
            sides.into_iter().rev().collect()
        };
        for (dir, name, clean_times, incr_times) in order {
            clean_times.push(measured(
                &format!("clean build of {name}"),
                &mut disturbed,
                || clean(dir, name),
            )?);
            incr_times.push(measured(
                &format!("incremental build of {name}"),
                &mut disturbed,
                || touched(dir),
            )?);
        }
        eprintln!(
            "  run {}/{runs}: clean {} vs {}, incremental {} vs {}",
            round + 1,
            secs(clean_verily[round]),
            secs(clean_plain[round]),
            secs(incr_verily[round]),
            secs(incr_plain[round])
        );
    }
    bench.disturbed = disturbed;

    let (cg, cp) = (median(&clean_verily), median(&clean_plain));
    let (ig, ip) = (median(&incr_verily), median(&incr_plain));
    let report = &mut bench.report;
    report.lines.push(
        Line::new(
            ROW,
            format!("clean build of {n} tests, {modules} files (cargo test --no-run)"),
        )
        .verily(secs(cg))
        .peer(format!("hand-written #[test] {}", secs(cp)))
        .ratio(format!("verily/plain {}", times(cg / cp)))
        .target("verily/plain ≤ 1.3x", cg / cp <= 1.3),
    );
    report.lines.push(
        Line::new(
            ROW,
            format!("  rebuild after touching 1 of {modules} files"),
        )
        .verily(secs(ig))
        .peer(format!("hand-written #[test] {}", secs(ip)))
        .ratio(format!("verily/plain {}", times(ig / ip))),
    );
    report.raw(ROW, "clean build, verily (s)", &clean_verily, |v| {
        format!("{v:.2}")
    });
    report.raw(ROW, "clean build, hand-written (s)", &clean_plain, |v| {
        format!("{v:.2}")
    });
    report.raw(
        ROW,
        "rebuild after a touch, verily (s)",
        &incr_verily,
        |v| format!("{v:.2}"),
    );
    report.raw(
        ROW,
        "rebuild after a touch, hand-written (s)",
        &incr_plain,
        |v| format!("{v:.2}"),
    );
    Ok(())
}
