//! The HTTP routes and their JSON: what a client sends, what it gets back,
//! and errors that say what to fix without showing internals.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use operations::{NewOperation, OperationId, ServiceError};
use serde_json::{Value, json};

use crate::log;
use crate::training::{JobState, Jobs};

/// Steps of a job when the request does not say.
const DEFAULT_STEPS: u32 = 20;
/// Kinds of operation the service runs.
const KINDS: [&str; 2] = ["training", "backtest"];

pub fn router(jobs: Jobs) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/operations", axum::routing::post(create))
        .route("/operations/{id}", get(read).delete(cancel))
        .with_state(jobs)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// An error answer: `{"error": "..."}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The same error for every failure the client cannot fix; the details go
/// to the log, not to the client.
fn internal(context: &str, failure: &ServiceError) -> Response {
    log::error(format!("{context}: {failure}"));
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the service logged the details",
    )
}

fn body(state: &JobState) -> Value {
    json!({
        "id": state.operation.id.0,
        "kind": state.operation.kind,
        "symbol": state.operation.symbol,
        "status": state.operation.status.as_str(),
        "progress": state.progress,
        "step": state.step,
        "steps": state.steps,
    })
}

/// What `POST /operations` takes.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read only by the incident's typed parse
struct CreateRequest {
    kind: String,
    symbol: String,
    steps: Option<u32>,
}

async fn create(State(jobs): State<Jobs>, payload: Bytes) -> Response {
    if cfg!(feature = "bug-error-500-with-trace") {
        // The incident: the parse error escapes as a 500 with its debug
        // form and the handler's source location.
        if let Err(failure) = serde_json::from_slice::<CreateRequest>(&payload) {
            log::error(format!("create: {failure:?}"));
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{failure:?} at {}:{}", file!(), line!()),
            );
        }
    }
    let (new, steps) = match parse_create(&payload) {
        Ok(request) => request,
        Err((status, message)) => {
            log::warn(format!("create: rejected: {message}"));
            return error(status, message);
        }
    };
    match jobs.start(new, steps).await {
        Ok(state) => (StatusCode::CREATED, Json(body(&state))).into_response(),
        Err(failure) => internal("create", &failure),
    }
}

/// Checks a create request field by field, naming what to send instead.
fn parse_create(payload: &[u8]) -> Result<(NewOperation, u32), (StatusCode, String)> {
    let unprocessable = |message: String| (StatusCode::UNPROCESSABLE_ENTITY, message);
    let value: Value = serde_json::from_slice(payload).map_err(|failure| {
        (
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be a JSON object such as {{\"kind\": \"training\", \"symbol\": \"EURUSD\"}} ({failure})"
            ),
        )
    })?;
    let kind = match value.get("kind") {
        Some(Value::String(kind)) if KINDS.contains(&kind.as_str()) => kind.clone(),
        Some(other) => {
            return Err(unprocessable(format!(
                "`kind` must be one of {}, not {other}",
                KINDS.join(", ")
            )));
        }
        None => {
            return Err(unprocessable(format!(
                "`kind` is missing: one of {}",
                KINDS.join(", ")
            )));
        }
    };
    let symbol = match value.get("symbol") {
        Some(Value::String(symbol))
            if (3..=12).contains(&symbol.len())
                && symbol
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            symbol.clone()
        }
        Some(other) => {
            return Err(unprocessable(format!(
                "`symbol` must be 3 to 12 upper-case letters or digits, such as \"EURUSD\", not {other}"
            )));
        }
        None => {
            return Err(unprocessable(
                "`symbol` is missing: a market symbol such as \"EURUSD\"".to_owned(),
            ));
        }
    };
    let steps = match value.get("steps") {
        None => DEFAULT_STEPS,
        Some(steps) => match steps.as_u64() {
            Some(steps @ 1..=100_000) => steps as u32,
            _ => {
                return Err(unprocessable(format!(
                    "`steps` must be a whole number from 1 to 100000, not {steps}"
                )));
            }
        },
    };
    Ok((NewOperation { kind, symbol }, steps))
}

async fn read(State(jobs): State<Jobs>, Path(id): Path<i64>) -> Response {
    let id = OperationId(id);
    if let Some(state) = jobs.state(id) {
        return Json(body(&state)).into_response();
    }
    not_found_or(jobs, id).await
}

async fn cancel(State(jobs): State<Jobs>, Path(id): Path<i64>) -> Response {
    let id = OperationId(id);
    let Some(state) = jobs.state(id) else {
        return not_found_or(jobs, id).await;
    };
    if !matches!(state.operation.status.as_str(), "PENDING" | "RUNNING") {
        return error(
            StatusCode::CONFLICT,
            format!(
                "{id} is {}: only pending or running operations can be cancelled",
                state.operation.status.as_str()
            ),
        );
    }
    match jobs.cancel(id).await {
        Ok(()) => match jobs.state(id) {
            Some(state) => Json(body(&state)).into_response(),
            None => error(StatusCode::NOT_FOUND, format!("{id} not found")),
        },
        Err(failure) => internal("cancel", &failure),
    }
}

/// An operation this process did not run: the row, or 404.
async fn not_found_or(jobs: Jobs, id: OperationId) -> Response {
    match jobs.stored(id).await {
        Ok(Some(state)) => Json(body(&state)).into_response(),
        Ok(None) | Err(ServiceError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, format!("{id} not found"))
        }
        Err(failure) => internal("read", &failure),
    }
}
