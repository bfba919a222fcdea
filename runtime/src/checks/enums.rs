//! What `#[enum_complete]` checks: every variant through serde JSON and
//! back, through `Display`/`FromStr` and back, against the database's enum
//! type (both directions), through every handler, and against the labels
//! that files shipped with the service name.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgArgumentBuffer, Postgres};
use sqlx::{AssertSqlSafe, Connection};

use crate::fixtures::Db;
use crate::model::{Failure, TestResult};
use crate::panic::{CatchPanic, Caught};
use crate::similar::did_you_mean;

/// An enum declared with `#[enum_complete]`: its name and one value per
/// variant. Generated; do not implement by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not declared to verily",
    label = "#[enum_complete] handlers call this with every variant, so the enum must be declared",
    note = "add #[verily::enum_complete] on `enum {Self}` (options such as `serde` or `pg_type = \"...\"` are not needed for handlers)"
)]
pub trait DeclaredEnum: Sized {
    /// The enum's name, for messages.
    const NAME: &'static str;

    /// Every variant, by name, freshly built (data variants from their sample).
    fn variants() -> Vec<(&'static str, Self)>;
}

fn verdict(what: String, problems: Vec<String>) -> TestResult {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{what}:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// Every variant serializes to JSON and deserializes back to itself; no
/// two variants share a JSON form.
pub fn check_serde<T>() -> TestResult
where
    T: DeclaredEnum + serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    let mut problems = Vec::new();
    let mut seen: Vec<(serde_json::Value, &str)> = Vec::new();
    for (variant, value) in T::variants() {
        let json = match serde_json::to_value(&value) {
            Ok(json) => json,
            Err(error) => {
                problems.push(format!(
                    "{}::{variant} does not serialize: {error}",
                    T::NAME
                ));
                continue;
            }
        };
        if let Some((_, other)) = seen.iter().find(|(known, _)| *known == json) {
            problems.push(format!(
                "{name}::{other} and {name}::{variant} both serialize to {json}: a consumer cannot tell them apart",
                name = T::NAME
            ));
        }
        match serde_json::from_value::<T>(json.clone()) {
            Ok(back) if back == value => {}
            Ok(back) => problems.push(format!(
                "{}::{variant} serializes to {json}, which deserializes to {back:?}",
                T::NAME
            )),
            Err(error) => problems.push(format!(
                "{}::{variant} serializes to {json}, which does not deserialize: {error}",
                T::NAME
            )),
        }
        seen.push((json, variant));
    }
    verdict(
        format!("{} does not round-trip through JSON", T::NAME),
        problems,
    )
}

/// Every variant displays as a string that parses back to itself; no two
/// variants share a string.
pub fn check_strings<T>() -> TestResult
where
    T: DeclaredEnum + Display + FromStr + PartialEq + Debug,
{
    let mut problems = Vec::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (variant, value) in T::variants() {
        let text = value.to_string();
        if let Some((_, other)) = seen.iter().find(|(known, _)| *known == text) {
            problems.push(format!(
                "{name}::{other} and {name}::{variant} both display as {text:?}",
                name = T::NAME
            ));
        }
        match text.parse::<T>() {
            Ok(back) if back == value => {}
            Ok(back) => problems.push(format!(
                "{}::{variant} displays as {text:?}, which parses as {back:?}",
                T::NAME
            )),
            Err(_) => problems.push(format!(
                "{}::{variant} displays as {text:?}, which does not parse back",
                T::NAME
            )),
        }
        seen.push((text, variant));
    }
    verdict(
        format!("{} does not round-trip through Display/FromStr", T::NAME),
        problems,
    )
}

/// The JSON string form of each variant (variants that serialize to
/// anything but a string are left out).
pub fn serde_labels<T: DeclaredEnum + serde::Serialize>() -> Vec<String> {
    T::variants()
        .into_iter()
        .filter_map(|(_, value)| match serde_json::to_value(&value) {
            Ok(serde_json::Value::String(label)) => Some(label),
            _ => None,
        })
        .collect()
}

/// The `Display` form of each variant.
pub fn display_labels<T: DeclaredEnum + Display>() -> Vec<String> {
    T::variants()
        .into_iter()
        .map(|(_, value)| value.to_string())
        .collect()
}

/// The label sqlx sends for `value`: the bytes its `Encode` writes.
fn pg_label<T>(value: &T) -> Result<String, String>
where
    T: for<'q> sqlx::Encode<'q, Postgres>,
{
    let mut buffer = PgArgumentBuffer::default();
    let null = sqlx::Encode::<Postgres>::encode_by_ref(value, &mut buffer)
        .map_err(|error| error.to_string())?;
    if null.is_null() {
        return Err("it encodes as NULL".to_owned());
    }
    String::from_utf8(buffer.to_vec())
        .map_err(|_| "its encoding is not text: is it a text enum?".to_owned())
}

/// The database's enum type `pg_type` has exactly the variants' labels, and
/// every variant goes into a column of that type and comes back as itself.
pub async fn check_pg_type<T>(db: &Db, pg_type: &str) -> TestResult
where
    T: DeclaredEnum
        + for<'q> sqlx::Encode<'q, Postgres>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + PartialEq
        + Debug
        + Send
        + Sync
        + Unpin
        + 'static,
{
    let quoted = crate::fixtures::db::quote_table(pg_type);
    let mut connection = db
        .connect()
        .await
        .map_err(|error| Failure::new(format!("cannot connect to the test's database: {error}")))?;
    let sql = format!("SELECT label::text FROM unnest(enum_range(NULL::{quoted})) AS label");
    let in_database: Vec<String> = match sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_all(&mut connection)
        .await
    {
        Ok(labels) => labels,
        Err(error) => {
            return Err(Failure::new(format!(
                "the database has no enum type {pg_type} after the migrations ({error}); create it in a migration, or fix `pg_type`"
            )));
        }
    };
    let mut problems = Vec::new();
    let mut present = Vec::new();
    let mut labels = Vec::new();
    for (variant, value) in T::variants() {
        match pg_label(&value) {
            Ok(label) if in_database.contains(&label) => {
                labels.push(label);
                present.push((variant, value));
            }
            Ok(label) => {
                problems.push(format!(
                    "{}::{variant} (\"{label}\") is missing from the database enum {pg_type}: add it in a migration (ALTER TYPE {pg_type} ADD VALUE '{label}')",
                    T::NAME
                ));
                labels.push(label);
            }
            Err(error) => problems.push(format!(
                "{}::{variant} has no database label: {error}",
                T::NAME
            )),
        }
    }
    for label in in_database.iter().filter(|label| !labels.contains(label)) {
        problems.push(format!(
            "the database enum {pg_type} has \"{label}\", which no variant of {} encodes",
            T::NAME
        ));
    }
    let table = format!("CREATE TEMPORARY TABLE verily_enum_check (value {quoted})");
    sqlx::raw_sql(AssertSqlSafe(table))
        .execute(&mut connection)
        .await
        .map_err(|error| {
            Failure::new(format!("cannot create a column of type {pg_type}: {error}"))
        })?;
    for (variant, value) in present {
        let back = sqlx::query_scalar::<_, T>(
            "INSERT INTO verily_enum_check (value) VALUES ($1) RETURNING value",
        )
        .bind(&value)
        .fetch_one(&mut connection)
        .await;
        match back {
            Ok(back) if back == value => {}
            Ok(back) => problems.push(format!(
                "{}::{variant} stored in a {pg_type} column reads back as {back:?}",
                T::NAME
            )),
            Err(error) => problems.push(format!(
                "{}::{variant} cannot be stored in a {pg_type} column and read back: {error}",
                T::NAME
            )),
        }
    }
    let _ = connection.close().await;
    verdict(
        format!("{} and the database enum {pg_type} disagree", T::NAME),
        problems,
    )
}

/// Calls a handler with every variant; a panic, or an `Err` (the call's
/// future yields `Err(description)`), fails the test naming each variant.
pub async fn check_handler<T, F, Fut>(handler: &str, mut call: F) -> TestResult
where
    T: DeclaredEnum,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let variants = T::variants();
    let total = variants.len();
    let mut problems = Vec::new();
    for (variant, value) in variants {
        let future = call(value);
        match CatchPanic::new(future).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => problems.push(format!("{variant}: returned Err({error})")),
            // A handler that skipped the test skips it.
            Err(Caught::Skipped(reason)) => crate::panic::skip(reason),
            Err(Caught::Panicked(failure)) => {
                let at = failure
                    .location
                    .map(|location| format!(" (at {location})"))
                    .unwrap_or_default();
                problems.push(format!("{variant}: {}{at}", failure.message));
            }
        }
    }
    let failed = problems.len();
    verdict(
        format!(
            "{handler} failed for {failed} of {total} variants of {}",
            T::NAME
        ),
        problems,
    )
}

