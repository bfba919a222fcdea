#[verily::enum_complete(scan = "config/*.toml")]
pub enum EventType {
    TradingSignal,
}

fn main() {}
