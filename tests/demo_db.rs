//! A harness with PostgreSQL tests of known outcomes, for the framework's
//! own suite (`tests/harness/postgres.rs`); `cargo test` does not run it.
//! `DEMO_MIGRATIONS` picks the migrations folder (default: the good one;
//! `default`: the framework's default, `migrations/`, absent here).

use std::time::Duration;

use sqlx::PgPool;
use verily::Db;

verily::main!(; config = match std::env::var("DEMO_MIGRATIONS").as_deref() {
    // The default: `migrations/` next to Cargo.toml, which this crate lacks.
    Ok("default") => verily::Config::new(),
    Ok(dir) => verily::Config::new().migrations_dir(dir),
    Err(_) => verily::Config::new().migrations_dir("tests/fixtures/migrations/good"),
});

#[verily::persists(things, migrations = "tests/fixtures/migrations/good")]
async fn writes_a_thing(db: PgPool) {
    sqlx::query("INSERT INTO things (name) VALUES ('written')")
        .execute(&db)
        .await
        .unwrap();
}

#[verily::persists(things, migrations = "tests/fixtures/migrations/good")]
async fn leaves_its_write_uncommitted(db: PgPool) {
    let mut transaction = db.begin().await.unwrap();
    sqlx::query("INSERT INTO things (name) VALUES ('lost')")
        .execute(&mut *transaction)
        .await
        .unwrap();
    // Held open, not committed: only this connection sees the row.
    std::mem::forget(transaction);
}

/// Holds its database until killed: how the suite checks what a `kill -9`
/// leaves behind.
#[verily::test(category = "integration", timeout = "10m")]
async fn waits_forever(db: Db) {
    println!("holding {}", db.name());
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[verily::test(category = "smoke")]
fn needs_nothing() {}