/// Every value next to one of `keys` in the files matching `pattern`
/// (relative to `root`) is one of `labels`.
pub fn check_files(
    enum_name: &str,
    root: &str,
    pattern: &str,
    keys: &[&str],
    labels: &[String],
) -> TestResult {
    let files = glob(Path::new(root), pattern);
    if files.is_empty() {
        return Err(Failure::new(format!(
            "scan = \"{pattern}\" matches no file under {root}: fix the pattern, or remove `scan`"
        )));
    }
    let mut problems = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            problems.push(format!("{}: cannot be read", file.display()));
            continue;
        };
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (number, line) in text.lines().enumerate() {
            for value in labelled_values(line, keys) {
                if labels.iter().any(|label| label == value) {
                    continue;
                }
                let near = did_you_mean(value, labels.iter().map(String::as_str))
                    .map(|label| format!("; did you mean \"{label}\"?"))
                    .unwrap_or_default();
                problems.push(format!(
                    "{shown}:{}: \"{value}\" is not a label of {enum_name}{near}",
                    number + 1
                ));
            }
        }
    }
    let checked = match files.len() {
        1 => "1 file".to_owned(),
        count => format!("{count} files"),
    };
    verdict(
        format!(
            "files name labels {enum_name} does not have ({checked} checked; labels: {})",
            labels.join(", ")
        ),
        problems,
    )
}

