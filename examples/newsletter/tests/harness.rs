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

/// A client that takes only TCP (or a settings struct with a host name)
/// gets `Db::tcp_url()` and `host()`/`port()`: the local cluster listens on
/// 127.0.0.1 as well as on its socket.
#[verily::test(category = "persistence")]
async fn settings_over_tcp_reach_the_test_database(db: Db) {
    let settings = DatabaseSettings {
        host: db.host().to_owned(),
        port: db.port(),
        username: db.user().to_owned(),
        password: db.password(),
        database_name: db.database().to_owned(),
    };
    let pool = settings.pool();
    newsletter::subscribe(&pool, "tcp@example.com", "Tcp")
        .await
        .unwrap();
    pool.close().await;
    let mut by_url = sqlx::PgConnection::connect(&db.tcp_url()).await.unwrap();
    let over_tcp: bool = sqlx::query_scalar("SELECT inet_client_addr() IS NOT NULL")
        .fetch_one(&mut by_url)
        .await
        .unwrap();
    assert!(over_tcp, "{} did not connect over TCP", db.tcp_url());
    by_url.close().await.unwrap();
    assert_eq!(
        db.count_where("subscriptions", Some("email = 'tcp@example.com'"))
            .await
            .unwrap(),
        1
    );
}

/// The README's recipe for tokio-postgres: its config parser takes the
/// TCP URL (and a socket directory as `host`).
#[verily::test(category = "persistence")]
async fn tokio_postgres_connects_to_the_test_database(db: Db) {
    let (client, connection) = tokio_postgres::connect(&db.tcp_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driving = tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO subscriptions (email, name) VALUES ($1, $2)",
            &[&"tp@example.com", &"Tp"],
        )
        .await
        .unwrap();
    drop(client);
    let _ = driving.await;
    assert_eq!(
        db.count_where("subscriptions", Some("email = 'tp@example.com'"))
            .await
            .unwrap(),
        1
    );
}

verily::main!(newsletter);
