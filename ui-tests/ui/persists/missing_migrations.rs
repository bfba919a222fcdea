#[verily::persists(operation)]
async fn create_operation_writes_a_row(_db: verily::Db) {}

fn main() {}
