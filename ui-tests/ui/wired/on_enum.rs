#[verily::wired(repository)]
pub enum Backend {
    Postgres,
    Memory,
}

fn main() {}
