//! Leftovers of dead runs on a server: every database a run creates is
//! named `vy_<run id>_template` or `vy_<run id>_<n>` and carries the
//! comment `verily run vy_<run id>`, and every session of the run carries
//! that application name; a later run drops a database only when all of
//! that says it belongs to a run with no session left (see `template.rs`).

use sqlx::PgPool;

use super::template::PREFIX;
use crate::infra::InfraError;
use crate::infra::postgres::sql::{execute, quote, sql_error};

/// `verily run vy_<run id>`: the application name of every session of the
/// run, and the comment on every database it creates (a comment is not
/// copied by `CREATE DATABASE ... TEMPLATE`, so each clone gets its own).
pub(super) fn owner_mark(run: &str) -> String {
    format!("verily run {run}")
}

/// Marks a database the run created as the run's.
pub(super) async fn mark(admin: &PgPool, database: &str, own: &str) -> Result<(), InfraError> {
    execute(
        admin,
        &format!("COMMENT ON DATABASE {} IS '{own}'", quote(database)),
    )
    .await
}

/// The run a database belongs to, if its name is exactly one the framework
/// gives (`vy_<16 hex>_template` or `vy_<16 hex>_<n>`).
fn run_of(database: &str) -> Option<&str> {
    let rest = database.strip_prefix(PREFIX)?;
    let (id, suffix) = rest.split_at_checked(16)?;
    let suffix = suffix.strip_prefix('_')?;
    let hex = |text: &str| text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let numbered = !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
        && (suffix == "0" || !suffix.starts_with('0'));
    (hex(id) && (suffix == "template" || numbered)).then(|| &database[..PREFIX.len() + 16])
}

/// Drops the databases of runs that died without cleaning up: databases
/// of the current user whose name is exactly one verily gives, marked
/// with their run's comment (or whose run's template is), and whose run has
/// no session left on the server.
pub(super) async fn remove_dead_runs(admin: &PgPool, own_run: &str) -> Result<(), InfraError> {
    // Databases first, sessions second: a run connects its session before
    // it creates a database, so a database seen here whose run is alive
    // has that run's session in the listing below.
    let databases: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT datname::text, shobj_description(oid, 'pg_database') FROM pg_database
         WHERE datname LIKE 'vy\\_%' AND datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_all(admin)
    .await
    .map_err(sql_error)?;
    let alive: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT application_name::text FROM pg_stat_activity
         WHERE application_name LIKE 'verily run vy\\_%'",
    )
    .fetch_all(admin)
    .await
    .map_err(sql_error)?;
    // A database is provably verily's when it carries its run's mark, or
    // when its run's template does: the template is marked before any clone
    // exists, so a clone whose run was killed between its CREATE and its
    // COMMENT still goes.
    let is_marked = |name: &str, comment: &Option<String>| {
        run_of(name).is_some_and(|run| comment.as_deref() == Some(owner_mark(run).as_str()))
    };
    let marked_templates: Vec<&str> = databases
        .iter()
        .filter(|(name, comment)| name.ends_with("_template") && is_marked(name, comment))
        .filter_map(|(name, _)| run_of(name))
        .collect();
    let mut dead: Vec<&str> = databases
        .iter()
        .filter(|(name, comment)| {
            run_of(name).is_some_and(|run| {
                run != own_run
                    && (is_marked(name, comment) || marked_templates.contains(&run))
                    && !alive.contains(&owner_mark(run))
            })
        })
        .map(|(name, _)| name.as_str())
        .collect();
    // Clones before their template, so an interrupted sweep leaves the
    // marked template for the next one.
    dead.sort_by_key(|name| name.ends_with("_template"));
    for name in dead {
        execute(
            admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name)),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::run_of;

    #[test]
    fn only_names_the_framework_gives_belong_to_a_run() {
        assert_eq!(
            run_of("vy_0123456789abcdef_template"),
            Some("vy_0123456789abcdef")
        );
        assert_eq!(run_of("vy_0123456789abcdef_0"), Some("vy_0123456789abcdef"));
        assert_eq!(
            run_of("vy_0123456789abcdef_42"),
            Some("vy_0123456789abcdef")
        );
        for theirs in [
            "vy_deadbeefdeadbeef",
            "vy_deadbeefdeadbeef_",
            "vy_deadbeefdeadbeef_backup",
            "vy_deadbeefdeadbeef_01",
            "vy_deadbeefdeadbeef_1_old",
            "vy_DEADBEEFDEADBEEF_1",
            "vy_tpl_0123456789abcdef",
            "vy_tpl_0123456789abcdef_db_0123456789abcdef",
            "vy_0123456789abcdé_1",
            "app_dev",
        ] {
            assert_eq!(run_of(theirs), None, "{theirs}");
        }
    }
}
