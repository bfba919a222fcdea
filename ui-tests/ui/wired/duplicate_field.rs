use std::sync::Arc;

pub struct Repository;

pub struct OperationsService {
    repository: Option<Arc<Repository>>,
}

#[verily::wired(repository, repository)]
pub fn get_operations_service() -> OperationsService {
    OperationsService { repository: None }
}

fn main() {}
