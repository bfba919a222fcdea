//! Persistence subjects over the schema's migrations: `n`
//! `#[verily::persists(table)]` tests (a template migrated once, a
//! clone per test, rows counted before and after), and the same `n` as
//! `#[sqlx::test(migrations = ...)]` written the way sqlx users do (a
//! database per test with every migration applied, then a count check).

use std::fmt::Write;
use std::path::PathBuf;

use super::schema::insert;
use super::{CrateSpec, Workspace};
use crate::BenchError;

pub const SQLX: &str = "sqlx = { version = \"0.9\", default-features = false, features = [\"postgres\", \"runtime-tokio\", \"migrate\"";

/// `(verily crate, sqlx crate)`; both test targets are `harness`.
pub fn write(workspace: &Workspace, n: usize) -> Result<(PathBuf, PathBuf), BenchError> {
    let mut verily = String::from("verily::main!();\n");
    let mut sqlx = String::new();
    for i in 0..n {
        let (table, statement) = insert(i, "db");
        let _ = write!(
            verily,
            "\n#[verily::persists({table})]\nasync fn t{i}(db: sqlx::PgPool) {{\n    {statement}\n}}\n"
        );
        let (table, statement) = insert(i, "pool");
        let _ = write!(
            sqlx,
            "#[sqlx::test(migrations = \"./migrations\")]\nasync fn t{i}(pool: sqlx::PgPool) {{\n    {statement}\n    \
             let count: i64 = sqlx::query_scalar(\"SELECT count(*) FROM {table}\").fetch_one(&pool).await.unwrap();\n    \
             assert!(count >= 1);\n}}\n\n"
        );
    }
    let verily = workspace.write(CrateSpec {
        name: &format!("verily_persistence_{n}"),
        manifest_tail: format!(
            "[dev-dependencies]\n{}{SQLX}] }}\n\n[[test]]\nname = \"harness\"\nharness = false\n",
            workspace.verily_dependency()
        ),
        files: vec![("tests/harness.rs".to_owned(), verily)],
        migrations: true,
    })?;
    let peer = workspace.write(CrateSpec {
        name: &format!("sqlx_persistence_{n}"),
        manifest_tail: format!(
            "[dev-dependencies]\n{SQLX}, \"macros\"] }}\ntokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n"
        ),
        files: vec![("tests/harness.rs".to_owned(), sqlx)],
        migrations: true,
    })?;
    Ok((verily, peer))
}
