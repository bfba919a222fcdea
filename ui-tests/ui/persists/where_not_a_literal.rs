#[verily::persists(operations(where = status), migrations = "../../../../ui-tests/migrations")]
async fn orphan_is_marked_failed(_db: verily::Db) {}

fn main() {}
