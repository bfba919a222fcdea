//! Where each event goes, and how loud it is.

use crate::event::EventType;

/// The topic an event is published to.
#[verily::enum_complete(EventType)]
pub fn topic_for(event: EventType) -> &'static str {
    match event {
        EventType::TradingSignal => "signals",
        EventType::OrderFilled => "orders",
        #[cfg(not(feature = "bug-router-unimplemented"))]
        EventType::RiskAlert => "risk",
        #[cfg(feature = "bug-router-unimplemented")]
        EventType::RiskAlert => unimplemented!("risk alerts have no topic yet"),
        EventType::SystemError => "dead-letters",
        #[cfg(feature = "bug-variant-missing-in-migration")]
        EventType::PositionClosed => "positions",
    }
}

/// How urgently someone must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Page,
}

/// The severity of an event, for alerting.
#[verily::enum_complete(EventType)]
pub fn severity(event: &EventType) -> Result<Severity, String> {
    match event {
        EventType::TradingSignal | EventType::OrderFilled => Ok(Severity::Info),
        EventType::RiskAlert => Ok(Severity::Warning),
        EventType::SystemError => Ok(Severity::Page),
        #[cfg(feature = "bug-variant-missing-in-migration")]
        EventType::PositionClosed => Ok(Severity::Info),
    }
}
