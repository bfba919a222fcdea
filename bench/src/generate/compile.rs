//! Compile-time subjects: `modules` files of 50 annotated tests each
//! (`#[wired]` structs and factories, `#[persists]` tests,
//! `#[enum_complete]` enums and handlers), and the same checks written by
//! hand as plain `#[test]` functions: the Option fields asserted `Some`,
//! rows counted before and after on a second connection, every variant
//! listed and matched.

use std::fmt::Write;
use std::path::PathBuf;

use super::persistence::SQLX;
use super::schema::insert;
use super::{CrateSpec, Workspace};
use crate::BenchError;

/// Tests per module: 5 units of 3 factories, 3 persistence tests, and one
/// enum with 2 checks and 2 handlers.
pub const TESTS_PER_MODULE: usize = 50;
const UNITS: usize = 5;
const FACTORIES: [&str; 3] = ["api", "worker", "admin"];
const VARIANTS: [&str; 7] = [
    "Created",
    "Started",
    "Paused",
    "Resumed",
    "Cancelled",
    "Failed",
    "Completed",
];

pub const VERILY_CRATE: &str = "verily_compile";
pub const PLAIN_CRATE: &str = "plain_compile";

/// `(verily crate, plain crate)`; test target `harness`, modules in
/// `tests/harness/mNN.rs`.
pub fn write(workspace: &Workspace, modules: usize) -> Result<(PathBuf, PathBuf), BenchError> {
    let names: Vec<String> = (0..modules).map(|m| format!("m{m:02}")).collect();
    let mods: String = names.iter().map(|name| format!("mod {name};\n")).collect();

    let mut verily_files = vec![(
        "tests/harness/main.rs".to_owned(),
        format!("//! The verily side of the compile-time benchmark.\n\nverily::main!();\n\n{mods}"),
    )];
    let mut plain_files = vec![
        (
            "tests/harness/main.rs".to_owned(),
            format!(
                "//! The hand-written side of the compile-time benchmark.\n\nmod common;\n{mods}"
            ),
        ),
        (
            "tests/harness/common.rs".to_owned(),
            PLAIN_COMMON.to_owned(),
        ),
    ];
    for (m, name) in names.iter().enumerate() {
        verily_files.push((format!("tests/harness/{name}.rs"), module(m, true)));
        plain_files.push((format!("tests/harness/{name}.rs"), module(m, false)));
    }
    let serde = "serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n";
    let verily = workspace.write(CrateSpec {
        name: VERILY_CRATE,
        manifest_tail: format!(
            "[dev-dependencies]\n{}{SQLX}] }}\n{serde}\n[[test]]\nname = \"harness\"\nharness = false\n",
            workspace.verily_dependency()
        ),
        files: verily_files,
        migrations: true,
    })?;
    let plain = workspace.write(CrateSpec {
        name: PLAIN_CRATE,
        manifest_tail: format!(
            "[dev-dependencies]\n{SQLX}] }}\ntokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n{serde}"
        ),
        files: plain_files,
        migrations: false,
    })?;
    Ok((verily, plain))
}

/// Module `m`, annotated (`verily`) or with the checks by hand.
fn module(m: usize, verily: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! Module {m}: services, their factories, writes and event enums.\n\n\
         // A service's name is for its own methods, which the checks do not call.\n\
         #![allow(dead_code)]\n\n\
         use std::fmt;\nuse std::str::FromStr;\nuse std::sync::Arc;\n\n\
         use serde::{{Deserialize, Serialize}};\n{}\n\
         pub struct Repository;\npub struct Metrics;\npub struct Clock;",
        if verily { "use sqlx::PgPool;\n" } else { "" }
    );
    for u in 0..UNITS {
        unit(&mut out, m, u, verily);
    }
    out
}

