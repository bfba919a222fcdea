//! libtest's pretty and terse output, with a table of results per category.

use std::io::{self, Write};
use std::time::Duration;

use super::{Outcome, Record, Reporter, Summary, seconds};
use crate::registry::TestDescriptor;
use crate::select::Selection;

/// Writes to stdout, a line per test (pretty) or a character per test (terse).
#[derive(Debug)]
pub struct Pretty {
    terse: bool,
    color: bool,
    report_time: bool,
    terse_column: usize,
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

impl Pretty {
    pub fn new(terse: bool, color: bool, report_time: bool) -> Self {
        Self {
            terse,
            color,
            report_time,
            terse_column: 0,
        }
    }

    fn paint(&self, color: &str, text: &str) -> String {
        if self.color {
            format!("{color}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn outcome_word(&self, record: &Record) -> String {
        let outcome = &record.outcome;
        let mut word = match outcome {
            Outcome::Passed if record.is_flaky() => self.paint(
                YELLOW,
                &format!("ok (flaky, passed on try {})", record.tries),
            ),
            Outcome::Passed => self.paint(GREEN, "ok"),
            Outcome::Failed(_) => self.paint(RED, "FAILED"),
            Outcome::TimedOut(_) => self.paint(RED, "FAILED (timed out)"),
            Outcome::Ignored => self.paint(YELLOW, "ignored"),
            Outcome::Skipped(reason) => self.paint(YELLOW, &format!("skipped: {reason}")),
        };
        if outcome.is_failure() && record.tries > 1 {
            word.push_str(&format!(" (failed all {} tries)", record.tries));
        }
        if self.report_time && record.tries > 0 {
            word.push_str(&format!(" <{}>", seconds(record.duration)));
        }
        word
    }

    fn outcome_char(&self, outcome: &Outcome) -> String {
        match outcome {
            Outcome::Passed => ".".to_owned(),
            Outcome::Failed(_) | Outcome::TimedOut(_) => self.paint(RED, "F"),
            Outcome::Ignored | Outcome::Skipped(_) => self.paint(YELLOW, "i"),
        }
    }

    fn write_summary(&self, out: &mut impl Write, summary: &Summary) -> io::Result<()> {
        let failures: Vec<&Record> = summary.failures().collect();
        if !failures.is_empty() {
            writeln!(out, "\nfailures:\n")?;
            for record in &failures {
                writeln!(
                    out,
                    "---- {} [{}] ----",
                    record.test.name, record.test.category
                )?;
                writeln!(out, "{}", record.message().unwrap_or_default())?;
                writeln!(out, "  at {}\n", record.location())?;
            }
            writeln!(out, "failures:")?;
            for record in &failures {
                writeln!(out, "    {}", record.test.name)?;
            }
        }
        let flaky: Vec<&Record> = summary.flaky().collect();
        if !flaky.is_empty() {
            writeln!(out, "\nflaky (passed on a retry):")?;
            for record in &flaky {
                writeln!(
                    out,
                    "    {} (try {}; earlier: {})",
                    record.test.name,
                    record.tries,
                    first_lines(&record.earlier)
                )?;
            }
        }
        if summary.not_run > 0 {
            writeln!(
                out,
                "\n{} tests not run: --fail-fast stopped the run at the first failure",
                summary.not_run
            )?;
        }
        let categories = summary.by_category();
        if !categories.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{:<14} {:>7} {:>7} {:>8} {:>10}",
                "category", "passed", "failed", "ignored", "time"
            )?;
            for (name, stats) in categories {
                writeln!(
                    out,
                    "{:<14} {:>7} {:>7} {:>8} {:>10}",
                    name,
                    stats.passed,
                    stats.failed,
                    stats.ignored,
                    seconds(stats.time)
                )?;
            }
        }
        let verdict = if summary.failed() == 0 {
            self.paint(GREEN, "ok")
        } else {
            self.paint(RED, "FAILED")
        };
        // libtest's line; the flaky count only when there is one, so that
        // readers of libtest's line keep reading it.
        let flaky = match flaky.len() {
            0 => String::new(),
            count => format!("{count} flaky; "),
        };
        writeln!(
            out,
            "\ntest result: {verdict}. {} passed; {} failed; {} ignored; 0 measured; {} filtered out; {flaky}finished in {:.2}s\n",
            summary.passed(),
            summary.failed(),
            summary.ignored(),
            summary.filtered_out,
            summary.elapsed.as_secs_f64()
        )
    }
}

impl Reporter for Pretty {
    fn started(&mut self, selection: &Selection) {
        let count = selection.tests.len();
        let noun = if count == 1 { "test" } else { "tests" };
        match selection.shuffle_seed {
            Some(seed) => println!("\nrunning {count} {noun} (shuffle seed: {seed})"),
            None => println!("\nrunning {count} {noun}"),
        }
    }

    fn test_started(&mut self, _test: &'static TestDescriptor) {}

    fn test_slow(&mut self, test: &'static TestDescriptor, running: Duration) {
        let line = format!("SLOW [> {}] {}", seconds(running), test.name);
        let mut out = io::stdout().lock();
        let _ = if self.terse {
            writeln!(out, "\n{}", self.paint(YELLOW, &line))
        } else {
            writeln!(out, "{}", self.paint(YELLOW, &line))
        };
        let _ = out.flush();
    }

    fn test_finished(&mut self, record: &Record) {
        let mut out = io::stdout().lock();
        let _ = if self.terse {
            self.terse_column += 1;
            let newline = if self.terse_column.is_multiple_of(88) {
                "\n"
            } else {
                ""
            };
            write!(out, "{}{newline}", self.outcome_char(&record.outcome))
        } else {
            writeln!(
                out,
                "test {} ... {}",
                record.test.name,
                self.outcome_word(record)
            )
            .and_then(|()| match &record.load {
                Some(load) => load
                    .lines()
                    .iter()
                    .try_for_each(|line| writeln!(out, "    {line}")),
                None => Ok(()),
            })
        };
        let _ = out.flush();
    }

    fn finished(&mut self, summary: &Summary) {
        let mut out = io::stdout().lock();
        if self.terse && !self.terse_column.is_multiple_of(88) {
            let _ = writeln!(out);
        }
        let _ = self.write_summary(&mut out, summary);
        let _ = out.flush();
    }
}

/// The first line of each earlier failure, `; `-joined.
fn first_lines(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Failed(failure) => failure
                .message
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            Outcome::TimedOut(timeout) => format!("timed out after {}", seconds(*timeout)),
            other => other.as_str().to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
