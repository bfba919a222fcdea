//! What a run tells the person (pretty, terse) or the machine (json, junit).

pub mod json;
pub mod junit;
pub mod pretty;
pub mod verily_json;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::category;
use crate::cli::{ColorChoice, Format, Options};
use crate::model::Failure;
use crate::registry::TestDescriptor;
use crate::select::Selection;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(Failure),
    /// Stopped at this timeout.
    TimedOut(Duration),
    /// Not run: ignored and the run did not ask for ignored tests.
    Ignored,
    /// Stopped itself because this machine lacks what it needs; says why.
    Skipped(String),
}

impl Outcome {
    /// The word used in JSON and JUnit: `passed`, `failed`, `timed_out`, `ignored`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::TimedOut(_) => "timed_out",
            Outcome::Ignored => "ignored",
            Outcome::Skipped(_) => "skipped",
        }
    }

    /// Whether the test counts as failed.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_) | Outcome::TimedOut(_))
    }
}

/// One finished (or ignored) test.
#[derive(Debug, Clone)]
pub struct Record {
    pub test: &'static TestDescriptor,
    pub outcome: Outcome,
    pub duration: Duration,
    /// What a load test measured; `None` for other tests.
    pub load: Option<Box<crate::load::LoadReport>>,
    /// How many times it ran: 1, more when a failure was retried, 0 when
    /// ignored.
    pub tries: u32,
    /// How the tries before the last one failed (retries).
    pub earlier: Vec<Outcome>,
    /// When its first try started (JUnit timestamps).
    pub started_at: SystemTime,
    /// The services it used (`postgres`, `redis`, a user's own), in the
    /// order it first asked: what it needs, derived rather than declared.
    pub services: Vec<&'static str>,
    /// What its fixtures add to a timeout's message (an app's last lines).
    pub timeout_note: Option<String>,
}

impl Record {
    /// Passed, but only after failing: a flaky test, reported as such.
    pub fn is_flaky(&self) -> bool {
        self.outcome == Outcome::Passed && self.tries > 1
    }

    /// The failure message, if the test failed.
    pub fn message(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Failed(failure) => Some(failure.message.clone()),
            Outcome::TimedOut(timeout) => Some(format!(
                "timed out after {}; the test was stopped (set `timeout = \"...\"` on the test or pass --timeout to allow more){}",
                seconds(*timeout),
                self.timeout_note
                    .as_deref()
                    .map(|note| format!("\n{note}"))
                    .unwrap_or_default()
            )),
            Outcome::Skipped(reason) => Some(reason.clone()),
            Outcome::Passed | Outcome::Ignored => None,
        }
    }

    /// Where the failure happened: the panic's location, else the test's.
    pub fn location(&self) -> String {
        match &self.outcome {
            Outcome::Failed(Failure {
                location: Some(location),
                ..
            }) => location.clone(),
            _ => format!("{}:{}", self.test.file, self.test.line),
        }
    }
}

/// Counts and time of one category.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryStats {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    /// Sum of the durations of its tests.
    pub time: Duration,
}

/// Everything a run did, for the closing report.
#[derive(Debug)]
pub struct Summary {
    pub records: Vec<Record>,
    pub filtered_out: usize,
    pub elapsed: Duration,
    /// Selected tests never started: `--fail-fast` stopped the run.
    pub not_run: usize,
    /// When the run started.
    pub started_at: SystemTime,
}

impl Summary {
    pub fn new(mut records: Vec<Record>, filtered_out: usize, elapsed: Duration) -> Self {
        records.sort_by(|a, b| a.test.name.cmp(b.test.name));
        Self {
            records,
            filtered_out,
            elapsed,
            not_run: 0,
            started_at: SystemTime::now()
                .checked_sub(elapsed)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }

    /// Tests that passed only on a retry.
    pub fn flaky(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|record| record.is_flaky())
    }

    fn count(&self, predicate: impl Fn(&Outcome) -> bool) -> usize {
        self.records
            .iter()
            .filter(|record| predicate(&record.outcome))
            .count()
    }

    pub fn passed(&self) -> usize {
        self.count(|outcome| *outcome == Outcome::Passed)
    }

    pub fn failed(&self) -> usize {
        self.count(Outcome::is_failure)
    }

