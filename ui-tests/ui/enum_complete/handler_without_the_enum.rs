#[verily::enum_complete]
pub enum EventType {
    TradingSignal,
}

#[verily::enum_complete(EventType)]
fn topic_for(name: &str) -> &'static str {
    if name.is_empty() { "none" } else { "signals" }
}

fn main() {}