fn unit(out: &mut String, m: usize, u: usize, verily: bool) {
    let service = format!("Service{u}");
    let event = format!("Event{u}");
    // The struct and its factories.
    if verily {
        let _ = writeln!(out, "\n#[verily::wired(repository, metrics, clock)]");
    } else {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "pub struct {service} {{\n    repository: Option<Arc<Repository>>,\n    metrics: Option<Arc<Metrics>>,\n    \
         clock: Option<Arc<Clock>>,\n    pub name: String,\n}}\n\n\
         impl {service} {{\n    fn new(name: &str) -> Self {{\n        {service} {{\n            \
         repository: Some(Arc::new(Repository)),\n            metrics: Some(Arc::new(Metrics)),\n            \
         clock: Some(Arc::new(Clock)),\n            name: name.to_owned(),\n        }}\n    }}\n}}"
    );
    for role in FACTORIES {
        let factory = format!("service{u}_for_{role}");
        if verily {
            let _ = writeln!(out, "\n#[verily::wired]");
        } else {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "fn {factory}() -> {service} {{\n    {service}::new(\"{role}\")\n}}"
        );
        if !verily {
            let _ = writeln!(
                out,
                "\n#[test]\nfn {factory}_is_wired() {{\n    let service = {factory}();\n    \
                 assert!(service.repository.is_some(), \"{factory}: repository not wired (None)\");\n    \
                 assert!(service.metrics.is_some(), \"{factory}: metrics not wired (None)\");\n    \
                 assert!(service.clock.is_some(), \"{factory}: clock not wired (None)\");\n}}"
            );
        }
    }
    // Writes that must reach the database.
    for w in 0..3 {
        let index = (m * UNITS + u) * 3 + w;
        let test = format!("service{u}_write_{w}_lands");
        if verily {
            let (table, statement) = insert(index, "pool");
            let _ = writeln!(
                out,
                "\n#[verily::persists({table})]\nasync fn {test}(pool: PgPool) {{\n    {statement}\n}}"
            );
        } else {
            let (table, statement) = insert(index, "pool");
            let _ = writeln!(
                out,
                "\n#[tokio::test]\nasync fn {test}() {{\n    let db = crate::common::TestDb::create(\"{test}\").await;\n    \
                 let before = db.count(\"{table}\").await;\n    let pool = db.pool().await;\n    {statement}\n    \
                 pool.close().await;\n    let after = db.count(\"{table}\").await;\n    \
                 assert!(after > before, \"{test}: expected a new row in {table}, found {{before}} before and {{after}} after\");\n    \
                 db.drop().await;\n}}"
            );
        }
    }
    // An event enum, its string forms, and two handlers.
    let variants: String = VARIANTS.iter().map(|v| format!("    {v},\n")).collect();
    if verily {
        let _ = writeln!(out, "\n#[verily::enum_complete(serde, strings)]");
    } else {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]\n\
         #[serde(rename_all = \"snake_case\")]\npub enum {event} {{\n{variants}}}"
    );
    let labels: String = VARIANTS
        .iter()
        .map(|v| format!("            {event}::{v} => \"{}\",\n", v.to_lowercase()))
        .collect();
    let parses: String = VARIANTS
        .iter()
        .map(|v| {
            format!(
                "            \"{}\" => Ok({event}::{v}),\n",
                v.to_lowercase()
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nimpl fmt::Display for {event} {{\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        \
         f.write_str(match self {{\n{labels}        }})\n    }}\n}}\n\n\
         impl FromStr for {event} {{\n    type Err = String;\n\n    fn from_str(label: &str) -> Result<Self, String> {{\n        \
         match label {{\n{parses}            other => Err(format!(\"unknown {event} `{{other}}`\")),\n        }}\n    }}\n}}"
    );
    if !verily {
        let all: String = VARIANTS.iter().map(|v| format!("{event}::{v}, ")).collect();
        let _ = writeln!(
            out,
            "\nimpl {event} {{\n    const ALL: [{event}; {}] = [{}];\n}}",
            VARIANTS.len(),
            all.trim_end_matches(", ")
        );
    }
    let topics: String = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| format!("        {event}::{v} => \"topic-{m}-{u}-{}\",\n", i % 3))
        .collect();
    let severities: String = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| format!("        {event}::{v} => Ok({}),\n", i % 4))
        .collect();
    let handler = |out: &mut String| {
        if verily {
            let _ = writeln!(out, "\n#[verily::enum_complete({event})]");
        } else {
            out.push('\n');
        }
    };
    handler(out);
    let _ = writeln!(
        out,
        "fn topic{u}(event: {event}) -> &'static str {{\n    match event {{\n{topics}    }}\n}}"
    );
    handler(out);
    let _ = writeln!(
        out,
        "fn severity{u}(event: &{event}) -> Result<u8, String> {{\n    match event {{\n{severities}    }}\n}}"
    );
    if !verily {
        let _ = writeln!(
            out,
            "\n#[test]\nfn event{u}_serde_round_trips() {{\n    let mut seen = std::collections::HashSet::new();\n    \
             for event in {event}::ALL {{\n        let json = serde_json::to_string(&event).unwrap();\n        \
             assert!(seen.insert(json.clone()), \"two variants serialize to {{json}}\");\n        \
             assert_eq!(serde_json::from_str::<{event}>(&json).unwrap(), event);\n    }}\n}}\n\n\
             #[test]\nfn event{u}_strings_round_trip() {{\n    let mut seen = std::collections::HashSet::new();\n    \
             for event in {event}::ALL {{\n        let label = event.to_string();\n        \
             assert!(seen.insert(label.clone()), \"two variants display as {{label}}\");\n        \
             assert_eq!(label.parse::<{event}>().unwrap(), event);\n    }}\n}}\n\n\
             #[test]\nfn topic{u}_handles_every_event() {{\n    for event in {event}::ALL {{\n        \
             let _ = topic{u}(event);\n    }}\n}}\n\n\
             #[test]\nfn severity{u}_handles_every_event() {{\n    for event in {event}::ALL {{\n        \
             assert!(severity{u}(&event).is_ok(), \"severity{u} failed for {{event:?}}\");\n    }}\n}}"
        );
    }
}

/// What the hand-written persistence tests share: a database per test,
/// cloned from a template a setup script migrated beforehand, and row
/// counts on a fresh connection.
const PLAIN_COMMON: &str = r#"//! A database per test and row counts on a fresh connection.

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

pub struct TestDb {
    name: String,
    server: PgConnectOptions,
}

impl TestDb {
    /// A clone of `plain_template`, migrated beforehand by the setup script.
    pub async fn create(test: &str) -> TestDb {
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the test server");
        let server: PgConnectOptions = url.parse().expect("DATABASE_URL is a postgres URL");
        let name = format!("plain_{test}_{}", std::process::id());
        let mut admin = PgConnection::connect_with(&server).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\" TEMPLATE plain_template")))
            .execute(&mut admin)
            .await
            .unwrap();
        TestDb { name, server }
    }

    fn options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.name)
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect_with(self.options()).await.unwrap()
    }

    /// Rows in `table`, read on a connection of its own.
    pub async fn count(&self, table: &str) -> i64 {
        let mut connection = PgConnection::connect_with(&self.options()).await.unwrap();
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM \"{table}\"")))
            .fetch_one(&mut connection)
            .await
            .unwrap()
    }

    pub async fn drop(self) {
        let mut admin = PgConnection::connect_with(&self.server).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name)))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
"#;
