//! A sqlx 0.8 service's tests: its own `PgPool` and `PgConnection` types
//! as fixtures, and its settings built from the test database's parts.

use newsletter::DatabaseSettings;
use sqlx::Connection;
use verily::Db;

#[verily::persists(subscriptions(rows = 1, where = "email = 'ursula@example.com'"))]
async fn subscribing_writes_a_row(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
    newsletter::subscribe(&pool, "ursula@example.com", "Ursula").await
}

#[verily::test(category = "persistence")]
async fn a_second_subscription_of_an_address_is_refused(pool: sqlx::PgPool) {
    newsletter::subscribe(&pool, "le@example.com", "Le")
        .await
        .unwrap();
    let again = newsletter::subscribe(&pool, "le@example.com", "Le").await;
    assert!(again.is_err(), "the same address twice was accepted");
    assert_eq!(newsletter::count(&pool).await.unwrap(), 1);
}

#[verily::test(category = "persistence")]
async fn a_connection_of_sqlx_0_8_sees_the_test_database(mut connection: sqlx::PgConnection) {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(name.starts_with("vy_"), "connected to {name}");
    connection.close().await.unwrap();
}

/// A service configured by parts gets them from `Db`: a socket directory is
/// the host, as libpq and sqlx take it.
#[verily::test(category = "persistence")]
async fn settings_built_from_the_parts_reach_the_test_database(db: Db) {
    let settings = DatabaseSettings {
        host: match db.socket_dir() {
            Some(dir) => dir.display().to_string(),
            None => db.host().to_owned(),
        },
        port: db.port(),
        username: db.user().to_owned(),
        password: db.password(),
        database_name: db.database().to_owned(),
    };
    let pool = settings.pool();
    newsletter::subscribe(&pool, "parts@example.com", "Parts")
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(
        db.count_where("subscriptions", Some("email = 'parts@example.com'"))
            .await
            .unwrap(),
        1
    );
}

verily::main!(newsletter);
