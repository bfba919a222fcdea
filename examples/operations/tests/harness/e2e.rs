//! The operations API end to end: its own binary (`operations-api`),
//! started per test on the test's own database, driven over HTTP, and
//! checked in its answers, in the table and in its logs. Every test here
//! takes the `App` fixture, so its category is `e2e`.

use std::time::Duration;

use serde_json::{Value, json};
use verily::{App, Db, eventually};

/// Starts an operation through the API; returns its id.
async fn start(app: &App, symbol: &str, steps: u32) -> i64 {
    let created = app
        .post_json(
            "/operations",
            &json!({ "kind": "training", "symbol": symbol, "steps": steps }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{created:?}");
    created.json().unwrap()["id"].as_i64().unwrap()
}

/// Status and progress as the API reports them.
async fn status(app: &App, id: i64) -> Result<(String, i64), String> {
    let response = app
        .get(&format!("/operations/{id}"))
        .await
        .map_err(|error| error.to_string())?;
    let body: Value = response.json().map_err(|error| error.to_string())?;
    let status = body["status"].as_str().unwrap_or("?").to_owned();
    Ok((status, body["progress"].as_i64().unwrap_or(-1)))
}

/// Waits until the API says `wanted`; the failure lists what it said.
async fn until_status(app: &App, id: i64, wanted: &str, limit: Duration) {
    eventually(limit, || async move {
        let (status, progress) = status(app, id).await?;
        if status == wanted {
            Ok(())
        } else {
            Err(format!("{status} ({progress}%)"))
        }
    })
    .await
    .unwrap_or_else(|never| panic!("op-{id} never {wanted}: {never}"));
}

#[verily::test]
async fn an_operation_runs_to_completion(app: App) {
    let id = start(&app, "EURUSD", 10).await;
    until_status(&app, id, "COMPLETED", Duration::from_secs(10)).await;
    assert_eq!(status(&app, id).await.unwrap().1, 100);
}

#[verily::persists(operations(rows = 1, where = "symbol = 'EURUSD'"))]
async fn post_writes_the_operation_row(app: App) {
    let created = app
        .post_json(
            "/operations",
            &json!({ "kind": "training", "symbol": "EURUSD" }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json().unwrap()["status"], "PENDING");
}

#[verily::test]
async fn progress_is_reported_while_the_job_runs(app: App) {
    let id = start(&app, "GBPUSD", 40).await;
    let seen = std::sync::Mutex::new(Vec::new());
    let seen_ref = &seen;
    let app_ref = &app;
    eventually(Duration::from_secs(10), || async move {
        let (status, progress) = status(app_ref, id).await?;
        seen_ref.lock().unwrap().push(progress);
        if status == "COMPLETED" {
            Ok(())
        } else {
            Err(format!("{status} ({progress}%)"))
        }
    })
    .await
    .unwrap();
    let mut seen = seen.into_inner().unwrap();
    assert!(
        seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress went back: {seen:?}"
    );
    seen.dedup();
    assert!(
        seen.iter().any(|progress| (1..100).contains(progress)),
        "progress was never reported while the job ran, only: {seen:?}"
    );
}

#[verily::test]
async fn cancelling_stops_the_job_and_a_new_one_still_runs(app: App, db: Db) {
    let id = start(&app, "USDJPY", 400).await;
    until_status(&app, id, "RUNNING", Duration::from_secs(5)).await;
    let cancelled = app.delete(&format!("/operations/{id}")).await.unwrap();
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!(cancelled.json().unwrap()["status"], "CANCELLED");

    // The job itself stops, not only its status.
    let stopped = app
        .wait_for_log(&format!("op-{id}: stopped at step"), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(stopped.contains("Cancelled"), "{stopped}");
    let at_stop: i32 = sqlx::query_scalar("SELECT progress FROM operations WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap();

    // A new operation still runs to completion (meanwhile, a job that
    // kept going would have written more progress).
    let next = start(&app, "EURCHF", 10).await;
    until_status(&app, next, "COMPLETED", Duration::from_secs(10)).await;
    assert_eq!(
        db.count_where(
            "operations",
            Some(&format!("id = {id} AND status = 'CANCELLED'"))
        )
        .await
        .unwrap(),
        1,
        "the row of op-{id} is not CANCELLED"
    );
    assert_eq!(
        db.count_where(
            "operations",
            Some(&format!("id = {id} AND progress > {at_stop}"))
        )
        .await
        .unwrap(),
        0,
        "op-{id} kept writing progress after it was cancelled"
    );
}

/// Any client works on `app.url()`; here reqwest, as a service's own
/// client code would use it.
#[verily::test]
async fn reqwest_talks_to_the_app_on_its_url(app: App) {
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/operations", app.url()))
        .json(&json!({ "kind": "backtest", "symbol": "USDCAD", "steps": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    let read: Value = client
        .get(format!("{}/operations/{id}", app.url()))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&read["kind"], &read["symbol"]),
        (&json!("backtest"), &json!("USDCAD")),
        "{read}"
    );

    let missing = client
        .get(format!("{}/operations/999999", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"], "op-999999 not found");
}

/// A restart keeps the data: the operation is read back through the API
/// of the new process (from its row, not the old process's memory).
#[verily::test]
async fn an_operation_survives_a_restart(app: App, db: Db) {
    let id = start(&app, "NZDUSD", 5).await;
    until_status(&app, id, "COMPLETED", Duration::from_secs(10)).await;
    let before = app
        .get(&format!("/operations/{id}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    let pid = app.pid();

    app.restart().await.unwrap();
    assert_ne!(app.pid(), pid, "the same process still runs");

    let after = app.get(&format!("/operations/{id}")).await.unwrap();
    assert_eq!(after.status, 200, "op-{id} after the restart: {after:?}");
    let after = after.json().unwrap();
    for field in ["id", "kind", "symbol", "status", "progress"] {
        assert_eq!(
            after[field], before[field],
            "{field} after the restart: {after} (before: {before})"
        );
    }
    assert_eq!(
        db.count_where(
            "operations",
            Some(&format!(
                "id = {id} AND symbol = 'NZDUSD' AND status = 'COMPLETED' AND progress = 100"
            ))
        )
        .await
        .unwrap(),
        1,
        "the row of op-{id} is not COMPLETED at 100%"
    );
}

#[verily::test]
async fn an_invalid_payload_gets_a_clear_4xx_and_the_app_stays_up(app: App) {
    for (payload, names) in [
        (json!({ "kind": "training" }), "symbol"),
        (json!({ "kind": "training", "symbol": 5 }), "symbol"),
        (json!({ "kind": "mining", "symbol": "EURUSD" }), "kind"),
        (
            json!({ "kind": "training", "symbol": "EURUSD", "steps": -1 }),
            "steps",
        ),
    ] {
        let response = app.post_json("/operations", &payload).await.unwrap();
        assert!(
            (400..500).contains(&response.status),
            "{payload} got {response:?}"
        );
        let message = response.json().unwrap()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(names), "{payload}: {message}");
        for internal in ["Error(", ".rs:", "sqlx", "panicked"] {
            assert!(
                !response.body.contains(internal),
                "{payload}: the answer shows internals: {}",
                response.body
            );
        }
    }
    let not_json = app
        .request(
            "POST",
            "/operations",
            Some(("application/json", b"{not json")),
        )
        .await
        .unwrap();
    assert_eq!(not_json.status, 400, "{not_json:?}");

    assert_eq!(app.get("/health").await.unwrap().status, 200);
    start(&app, "EURUSD", 5).await;
}

#[verily::persists(
    checkpoints(rows = 2, where = "reason = 'shutdown'"),
    operations(rows = 0, where = "status = 'RUNNING'")
)]
async fn sigterm_saves_a_checkpoint_per_running_operation(app: App) {
    let first = start(&app, "EURUSD", 400).await;
    let second = start(&app, "GBPUSD", 400).await;
    until_status(&app, first, "RUNNING", Duration::from_secs(5)).await;
    until_status(&app, second, "RUNNING", Duration::from_secs(5)).await;
    let exit = app.terminate().await.unwrap();
    assert!(exit.success(), "operations-api exited with {exit}");
}

/// An operation whose worker went silent an hour ago, written before the
/// app starts: fixtures are built in the order the test names them.
struct OrphanBeforeStartup {
    id: i64,
}

#[verily::fixture]
impl verily::Fixture for OrphanBeforeStartup {
    async fn setup(ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
        let db = ctx.database().await?;
        let id = sqlx::query_scalar(
            "INSERT INTO operations (kind, symbol, status, last_heartbeat_at)
             VALUES ('training', 'AUDUSD', 'RUNNING', now() - interval '1 hour') RETURNING id",
        )
        .fetch_one(db.pool())
        .await
        .map_err(|error| verily::FixtureError::new(format!("cannot insert the orphan: {error}")))?;
        Ok(Self { id })
    }
}

#[verily::test]
async fn an_orphan_left_before_startup_is_marked_failed(
    orphan: OrphanBeforeStartup,
    _app: App,
    db: Db,
) {
    let db = &db;
    let id = orphan.id;
    eventually(Duration::from_secs(5), || async move {
        let status: String = sqlx::query_scalar("SELECT status FROM operations WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .map_err(|error| error.to_string())?;
        if status == "FAILED" {
            Ok(())
        } else {
            Err(status)
        }
    })
    .await
    .unwrap();
}
