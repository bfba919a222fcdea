//! The one table the bench prints and writes: a line per figure with
//! verily's value, the peer's, their ratio, the target and whether it
//! was met; then every run's raw values.

use std::fmt::Write;

/// Whether a figure met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    /// No target for this figure.
    Informational,
}

#[derive(Debug, Clone)]
pub struct Line {
    pub row: u8,
    pub measure: String,
    pub verily: String,
    pub peer: String,
    pub ratio: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Line {
    pub fn new(row: u8, measure: impl Into<String>) -> Self {
        Line {
            row,
            measure: measure.into(),
            verily: String::new(),
            peer: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: Verdict::Informational,
        }
    }

    pub fn verily(mut self, value: impl Into<String>) -> Self {
        self.verily = value.into();
        self
    }

    pub fn peer(mut self, value: impl Into<String>) -> Self {
        self.peer = value.into();
        self
    }

    pub fn ratio(mut self, value: impl Into<String>) -> Self {
        self.ratio = value.into();
        self
    }

    pub fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = target.into();
        self.verdict = if met { Verdict::Met } else { Verdict::NotMet };
        self
    }
}

/// Every run's values of one figure.
#[derive(Debug, Clone)]
pub struct Raw {
    pub row: u8,
    pub label: String,
    pub values: String,
}

/// The table and its raw values.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
    pub raw: Vec<Raw>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn raw(
        &mut self,
        row: u8,
        label: impl Into<String>,
        values: &[f64],
        format: fn(f64) -> String,
    ) {
        self.raw.push(Raw {
            row,
            label: label.into(),
            values: values
                .iter()
                .map(|&v| format(v))
                .collect::<Vec<_>>()
                .join(" "),
        });
    }

    /// The table as Markdown with padded columns, readable as plain text.
    pub fn render(&self) -> String {
        let header = [
            "#", "measure", "verily", "peer", "ratio", "target", "result",
        ];
        let rows: Vec<[String; 7]> = self
            .lines
            .iter()
            .map(|line| {
                [
                    line.row.to_string(),
                    line.measure.clone(),
                    line.verily.clone(),
                    line.peer.clone(),
                    line.ratio.clone(),
                    line.target.clone(),
                    match line.verdict {
                        Verdict::Met => "met".to_owned(),
                        Verdict::NotMet => "**NOT MET**".to_owned(),
                        Verdict::Informational => String::new(),
                    },
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (cell, width) in cells.iter().zip(widths) {
                let _ = write!(out, " {cell}{} |", " ".repeat(width - cell.chars().count()));
            }
            out.push('\n');
        };
        line(&mut out, &header.map(str::to_owned));
        line(&mut out, &widths.map(|w| "-".repeat(w)));
        for row in &rows {
            line(&mut out, row);
        }
        if !self.raw.is_empty() {
            out.push_str(
                "\nRaw values, every measured run in order (verily and peer runs alternate):\n\n",
            );
            for raw in &self.raw {
                let _ = writeln!(out, "- {}. {}: {}", raw.row, raw.label, raw.values);
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

pub fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1000.0)
}

pub fn secs(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.3} s", seconds)
    } else {
        format!("{:.2} s", seconds)
    }
}

pub fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

pub fn times(ratio: f64) -> String {
    format!("{ratio:.2}x")
}
