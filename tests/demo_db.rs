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

/// Reads its database, waits past the 10 s after which tokio retires an
/// idle thread, and reads again: the run's server must outlive every
/// thread of the runtime, not only the one that started it.
#[verily::test(
    category = "integration",
    timeout = "2m",
    ignore = "takes 15 s; run by the suite with --ignored"
)]
async fn reads_again_after_15_seconds(db: Db) {
    db.count("things").await.unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    db.count("things").await.unwrap();
}

/// Holds its database and a server of its own until killed: how the suite
/// checks what a signal leaves behind.
#[verily::test(category = "integration", timeout = "10m")]
async fn waits_forever_with_a_server(db: Db, server: verily::PgServer) {
    println!("holding {} and a server at {}", db.name(), server.addr());
    tokio::time::sleep(Duration::from_secs(3600)).await;
}
