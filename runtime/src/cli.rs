//! The harness command line: libtest's flags, plus categories, sharding,
//! JUnit output and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::errors::CliError;

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A line per test, as libtest prints.
    #[default]
    Pretty,
    /// A character per test.
    Terse,
    /// libtest's JSON, one event per line (see `report::json`).
    Json,
    /// verily's own JSON with a table per category (see `report::verily_json`).
    VerilyJson,
}

/// Which tests `#[ignore]`-style flags select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IgnoredMode {
    /// Run the tests that are not ignored.
    #[default]
    Skip,
    /// `--ignored`: only the ignored ones.
    Only,
    /// `--include-ignored`: both.
    Include,
}

/// Whether to color pretty output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// When stdout is a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

/// `--shard K/N`: the K-th of N disjoint parts of the suite (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// A parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub filters: Vec<String>,
    pub exact: bool,
    pub skip: Vec<String>,
    pub list: bool,
    pub format: Format,
    pub ignored: IgnoredMode,
    pub test_threads: Option<usize>,
    pub nocapture: bool,
    pub color: ColorChoice,
    pub categories: Vec<String>,
    pub skip_categories: Vec<String>,
    pub shard: Option<Shard>,
    pub junit: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub help: bool,
    /// `--logfile PATH`: a line per test, `ok name`, as libtest writes it.
    pub logfile: Option<PathBuf>,
    /// `--show-output`: show passing tests' output too (libtest's meaning).
    pub show_output: bool,
    /// `--report-time`: each test's time in pretty output and JSON.
    pub report_time: bool,
    /// `--shuffle`: run in a random order (printed, so it can be replayed).
    pub shuffle: bool,
    /// `--shuffle-seed N`: shuffle in the order this seed gives.
    pub shuffle_seed: Option<u64>,
    /// `--fail-fast`: start no test after the first failure (as nextest).
    pub fail_fast: bool,
    /// `--tags EXPR` (repeatable: all must hold).
    pub tags: Vec<String>,
    /// `--retries N`: tries after a failure for tests that set none.
    pub retries: Option<u32>,
    /// `--durations N`: list the N slowest tests after the summary.
    pub durations: Option<usize>,
    /// `--slow DURATION`: warn about a test still running after this long.
    pub slow: Option<Duration>,
    /// `--last-failed`: run only what failed in this binary's previous run.
    pub last_failed: bool,
}

/// The flags, for `--help`.
pub const USAGE: &str = "\
Usage: harness [OPTIONS] [FILTERS...]

Runs the verily tests linked into this binary. A test runs when its name
contains any FILTER (or equals it, with --exact).

