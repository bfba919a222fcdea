//! The PostgreSQL fixtures: `Db` (the test's own database: its URL, a pool,
//! direct queries), `sqlx::PgPool` and `sqlx::PgConnection`.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, PgPool};

use crate::fixture::{Fixture, FixtureError, TestContext};
use crate::registry::Needs;

/// The test's own database, cloned from the migrated template. Cheap to
/// clone; every clone is the same database.
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) options: PgConnectOptions,
    pub(crate) pool: PgPool,
    /// The run's own session on the database, when it has one.
    pub(crate) observer: crate::infra::postgres::template::Observer,
}

impl Db {
    /// The database's name (`vy_<run>_<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for code that builds its own pool from configuration.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connect options for this database.
    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// A pool on this database (the same one `PgPool` fixtures get).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A new connection of its own, outside every pool: it sees only what
    /// was committed.
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    /// Rows in `table` (`name` or `schema.name`), counted on a fresh
    /// connection.
    pub async fn count(&self, table: &str) -> Result<i64, sqlx::Error> {
        self.count_where(table, None).await
    }

    /// Rows in `table` matching `predicate` (SQL, as in a WHERE clause),
    /// counted on a fresh connection.
    pub async fn count_where(
        &self,
        table: &str,
        predicate: Option<&str>,
    ) -> Result<i64, sqlx::Error> {
        let mut connection = self.connect().await?;
        let count = count_on(&mut connection, table, predicate).await;
        let _ = connection.close().await;
        count
    }

    /// Runs SQL directly (no parameters), on the pool.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let result = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

/// `SELECT count(*)` of a table, with identifiers quoted.
pub(crate) async fn count_on(
    connection: &mut PgConnection,
    table: &str,
    predicate: Option<&str>,
) -> Result<i64, sqlx::Error> {
    let filter = predicate
        .map(|predicate| format!(" WHERE ({predicate})"))
        .unwrap_or_default();
    let sql = format!("SELECT count(*) FROM {}{filter}", quote_table(table));
    sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(connection)
        .await
}

/// `"schema"."table"` from `schema.table`, each part quoted.
pub fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(crate::infra::postgres::template::quote)
        .collect::<Vec<_>>()
        .join(".")
}

impl Fixture for Db {
    const NEEDS: Needs = Needs::POSTGRES;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        ctx.database().await
    }
}

impl Fixture for PgPool {
    const NEEDS: Needs = Needs::POSTGRES;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        Ok(ctx.database().await?.pool)
    }
}

impl Fixture for PgConnection {
    const NEEDS: Needs = Needs::POSTGRES;

    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        let db = ctx.database().await?;
        db.connect().await.map_err(|error| {
            FixtureError::new(format!(
                "cannot connect to the test's database {}: {error}",
                db.name
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::quote_table;

    #[test]
    fn identifiers_are_quoted_never_pasted() {
        assert_eq!(quote_table("operations"), "\"operations\"");
        assert_eq!(quote_table("audit.events"), "\"audit\".\"events\"");
        assert_eq!(
            quote_table("x\"; DROP TABLE y; --"),
            "\"x\"\"; DROP TABLE y; --\""
        );
    }
}
