// Every attribute that generates a test takes `tags` and `retries`.
pub struct Service {
    repository: Option<u32>,
}

#[verily::wired(repository, tags = ["fast"], retries = 1)]
pub fn service() -> Service {
    Service { repository: Some(1) }
}

#[verily::enum_complete(tags = ["schema-drift"], retries = 0)]
pub enum Light {
    Red,
    Green,
}

#[verily::enum_complete(Light, tags = ["nightly", "slow"], retries = 2)]
fn stops(light: Light) -> bool {
    match light {
        Light::Red => true,
        Light::Green => false,
    }
}

#[verily::test(category = "smoke", tags = ["slow", "nightly"], retries = 3)]
fn tagged() {}

#[verily::test(tags = [], retries = 0)]
fn no_tags() {}

fn main() {
    let _ = service();
    let _ = stops(Light::Green);
}