Options (as libtest):
      --exact                 Match FILTERS and --skip exactly
      --skip FILTER           Skip tests whose names contain FILTER (repeatable)
      --list                  List tests instead of running them
      --format pretty|terse|json|verily-json
                              Output format (json: libtest's events, one per line;
                              verily-json: verily's schema with category tables)
  -q, --quiet                 Same as --format terse
      --ignored               Run only ignored tests
      --include-ignored       Run ignored tests too
      --test-threads N        Tests run at once (default: available cores)
      --nocapture             Print panics as they happen
      --color auto|always|never
      --logfile PATH          Also write a line per test (`ok name`) to PATH
      --show-output           Show the output of passing tests too
      --report-time           Show each test's time (pretty and json)
      --shuffle               Run tests in a random order (prints the seed)
      --shuffle-seed N        Run tests in the order of seed N
  -Z unstable-options         Accepted: nothing here needs nightly
      --ensure-time, --exclude-should-panic
                              Accepted; verily has no time limits or should_panic
  -h, --help                  Print this help

verily:
      --category a,b          Run only these categories (repeatable)
      --skip-category c       Skip these categories (repeatable)
      --shard K/N             Run the K-th of N parts, split by a stable hash of each name
      --junit PATH            Also write a JUnit XML report to PATH
      --timeout DURATION      Default per-test timeout (500ms, 30s, 2m; default 120s)
      --tags EXPR             Run tests whose tags match EXPR: names joined with
                              & | ! and parentheses (or and, or, not); a test's
                              category is one of its tags
      --retries N             Run a failing test up to N more times; one that
                              passes on a retry is reported flaky
      --fail-fast             Start no test after the first failure
      --durations N           List the N slowest tests after the summary
      --slow DURATION         Warn about a test running longer (default 60s)
      --last-failed           Run only the tests that failed in the previous run

Environment: RUST_TEST_THREADS sets --test-threads, RUST_TEST_SHUFFLE=1
--shuffle, RUST_TEST_SHUFFLE_SEED --shuffle-seed, and VERILY_TAGS --tags
(for nextest, which passes no flags to a harness).
";

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Options, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut options = Options::default();
    let mut args = args.into_iter().map(Into::into);
    let mut only_filters = false;
    while let Some(arg) = args.next() {
        if only_filters || !arg.starts_with('-') || arg == "-" {
            options.filters.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &'static str| -> Result<String, CliError> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => args.next().ok_or(CliError::MissingValue(name)),
            }
        };
        match flag.as_str() {
            "--" => only_filters = true,
            "--exact" => options.exact = true,
            "--skip" => options.skip.push(value("--skip")?),
            "--list" => options.list = true,
            "--format" => {
                options.format = match value("--format")?.as_str() {
                    "pretty" => Format::Pretty,
                    "terse" => Format::Terse,
                    "json" => Format::Json,
                    "verily-json" => Format::VerilyJson,
                    other => {
                        return Err(invalid(
                            "--format",
                            other,
                            "one of `pretty`, `terse`, `json`, `verily-json`",
                        ));
                    }
                }
            }
            "-q" | "--quiet" => options.format = Format::Terse,
            "--ignored" => options.ignored = IgnoredMode::Only,
            "--include-ignored" => options.ignored = IgnoredMode::Include,
            "--test-threads" => {
                options.test_threads = Some(parse_threads(&value("--test-threads")?)?)
            }
            "--nocapture" | "--no-capture" => options.nocapture = true,
            "--color" => {
                options.color = match value("--color")?.as_str() {
                    "auto" => ColorChoice::Auto,
                    "always" => ColorChoice::Always,
                    "never" => ColorChoice::Never,
                    other => {
                        return Err(invalid(
                            "--color",
                            other,
                            "one of `auto`, `always`, `never`",
                        ));
                    }
                }
            }
            "--category" => options.categories.extend(split_list(&value("--category")?)),
            "--skip-category" => options
                .skip_categories
                .extend(split_list(&value("--skip-category")?)),
            "--shard" => options.shard = Some(parse_shard(&value("--shard")?)?),
            "--junit" => options.junit = Some(PathBuf::from(value("--junit")?)),
            "--timeout" => {
                let raw = value("--timeout")?;
                let duration = parse_duration(&raw).map_err(|_| {
                    invalid(
                        "--timeout",
                        &raw,
                        "a duration such as `500ms`, `30s` or `2m`",
                    )
                })?;
                options.timeout = Some(duration);
            }
            "-h" | "--help" => options.help = true,
            "--logfile" => options.logfile = Some(PathBuf::from(value("--logfile")?)),
            "--show-output" => options.show_output = true,
            "--report-time" => options.report_time = true,
            "--shuffle" => options.shuffle = true,
            "--shuffle-seed" => {
                let raw = value("--shuffle-seed")?;
                let seed = raw
                    .parse()
                    .map_err(|_| invalid("--shuffle-seed", &raw, "a number"))?;
                options.shuffle_seed = Some(seed);
            }
            "--fail-fast" => options.fail_fast = true,
            "--tags" => options.tags.push(value("--tags")?),
            "--retries" => {
                let raw = value("--retries")?;
                let retries = raw
                    .parse()
                    .map_err(|_| invalid("--retries", &raw, "a whole number"))?;
                options.retries = Some(retries);
            }
            "--durations" => {
                let raw = value("--durations")?;
                let count = raw
                    .parse()
                    .map_err(|_| invalid("--durations", &raw, "a whole number"))?;
                options.durations = Some(count);
            }
            "--slow" => {
                let raw = value("--slow")?;
                let duration = parse_duration(&raw)
                    .map_err(|_| invalid("--slow", &raw, "a duration such as `10s` or `2m`"))?;
                options.slow = Some(duration);
            }
            "--last-failed" => options.last_failed = true,
            // Accepted for libtest compatibility: verily has no benchmarks,
            // no time limits of libtest's kind and no `should_panic`, and
            // nothing here needs nightly's `-Z unstable-options`.
            "--test"
            | "--bench"
            | "--force-run-in-process"
            | "--ensure-time"
            | "--exclude-should-panic" => {}
            "-Z" => {
                value("-Z")?;
            }
            _ if flag.starts_with("-Z") => {}
            _ => return Err(CliError::UnknownFlag(flag)),
        }
    }
    // nextest lists and runs tests through the harness with no way to pass
    // it flags; it passes the environment.
    let env = crate::env::env();
    if let Some(expression) = &env.tags {
        options.tags.push(expression.clone());
    }
    if env.shuffle {
        options.shuffle = true;
    }
    if options.shuffle_seed.is_none() {
        options.shuffle_seed = env.shuffle_seed;
    }
    Ok(options)
}

