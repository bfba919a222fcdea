//! An event pipeline as the teams behind verily write theirs: an
//! `EventType` stored in a PostgreSQL enum column and sent to consumers as
//! JSON, a router from event type to topic, and a dead-letter path for
//! events that cannot be published. `#[enum_complete]` keeps all of them
//! in step with the enum.

pub mod dead_letter;
pub mod event;
pub mod router;
pub mod store;

pub use dead_letter::dead_letter;
pub use event::{EventEnvelope, EventType, UnknownEventType};
pub use router::{Severity, severity, topic_for};
pub use store::{EventStore, event_store};
