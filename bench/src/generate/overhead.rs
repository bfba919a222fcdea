//! Harness overhead subjects: `n` trivial `#[verily::test]` functions
//! run by `verily::main!()`, and the same `n` as plain `#[test]`
//! functions run by libtest.

use std::fmt::Write;
use std::path::PathBuf;

use super::{CrateSpec, Workspace};
use crate::BenchError;

/// `(verily crate, libtest crate)`; both test targets are `harness`.
pub fn write(workspace: &Workspace, n: usize) -> Result<(PathBuf, PathBuf), BenchError> {
    let mut verily = String::from("verily::main!();\n\n");
    let mut libtest = String::new();
    for i in 0..n {
        let body = format!("fn t{i}() {{ assert_eq!({i} % 7, {}); }}\n", i % 7);
        let _ = write!(verily, "#[verily::test(category = \"smoke\")]\n{body}");
        let _ = write!(libtest, "#[test]\n{body}");
    }
    let verily = workspace.write(CrateSpec {
        name: &format!("verily_overhead_{n}"),
        manifest_tail: format!(
            "[dev-dependencies]\n{}\n[[test]]\nname = \"harness\"\nharness = false\n",
            workspace.verily_dependency()
        ),
        files: vec![("tests/harness.rs".to_owned(), verily)],
        migrations: false,
    })?;
    let lt = workspace.write(CrateSpec {
        name: &format!("libtest_overhead_{n}"),
        manifest_tail: String::new(),
        files: vec![("tests/harness.rs".to_owned(), libtest)],
        migrations: false,
    })?;
    Ok((verily, lt))
}
