#[verily::enum_complete]
pub enum Event<T> {
    Signal(T),
    Error,
}

fn main() {}
