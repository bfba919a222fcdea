#[verily::enum_complete(serde, json)]
pub enum EventType {
    TradingSignal,
}

fn main() {}
