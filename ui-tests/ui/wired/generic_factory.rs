pub struct Service<R> {
    repository: Option<R>,
}

#[verily::wired(repository)]
pub fn make_service<R: Default>() -> Service<R> {
    Service { repository: Some(R::default()) }
}

fn main() {}