/// Values written next to a key: `type = "x"`, `"type": "x"`, `type: x`.
fn labelled_values<'a>(line: &'a str, keys: &[&str]) -> Vec<&'a str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut values = Vec::new();
    for key in keys {
        let mut from = 0;
        while let Some(found) = line[from..].find(key) {
            let start = from + found;
            let end = start + key.len();
            from = end;
            let before = line[..start].chars().next_back();
            if before.is_some_and(|c| is_word(c) || c == '-') {
                continue;
            }
            let rest = line[end..].trim_start_matches(['"', '\'']);
            if rest.starts_with(|c: char| is_word(c) || c == '-') {
                continue;
            }
            let rest = rest.trim_start();
            let Some(rest) = rest.strip_prefix([':', '=']) else {
                continue;
            };
            let rest = rest.trim_start().trim_start_matches(['"', '\'']);
            let length = rest
                .find(|c: char| !(is_word(c) || matches!(c, '-' | '.')))
                .unwrap_or(rest.len());
            if length > 0 {
                values.push(&rest[..length]);
            }
        }
    }
    values
}

/// Files under `root` matching `pattern`: `*` and `?` within a name, `**`
/// for any number of directories.
pub fn glob(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = pattern.split('/').filter(|part| !part.is_empty()).collect();
    let mut found = Vec::new();
    walk(root, &parts, &mut found);
    found.sort();
    found.dedup();
    found
}

fn walk(dir: &Path, parts: &[&str], found: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    if *first == "**" {
        walk(dir, rest, found);
        for entry in entries.iter().filter(|entry| entry.is_dir()) {
            walk(entry, parts, found);
        }
        return;
    }
    for entry in entries {
        let name = entry
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !matches_name(first.as_bytes(), name.as_bytes()) {
            continue;
        }
        if rest.is_empty() {
            if entry.is_file() {
                found.push(entry);
            }
        } else if entry.is_dir() {
            walk(&entry, rest, found);
        }
    }
}

fn matches_name(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            matches_name(rest, name) || (!name.is_empty() && matches_name(pattern, &name[1..]))
        }
        (Some((b'?', rest)), Some((_, name_rest))) => matches_name(rest, name_rest),
        (Some((p, rest)), Some((n, name_rest))) if p == n => matches_name(rest, name_rest),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_next_to_keys() {
        let keys = ["type", "event_type"];
        assert_eq!(
            labelled_values(r#"event_type = "trading_signal""#, &keys),
            ["trading_signal"]
        );
        assert_eq!(
            labelled_values(r#"{"type": "risk_alert", "x": 1}"#, &keys),
            ["risk_alert"]
        );
        assert_eq!(
            labelled_values("  type: order_filled", &keys),
            ["order_filled"]
        );
        assert_eq!(
            labelled_values(r#"content_type = "json""#, &keys),
            Vec::<&str>::new()
        );
        assert_eq!(
            labelled_values(r#"types = ["a"]"#, &keys),
            Vec::<&str>::new()
        );
        assert_eq!(
            labelled_values("# the type of event", &keys),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn glob_names() {
        assert!(matches_name(b"*.toml", b"routes.toml"));
        assert!(matches_name(b"route?.toml", b"routes.toml"));
        assert!(!matches_name(b"*.toml", b"routes.yaml"));
        assert!(matches_name(b"*", b"anything"));
    }
}
