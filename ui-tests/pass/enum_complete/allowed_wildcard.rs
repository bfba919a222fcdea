// A deliberate catch-all, marked: it compiles, and the marker is removed.
#[verily::enum_complete]
pub enum EventType {
    TradingSignal,
    OrderFilled,
    #[enum_complete(sample = EventType::Custom(7))]
    Custom(u32),
}

#[verily::enum_complete]
pub enum Sample {
    #[enum_complete(sample = Sample::Sized(3))]
    Sized(u32),
}

#[verily::enum_complete(EventType)]
fn is_signal(event: EventType) -> bool {
    match event {
        EventType::TradingSignal => true,
        #[verily::allow_wildcard]
        _ => false,
    }
}

fn main() {
    let _ = is_signal(EventType::OrderFilled);
    let _ = Sample::Sized(1);
    let _ = EventType::Custom(1);
}
