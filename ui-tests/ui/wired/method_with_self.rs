pub struct Service {
    repository: Option<u32>,
}

pub struct Container;

impl Container {
    #[verily::wired(repository)]
    pub fn service(&self) -> Service {
        Service { repository: Some(1) }
    }
}

fn main() {}
