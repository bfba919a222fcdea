//! Which registered tests a command line selects: filters, `--exact`,
//! `--skip`, categories, ignored flags and `--shard`.

use crate::category;
use crate::cli::{IgnoredMode, Options, Shard};
use crate::errors::CliError;
use crate::hash::stable_hash;
use crate::registry::TestDescriptor;

/// The tests a run will consider, in name order.
#[derive(Debug)]
pub struct Selection {
    /// Selected tests; ignored ones are reported as ignored unless the mode
    /// runs them.
    pub tests: Vec<&'static TestDescriptor>,
    /// How many registered tests the filters left out.
    pub filtered_out: usize,
}

impl Selection {
    /// Whether this selected test runs (or is only reported as ignored).
    pub fn runs(test: &TestDescriptor, mode: IgnoredMode) -> bool {
        match mode {
            IgnoredMode::Skip => !test.ignored,
            IgnoredMode::Only | IgnoredMode::Include => true,
        }
    }
}

/// Every category a command line may name: the built-ins and those of the
/// registered tests.
pub fn known_categories(tests: &[&'static TestDescriptor]) -> Vec<String> {
    let mut known: Vec<&str> = category::BUILTIN.to_vec();
    for test in tests {
        if !known.contains(&test.category) {
            known.push(test.category);
        }
    }
    known.sort_by_key(|name| category::rank(name));
    known.into_iter().map(str::to_owned).collect()
}

/// Applies the command line to the registered tests.
pub fn select(
    registered: &[&'static TestDescriptor],
    options: &Options,
) -> Result<Selection, CliError> {
    let known = known_categories(registered);
    for name in options.categories.iter().chain(&options.skip_categories) {
        if !known.contains(name) {
            return Err(CliError::UnknownCategory {
                name: name.clone(),
                known,
            });
        }
    }
    let mut tests: Vec<&'static TestDescriptor> = registered
        .iter()
        .copied()
        .filter(|test| matches_filters(test, options))
        .filter(|test| !is_skipped(test, options))
        .filter(|test| {
            options.categories.is_empty() || options.categories.iter().any(|c| c == test.category)
        })
        .filter(|test| !options.skip_categories.iter().any(|c| c == test.category))
        .filter(|test| options.ignored != IgnoredMode::Only || test.ignored)
        .filter(|test| options.shard.is_none_or(|shard| in_shard(test.name, shard)))
        .collect();
    tests.sort_by(|a, b| a.name.cmp(b.name));
    Ok(Selection {
        filtered_out: registered.len() - tests.len(),
        tests,
    })
}

fn matches_filters(test: &TestDescriptor, options: &Options) -> bool {
    if options.filters.is_empty() {
        return true;
    }
    options.filters.iter().any(|filter| {
        if options.exact {
            test.is_named(filter)
        } else {
            test.name.contains(filter.as_str()) || test.qualified_name().contains(filter.as_str())
        }
    })
}

fn is_skipped(test: &TestDescriptor, options: &Options) -> bool {
    options.skip.iter().any(|skip| {
        if options.exact {
            test.is_named(skip)
        } else {
            test.name.contains(skip.as_str())
        }
    })
}

/// Whether `name` falls in `shard`: FNV-1a of the name, modulo the count.
/// Stable across runs, machines and Rust versions, so N machines given
/// `--shard 1/N` .. `--shard N/N` run every test exactly once.
pub fn in_shard(name: &str, shard: Shard) -> bool {
    stable_hash(name) % shard.count == shard.index - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_suite() {
        let names: Vec<String> = (0..1000).map(|i| format!("module::test_{i}")).collect();
        for count in 1..=5 {
            let mut seen = vec![0u32; names.len()];
            for index in 1..=count {
                for (i, name) in names.iter().enumerate() {
                    if in_shard(name, Shard { index, count }) {
                        seen[i] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&times| times == 1), "count {count}");
        }
    }
}
