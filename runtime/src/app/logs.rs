//! An app's output: every line of its stdout and stderr, the last ones in
//! memory (bounded), all of them in a file with `VERILY_KEEP=1`, and the
//! error lines (panics, ERROR level) a test did not declare expected.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Lines kept in memory per app; older ones are only in the kept file.
const MEMORY_LINES: usize = 4000;
/// Error lines remembered for the end-of-test check.
const ERROR_LINES: usize = 100;
/// Lines of output a failure message quotes.
pub const TAIL_LINES: usize = 20;

/// The captured output of one app, shared by its reader threads and the test.
pub struct Logs {
    state: Mutex<State>,
    /// Signalled when a reader reaches the end of its stream.
    stream_ended: Condvar,
    /// Bumped on every line, so waiters wake without polling.
    lines_seen: watch::Sender<u64>,
    /// The full log on disk, when `VERILY_KEEP=1` asked for it.
    pub(crate) file_path: Option<PathBuf>,
}

struct State {
    lines: VecDeque<String>,
    /// Lines ever captured, so a waiter can tell new lines from old.
    total: u64,
    errors: Vec<String>,
    file: Option<std::fs::File>,
    /// Output streams (of every run) still being read.
    open_streams: usize,
}

impl Logs {
    /// Empty logs; with `file_path`, every line is also appended there.
    pub fn new(file_path: Option<PathBuf>) -> Self {
        let file = file_path.as_ref().and_then(|path| {
            std::fs::File::create(path)
                .inspect_err(|error| {
                    eprintln!(
                        "warning: cannot keep the app's log at {}: {error}",
                        path.display()
                    )
                })
                .ok()
        });
        Self {
            state: Mutex::new(State {
                lines: VecDeque::new(),
                total: 0,
                errors: Vec::new(),
                file,
                open_streams: 0,
            }),
            stream_ended: Condvar::new(),
            lines_seen: watch::channel(0).0,
            file_path,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one line of output.
    pub fn push(&self, line: &str) {
        let line = strip_ansi(line.trim_end_matches(['\r', '\n']));
        let total = {
            let mut state = self.state();
            if let Some(file) = &mut state.file {
                let _ = writeln!(file, "{line}");
            }
            if is_error_line(&line) && state.errors.len() < ERROR_LINES {
                state.errors.push(line.clone());
            }
            if state.lines.len() == MEMORY_LINES {
                state.lines.pop_front();
            }
            state.lines.push_back(line);
            state.total += 1;
            state.total
        };
        self.lines_seen.send_replace(total);
    }

    /// A reader of one output stream starts; it calls
    /// [`stream_ended`](Self::stream_ended) at its end of stream.
    pub fn stream_opened(&self) {
        self.state().open_streams += 1;
    }

    /// A reader reached the end of its stream: every line is pushed.
    pub fn stream_ended(&self) {
        self.state().open_streams -= 1;
        self.stream_ended.notify_all();
    }

    /// Waits up to `limit` until every stream is read to its end (the
    /// processes writing them are gone); `false` if one is still open.
    pub fn wait_until_read(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.state();
        while state.open_streams > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .stream_ended
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// The lines in memory, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.state().lines.iter().cloned().collect()
    }

    /// The number of lines captured so far.
    pub fn total(&self) -> u64 {
        self.state().total
    }

    /// The first line captured after the first `after` lines that
    /// contains `pattern`, if it is still in memory.
    pub fn find_since(&self, after: u64, pattern: &str) -> Option<String> {
        let state = self.state();
        let in_memory = state.lines.len() as u64;
        let first_kept = state.total - in_memory;
        let skip = after.saturating_sub(first_kept) as usize;
        state
            .lines
            .iter()
            .skip(skip)
            .find(|line| line.contains(pattern))
            .cloned()
    }

    /// Wakes when a line arrives.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.lines_seen.subscribe()
    }

    /// Error lines that match none of `expected`.
    pub fn unexpected_errors(&self, expected: &[String]) -> Vec<String> {
        self.state()
            .errors
            .iter()
            .filter(|line| {
                !expected
                    .iter()
                    .any(|pattern| line.contains(pattern.as_str()))
            })
            .cloned()
            .collect()
    }

    /// The last `count` lines, indented, for a failure message.
    pub fn tail(&self, count: usize) -> String {
        let state = self.state();
        let skip = state.lines.len().saturating_sub(count);
        let lines: Vec<&str> = state.lines.iter().skip(skip).map(String::as_str).collect();
        if lines.is_empty() {
            return "  (no output)".to_owned();
        }
        lines
            .iter()
            .map(|line| format!("  | {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A panic, a plain-text ERROR-level line (`ERROR`, `[ERROR]`,
/// `2024-01-01T00:00:00Z ERROR target: ...`) or a JSON one
/// (`"level":"ERROR"`, tracing's JSON format).
pub fn is_error_line(line: &str) -> bool {
    if line.contains("panicked at") {
        return true;
    }
    let compact: String = line.split_whitespace().collect();
    if compact.contains("\"level\":\"ERROR\"") || compact.contains("\"level\":\"error\"") {
        return true;
    }
    line.split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | ':'))
        .take(4)
        .any(|word| word == "ERROR")
}

/// The line without terminal color codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_in_plain_text_and_json() {
        assert!(is_error_line("ERROR failed to save checkpoint"));
        assert!(is_error_line(
            "2026-01-01T00:00:00.000Z ERROR operations::api: database: gone"
        ));
        assert!(is_error_line("[ERROR] boom"));
        assert!(is_error_line(
            r#"{"timestamp":"...","level":"ERROR","fields":{"message":"x"}}"#
        ));
        assert!(is_error_line("thread 'main' panicked at src/main.rs:3:5:"));
        assert!(!is_error_line("INFO created op-1"));
        assert!(!is_error_line("INFO request failed with no ERROR here"));
        assert!(!is_error_line(
            r#"{"level":"INFO","message":"ERROR in text"}"#
        ));
    }

    #[test]
    fn colors_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[31mERROR\u{1b}[0m x"), "ERROR x");
        let logs = Logs::new(None);
        logs.push("\u{1b}[2m2026\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m boom\n");
        assert_eq!(logs.unexpected_errors(&[]), ["2026 ERROR boom"]);
        assert!(logs.unexpected_errors(&["boom".to_owned()]).is_empty());
    }

    #[test]
    fn lines_are_bounded_and_found_after_a_mark() {
        let logs = Logs::new(None);
        for n in 0..MEMORY_LINES + 10 {
            logs.push(&format!("line {n}"));
        }
        assert_eq!(logs.lines().len(), MEMORY_LINES);
        assert_eq!(logs.total(), (MEMORY_LINES + 10) as u64);
        assert_eq!(logs.find_since(0, "line 12").as_deref(), Some("line 12"));
        let mark = logs.total();
        assert_eq!(logs.find_since(mark, "line"), None);
        logs.push("line new");
        assert_eq!(logs.find_since(mark, "line").as_deref(), Some("line new"));
    }

    #[test]
    fn read_to_the_end_once_every_stream_ended() {
        let logs = std::sync::Arc::new(Logs::new(None));
        assert!(logs.wait_until_read(Duration::ZERO));
        logs.stream_opened();
        logs.stream_opened();
        logs.stream_ended();
        assert!(!logs.wait_until_read(Duration::from_millis(1)));
        let reader = std::sync::Arc::clone(&logs);
        let last = std::thread::spawn(move || {
            reader.push("ERROR the last line");
            reader.stream_ended();
        });
        assert!(logs.wait_until_read(Duration::from_secs(60)));
        assert_eq!(logs.unexpected_errors(&[]), ["ERROR the last line"]);
        last.join().unwrap();
    }
}
