// The factory is still emitted on error: only the attribute's mistake is
// reported, not "cannot find function `service`" at every caller.
pub struct Service {
    repository: Option<u32>,
}

#[verily::wired(repository, colour = "blue")]
pub fn service() -> Service {
    Service { repository: Some(1) }
}

fn main() {
    let _ = service();
}
