//! The runtime's layering (ARCHITECTURE.md): every module of
//! runtime/src imports only from the modules below it in one order, so an
//! import cycle between modules cannot come back unnoticed.
//!
//! Run `cargo test -p verily --test harness -- layers::` to print the table
//! of what each layer imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::workspace;

/// The runtime's top-level modules, bottom first. A module may import from
/// those before it, never from itself-or-later ones (its own submodules
/// excepted).
#[rustfmt::skip]
const LAYERS: &[&str] = &[
    // Foundations: no infrastructure, no test model beyond plain data.
    "category", "duration", "similar", "size", "hash", "env", "errors", "model", "panic", "config",
    "eventually",
    // Servers and what the run makes on them.
    "infra",
    // What a test takes as parameters, and what generated tests check.
    "fixtures", "app", "checks",
    // The descriptors generated tests submit; load tests (a body run many
    // times, judged on what was seen) know them.
    "registry", "load",
    // Reading a command line, choosing tests, reporting, running.
    "cli", "select", "report", "runner",
];

#[verily::test(category = "contract")]
fn runtime_modules_import_only_from_layers_below() {
    let root = workspace().join("runtime/src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files in {}",
        files.len(),
        root.display()
    );

    let rank = |module: &str| LAYERS.iter().position(|layer| *layer == module);
    let mut violations = Vec::new();
    let mut imports: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under runtime/src");
        let path = module_path(relative);
        // lib.rs (the crate root) sits above every layer.
        let Some(own) = path.first() else { continue };
        let Some(own_rank) = rank(own) else {
            violations.push(format!(
                "runtime/src/{}: module `{own}` is in no layer; add it to LAYERS here and to ARCHITECTURE.md",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for (line, target) in crate_references(&strip_comments(&text), &path) {
            if target == *own {
                continue;
            }
            match rank(&target) {
                Some(target_rank) if target_rank < own_rank => {
                    imports.entry(own_rank).or_default().insert(target_rank);
                }
                Some(_) => violations.push(format!(
                    "runtime/src/{}:{line}: `{own}` imports `crate::{target}`, which is not below it; `{own}` may import only: {}",
                    relative.display(),
                    LAYERS[..own_rank].join(", ")
                )),
                // A crate-root item (`crate::Config` re-exports): name the module instead.
                None => violations.push(format!(
                    "runtime/src/{}:{line}: `{own}` imports `crate::{target}` through the crate root; import it from its module",
                    relative.display()
                )),
            }
        }
    }
    for (module, below) in &imports {
        let names: Vec<&str> = below.iter().map(|rank| LAYERS[*rank]).collect();
        println!("{:>9} -> {}", LAYERS[*module], names.join(", "));
    }
    assert!(
        violations.is_empty(),
        "{} import(s) go up the layers:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// `infra/postgres/mod.rs` -> [infra, postgres]; `lib.rs` -> [].
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().expect("a file name");
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The source without `//` comments (doc comments mention paths freely).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // Not inside a string literal on this line (an even number of quotes before).
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module each `crate::...` or escaping `super::...` path of
/// the file names, with its line (groups may span lines).
fn crate_references(text: &str, own_path: &[String]) -> Vec<(usize, String)> {
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let preceded_by_path = |at: usize| {
        text[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':')
    };
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        if !preceded_by_path(at) {
            let names = first_segments(&text[at + "crate::".len()..]);
            found.extend(names.into_iter().map(|name| (line_of(at), name)));
        }
    }
    // `super::super::x` from a file `ups` levels below the crate root names
    // a top-level module when it climbs out of the file's own.
    for (at, _) in text.match_indices("super::") {
        if preceded_by_path(at) {
            continue;
        }
        let mut after = &text[at..];
        let mut ups = 0;
        while let Some(stripped) = after.strip_prefix("super::") {
            ups += 1;
            after = stripped;
        }
        if ups >= own_path.len() {
            let names = first_segments(after);
            found.extend(names.into_iter().map(|name| (line_of(at), name)));
        }
    }
    found
}

/// `fixtures::Db` -> [fixtures]; `{fixtures::Db, model::{A, B}}` -> [fixtures, model].
fn first_segments(after: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    if let Some(group) = after.strip_prefix('{') {
        let mut names = Vec::new();
        let mut depth = 0;
        let mut start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if start && !c.is_whitespace() => {
                    start = false;
                    let name = ident(&group[i..]);
                    if !name.is_empty() && name != "self" {
                        names.push(name);
                    }
                }
                _ => {}
            }
        }
        names
    } else {
        let name = ident(after);
        if name.is_empty() {
            Vec::new()
        } else {
            vec![name]
        }
    }
}
