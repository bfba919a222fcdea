//! The published crates' manifests: what crates.io and docs.rs need, and a
//! `rust-version` that says what the dependencies really require.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::{cargo, workspace};

/// The crates a user depends on; the rest (examples, ui-tests, bench) are
/// `publish = false`.
const PUBLISHED: [&str; 3] = ["verily", "verily-macros", "verily-runtime"];

fn metadata() -> Result<Value, String> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .output()
        .map_err(|error| format!("could not run cargo metadata: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    serde_json::from_slice(&output.stdout).map_err(|error| error.to_string())
}

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[verily::test(category = "integration", timeout = "5m")]
fn published_crates_carry_what_crates_io_and_docs_rs_need() -> Result<(), String> {
    let metadata = metadata()?;
    let packages = metadata["packages"].as_array().ok_or("no packages")?;
    for name in PUBLISHED {
        let package = packages
            .iter()
            .find(|package| package["name"] == name)
            .ok_or_else(|| format!("{name} is not in the workspace"))?;
        for field in [
            "description",
            "license",
            "repository",
            "documentation",
            "rust_version",
        ] {
            assert!(
                package[field]
                    .as_str()
                    .is_some_and(|value| !value.is_empty()),
                "{name} has no `{field}`"
            );
        }
        assert_eq!(package["license"], "MIT OR Apache-2.0", "{name}");
        for field in ["keywords", "categories"] {
            let values = package[field].as_array().map_or(0, Vec::len);
            assert!((1..=5).contains(&values), "{name}: {values} {field}");
        }
        assert!(
            package["publish"].is_null(),
            "{name} must be publishable: {}",
            package["publish"]
        );
        if name != "verily-macros" {
            let features = &package["metadata"]["docs"]["rs"]["features"];
            assert!(
                features.as_array().is_some_and(|f| !f.is_empty()),
                "{name}: [package.metadata.docs.rs] names no features, so docs.rs would show no fixtures"
            );
        }
    }
    for file in ["LICENSE-MIT", "LICENSE-APACHE"] {
        let text = std::fs::read_to_string(workspace().join(file))
            .map_err(|error| format!("{file}: {error}"))?;
        assert!(text.len() > 500, "{file} is not a license text");
    }
    Ok(())
}

/// `rust-version` is the lowest toolchain that builds the crates with the
/// `testing` feature: no dependency they pull in may need more, and the
/// floor is set by one that needs exactly that much (sqlx 0.9 today), so
/// the field is neither a promise nothing can keep nor stale.
#[verily::test(category = "integration", timeout = "5m")]
fn rust_version_is_what_the_dependencies_require() -> Result<(), String> {
    let metadata = metadata()?;
    let packages: BTreeMap<&str, &Value> = metadata["packages"]
        .as_array()
        .ok_or("no packages")?
        .iter()
        .filter_map(|package| Some((package["id"].as_str()?, package)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph")?
        .iter()
        .filter_map(|node| Some((node["id"].as_str()?, node)))
        .collect();
    // Walk normal and build dependencies from the published crates (the
    // resolve graph has every feature the workspace turns on, so
    // `testing`, `docker` and `redis` are in it).
    let mut stack: Vec<&str> = packages
        .iter()
        .filter(|(_, package)| PUBLISHED.iter().any(|name| package["name"] == *name))
        .map(|(id, _)| *id)
        .collect();
    let claimed: BTreeSet<&str> = stack
        .iter()
        .filter_map(|id| packages[id]["rust_version"].as_str())
        .collect();
    assert_eq!(
        claimed.len(),
        1,
        "the published crates disagree: {claimed:?}"
    );
    let claimed = claimed.into_iter().next().unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut needs: Vec<(&str, String)> = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let package = packages[id];
        if let Some(version) = package["rust_version"].as_str()
            && !PUBLISHED.iter().any(|name| package["name"] == *name)
        {
            needs.push((
                version,
                format!(
                    "{} {}",
                    package["name"].as_str().unwrap_or_default(),
                    package["version"].as_str().unwrap_or_default()
                ),
            ));
        }
        for dependency in nodes[id]["deps"].as_array().into_iter().flatten() {
            let runtime = dependency["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|kind| kind["kind"].as_str() != Some("dev"));
            if runtime && let Some(next) = dependency["pkg"].as_str() {
                stack.push(next);
            }
        }
    }
    needs.sort_by_key(|(needed, _)| version(needed));
    let (highest, by) = needs
        .last()
        .ok_or("no dependency declares a rust-version")?;
    assert!(
        version(highest) <= version(claimed),
        "rust-version {claimed} is too low: {by} needs {highest}; raise `rust-version` in [workspace.package]"
    );
    assert_eq!(
        version(highest),
        version(claimed),
        "rust-version {claimed} is higher than any dependency needs (the highest is {by}: {highest}); \
         lower it to what builds, or say in Cargo.toml what needs it"
    );
    Ok(())
}
