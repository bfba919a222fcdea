//! Reusing a test's database after a verified reset, instead of dropping it
//! and cloning another from the template.
//!
//! A clone costs a `CREATE DATABASE` and a `DROP DATABASE` (hundreds of
//! files each); undoing what one test wrote costs a few `DELETE`s. Reuse is
//! only safe if the database is then exactly as the template left it, so
//! every reset is checked, on a connection of its own, against a baseline
//! taken from the template right after the migrations:
//!
//! - no other session and no prepared transaction is left in the database;
//! - the schema is unchanged: in each catalog that describes user objects,
//!   the number of rows is the template's and no row is newer than the
//!   baseline's transaction id (every DDL statement inserts or updates
//!   catalog rows, a `DROP` lowers a count);
//! - every table the template left empty is empty again;
//! - every table the template seeded holds exactly its seed rows: the same
//!   number, none newer than the baseline (an `UPDATE` makes a row new, a
//!   `DELETE` lowers the count of old rows);
//! - every sequence is back at the template's value.
//!
//! Rows a test inserted are deleted (children before parents); a seed row
//! it changed or deleted, a schema change, a materialized view refreshed or
//! a connection left open cannot be undone cheaply, so that database is
//! dropped instead and a fresh clone takes its place. The state is read
//! again after the reset and must equal the baseline, or the database is
//! dropped: a reset is never trusted, only verified.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

/// Catalogs whose rows describe user objects, and the column that holds the
/// object's id (ids from 16384 up are user objects). Statistics, which
/// `ANALYZE` rewrites, are left out.
const CATALOGS: [(&str, &str); 33] = [
    ("pg_class", "oid"),
    ("pg_attribute", "attrelid"),
    ("pg_attrdef", "oid"),
    ("pg_constraint", "oid"),
    ("pg_index", "indexrelid"),
    ("pg_inherits", "inhrelid"),
    ("pg_partitioned_table", "partrelid"),
    ("pg_sequence", "seqrelid"),
    ("pg_type", "oid"),
    ("pg_enum", "oid"),
    ("pg_proc", "oid"),
    ("pg_aggregate", "aggfnoid"),
    ("pg_trigger", "oid"),
    ("pg_event_trigger", "oid"),
    ("pg_rewrite", "oid"),
    ("pg_policy", "oid"),
    ("pg_extension", "oid"),
    ("pg_statistic_ext", "oid"),
    ("pg_largeobject_metadata", "oid"),
    ("pg_default_acl", "oid"),
    ("pg_publication", "oid"),
    ("pg_publication_rel", "oid"),
    ("pg_operator", "oid"),
    ("pg_cast", "oid"),
    ("pg_collation", "oid"),
    ("pg_conversion", "oid"),
    ("pg_opclass", "oid"),
    ("pg_opfamily", "oid"),
    ("pg_language", "oid"),
    ("pg_foreign_server", "oid"),
    ("pg_foreign_table", "ftrelid"),
    ("pg_description", "objoid"),
    ("pg_init_privs", "objoid"),
];

/// How long a reset waits for the test's sessions to end: a closed pool's
/// backends leave `pg_stat_activity` a moment after the client hangs up.
const SESSIONS_GRACE: Duration = Duration::from_millis(200);

/// A user table of the template.
#[derive(Debug, Serialize, Deserialize)]
struct Table {
    /// `"schema"."name"`, quoted.
    name: String,
    /// Rows the migrations left in it (0 for most tables).
    seed_rows: i64,
    /// A materialized view: its rows cannot be deleted, only compared.
    view: bool,
}

/// A sequence of the template and the value the migrations left it at.
#[derive(Debug, Serialize, Deserialize)]
struct Sequence {
    /// `"schema"."name"` as an SQL string literal (for `regclass`).
    literal: String,
    last_value: i64,
    is_called: bool,
}

