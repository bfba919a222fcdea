#[verily::test(categroy = "e2e")]
fn training_can_be_cancelled() {}

fn main() {}
