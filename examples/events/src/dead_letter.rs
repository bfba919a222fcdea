//! Events that could not be published become `SystemError` events, so the
//! failure itself is stored and routed.

use serde_json::json;

use crate::event::{EventEnvelope, EventType};

/// The dead-letter event for `failed`, which could not be published.
pub fn dead_letter(failed: &EventEnvelope, reason: &str) -> EventEnvelope {
    EventEnvelope {
        event_type: EventType::SystemError,
        source: "dead-letter".to_owned(),
        payload: json!({
            "original_type": failed.event_type,
            "original_source": failed.source,
            "reason": reason,
        }),
    }
}
