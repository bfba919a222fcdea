#[verily::enum_complete]
pub enum EventType {
    TradingSignal,
    OrderFilled,
    SystemError,
}

#[verily::enum_complete(EventType)]
fn topic_for(event: EventType) -> &'static str {
    match event {
        EventType::TradingSignal => "signals",
        _ => "misc",
    }
}

fn main() {}
