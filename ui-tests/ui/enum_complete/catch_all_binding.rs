#[verily::enum_complete]
pub enum EventType {
    TradingSignal,
    OrderFilled,
}

#[verily::enum_complete(EventType)]
fn describe(event: &EventType) -> String {
    match event {
        EventType::TradingSignal => "signal".to_owned(),
        other => format!("{}", other as *const EventType as usize),
    }
}

fn main() {}
