pub enum EventType {
    TradingSignal,
    SystemError,
}

#[verily::enum_complete(EventType)]
fn topic_for(event: EventType) -> &'static str {
    match event {
        EventType::TradingSignal => "signals",
        EventType::SystemError => "dead-letters",
    }
}

fn main() {}
