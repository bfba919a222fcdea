// Every mistake in one attribute is reported in one build.
#[verily::persists(operatoins, checkpoints(rows = -1), operations(where = 1), migrations = "../../../../ui-tests/migrations")]
async fn cancel_saves_a_checkpoint(_db: verily::Db) {}

fn main() {}
