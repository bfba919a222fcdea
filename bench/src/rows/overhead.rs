//! Row 1: whole-process wall time of the built test binary with N trivial
//! tests, verily's harness against libtest's; `--list --format terse`
//! and `--exact NAME` (nextest calls the latter once per test).

use std::path::Path;
use std::process::Command;

use crate::measure::{self, Watch, median, wait_quiet};
use crate::table::{Line, ms, times};
use crate::{Bench, BenchError, cargo, generate};

const ROW: u8 = 1;

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let n = bench.args.overhead_tests();
    let runs = bench.args.runs(11);
    let (verily, lt) = generate::overhead::write(&bench.workspace, n)?;
    let verily_exe = cargo::build_test(&verily, &bench.target, "harness")?;
    let lt_exe = cargo::build_test(&lt, &bench.target, "harness")?;
    let middle = n / 2;
    let verily_exact = format!("harness::t{middle}");
    let lt_exact = format!("t{middle}");

    // Once, with output: every test passes and both list all n.
    let check = Watch::default();
    let outcome = measure::run(
        Bench::clean_env(&mut Command::new(&verily_exe)).args(["--format", "json"]),
        &check,
    )?;
    super::verily_passed(&outcome, n)?;
    super::libtest_passed(
        &measure::run(Bench::clean_env(&mut Command::new(&lt_exe)), &check)?,
        n,
    )?;
    for (exe, name) in [(&verily_exe, &verily_exact), (&lt_exe, &lt_exact)] {
        let listed = measure::run(
            Command::new(exe).args(["--list", "--format", "terse"]),
            &check,
        )?
        .success()?;
        let count = listed
            .stdout
            .lines()
            .filter(|line| line.ends_with(": test"))
            .count();
        if count != n {
            return Err(BenchError::new(format!(
                "{} --list printed {count} tests, expected {n}",
                exe.display()
            )));
        }
        let one =
            measure::run(Command::new(exe).args(["--exact", name.as_str()]), &check)?.success()?;
        if !one.stdout.contains("1 passed") {
            return Err(BenchError::new(format!(
                "{} --exact {name} did not run one test:\n{}",
                exe.display(),
                one.stdout
            )));
        }
    }

    let quiet = Watch {
        capture: false,
        ..Watch::default()
    };
    let time = |exe: &Path, args: &[&str]| -> Result<f64, BenchError> {
        let mut command = Command::new(exe);
        Bench::clean_env(&mut command).args(args);
        Ok(measure::run(&mut command, &quiet)?.success()?.wall)
    };
    // (verily, libtest) per measure, in run order.
    let mut all = [
        (Vec::new(), Vec::new()),
        (Vec::new(), Vec::new()),
        (Vec::new(), Vec::new()),
    ];
    for round in 0..runs {
        wait_quiet("harness overhead");
        eprintln!("  run {}/{runs}", round + 1);
        let measures: [(&[&str], &[&str]); 3] = [
            (&[], &[]),
            (
                &["--list", "--format", "terse"],
                &["--list", "--format", "terse"],
            ),
            (&["--exact", &verily_exact], &["--exact", &lt_exact]),
        ];
        for ((verily_args, lt_args), (verily_times, lt_times)) in
            measures.into_iter().zip(all.iter_mut())
        {
            // Alternate which goes first, so neither always runs on a warmer cache.
            if round % 2 == 0 {
                verily_times.push(time(&verily_exe, verily_args)?);
                lt_times.push(time(&lt_exe, lt_args)?);
            } else {
                lt_times.push(time(&lt_exe, lt_args)?);
                verily_times.push(time(&verily_exe, verily_args)?);
            }
        }
    }

    let labels = [
        format!("run all {n} trivial tests (wall)"),
        format!("--list --format terse, {n} tests"),
        format!("--exact NAME, one of {n} tests"),
    ];
    for (index, ((verily_times, lt_times), label)) in all.iter().zip(&labels).enumerate() {
        let (g, l) = (median(verily_times), median(lt_times));
        let line = Line::new(ROW, label.clone())
            .verily(ms(g))
            .peer(format!("libtest {}", ms(l)))
            .ratio(format!("verily/libtest {}", times(g / l)));
        bench.report.lines.push(if index == 0 {
            line.target("verily/libtest ≤ 1.2x", g / l <= 1.2)
        } else {
            line.target("verily < 50 ms", g < 0.050)
        });
        bench
            .report
            .raw(ROW, format!("{label}, verily (ms)"), verily_times, |v| {
                format!("{:.1}", v * 1000.0)
            });
        bench
            .report
            .raw(ROW, format!("{label}, libtest (ms)"), lt_times, |v| {
                format!("{:.1}", v * 1000.0)
            });
    }
    Ok(())
}
