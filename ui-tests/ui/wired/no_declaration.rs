use std::sync::Arc;

pub struct Repository;

pub struct OperationsService {
    repository: Option<Arc<Repository>>,
}

// A bare #[wired] needs the struct to declare its fields.
#[verily::wired]
pub fn get_operations_service() -> OperationsService {
    OperationsService { repository: None }
}

fn main() {}
