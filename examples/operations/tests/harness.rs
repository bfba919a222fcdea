//! The operations service's groundtruth suite: the `#[wired]` factories of
//! the crate, and the tests below.

use operations::{NewOperation, OperationStatus, get_operations_service};

groundtruth::main!(operations);

#[groundtruth::test(category = "smoke")]
fn created_operation_can_be_read_back() {
    let service = get_operations_service();
    let created = service
        .create_operation(NewOperation::training("EURUSD"))
        .unwrap();
    assert_eq!(
        service.get(created.id).unwrap().status,
        OperationStatus::Pending
    );
}

#[groundtruth::test(category = "smoke")]
async fn cancel_marks_the_operation_cancelled() {
    let service = get_operations_service();
    let created = service
        .create_operation(NewOperation::training("GBPUSD"))
        .unwrap();
    service.cancel(created.id).unwrap();
    assert_eq!(
        service.get(created.id).unwrap().status,
        OperationStatus::Cancelled
    );
}
