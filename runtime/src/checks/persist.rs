//! What `#[persists]` checks: rows counted on a separate connection before
//! the body, and again on a fresh one after it, outside any transaction the
//! body may have left open.

use sqlx::Connection;

use crate::fixtures::db::{Db, count_on};
use crate::model::{Failure, TestResult};

/// One table's expectation, as the attribute wrote it.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    /// `table` or `schema.table`, checked at compile time.
    pub table: &'static str,
    /// `rows = N`: exactly N new rows; `None`: at least one.
    pub rows: Option<u64>,
    /// `where = "..."`: count only matching rows.
    pub predicate: Option<&'static str>,
}

impl Expectation {
    fn subject(&self) -> String {
        match self.predicate {
            Some(predicate) => format!("{} where {predicate}", self.table),
            None => self.table.to_owned(),
        }
    }

    /// `None` when the difference meets the expectation, else the complaint.
    fn judge(&self, test: &str, before: i64, after: i64) -> Option<String> {
        let found = after - before;
        let counts = format!("found {found} (before {before}, after {after})");
        let subject = self.subject();
        let met = match self.rows {
            None => found >= 1,
            Some(rows) => i64::try_from(rows).is_ok_and(|rows| rows == found),
        };
        if met {
            return None;
        }
        // Nothing new committed: say every way that happens, not only the
        // missing commit (an UPDATE that matched no row commits nothing new).
        let lost = match (found, self.predicate) {
            (0, Some(_)) => {
                ": no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)"
            }
            (0, None) => ": no committed row (the write was never made, or never committed)",
            _ => "",
        };
        Some(match self.rows {
            None => format!("{test}: expected new rows in {subject}, {counts}{lost}"),
            Some(0) => format!("{test}: expected no new rows in {subject}, {counts}"),
            Some(1) => format!("{test}: expected 1 new row in {subject}, {counts}{lost}"),
            Some(rows) => format!("{test}: expected {rows} new rows in {subject}, {counts}{lost}"),
        })
    }
}

/// Counts every expectation's rows before the body, on a connection
/// outside the test's pools: the run's own session on the database when it
/// has one (it sees what a new one would, since nothing has run yet, and
/// saves opening one), else a new connection.
/// Not public API. Used by generated code.
#[doc(hidden)]
pub async fn count(db: &Db, expectations: &[Expectation]) -> Result<Vec<i64>, Failure> {
    let mut observer = db.observer.lock().await;
    if let Some(connection) = observer.as_mut() {
        match count_with(connection, expectations).await {
            Ok(counts) => return Ok(counts),
            // A broken session is not the test's fault: count on a new one.
            Err(_) => *observer = None,
        }
    }
    drop(observer);
    count_fresh(db, expectations).await
}

/// Counts every expectation's rows on one new connection.
async fn count_fresh(db: &Db, expectations: &[Expectation]) -> Result<Vec<i64>, Failure> {
    let mut connection = db.connect().await.map_err(|error| {
        Failure::new(format!(
            "cannot open a separate connection to {} to count rows: {error}",
            db.name()
        ))
    })?;
    let counts = count_with(&mut connection, expectations).await;
    let _ = connection.close().await;
    counts
}

async fn count_with(
    connection: &mut sqlx::PgConnection,
    expectations: &[Expectation],
) -> Result<Vec<i64>, Failure> {
    let mut counts = Vec::with_capacity(expectations.len());
    for expectation in expectations {
        let count = count_on(connection, expectation.table, expectation.predicate)
            .await
            .map_err(|error| {
                Failure::new(format!(
                    "cannot count rows of {}: {error}",
                    expectation.subject()
                ))
            })?;
        counts.push(count);
    }
    Ok(counts)
}

/// Counts again on a fresh connection and compares.
/// Not public API. Used by generated code.
#[doc(hidden)]
pub async fn verify(
    test: &str,
    db: &Db,
    expectations: &[Expectation],
    before: Vec<i64>,
) -> TestResult {
    let after = count_fresh(db, expectations).await?;
    let complaints: Vec<String> = expectations
        .iter()
        .zip(before.iter().zip(&after))
        .filter_map(|(expectation, (before, after))| expectation.judge(test, *before, *after))
        .collect();
    if complaints.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(complaints.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::Expectation;

    const fn expect(rows: Option<u64>, predicate: Option<&'static str>) -> Expectation {
        Expectation {
            table: "operations",
            rows,
            predicate,
        }
    }

    #[test]
    fn a_missing_write_is_named() {
        assert_eq!(
            expect(None, None)
                .judge("create_operation_writes_a_row", 0, 0)
                .unwrap(),
            "create_operation_writes_a_row: expected new rows in operations, found 0 (before 0, after 0): no committed row (the write was never made, or never committed)"
        );
        assert_eq!(expect(None, None).judge("t", 3, 4), None);
    }

    #[test]
    fn exact_counts_and_predicates() {
        let failed = expect(Some(1), Some("status = 'FAILED'"));
        assert_eq!(failed.judge("t", 0, 1), None);
        assert_eq!(
            failed.judge("orphan", 2, 2).unwrap(),
            "orphan: expected 1 new row in operations where status = 'FAILED', found 0 (before 2, after 2): no committed row matches (the write was never made, never committed, or wrote other values than the `where` expects, as an UPDATE matching no row does)"
        );
        assert_eq!(
            failed.judge("orphan", 0, 2).unwrap(),
            "orphan: expected 1 new row in operations where status = 'FAILED', found 2 (before 0, after 2)"
        );
        let none = expect(Some(0), None);
        assert_eq!(none.judge("t", 5, 5), None);
        assert_eq!(
            none.judge("read_only", 5, 6).unwrap(),
            "read_only: expected no new rows in operations, found 1 (before 5, after 6)"
        );
    }
}
