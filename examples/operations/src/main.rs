//! The operations service binary: builds its services, creates an
//! operation and runs one orphan sweep. The schema comes from
//! `sqlx migrate run` with the `migrations/` folder.

#[tokio::main]
async fn main() {
    let settings = match operations::Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("operations: {error}");
            std::process::exit(2);
        }
    };
    let services = match operations::build_services(settings) {
        Ok(services) => services,
        Err(error) => {
            eprintln!("operations: cannot start: {error}");
            std::process::exit(1);
        }
    };
    match services
        .operations
        .create_operation(operations::NewOperation::training("EURUSD"))
        .await
    {
        Ok(operation) => println!("created {}", operation.id),
        Err(error) => eprintln!("operations: {error}"),
    }
    if let Some(detector) = services.detector.get() {
        match detector.sweep().await {
            Ok(count) => println!("orphans marked failed: {count}"),
            Err(error) => eprintln!("operations: orphan sweep failed: {error}"),
        }
    }
}
