//! What the service does when its database fails: stops, hangs, refuses
//! its credentials, drops its connections, or the network between them is
//! cut or slow. Each test breaks a server of its own (`PgServer`), never
//! the run's shared one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use groundtruth::{PgServer, TcpProxy};
use operations::{NewOperation, OperationStatus, OperationsService, ServiceError, Settings};
use sqlx::Connection;

async fn connect(settings: Settings) -> OperationsService {
    OperationsService::connect(&settings)
        .await
        .unwrap_or_else(|error| panic!("the service did not start: {error}"))
}

/// Waits until some session waits on a lock (the service's update on a
/// row another worker holds).
async fn until_someone_waits_on_a_lock(server: &PgServer) {
    let mut watcher = server.connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the service's update never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The database stops while an operation waits on a row another worker
/// holds: the operation fails with a clear error (no panic, no hang), and
/// once the database is back the next call succeeds.
#[groundtruth::test(category = "error", timeout = "60s")]
async fn a_database_stopped_mid_operation_is_an_error_then_recovers(server: PgServer) {
    let service = Arc::new(connect(Settings::for_database(server.url())).await);
    let operation = service
        .create_operation(NewOperation::training("EURUSD"))
        .await
        .unwrap();

    let mut worker = server.connect().await.unwrap();
    let mut holding = worker.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM operations WHERE id = $1 FOR UPDATE")
        .bind(operation.id.0)
        .execute(&mut *holding)
        .await
        .unwrap();
    let starting = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.start(operation.id).await }
    });
    until_someone_waits_on_a_lock(&server).await;

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
    drop(holding);

    server.start().await.unwrap();
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
#[groundtruth::test(category = "error", timeout = "15s")]
async fn a_hung_database_times_out_within_the_query_timeout(server: PgServer) {
    let limit = Duration::from_millis(500);
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
        "the database did not answer within 500 ms"
    );
    assert!(
        waited < limit + Duration::from_millis(500),
        "the timeout fired after {waited:?}"
    );
    assert_eq!(service.get(operation.id).await.unwrap().id, operation.id);
}

/// Wrong credentials: startup returns an error naming the problem, without
/// the password.
#[groundtruth::test(category = "error", timeout = "60s")]
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
#[groundtruth::test(category = "error", timeout = "60s")]
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
#[groundtruth::test(category = "error", timeout = "60s")]
async fn a_slow_network_hits_the_query_timeout(server: PgServer) {
    let proxy = server.proxy().await.unwrap();
    let service = connect(Settings {
        query_timeout: Duration::from_millis(300),
        ..Settings::for_database(proxy.url())
    })
    .await;
    let operation = service
        .create_operation(NewOperation::training("EURCHF"))
        .await
        .unwrap();

    proxy.set_latency(Duration::from_millis(400));
    let error = service
        .get(operation.id)
        .await
        .expect_err("a call beat a 300 ms timeout through 400 ms of latency");
    assert!(matches!(error, ServiceError::Timeout(_)), "{error}");

    proxy.set_latency(Duration::ZERO);
    assert_eq!(service.get(operation.id).await.unwrap().id, operation.id);
}

/// Every connection is terminated (a failover, an administrator): the
/// service's next call succeeds on a new one.
#[groundtruth::test(category = "error", timeout = "60s")]
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
