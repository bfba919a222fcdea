// trybuild compiles from target/tests/trybuild/<crate>; the path leads back to ui-tests/migrations.
#[verily::persists(operation, migrations = "../../../../ui-tests/migrations")]
async fn create_operation_writes_a_row(_db: verily::Db) {}

fn main() {}
