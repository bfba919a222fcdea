// One keeper starts one concrete type.
struct Broker<T>(T);

#[verily::service]
impl<T: Send + Sync + 'static> verily::Service for Broker<T> {
    const NAME: &'static str = "broker";

    async fn start(_: &verily::Config) -> Result<Self, verily::InfraError> {
        unimplemented!()
    }

    async fn shutdown(&self, _keep: bool) {}

    fn endpoint(&self) -> String {
        String::new()
    }

    async fn attach(_: &str, _: &verily::Config) -> Result<Self, verily::InfraError> {
        unimplemented!()
    }
}

fn main() {}
