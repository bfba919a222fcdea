//! What the service does when its database fails: stops, hangs, refuses
//! its credentials, drops its connections, or the network between them is
//! cut or slow. Each test breaks a server of its own (`PgServer`), never
//! the run's shared one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use operations::{NewOperation, OperationStatus, OperationsService, ServiceError, Settings};
use verily::{PgServer, TcpProxy};

async fn connect(settings: Settings) -> OperationsService {
    OperationsService::connect(&settings)
        .await
        .unwrap_or_else(|error| panic!("the service did not start: {error}"))
}

/// Makes every update of `operations` take 30 s (a trigger that sleeps),
/// standing in for a long statement; returns once one is running.
async fn slow_updates(server: &PgServer) {
    let mut admin = server.connect().await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
         CREATE TRIGGER slow_update BEFORE UPDATE ON operations
           FOR EACH ROW EXECUTE FUNCTION slow_update();",
    )
    .execute(&mut admin)
    .await
    .unwrap();
}

async fn until_an_update_sleeps(server: &PgServer) {
    let mut watcher = server.connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if sleeping > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the service's update never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The database stops while an operation's statement runs: the operation
/// fails with a clear error (no panic, no hang), and once the database is
/// back the next call succeeds.
#[verily::test(category = "error", timeout = "60s")]
async fn a_database_stopped_mid_operation_is_an_error_then_recovers(server: PgServer) {
    let service = Arc::new(
        connect(Settings {
            query_timeout: Duration::from_secs(40),
            ..Settings::for_database(server.url())
        })
        .await,
    );
    let operation = service
        .create_operation(NewOperation::training("EURUSD"))
        .await
        .unwrap();

    slow_updates(&server).await;
    let starting = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.start(operation.id).await }
    });
    until_an_update_sleeps(&server).await;

    server.stop().await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), starting)
        .await
        .expect("the operation hung after the database stopped")
        .expect("the operation panicked when the database stopped")
        .expect_err("the operation succeeded with the database stopped");
    assert!(
        matches!(error, ServiceError::Unavailable(_)),
        "not a clear error: {error}"
    );

    server.start().await.unwrap();
    sqlx::raw_sql("DROP TRIGGER slow_update ON operations")
        .execute(&mut server.connect().await.unwrap())
        .await
        .unwrap();
    service.start(operation.id).await.unwrap_or_else(|error| {
        panic!("the database is back, but the service still fails: {error}")
    });
    assert_eq!(
        service.get(operation.id).await.unwrap().status,
        OperationStatus::Running
    );
}

/// The database hangs (every process of it stopped, its port still open):
/// the service's query timeout fires in time, with an error that says so.
#[verily::test(category = "error", timeout = "15s")]
async fn a_hung_database_times_out_within_the_query_timeout(server: PgServer) {
    let limit = Duration::from_secs(1);
    let service = connect(Settings {
        query_timeout: limit,
        ..Settings::for_database(server.url())
    })
    .await;
    let operation = service
        .create_operation(NewOperation::training("GBPUSD"))
        .await
        .unwrap();

    server.pause().await.unwrap();
    let asked = Instant::now();
    let outcome = service.get(operation.id).await;
    let waited = asked.elapsed();
    server.resume().await.unwrap();

    let error = outcome.expect_err("a paused database answered");
    assert_eq!(
        error.to_string(),
        "the database did not answer within 1000 ms"
    );
    assert!(
        waited < limit + Duration::from_secs(1),
        "the timeout fired after {waited:?}"
    );
    assert_eq!(service.get(operation.id).await.unwrap().id, operation.id);
}

/// Wrong credentials: startup returns an error naming the problem, without
/// the password.
#[verily::test(category = "error", timeout = "60s")]
async fn wrong_credentials_fail_startup_naming_the_problem(server: PgServer) {
    let settings = Settings::for_database(server.url_as("postgres", "not-the-password"));
    let error = OperationsService::connect(&settings)
        .await
        .expect_err("the service started with a wrong password");
    let message = error.to_string();
    assert!(
        message.contains("password authentication failed for user \"postgres\""),
        "{message}"
    );
    assert!(
        !message.contains("not-the-password"),
        "the password leaked: {message}"
    );
}

/// The network is cut (every connection reset) and comes back: calls fail
/// while it is down, and the service reconnects by itself after.
#[verily::test(category = "error", timeout = "60s")]
async fn the_service_reconnects_after_a_network_cut(server: PgServer) {
    let proxy = TcpProxy::to(&server).await.unwrap();
    let service = connect(Settings::for_database(proxy.url())).await;
    let operation = service
        .create_operation(NewOperation::training("USDJPY"))
        .await
        .unwrap();

    proxy.cut();
    let error = service
        .get(operation.id)
        .await
        .expect_err("a call went through a cut network");
    assert!(matches!(error, ServiceError::Unavailable(_)), "{error}");

    proxy.restore();
    service.get(operation.id).await.unwrap_or_else(|error| {
        panic!("the network is back, but the service still fails: {error}")
    });
}

/// A slow network (latency on every packet, each way): the query timeout
/// fires rather than the caller waiting it out.
#[verily::test(category = "error", timeout = "60s")]
async fn a_slow_network_hits_the_query_timeout(server: PgServer) {
    let proxy = server.proxy().await.unwrap();
    let service = connect(Settings {
        query_timeout: Duration::from_secs(1),
        ..Settings::for_database(proxy.url())
    })
    .await;
    let operation = service
        .create_operation(NewOperation::training("EURCHF"))
        .await
        .unwrap();

    let latency = Duration::from_millis(800);
    proxy.set_latency(latency);
    let error = service
        .get(operation.id)
        .await
        .expect_err("a call beat a 1 s timeout through 800 ms of latency each way");
    assert!(matches!(error, ServiceError::Timeout(_)), "{error}");

    proxy.set_latency(Duration::ZERO);
    // What was sent under latency still arrives late; let it.
    tokio::time::sleep(latency * 2).await;
    service.get(operation.id).await.unwrap_or_else(|error| {
        panic!("the network is fast again, but the service still fails: {error}")
    });
}

/// Every connection is terminated (a failover, an administrator): the
/// service's next call succeeds on a new one.
#[verily::test(category = "error", timeout = "60s")]
async fn the_service_reconnects_after_its_connections_are_terminated(server: PgServer) {
    let service = connect(Settings::for_database(server.url())).await;
    let operation = service
        .create_operation(NewOperation::training("AUDUSD"))
        .await
        .unwrap();

    let ended = server.terminate_connections().await.unwrap();
    assert!(ended >= 1, "the service held no connection to terminate");
    service.get(operation.id).await.unwrap_or_else(|error| {
        panic!("the server is up, but the service does not reconnect: {error}")
    });
}
