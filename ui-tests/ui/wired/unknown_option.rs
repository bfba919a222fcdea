pub struct Service {
    repository: Option<u32>,
}

#[verily::wired(repository, timeuot = "5s")]
pub fn service() -> Service {
    Service { repository: Some(1) }
}

fn main() {}
