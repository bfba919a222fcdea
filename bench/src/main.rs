//! One benchmark command for verily: generates the subject crates
//! under bench/work/, builds them into bench/target/, measures every row
//! against its peer in the same run, prints one table and writes it into
//! BENCHMARKS.md. See bench/README.md.

mod cargo;
mod cli;
mod cluster;
mod generate;
mod leftovers;
mod machine;
mod measure;
mod rows;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use cli::{Args, Row};
use generate::Workspace;
use leftovers::Leftovers;
use table::{Line, Report};

/// A failure of the bench itself (a build, a run, a failed test): the
/// message says what was run and what it printed.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    pub fn new(message: impl Into<String>) -> Self {
        BenchError(message.into())
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the rows share: where things are, how much to measure, and
/// what was found so far.
pub struct Bench {
    pub args: Args,
    pub workspace: Workspace,
    /// bench/target, the subject crates' CARGO_TARGET_DIR.
    pub target: PathBuf,
    /// --test-threads for every suite run: the machine's cores.
    pub threads: usize,
    pub report: Report,
    pub leftovers: Leftovers,
    /// Runs kept although other processes used the CPUs meanwhile, with
    /// the cores they used.
    pub disturbed: Vec<(String, f64)>,
    /// The persistence subjects once built: `(verily crate dir,
    /// verily harness, sqlx harness)`, shared by rows 2, 3, 4 and 6.
    persistence: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Bench {
    /// Builds the persistence subjects once.
    pub fn persistence_subjects(&mut self) -> Result<(PathBuf, PathBuf, PathBuf), BenchError> {
        if let Some(built) = &self.persistence {
            return Ok(built.clone());
        }
        let n = self.args.persistence_tests();
        let (verily, peer) = generate::persistence::write(&self.workspace, n)?;
        let verily_exe = cargo::build_test(&verily, &self.target, "harness")?;
        let peer_exe = cargo::build_test(&peer, &self.target, "harness")?;
        self.persistence = Some((verily, verily_exe, peer_exe));
        Ok(self.persistence.clone().expect("just set"))
    }

    /// The environment of a measured run: none of the caller's variables
    /// that would change where PostgreSQL comes from or how many threads run,
    /// and none of what `cargo run` set for the driver itself: build scripts
    /// (ring's) rerun when CARGO_PKG_NAME or CARGO_MANIFEST_DIR change, so
    /// builds from the driver and from a shell would undo each other's.
    pub fn clean_env(command: &mut Command) -> &mut Command {
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("VERILY_")
                || key.starts_with("NEXTEST")
                || key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || key.starts_with("CARGO_BIN_")
                || matches!(
                    &*key,
                    "DATABASE_URL"
                        | "RUST_TEST_THREADS"
                        | "RUST_BACKTRACE"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_MAKEFLAGS"
                        | "OUT_DIR"
                )
            {
                command.env_remove(&*key);
            }
        }
        command
    }
}

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "error: run the bench as root: its PostgreSQL clusters run as the `postgres` user (runuser), and the cold-start rows check what verily does as root"
        );
        return ExitCode::from(2);
    }
    leftovers::become_subreaper();
    if args.quick {
        measure::set_wait_budget(std::time::Duration::from_secs(60));
    }

    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = bench_dir
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf();
    let started = Instant::now();
    let mut bench = Bench {
        workspace: Workspace {
            repo: repo.clone(),
            work: bench_dir.join("work"),
        },
        target: bench_dir.join("target"),
        threads: std::thread::available_parallelism().map_or(2, usize::from),
        report: Report::default(),
        leftovers: Leftovers::default(),
        disturbed: Vec::new(),
        persistence: None,
        args,
    };

    let mut failed = Vec::new();
    for row in Row::ALL {
        if !bench.args.selected(row) {
            bench.report.lines.push(Line::new(
                row.number(),
                format!("{}: not run (--only)", row.title()),
            ));
            continue;
        }
        if row == Row::Memory {
            // Measured during the persistence row's runs.
            continue;
        }
        eprintln!("\n== {}. {}", row.number(), row.title());
        let result = match row {
            Row::Overhead => rows::overhead::run(&mut bench),
            Row::Persistence => rows::persistence::run(&mut bench),
            Row::ColdStart => rows::cold_start::run(&mut bench),
            Row::Nextest => rows::nextest::run(&mut bench),
            Row::Compile => rows::compile::run(&mut bench),
            Row::E2e => rows::e2e::run(&mut bench),
            Row::Memory => Ok(()),
            Row::Load => rows::load::run(&mut bench),
        };
        if let Err(error) = result {
            eprintln!("row {} failed: {error}", row.number());
            let first_line = error
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            bench.report.lines.push(
                Line::new(row.number(), format!("{}: FAILED", row.title()))
                    .verily(first_line.chars().take(120).collect::<String>()),
            );
            failed.push(format!("{}. {}: {error}", row.number(), row.title()));
        }
    }
    // Rows print in their number order whatever order they ran in.
    bench.report.lines.sort_by_key(|line| line.row);
    bench.report.raw.sort_by_key(|raw| raw.row);

    let elapsed = started.elapsed().as_secs_f64();
    if !bench.disturbed.is_empty() {
        // label -> (runs, most cores used by others), in first-seen order.
        let mut by_label: Vec<(String, usize, f64)> = Vec::new();
        for (label, cores) in &bench.disturbed {
            match by_label.iter_mut().find(|(seen, _, _)| seen == label) {
                Some((_, count, most)) => {
                    *count += 1;
                    *most = most.max(*cores);
                }
                None => by_label.push((label.clone(), 1, *cores)),
            }
        }
        bench.report.notes.push(format!(
            "runs kept although other processes used more than {} cores meanwhile: {}",
            measure::FOREIGN_LIMIT,
            by_label
                .iter()
                .map(|(label, count, most)| format!("{label} {count}x (up to {most:.2} cores)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (waited, spent) = measure::waited();
    bench.report.notes.push(format!(
        "waited {waited:.0} s in all for quiet CPUs before runs{}",
        if spent {
            " (the wait budget ran out: later runs did not wait)"
        } else {
            ""
        }
    ));
    let command =
        std::iter::once("cargo run --release --manifest-path bench/Cargo.toml --".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ");
    let document = machine::document(&bench.report.render(), &command, elapsed, &bench);
    println!("\n{document}");

    let full = !bench.args.quick && bench.args.only.is_empty();
    let destination = if full {
        repo.join("BENCHMARKS.md")
    } else {
        bench.workspace.work.join("BENCHMARKS.md")
    };
    match std::fs::write(&destination, &document) {
        Ok(()) => eprintln!("wrote {}", destination.display()),
        Err(error) => eprintln!("cannot write {}: {error}", destination.display()),
    }
    if !full {
        eprintln!("(only a run without --quick or --only rewrites the repository's BENCHMARKS.md)");
    }

    let mut ok = true;
    if !failed.is_empty() {
        eprintln!("\nFAILED rows:\n{}", failed.join("\n\n"));
        ok = false;
    }
    if !bench.leftovers.found.is_empty() {
        eprintln!(
            "\nFAILED: runs left things behind (a verily bug?):\n  {}",
            bench.leftovers.found.join("\n  ")
        );
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
