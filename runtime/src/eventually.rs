//! Waiting for an outcome: [`eventually`] re-runs a check until it holds,
//! and when it never does, says what it saw over time.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// How long `eventually` waits between two runs of its check.
const INTERVAL: Duration = Duration::from_millis(20);
/// Distinct values a timeout message lists (the first and the last ones).
const SHOWN: usize = 12;

/// Re-runs `check` until it returns `Ok` (then returns its value) or
/// `limit` passes. Each `Err` says what was seen (`running (40%)`); on
/// timeout the error lists the distinct values in order:
///
/// ```ignore
/// let done = verily::eventually(Duration::from_secs(10), || async {
///     let status = app.get("/operations/1").await?.json()?;
///     match status["status"].as_str() {
///         Some("COMPLETED") => Ok(status),
///         other => Err(format!("{} ({}%)", other.unwrap_or("?"), status["progress"])),
///     }
/// }).await?;
/// ```
pub async fn eventually<T, E, F, Fut>(limit: Duration, mut check: F) -> Result<T, NeverHeld>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Seen::default();
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(error) => seen.record(error.to_string()),
        }
        if tokio::time::Instant::now() + INTERVAL > deadline {
            return Err(NeverHeld {
                message: format!(
                    "never held within {} s: {}",
                    limit.as_secs_f64(),
                    seen.summary()
                ),
            });
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// What `eventually` saw, consecutive repeats folded.
#[derive(Default)]
struct Seen {
    values: Vec<(String, usize)>,
}

impl Seen {
    fn record(&mut self, value: String) {
        match self.values.last_mut() {
            Some((last, count)) if *last == value => *count += 1,
            _ => self.values.push((value, 1)),
        }
    }

    fn summary(&self) -> String {
        let show = |(value, count): &(String, usize)| match count {
            1 => value.clone(),
            count => format!("{value} (x{count})"),
        };
        if self.values.len() <= SHOWN {
            return self
                .values
                .iter()
                .map(show)
                .collect::<Vec<_>>()
                .join(" -> ");
        }
        let head: Vec<String> = self.values[..SHOWN / 2].iter().map(show).collect();
        let tail: Vec<String> = self.values[self.values.len() - SHOWN / 2..]
            .iter()
            .map(show)
            .collect();
        format!(
            "{} -> ... ({} more) ... -> {}",
            head.join(" -> "),
            self.values.len() - SHOWN,
            tail.join(" -> ")
        )
    }
}

/// A check that [`eventually`] gave up on, with the values it saw.
#[derive(Clone, PartialEq, Eq)]
pub struct NeverHeld {
    message: String,
}

impl fmt::Display for NeverHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// Shown as the message when a test returns or unwraps it.
impl fmt::Debug for NeverHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NeverHeld {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_fold_and_long_histories_are_cut_in_the_middle() {
        let mut seen = Seen::default();
        for value in [
            "pending (0%)",
            "pending (0%)",
            "running (12%)",
            "running (40%)",
        ] {
            seen.record(value.to_owned());
        }
        assert_eq!(
            seen.summary(),
            "pending (0%) (x2) -> running (12%) -> running (40%)"
        );
        let mut long = Seen::default();
        for n in 0..30 {
            long.record(format!("{n}"));
        }
        assert_eq!(
            long.summary(),
            "0 -> 1 -> 2 -> 3 -> 4 -> 5 -> ... (18 more) ... -> 24 -> 25 -> 26 -> 27 -> 28 -> 29"
        );
    }

    #[test]
    fn returns_the_value_once_it_holds_and_lists_what_it_saw_otherwise() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut calls = 0;
            let value = eventually(Duration::from_secs(5), || {
                calls += 1;
                let calls = calls;
                async move {
                    if calls >= 3 {
                        Ok(calls)
                    } else {
                        Err(format!("call {calls}"))
                    }
                }
            })
            .await
            .unwrap();
            assert_eq!(value, 3);
            let never = eventually(Duration::from_millis(100), || async {
                Err::<(), _>("pending (0%)")
            })
            .await
            .unwrap_err();
            assert!(
                never
                    .to_string()
                    .starts_with("never held within 0.1 s: pending (0%) (x"),
                "{never}"
            );
        });
    }
}
