#[verily::enum_complete(pg_type = "Event Type")]
pub enum EventType {
    TradingSignal,
}

fn main() {}
