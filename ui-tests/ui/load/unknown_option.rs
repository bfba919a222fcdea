#[verily::load(concurency = 50, iterations = 100)]
async fn deposits() {}

fn main() {}
