// On an inherent impl there is nothing to register.
struct Broker;

#[verily::service]
impl Broker {
    fn new() -> Self {
        Broker
    }
}

fn main() {}
