//! Which registered tests a command line selects, and in which order:
//! filters, `--exact`, `--skip`, categories, `--tags`, ignored flags,
//! `--shard`, `--last-failed` and `--shuffle`.

mod tags;

use std::collections::BTreeSet;
use std::path::PathBuf;

pub use tags::TagExpr;

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
    /// The seed the order was shuffled with (`--shuffle`).
    pub shuffle_seed: Option<u64>,
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

/// Every tag a command line may name: the known categories and the tags
/// of the registered tests.
pub fn known_tags(tests: &[&'static TestDescriptor]) -> Vec<String> {
    let mut known = known_categories(tests);
    for tag in tests.iter().flat_map(|test| test.tags.iter()) {
        if !known.iter().any(|name| name == tag) {
            known.push((*tag).to_owned());
        }
    }
    known
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
    let known_tags = known_tags(registered);
    let known_tags: Vec<&str> = known_tags.iter().map(String::as_str).collect();
    let tag_exprs = options
        .tags
        .iter()
        .map(|text| TagExpr::parse(text, &known_tags))
        .collect::<Result<Vec<_>, _>>()?;
    let last_failed = if options.last_failed {
        last_failed_names()
    } else {
        None
    };
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
        .filter(|test| {
            tag_exprs
                .iter()
                .all(|expr| expr.matches(&|tag| test.tags().any(|own| own == tag)))
        })
        .filter(|test| options.shard.is_none_or(|shard| in_shard(test.name, shard)))
        .filter(|test| {
            last_failed
                .as_ref()
                .is_none_or(|failed| failed.contains(test.name))
        })
        .collect();
    tests.sort_by(|a, b| a.name.cmp(b.name));
    let shuffle_seed = options
        .shuffle_seed
        .or_else(|| options.shuffle.then(random_seed));
    if let Some(seed) = shuffle_seed {
        shuffle(&mut tests, seed);
    }
    Ok(Selection {
        filtered_out: registered.len() - tests.len(),
        tests,
        shuffle_seed,
    })
}

/// A seed from the clock and the process id: different each run, printed so
/// that a run can be replayed with `--shuffle-seed`.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Fisher-Yates with splitmix64: the same seed gives the same order on
/// every machine.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Where `--last-failed` keeps the names that failed in this binary's
/// previous run: `<target>/verily/last-failed/<binary name>`, the target
/// directory found from the binary's own path (`<target>/<profile>/deps/`).
/// `VERILY_LAST_FAILED` names another file.
pub fn last_failed_path() -> Option<PathBuf> {
    if let Some(path) = &crate::env::env().last_failed {
        return Some(path.clone());
    }
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_owned();
    let mut dir = exe.parent()?;
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir = dir.parent()?;
    }
    // `<target>/<profile>`, or `<target>/<triple>/<profile>`.
    let target = dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "target"))
        .unwrap_or(dir.parent().unwrap_or(dir));
    Some(target.join("verily/last-failed").join(name))
}

/// The names that failed last time; `None` (run everything) when no run
/// recorded a failure.
fn last_failed_names() -> Option<BTreeSet<String>> {
    let path = last_failed_path()?;
    let names: BTreeSet<String> = std::fs::read_to_string(&path)
        .ok()?
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        eprintln!("--last-failed: no failures recorded in the previous run; running every test");
        return None;
    }
    Some(names)
}

/// Records what failed for the next `--last-failed`: the previous
/// failures, less the tests that ran and passed, plus the ones that failed
/// now (as pytest's cache does, so a filtered run forgets nothing).
pub fn record_failures<'a>(ran: impl IntoIterator<Item = (&'a str, bool)>) -> std::io::Result<()> {
    let Some(path) = last_failed_path() else {
        return Ok(());
    };
    let mut failed: BTreeSet<String> = std::fs::read_to_string(&path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    for (name, did_fail) in ran {
        if did_fail {
            failed.insert(name.to_owned());
        } else {
            failed.remove(name);
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut text = String::new();
    for name in failed.iter().filter(|name| !name.is_empty()) {
        text.push_str(name);
        text.push('\n');
    }
    std::fs::write(path, text)
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

    #[test]
    fn a_seed_gives_one_order() {
        let sorted: Vec<u32> = (0..50).collect();
        let mut first = sorted.clone();
        let mut again = sorted.clone();
        let mut other = sorted.clone();
        shuffle(&mut first, 7);
        shuffle(&mut again, 7);
        shuffle(&mut other, 8);
        assert_eq!(first, again);
        assert_ne!(first, sorted);
        assert_ne!(first, other);
        first.sort_unstable();
        assert_eq!(first, sorted, "a permutation");
    }
}
