#[verily::enum_complete]
pub enum EventType {
    TradingSignal,
    Custom(String),
}

fn main() {}

// The declaration stands for the variants that are fine: no cascade here.
#[verily::enum_complete(EventType)]
fn topic_for(event: EventType) -> &'static str {
    match event {
        EventType::TradingSignal => "signals",
        EventType::Custom(_) => "custom",
    }
}
