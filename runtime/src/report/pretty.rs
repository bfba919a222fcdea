//! libtest's pretty and terse output, with a table of results per category.

use std::io::{self, Write};

use super::{Outcome, Record, Reporter, Summary, seconds};
use crate::registry::TestDescriptor;
use crate::select::Selection;

/// Writes to stdout, a line per test (pretty) or a character per test (terse).
#[derive(Debug)]
pub struct Pretty {
    terse: bool,
    color: bool,
    terse_column: usize,
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

impl Pretty {
    pub fn new(terse: bool, color: bool) -> Self {
        Self {
            terse,
            color,
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

    fn outcome_word(&self, outcome: &Outcome) -> String {
        match outcome {
            Outcome::Passed => self.paint(GREEN, "ok"),
            Outcome::Failed(_) => self.paint(RED, "FAILED"),
            Outcome::TimedOut(_) => self.paint(RED, "FAILED (timed out)"),
            Outcome::Ignored => self.paint(YELLOW, "ignored"),
            Outcome::Skipped(reason) => self.paint(YELLOW, &format!("skipped: {reason}")),
        }
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
        writeln!(
            out,
            "\ntest result: {verdict}. {} passed; {} failed; {} ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
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
        println!("\nrunning {count} {noun}");
    }

    fn test_started(&mut self, _test: &'static TestDescriptor) {}

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
                self.outcome_word(&record.outcome)
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
