//! The event pipeline's verily suite: the `#[enum_complete]` checks
//! and handlers of the crate, and the tests below.

use events::{EventEnvelope, EventType, event_store};
use serde_json::json;
use sqlx::PgPool;

verily::main!(events);

#[verily::persists(events(rows = 1, where = "type = 'trading_signal'"))]
async fn a_signal_is_stored_with_its_type(pool: PgPool) {
    let store = event_store(pool);
    let signal = EventEnvelope {
        event_type: EventType::TradingSignal,
        source: "strategy-runner".to_owned(),
        payload: json!({"symbol": "EURUSD", "side": "buy"}),
    };
    store.publish(&signal).await.unwrap();
}

#[verily::persists(events(rows = 1, where = "type = 'system_error'"))]
async fn an_unpublishable_event_becomes_a_dead_letter(pool: PgPool) {
    let store = event_store(pool);
    // Payloads must be JSON objects: the table's CHECK rejects this one.
    let malformed = EventEnvelope {
        event_type: EventType::OrderFilled,
        source: "broker-gateway".to_owned(),
        payload: json!(["not", "an", "object"]),
    };
    assert!(store.publish(&malformed).await.is_err());
}

#[verily::test(category = "smoke")]
async fn consumers_read_back_what_was_published(pool: PgPool) {
    let store = event_store(pool);
    let alert = EventEnvelope {
        event_type: EventType::RiskAlert,
        source: "risk-manager".to_owned(),
        payload: json!({"limit": "daily_loss", "used": 0.93}),
    };
    store.publish(&alert).await.unwrap();
    assert_eq!(store.of_type(EventType::RiskAlert).await.unwrap(), [alert]);
}
