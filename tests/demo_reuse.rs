//! Tests that each leave their database in a different state, for the
//! framework's own suite (`tests/harness/postgres.rs`), which runs this
//! harness on one thread and reads what became of the databases. Every test
//! first checks, on a fresh connection, that it starts from the template's
//! state, whether its database was cloned or reused.

use sqlx::{Connection, PgConnection};
use verily::Db;

verily::main!(; config = verily::Config::new().migrations_dir("tests/fixtures/migrations/reuse"));

/// The template's state: empty tables, the two seeded currencies, fresh
/// sequences and identities, the migrated columns.
async fn starts_from_the_template(db: &Db) {
    let mut connection = db.connect().await.unwrap();
    for table in ["accounts", "orders", "fills", "audit"] {
        assert_eq!(db.count(table).await.unwrap(), 0, "{table} is not empty");
    }
    let currencies: Vec<(String, String)> =
        sqlx::query_as("SELECT code, name FROM currencies ORDER BY code")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(
        currencies,
        [
            ("EUR".to_owned(), "Euro".to_owned()),
            ("USD".to_owned(), "US dollar".to_owned())
        ]
    );
    let invoice: (i64, bool) = sqlx::query_as("SELECT last_value, is_called FROM invoice_numbers")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(invoice, (1000, false), "invoice_numbers was not reset");
    let columns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'currencies'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(
        columns, 2,
        "currencies has a column the migrations did not make"
    );
    connection.close().await.unwrap();
}

/// Writes linked rows (account → order → fill) and checks that the
/// sequences and identities start at 1.
async fn writes_linked_rows(db: &Db) {
    let account: i64 =
        sqlx::query_scalar("INSERT INTO accounts (name) VALUES ('alice') RETURNING id")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(account, 1, "accounts.id did not start at 1");
    let order: i64 =
        sqlx::query_scalar("INSERT INTO orders (account_id, quantity) VALUES ($1, 5) RETURNING id")
            .bind(account)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(order, 1, "orders.id did not start at 1");
    sqlx::query("INSERT INTO fills (order_id) VALUES ($1)")
        .bind(order)
        .execute(db.pool())
        .await
        .unwrap();
    let invoice: i64 = sqlx::query_scalar("SELECT nextval('invoice_numbers')")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(invoice, 1000);
}

macro_rules! writers {
    ($($name:ident),*) => {$(
        #[verily::test(category = "persistence")]
        async fn $name(db: Db) {
            starts_from_the_template(&db).await;
            writes_linked_rows(&db).await;
        }
    )*};
}

writers!(
    writes_1, writes_2, writes_3, writes_4, writes_5, writes_6, writes_7, writes_8
);

/// Rows added to a seeded table: the seed stays, the additions go.
#[verily::test(category = "persistence")]
async fn adds_a_currency(db: Db) {
    starts_from_the_template(&db).await;
    db.execute("INSERT INTO currencies VALUES ('CHF', 'Swiss franc')")
        .await
        .unwrap();
}

/// A seed row changed: it cannot be restored by deleting, so the database
/// is dropped.
#[verily::test(category = "persistence")]
async fn renames_a_currency(db: Db) {
    starts_from_the_template(&db).await;
    db.execute("UPDATE currencies SET name = 'euro' WHERE code = 'EUR'")
        .await
        .unwrap();
}

/// A schema change: the database is dropped.
#[verily::test(category = "persistence")]
async fn adds_a_column(db: Db) {
    starts_from_the_template(&db).await;
    db.execute("ALTER TABLE currencies ADD COLUMN symbol text")
        .await
        .unwrap();
}

/// A temporary table goes with its session: the database can be reused.
#[verily::test(category = "persistence")]
async fn uses_a_temporary_table(db: Db) {
    starts_from_the_template(&db).await;
    let mut connection = db.connect().await.unwrap();
    sqlx::query("CREATE TEMPORARY TABLE scratch (n int)")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

/// A session the test never closes: the database is dropped, which ends it.
#[verily::test(category = "persistence")]
async fn leaves_a_session_open(db: Db) {
    starts_from_the_template(&db).await;
    let connection: PgConnection = db.connect().await.unwrap();
    std::mem::forget(connection);
}

/// Polls the database on a connection of its own until it fails (its
/// database dropped) or it is aborted.
async fn poll_forever(db: Db) {
    let Ok(mut connection) = db.connect().await else {
        return;
    };
    loop {
        if sqlx::query("SELECT 1")
            .execute(&mut connection)
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A task the test spawned (a server on its database, say) ends with the
/// test, as under `#[tokio::test]`: each test has a runtime of its own,
/// shut down before its database is given back, so its session closes
/// and the database is reused.
#[verily::test(category = "persistence")]
async fn a_task_spawned_by_the_test_ends_with_it(db: Db) {
    starts_from_the_template(&db).await;
    tokio::spawn(poll_forever(db.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}
