//! The operations service's verily suite: the `#[wired]` factories of
//! the crate, and the persistence and smoke tests below, each against a
//! database of its own cloned from the migrated `migrations/`; the `error`
//! tests in `outages.rs`, each against a server of its own that it breaks;
//! the `e2e` tests in `e2e.rs`, against the running `operations-api`.

use operations::{NewOperation, OperationStatus, OperationsService, OrphanDetector};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use verily::Db;

#[path = "harness/e2e.rs"]
mod e2e;
#[path = "harness/outages.rs"]
mod outages;

// The `App` fixture starts the API binary of this package.
verily::main!(operations; config = verily::Config::new().app_binary(env!("CARGO_BIN_EXE_operations-api")));

#[verily::persists(operations)]
async fn create_operation_writes_a_row(service: OperationsService) {
    service
        .create_operation(NewOperation::training("EURUSD"))
        .await
        .unwrap();
}

#[verily::persists(operations(rows = 1, where = "status = 'RUNNING'"))]
async fn start_marks_the_row_running(service: OperationsService) {
    let operation = service
        .create_operation(NewOperation::training("GBPUSD"))
        .await
        .unwrap();
    service.start(operation.id).await.unwrap();
}

#[verily::persists(operations(rows = 1, where = "status = 'CANCELLED'"))]
async fn cancel_marks_the_row_cancelled(service: OperationsService) {
    let operation = service
        .create_operation(NewOperation::training("USDJPY"))
        .await
        .unwrap();
    service.cancel_operation(operation.id, 3).await.unwrap();
    // The service believes it; the attribute checks the table.
    assert_eq!(
        service.cached_status(operation.id),
        Some(OperationStatus::Cancelled)
    );
}

#[verily::persists(checkpoints(rows = 1, where = "reason = 'cancellation' AND epoch = 7"))]
async fn cancel_saves_a_checkpoint(service: OperationsService) {
    let operation = service
        .create_operation(NewOperation::training("EURCHF"))
        .await
        .unwrap();
    service.cancel_operation(operation.id, 7).await.unwrap();
}

#[verily::persists(operations(rows = 1, where = "status = 'FAILED'"))]
async fn orphan_is_marked_failed(db: Db, pool: PgPool) {
    let service = Arc::new(operations::operations_service(pool));
    let orphan = service
        .create_operation(NewOperation::training("AUDUSD"))
        .await
        .unwrap();
    service.start(orphan.id).await.unwrap();
    // The worker went silent an hour ago.
    db.execute(&format!(
        "UPDATE operations SET last_heartbeat_at = now() - interval '1 hour' WHERE id = {}",
        orphan.id.0
    ))
    .await
    .unwrap();
    let detector = OrphanDetector::new(Some(Arc::clone(&service)), Duration::from_secs(60));
    assert_eq!(detector.sweep().await.unwrap(), 1);
}

#[verily::persists(operations(rows = 0))]
async fn a_sweep_with_no_orphans_writes_nothing(service: OperationsService) {
    let detector = OrphanDetector::new(Some(Arc::new(service)), Duration::from_secs(60));
    assert_eq!(detector.sweep().await.unwrap(), 0);
}

#[verily::persists(operations(rows = 0), features_log(rows = 0))]
async fn deleting_an_operation_removes_its_features(service: OperationsService, db: Db) {
    let operation = service
        .create_operation(NewOperation::training("NZDUSD"))
        .await
        .unwrap();
    service
        .log_feature(operation.id, "rsi_14", 61.5)
        .await
        .unwrap();
    service
        .log_feature(operation.id, "atr_14", 0.0012)
        .await
        .unwrap();
    assert_eq!(db.count("features_log").await.unwrap(), 2);
    service.delete(operation.id).await.unwrap();
}

#[verily::test(category = "smoke")]
async fn created_operation_can_be_read_back(service: OperationsService) {
    let created = service
        .create_operation(NewOperation::training("EURUSD"))
        .await
        .unwrap();
    assert_eq!(
        service.get(created.id).await.unwrap().status,
        OperationStatus::Pending
    );
}

#[verily::test(category = "smoke")]
async fn schema_has_the_migrated_tables(mut connection: sqlx::PgConnection) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "checkpoints",
            "features_log",
            "operations"
        ]
    );
}
