#[verily::persists(operations, tags = ["Nightly"], retries = -1, migrations = "../../../../ui-tests/migrations")]
async fn create_operation_writes_a_row(_db: verily::Db) {}

fn main() {}
