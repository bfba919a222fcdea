// Three mistakes in one attribute: three messages in one build.
pub struct Service {
    repository: Option<u32>,
}

#[verily::wired(repository, repository, timeout = "soon", retires = 3)]
pub fn service() -> Service {
    Service { repository: Some(1) }
}

fn main() {}