fn invalid(flag: &'static str, value: &str, expected: &str) -> CliError {
    CliError::InvalidValue {
        flag,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

fn split_list(raw: &str) -> impl Iterator<Item = String> + '_ {
    raw.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

fn parse_threads(raw: &str) -> Result<usize, CliError> {
    match raw.parse::<usize>() {
        Ok(threads) if threads > 0 => Ok(threads),
        _ => Err(invalid(
            "--test-threads",
            raw,
            "a whole number of at least 1",
        )),
    }
}

fn parse_shard(raw: &str) -> Result<Shard, CliError> {
    let expected = "K/N with 1 <= K <= N, such as `1/3`";
    let (index, count) = raw
        .split_once('/')
        .ok_or_else(|| invalid("--shard", raw, expected))?;
    match (index.trim().parse::<u64>(), count.trim().parse::<u64>()) {
        (Ok(index), Ok(count)) if index >= 1 && index <= count => Ok(Shard { index, count }),
        _ => Err(invalid("--shard", raw, expected)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_flags() {
        let options = parse([
            "wiring",
            "--exact",
            "--skip",
            "slow",
            "--skip=flaky",
            "--format",
            "json",
            "--include-ignored",
            "--test-threads=3",
            "--nocapture",
            "--color",
            "never",
        ])
        .unwrap();
        assert_eq!(options.filters, ["wiring"]);
        assert!(options.exact);
        assert_eq!(options.skip, ["slow", "flaky"]);
        assert_eq!(options.format, Format::Json);
        assert_eq!(options.ignored, IgnoredMode::Include);
        assert_eq!(options.test_threads, Some(3));
        assert!(options.nocapture);
        assert_eq!(options.color, ColorChoice::Never);
    }

    #[test]
    fn verily_flags() {
        let options = parse([
            "--category",
            "wiring,schema",
            "--category=persistence",
            "--skip-category",
            "e2e",
            "--shard",
            "2/3",
            "--junit",
            "out.xml",
            "--timeout",
            "1m30s",
        ])
        .unwrap();
        assert_eq!(options.categories, ["wiring", "schema", "persistence"]);
        assert_eq!(options.skip_categories, ["e2e"]);
        assert_eq!(options.shard, Some(Shard { index: 2, count: 3 }));
        assert_eq!(options.junit, Some(PathBuf::from("out.xml")));
        assert_eq!(options.timeout, Some(Duration::from_secs(90)));
    }

    #[test]
    fn libtest_flags_verily_gives_meaning_to() {
        let options = parse([
            "--logfile=run.log",
            "--show-output",
            "--report-time",
            "-Zunstable-options",
            "--shuffle-seed",
            "42",
            "--ensure-time",
            "--exclude-should-panic",
            "--format=json",
        ])
        .unwrap();
        assert_eq!(options.logfile, Some(PathBuf::from("run.log")));
        assert!(options.show_output && options.report_time);
        assert_eq!(options.shuffle_seed, Some(42));
        assert_eq!(options.format, Format::Json);
    }

    #[test]
    fn ci_flags() {
        let options = parse([
            "--tags",
            "slow & !nightly",
            "--tags=e2e",
            "--retries",
            "2",
            "--fail-fast",
            "--durations",
            "5",
            "--slow",
            "10s",
            "--last-failed",
            "--format",
            "verily-json",
        ])
        .unwrap();
        assert_eq!(options.tags, ["slow & !nightly", "e2e"]);
        assert_eq!(options.retries, Some(2));
        assert!(options.fail_fast && options.last_failed);
        assert_eq!(options.durations, Some(5));
        assert_eq!(options.slow, Some(Duration::from_secs(10)));
        assert_eq!(options.format, Format::VerilyJson);
    }

    #[test]
    fn bad_command_lines_name_the_flag() {
        assert_eq!(
            parse(["--frobnicate"]).unwrap_err().to_string(),
            "Unrecognized option: 'frobnicate' (run with --help for the flags)"
        );
        assert_eq!(
            parse(["--skip"]).unwrap_err(),
            CliError::MissingValue("--skip")
        );
        for (args, flag) in [
            (["--shard", "0/3"], "--shard"),
            (["--shard", "4/3"], "--shard"),
            (["--format", "xml"], "--format"),
            (["--test-threads", "0"], "--test-threads"),
            (["--timeout", "soon"], "--timeout"),
            (["--color", "blue"], "--color"),
            (["--retries", "-1"], "--retries"),
            (["--slow", "later"], "--slow"),
            (["--shuffle-seed", "x"], "--shuffle-seed"),
        ] {
            let error = parse(args).unwrap_err();
            assert!(
                matches!(&error, CliError::InvalidValue { flag: f, .. } if *f == flag),
                "{args:?} gave {error:?}"
            );
        }
    }

    #[test]
    fn after_double_dash_everything_is_a_filter() {
        let options = parse(["--", "--exact"]).unwrap();
        assert_eq!(options.filters, ["--exact"]);
        assert!(!options.exact);
    }
}
