use std::sync::Arc;

pub struct Repository;
pub struct Metrics;

#[verily::wired(repositry, metrics)]
pub struct OperationsService {
    repository: Option<Arc<Repository>>,
    metrics: Option<Arc<Metrics>>,
}

fn main() {}
