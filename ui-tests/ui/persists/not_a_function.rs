#[verily::persists(operations, migrations = "../../../../ui-tests/migrations")]
struct CreateOperation;

fn main() {}
