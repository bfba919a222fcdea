#[verily::persists(operations, retires = 3, migrations = "../../../../ui-tests/migrations")]
async fn create_operation_writes_a_row(_db: verily::Db) {}

fn main() {}