/// What a database looks like, as one query reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Other sessions and prepared transactions in the database.
    others: i64,
    /// Per catalog: row count, and `!` when a row is newer than the baseline.
    catalogs: String,
    /// Per table: `.` as in the template, `+` rows added, `x` changed.
    tables: String,
    /// Each sequence's `last_value` (`-` before its first use).
    sequences: String,
}

/// The template's state right after the migrations, and how to read and
/// restore it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Baseline {
    tables: Vec<Table>,
    sequences: Vec<Sequence>,
    /// `'<xid>'::xid`: rows written after the baseline are newer than it.
    mark: String,
    /// Resets may bypass triggers (and foreign-key checks, which are
    /// triggers): only a superuser may, and the verification makes it safe.
    superuser: bool,
    state_sql: String,
    state: State,
}

/// Why a database cannot be reused; it is dropped instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unusable(pub String);

impl Baseline {
    /// Reads the template just after its migrations, on a connection to it.
    pub(crate) async fn capture(template: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let mark: String = sqlx::query_scalar("SELECT (txid_current() % 4294967296)::text")
            .fetch_one(&mut *template)
            .await?;
        let superuser: bool =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&mut *template)
                .await?;
        let mut tables = user_tables(template).await?;
        for table in &mut tables {
            let sql = format!("SELECT count(*) FROM {}", table.name);
            table.seed_rows = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&mut *template)
                .await?;
        }
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences
             ORDER BY schemaname, sequencename",
        )
        .fetch_all(&mut *template)
        .await?;
        let mut sequences = Vec::with_capacity(names.len());
        for name in names {
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT last_value, is_called FROM {name}"
            )))
            .fetch_one(&mut *template)
            .await?;
            sequences.push(Sequence {
                literal: format!("'{}'", name.replace('\'', "''")),
                last_value: row.try_get(0)?,
                is_called: row.try_get(1)?,
            });
        }
        let mark = format!("'{mark}'::xid");
        let state_sql = state_sql(&tables, &mark);
        let mut baseline = Self {
            tables,
            sequences,
            mark,
            superuser,
            state_sql,
            state: State {
                others: 0,
                catalogs: String::new(),
                tables: String::new(),
                sequences: String::new(),
            },
        };
        baseline.state = baseline.read(template).await?;
        baseline.state.others = 0;
        Ok(baseline)
    }

    /// Puts a test's database back in the template's state and verifies it,
    /// on `connection` (a session of the caller's own in that database).
    pub(crate) async fn reset(&self, connection: &mut PgConnection) -> Result<(), Unusable> {
        let before = self.settled(connection).await?;
        if before == self.state {
            return Ok(());
        }
        if before.catalogs != self.state.catalogs {
            return Err(Unusable("the test changed the schema".to_owned()));
        }
        if let Some(table) = self.changed_table(&before) {
            return Err(Unusable(format!(
                "the test changed or deleted rows the migrations left in {}",
                table.name
            )));
        }
        let sql = self.reset_sql(&before);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *connection)
            .await
            .map_err(|error| Unusable(format!("the reset failed: {error}")))?;
        let after = self.read(connection).await.map_err(unreadable)?;
        if after == self.state {
            Ok(())
        } else {
            Err(Unusable(format!(
                "the reset did not restore the template's state ({})",
                self.difference(&after)
            )))
        }
    }

    /// The state once the test's sessions are gone (they may take a moment
    /// to leave after their pool closed).
    async fn settled(&self, connection: &mut PgConnection) -> Result<State, Unusable> {
        let started = std::time::Instant::now();
        loop {
            let state = self.read(connection).await.map_err(unreadable)?;
            if state.others == 0 {
                return Ok(state);
            }
            if started.elapsed() > SESSIONS_GRACE {
                return Err(Unusable(format!(
                    "{} session(s) or prepared transaction(s) of the test are still open",
                    state.others
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn read(&self, connection: &mut PgConnection) -> Result<State, sqlx::Error> {
        // The same text every time: sqlx prepares it once per connection,
        // and PostgreSQL keeps its plan (planning it is most of the cost).
        let row = sqlx::query(AssertSqlSafe(self.state_sql.as_str()))
            .fetch_one(connection)
            .await?;
        Ok(State {
            others: row.try_get(0)?,
            catalogs: row.try_get(1)?,
            tables: row.try_get(2)?,
            sequences: row.try_get(3)?,
        })
    }

    fn changed_table(&self, state: &State) -> Option<&Table> {
        self.tables
            .iter()
            .zip(state.tables.bytes())
            .find(|(table, status)| *status == b'x' || (table.view && *status != b'.'))
            .map(|(table, _)| table)
    }

    /// One transaction: delete what was added, children first (the tables
    /// are kept in that order), and set changed sequences back.
    fn reset_sql(&self, state: &State) -> String {
        let mut sql = String::from("BEGIN;\n");
        if self.superuser {
            // No user triggers fire and no foreign key is checked while the
            // rows go; the state read afterwards proves the result.
            sql.push_str("SET LOCAL session_replication_role = replica;\n");
        }
        for (table, status) in self.tables.iter().zip(state.tables.bytes()) {
            match (status, table.seed_rows) {
                (b'+', 0) => {
                    let _ = writeln!(sql, "DELETE FROM {};", table.name);
                }
                (b'+', _) => {
                    let _ = writeln!(
                        sql,
                        "DELETE FROM {} WHERE age(xmin) < age({});",
                        table.name, self.mark
                    );
                }
                _ => {}
            }
        }
        let current: Vec<&str> = state.sequences.split(',').collect();
        let baseline: Vec<&str> = self.state.sequences.split(',').collect();
        for (index, sequence) in self.sequences.iter().enumerate() {
            if current.get(index) != baseline.get(index) {
                let _ = writeln!(
                    sql,
                    "SELECT setval({}::regclass, {}, {});",
                    sequence.literal, sequence.last_value, sequence.is_called
                );
            }
        }
        sql.push_str("COMMIT;");
        sql
    }

    /// What still differs, for the message of a failed verification.
    fn difference(&self, state: &State) -> String {
        if state.others != 0 {
            return format!("{} other session(s)", state.others);
        }
        if state.catalogs != self.state.catalogs {
            return "schema".to_owned();
        }
        let tables: Vec<&str> = self
            .tables
            .iter()
            .zip(state.tables.bytes())
            .filter(|(_, status)| *status != b'.')
            .map(|(table, _)| table.name.as_str())
            .collect();
        if !tables.is_empty() {
            return format!("rows in {}", tables.join(", "));
        }
        "sequences".to_owned()
    }
}

fn unreadable(error: sqlx::Error) -> Unusable {
    Unusable(format!("its state could not be read: {error}"))
}

/// User tables and materialized views, children before the tables their
/// foreign keys point to (so deleting in this order satisfies the keys).
async fn user_tables(template: &mut PgConnection) -> Result<Vec<Table>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.oid::int8, format('%I.%I', n.nspname, c.relname), c.relkind = 'm'
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'
         ORDER BY 2",
    )
    .fetch_all(&mut *template)
    .await?;
    let keys = sqlx::query(
        "SELECT conrelid::int8, confrelid::int8 FROM pg_constraint
         WHERE contype = 'f' AND conrelid <> confrelid",
    )
    .fetch_all(&mut *template)
    .await?;
    let mut tables = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        ids.push(row.try_get::<i64, _>(0)?);
        tables.push(Table {
            name: row.try_get(1)?,
            seed_rows: 0,
            view: row.try_get(2)?,
        });
    }
    let mut edges = Vec::with_capacity(keys.len());
    for key in keys {
        edges.push((key.try_get::<i64, _>(0)?, key.try_get::<i64, _>(1)?));
    }
    let order = children_first(&ids, &edges);
    let mut by_position: Vec<Option<Table>> = tables.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .filter_map(|index| by_position[index].take())
        .collect())
}

/// Indexes of `ids` ordered so that a table comes before every table it
/// references (`edges`: referencing → referenced). Cycles keep their
/// original order; the verification catches what they leave behind.
fn children_first(ids: &[i64], edges: &[(i64, i64)]) -> Vec<usize> {
    let position: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    // Referenced tables wait for every table that references them.
    let mut waiting_for = vec![0usize; ids.len()];
    let mut referenced_by: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    for (from, to) in edges {
        if let (Some(&from), Some(&to)) = (position.get(from), position.get(to)) {
            waiting_for[to] += 1;
            referenced_by[from].push(to);
        }
    }
    let mut order = Vec::with_capacity(ids.len());
    let mut done = vec![false; ids.len()];
    let mut ready: Vec<usize> = (0..ids.len())
        .rev()
        .filter(|&i| waiting_for[i] == 0)
        .collect();
    while let Some(index) = ready.pop() {
        done[index] = true;
        order.push(index);
        for &to in &referenced_by[index] {
            waiting_for[to] -= 1;
            if waiting_for[to] == 0 {
                ready.push(to);
            }
        }
    }
    order.extend((0..ids.len()).filter(|&i| !done[i]));
    order
}

/// The query that reads a database's [`State`] in one round trip.
fn state_sql(tables: &[Table], mark: &str) -> String {
    let mut sql = format!(
        "WITH mark AS (SELECT age({mark}) AS age)\nSELECT\n\
         (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid())\n\
         + (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()),\n\
         concat_ws(';'"
    );
    for (catalog, id) in CATALOGS {
        let _ = write!(
            sql,
            ",\n (SELECT count(*) || CASE WHEN bool_or(age(xmin) < mark.age) THEN '!' ELSE '' END FROM pg_catalog.{catalog} WHERE {id} >= 16384)"
        );
    }
    // Temporary schemas appear with a session's first temporary table and
    // outlive it; they hold nothing once the session is gone.
    sql.push_str(
        ",\n (SELECT count(*) || CASE WHEN bool_or(age(xmin) < mark.age) THEN '!' ELSE '' END FROM pg_catalog.pg_namespace \
         WHERE oid >= 16384 AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%')),\n concat(''",
    );
    for table in tables {
        let name = &table.name;
        if table.seed_rows == 0 && !table.view {
            let _ = write!(
                sql,
                ",\n (SELECT CASE WHEN EXISTS (SELECT 1 FROM {name}) THEN '+' ELSE '.' END)"
            );
        } else {
            let _ = write!(
                sql,
                ",\n (SELECT CASE WHEN count(*) FILTER (WHERE age(xmin) >= mark.age) <> {seed} THEN 'x' \
                 WHEN count(*) <> {seed} THEN '+' ELSE '.' END FROM {name})",
                seed = table.seed_rows
            );
        }
    }
    sql.push_str(
        "),\n coalesce((SELECT string_agg(coalesce(last_value::text, '-'), ',' ORDER BY schemaname, sequencename) \
         FROM pg_sequences), '')\nFROM mark",
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_come_before_the_tables_they_reference() {
        // orders → accounts, fills → orders, accounts alone, audit alone.
        let ids = [1, 2, 3, 4];
        let edges = [(2, 1), (3, 2)];
        let order = children_first(&ids, &edges);
        let at = |id: i64| order.iter().position(|&i| ids[i] == id).unwrap();
        assert!(at(3) < at(2));
        assert!(at(2) < at(1));
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn cycles_keep_every_table() {
        let ids = [1, 2, 3];
        let edges = [(1, 2), (2, 1)];
        let mut order = children_first(&ids, &edges);
        order.sort_unstable();
        assert_eq!(order, [0, 1, 2]);
    }
}
