// A shared service must say how other processes reach it.
struct Broker;

#[verily::service]
impl verily::Service for Broker {
    const NAME: &'static str = "broker";

    async fn start(_: &verily::Config) -> Result<Self, verily::InfraError> {
        Ok(Broker)
    }

    async fn shutdown(&self, _keep: bool) {}
}

fn main() {}
