#[verily::load(concurrency = 10)]
#[verily::persists(operations(rows = 1))]
async fn deposits() {}

fn main() {}
