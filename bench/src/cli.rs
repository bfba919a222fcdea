//! The command line: `[--runs N] [--quick] [--only ROW]...`.

/// The rows of the table, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    Overhead,
    Persistence,
    ColdStart,
    Nextest,
    Compile,
    Memory,
    Load,
    E2e,
}

impl Row {
    pub const ALL: [Row; 8] = [
        Row::Overhead,
        Row::Persistence,
        Row::ColdStart,
        Row::Nextest,
        Row::Compile,
        Row::Memory,
        Row::Load,
        Row::E2e,
    ];

    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            Row::Overhead => "overhead",
            Row::Persistence => "persistence",
            Row::ColdStart => "cold-start",
            Row::Nextest => "nextest",
            Row::Compile => "compile",
            Row::Memory => "memory",
            Row::Load => "load",
            Row::E2e => "e2e",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Row::Overhead => "harness overhead vs libtest",
            Row::Persistence => "persistence isolation vs #[sqlx::test]",
            Row::ColdStart => "cold start to the first persistence test",
            Row::Nextest => "under nextest vs the harness run directly",
            Row::Compile => "compile time vs hand-written #[test]",
            Row::Memory => "peak memory during the persistence run",
            Row::Load => "#[verily::load]: overhead per iteration and database sampling",
            Row::E2e => "end-to-end: the example's API suite and its app start",
        }
    }

    /// Measured together with another row (memory with persistence).
    fn measured_by(self) -> Row {
        match self {
            Row::Memory => Row::Persistence,
            other => other,
        }
    }
}

#[derive(Debug, Default)]
pub struct Args {
    /// Measured runs of every row (default: each row's own).
    pub runs: Option<usize>,
    pub quick: bool,
    /// Rows to run; empty: all.
    pub only: Vec<Row>,
    pub help: bool,
}

pub const USAGE: &str = "\
usage: cargo run --release --manifest-path bench/Cargo.toml -- [--runs N] [--quick] [--only ROW]...

  --runs N     measured runs of every row (default: 11 for overhead, 5 for
               persistence and cold start, 3 for nextest and compile)
  --quick      a smoke check: fewer tests and one run per row; writes
               bench/work/BENCHMARKS.md, not the repository's
  --only ROW   run only this row (repeatable, or comma-separated): a number
               or one of overhead, persistence, cold-start, nextest, compile,
               memory (memory is measured by the persistence runs), load, e2e";

pub fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--runs" => {
                let runs = value("--runs")?;
                parsed.runs = Some(
                    runs.parse()
                        .ok()
                        .filter(|&n: &usize| n > 0)
                        .ok_or_else(|| format!("--runs {runs}: expected a positive number"))?,
                );
            }
            "--quick" => parsed.quick = true,
            "--only" => {
                for name in value("--only")?.split(',') {
                    parsed.only.push(row_named(name.trim())?);
                }
            }
            "-h" | "--help" => parsed.help = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; expected one of --runs, --quick, --only, --help"
                ));
            }
        }
    }
    Ok(parsed)
}

fn row_named(name: &str) -> Result<Row, String> {
    Row::ALL
        .into_iter()
        .find(|row| row.name() == name || row.number().to_string() == name)
        .ok_or_else(|| {
            format!(
                "--only {name}: unknown row; expected a number 1-6 or one of {}",
                Row::ALL.map(Row::name).join(", ")
            )
        })
}

impl Args {
    /// Whether `row` is measured in this run.
    pub fn selected(&self, row: Row) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|&only| only.measured_by() == row.measured_by())
    }

    /// Measured runs of a row whose full default is `full`.
    pub fn runs(&self, full: usize) -> usize {
        self.runs.unwrap_or(if self.quick { 1 } else { full })
    }

    pub fn overhead_tests(&self) -> usize {
        if self.quick { 1000 } else { 5000 }
    }

    pub fn persistence_tests(&self) -> usize {
        if self.quick { 20 } else { 200 }
    }

    pub fn compile_modules(&self) -> usize {
        if self.quick { 2 } else { 10 }
    }
}
