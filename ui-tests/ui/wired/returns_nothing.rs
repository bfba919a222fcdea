#[verily::wired(repository)]
pub fn start_service() {}

fn main() {}
