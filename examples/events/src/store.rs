//! Publishing events: a row in `events`, with its type in the enum column.

use sqlx::PgPool;

use crate::dead_letter::dead_letter;
use crate::event::{EventEnvelope, EventType};

/// Stores published events.
#[verily::wired(pool)]
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: Option<PgPool>,
}

impl EventStore {
    /// Stores the event; if that fails, stores its dead letter instead and
    /// returns the original error.
    pub async fn publish(&self, event: &EventEnvelope) -> Result<i64, sqlx::Error> {
        let Some(pool) = &self.pool else {
            return Err(sqlx::Error::Configuration(
                "the event store has no database".into(),
            ));
        };
        match insert(pool, event).await {
            Ok(id) => Ok(id),
            Err(error) => {
                let _ = insert(pool, &dead_letter(event, &error.to_string())).await;
                Err(error)
            }
        }
    }

    /// Events of one type, oldest first.
    pub async fn of_type(&self, event_type: EventType) -> Result<Vec<EventEnvelope>, sqlx::Error> {
        let Some(pool) = &self.pool else {
            return Err(sqlx::Error::Configuration(
                "the event store has no database".into(),
            ));
        };
        let rows: Vec<(EventType, String, String)> = sqlx::query_as(
            "SELECT type, source, payload::text FROM events WHERE type = $1 ORDER BY id",
        )
        .bind(event_type)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(event_type, source, payload)| EventEnvelope {
                event_type,
                source,
                payload: serde_json::from_str(&payload).unwrap_or_default(),
            })
            .collect())
    }
}

async fn insert(pool: &PgPool, event: &EventEnvelope) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO events (type, source, payload) VALUES ($1, $2, $3::jsonb) RETURNING id",
    )
    .bind(event.event_type)
    .bind(&event.source)
    .bind(event.payload.to_string())
    .fetch_one(pool)
    .await
}

/// The store the pipeline publishes through.
#[verily::wired]
pub fn event_store(pool: PgPool) -> EventStore {
    EventStore { pool: Some(pool) }
}
