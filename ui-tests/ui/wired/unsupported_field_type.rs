pub struct Service {
    name: String,
}

#[groundtruth::wired(name)]
pub fn service() -> Service {
    Service { name: String::new() }
}

fn main() {}
