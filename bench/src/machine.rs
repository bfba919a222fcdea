//! The document written to BENCHMARKS.md: when, on what machine, with
//! which command, and the table.

use std::fs;
use std::process::Command;

use crate::Bench;

/// Cores (nproc), memory (/proc/meminfo), CPU model (/proc/cpuinfo).
pub fn describe() -> String {
    let cores = Command::new("nproc")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .find(|line| line.starts_with("MemTotal:"))?
                .to_owned();
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB RAM", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "? RAM".to_owned());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .find(|line| line.starts_with("model name"))?
                .to_owned();
            Some(line.split_once(':')?.1.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores (nproc), {memory}, {cpu}")
}

fn tool_version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| format!("{program}: not found"))
}

pub fn document(table: &str, command: &str, elapsed: f64, bench: &Bench) -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let commit = Command::new("git")
        .arg("-C")
        .arg(&bench.workspace.repo)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .arg("-C")
        .arg(&bench.workspace.repo)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|out| !out.stdout.is_empty());
    format!(
        "# Benchmarks\n\n\
         Measured by `bench/` (see bench/README.md for what each row measures and how).\n\n\
         - date: {date}\n\
         - machine: {}\n\
         - verily: commit {commit}{}\n\
         - tools: {}; {}; {}; {}\n\
         - command (from the repository root): `{command}`\n\
         - took {:.1} min, --test-threads {} for every suite run\n\n\
         Each figure is the median of its runs; each ratio names what it divides (`verily/libtest`: verily's figure over libtest's).\n\n\
         {table}",
        describe(),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        tool_version("rustc", &["--version"]),
        tool_version("cargo-nextest", &["nextest", "--version"]),
        tool_version(
            &format!("{}/postgres", crate::cluster::PG_BIN),
            &["--version"]
        ),
        tool_version(
            "docker",
            &["version", "--format", "Docker {{.Server.Version}}"]
        ),
        elapsed / 60.0,
        bench.threads,
    )
}
