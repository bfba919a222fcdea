//! Counters the service increments as it works.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A named-counter collector.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn increment(&self, name: &'static str) {
        *self
            .counters
            .lock()
            .expect("no thread panics while holding the lock")
            .entry(name)
            .or_default() += 1;
    }

    pub fn count(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .expect("no thread panics while holding the lock")
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}
