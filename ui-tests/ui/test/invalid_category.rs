#[verily::test(category = "End To End")]
fn training_can_be_cancelled() {}

fn main() {}
