#[verily::wired]
pub struct Service {
    repository: Option<u32>,
    metrics: Option<u32>,
}

fn main() {}
