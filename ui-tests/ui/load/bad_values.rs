#[verily::load(
    concurrency = 0,
    max_error_rate = 2.0,
    max_memory_growth = "20 megs",
    duration = "fast",
    p99 = 50,
    warmup = "100",
    after = || true
)]
async fn deposits() {}

fn main() {}
