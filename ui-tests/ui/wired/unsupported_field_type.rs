pub struct Service {
    name: String,
}

#[verily::wired(name)]
pub fn service() -> Service {
    Service { name: String::new() }
}

fn main() {}
