#[verily::enum_complete(serde)]
pub struct EventType {
    name: String,
}

fn main() {}
