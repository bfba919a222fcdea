#[verily::load(iterations = 100, duration = "2s")]
async fn deposits() {}

fn main() {}
