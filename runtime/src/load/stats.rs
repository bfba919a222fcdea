//! What the workers recorded, merged: latencies (every iteration's, kept
//! and sorted, so percentiles are exact, not estimated from buckets) and
//! errors counted by message.

use std::collections::HashMap;
use std::time::Duration;

/// One worker's record of the iterations it ran.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Nanoseconds per measured iteration.
    pub(crate) latencies: Vec<u64>,
    /// Iterations run, warm-up included.
    pub(crate) runs: u64,
    pub(crate) errors: HashMap<String, u64>,
}

impl Tally {
    pub(crate) fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.runs += other.runs;
        for (message, count) in other.errors {
            *self.errors.entry(message).or_default() += count;
        }
    }

    /// Distinct messages, most frequent first (ties by message, so reports
    /// are stable).
    pub(crate) fn errors_by_count(&self) -> Vec<(String, u64)> {
        let mut errors: Vec<(String, u64)> = self
            .errors
            .iter()
            .map(|(message, count)| (message.clone(), *count))
            .collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        errors
    }
}

/// Latency percentiles of the measured iterations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// Nearest-rank percentiles of `nanos`, which it sorts.
    pub(crate) fn of(nanos: &mut [u64]) -> Self {
        nanos.sort_unstable();
        let at = |percent: u64| -> Duration {
            if nanos.is_empty() {
                return Duration::ZERO;
            }
            // Nearest rank: the smallest value with at least `percent`% of
            // the values at or below it.
            let rank = (percent * nanos.len() as u64).div_ceil(100).max(1);
            Duration::from_nanos(nanos[rank as usize - 1])
        };
        Self {
            p50: at(50),
            p95: at(95),
            p99: at(99),
            max: at(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut nanos: Vec<u64> = (1..=100).rev().collect();
        let latency = Latency::of(&mut nanos);
        assert_eq!(latency.p50, Duration::from_nanos(50));
        assert_eq!(latency.p95, Duration::from_nanos(95));
        assert_eq!(latency.p99, Duration::from_nanos(99));
        assert_eq!(latency.max, Duration::from_nanos(100));
        assert_eq!(Latency::of(&mut []), Latency::default());
        assert_eq!(Latency::of(&mut [7]).p50, Duration::from_nanos(7));
    }

    #[test]
    fn errors_are_merged_and_ranked() {
        let mut first = Tally::default();
        first.errors.insert("timeout".into(), 2);
        let mut second = Tally::default();
        second.errors.insert("timeout".into(), 3);
        second.errors.insert("deadlock".into(), 5);
        first.merge(second);
        assert_eq!(
            first.errors_by_count(),
            [("deadlock".to_owned(), 5), ("timeout".to_owned(), 5)]
        );
    }
}
