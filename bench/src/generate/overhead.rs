//! Harness overhead subjects: `n` trivial `#[groundtruth::test]` functions
//! run by `groundtruth::main!()`, and the same `n` as plain `#[test]`
//! functions run by libtest.

use std::fmt::Write;
use std::path::PathBuf;

use super::{CrateSpec, Workspace};
use crate::BenchError;

/// `(groundtruth crate, libtest crate)`; both test targets are `harness`.
pub fn write(workspace: &Workspace, n: usize) -> Result<(PathBuf, PathBuf), BenchError> {
    let mut groundtruth = String::from("groundtruth::main!();\n\n");
    let mut libtest = String::new();
    for i in 0..n {
        let body = format!("fn t{i}() {{ assert_eq!({i} % 7, {}); }}\n", i % 7);
        let _ = write!(
            groundtruth,
            "#[groundtruth::test(category = \"smoke\")]\n{body}"
        );
        let _ = write!(libtest, "#[test]\n{body}");
    }
    let gt = workspace.write(CrateSpec {
        name: &format!("gt_overhead_{n}"),
        manifest_tail: format!(
            "[dev-dependencies]\n{}\n[[test]]\nname = \"harness\"\nharness = false\n",
            workspace.groundtruth_dependency()
        ),
        files: vec![("tests/harness.rs".to_owned(), groundtruth)],
        migrations: false,
    })?;
    let lt = workspace.write(CrateSpec {
        name: &format!("libtest_overhead_{n}"),
        manifest_tail: String::new(),
        files: vec![("tests/harness.rs".to_owned(), libtest)],
        migrations: false,
    })?;
    Ok((gt, lt))
}
