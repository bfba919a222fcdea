// Every mistake in one attribute is reported in one build.
#[groundtruth::persists(operatoins, checkpoints(rows = -1), operations(where = 1), migrations = "../../../../ui-tests/migrations")]
async fn cancel_saves_a_checkpoint(_db: groundtruth::Db) {}

fn main() {}
