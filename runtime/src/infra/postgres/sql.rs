//! SQL the infrastructure builds at run time (quoted identifiers) and
//! PostgreSQL's errors in its own words.

use sqlx::{AssertSqlSafe, PgPool};

use crate::infra::InfraError;

/// Runs one statement built at run time from names the infrastructure made.
pub(crate) async fn execute(admin: &PgPool, statement: &str) -> Result<(), InfraError> {
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(admin)
        .await
        .map(drop)
        .map_err(sql_error)
}

pub(crate) fn sql_error(error: sqlx::Error) -> InfraError {
    InfraError::new(format!("PostgreSQL: {}", describe(&error)))
}

/// An error in PostgreSQL's words and SQLSTATE: sqlx's own text ends with
/// "at line 334", the line of PostgreSQL's C source that raised it, which
/// reads like a line of the user's file. "Too many clients" says what to
/// change, with the server's numbers when the run has read them.
pub(crate) fn describe(error: &sqlx::Error) -> String {
    let sqlx::Error::Database(database) = error else {
        return error.to_string();
    };
    let code = database.code().unwrap_or_default();
    let mut text = format!("{} (SQLSTATE {code})", database.message());
    if code == TOO_MANY_CONNECTIONS {
        text.push_str(&super::databases::budget::too_many_hint());
    }
    if code == DISK_FULL {
        text.push_str(
            "; the disk under the server's data directory is full: for the local cluster, set \
             VERILY_RUNTIME_DIR to a directory with room (it defaults to /dev/shm when that has 1 GiB free)",
        );
    }
    text
}

/// SQLSTATE of "could not extend file ...: No space left on device".
const DISK_FULL: &str = "53100";

/// SQLSTATE of "sorry, too many clients already" and of a role's
/// CONNECTION LIMIT.
pub(crate) const TOO_MANY_CONNECTIONS: &str = "53300";

/// A quoted identifier: `"name"`, with inner quotes doubled.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