    /// Ignored and skipped tests: neither passed nor failed.
    pub fn ignored(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Ignored | Outcome::Skipped(_)))
    }

    pub fn failures(&self) -> impl Iterator<Item = &Record> {
        self.records
            .iter()
            .filter(|record| record.outcome.is_failure())
    }

    /// Per-category counts, built-in tiers first.
    pub fn by_category(&self) -> Vec<(&'static str, CategoryStats)> {
        let mut stats: BTreeMap<(usize, &str), (&'static str, CategoryStats)> = BTreeMap::new();
        for record in &self.records {
            let name = record.test.category;
            let (_, entry) = stats
                .entry(category::rank(name))
                .or_insert_with(|| (name, CategoryStats::default()));
            match record.outcome {
                Outcome::Passed => entry.passed += 1,
                Outcome::Failed(_) | Outcome::TimedOut(_) => entry.failed += 1,
                Outcome::Ignored | Outcome::Skipped(_) => entry.ignored += 1,
            }
            entry.time += record.duration;
        }
        stats.into_values().collect()
    }
}

/// Receives a run's events as they happen.
pub trait Reporter {
    fn started(&mut self, selection: &Selection);
    fn test_started(&mut self, test: &'static TestDescriptor);
    /// `test` has been running for `running` (`--slow`).
    fn test_slow(&mut self, test: &'static TestDescriptor, running: Duration);
    fn test_finished(&mut self, record: &Record);
    fn finished(&mut self, summary: &Summary);
}

/// The reporter the command line asks for.
pub fn for_options(options: &Options) -> Box<dyn Reporter + Send> {
    let color = match options.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && !crate::env::env().no_color,
    };
    match options.format {
        Format::Pretty => Box::new(pretty::Pretty::new(false, color, options.report_time)),
        Format::Terse => Box::new(pretty::Pretty::new(true, color, options.report_time)),
        Format::Json => Box::new(json::Json::new(options.report_time)),
        Format::VerilyJson => Box::new(verily_json::VerilyJson::new()),
    }
}

/// `--logfile PATH`: a line per test as libtest writes it (`ok name`,
/// `failed name`, `ignored: why name`), with ` <0.012s>` under
/// `--report-time`.
#[derive(Debug)]
pub struct Logfile {
    out: std::io::BufWriter<std::fs::File>,
    report_time: bool,
}

impl Logfile {
    pub fn create(path: &Path, report_time: bool) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        Ok(Self {
            out: std::io::BufWriter::new(std::fs::File::create(path)?),
            report_time,
        })
    }

    pub fn write(&mut self, record: &Record) {
        let result = match &record.outcome {
            Outcome::Passed => "ok".to_owned(),
            Outcome::Failed(_) | Outcome::TimedOut(_) => "failed".to_owned(),
            Outcome::Ignored => match record.test.ignore_reason {
                Some(reason) => format!("ignored: {reason}"),
                None => "ignored".to_owned(),
            },
            Outcome::Skipped(reason) => format!("ignored: {reason}"),
        };
        let _ = write!(self.out, "{result} {}", record.test.name);
        if self.report_time && record.tries > 0 {
            let _ = write!(self.out, " <{}>", seconds(record.duration));
        }
        let _ = writeln!(self.out);
        let _ = self.out.flush();
    }
}

/// `--durations N`: the N slowest tests with their category, after the
/// summary (on stderr when stdout carries JSON).
pub fn durations(summary: &Summary, count: usize, format: Format) {
    let mut ran: Vec<&Record> = summary.records.iter().filter(|r| r.tries > 0).collect();
    ran.sort_by(|a, b| {
        b.duration
            .cmp(&a.duration)
            .then(a.test.name.cmp(b.test.name))
    });
    let mut text = format!("slowest {} tests:\n", count.min(ran.len()));
    for record in ran.into_iter().take(count) {
        text.push_str(&format!(
            "{:>10}  [{}] {}\n",
            seconds(record.duration),
            record.test.category,
            record.test.name
        ));
    }
    match format {
        Format::Pretty | Format::Terse => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        Format::Json | Format::VerilyJson => eprint!("{text}"),
    }
}

/// `0.012s`: seconds with millisecond precision, as libtest prints them.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}
