//! Event types and the envelope consumers receive.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What happened. Stored in the `event_type` enum column, sent as its
/// snake_case JSON string, and written the same way in config files.
#[verily::enum_complete(serde, strings, pg_type = "event_type", scan = "config/*.toml")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "event_type", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    TradingSignal,
    #[cfg_attr(
        feature = "bug-serde-rename-collision",
        serde(rename = "trading_signal")
    )]
    OrderFilled,
    #[cfg_attr(feature = "bug-stale-config-label", serde(rename = "risk_warning"))]
    RiskAlert,
    SystemError,
    #[cfg(feature = "bug-variant-missing-in-migration")]
    PositionClosed,
}

impl EventType {
    /// The label used in logs and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TradingSignal => "trading_signal",
            EventType::OrderFilled => "order_filled",
            EventType::RiskAlert => "risk_alert",
            EventType::SystemError => "system_error",
            #[cfg(feature = "bug-variant-missing-in-migration")]
            EventType::PositionClosed => "position_closed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label no variant has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventType(pub String);

impl fmt::Display for UnknownEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event type `{}`", self.0)
    }
}

impl std::error::Error for UnknownEventType {}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(label: &str) -> Result<Self, Self::Err> {
        match label {
            "trading_signal" => Ok(EventType::TradingSignal),
            "order_filled" => Ok(EventType::OrderFilled),
            "risk_alert" => Ok(EventType::RiskAlert),
            "system_error" => Ok(EventType::SystemError),
            #[cfg(feature = "bug-variant-missing-in-migration")]
            "position_closed" => Ok(EventType::PositionClosed),
            other => Err(UnknownEventType(other.to_owned())),
        }
    }
}

/// What consumers receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub source: String,
    pub payload: serde_json::Value,
}
