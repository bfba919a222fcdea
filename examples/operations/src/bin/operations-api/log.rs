//! Log lines in the plain format of tracing's default formatter
//! (`LEVEL target: message`), without its dependencies.

pub fn info(message: impl std::fmt::Display) {
    println!(" INFO operations_api: {message}");
}

pub fn warn(message: impl std::fmt::Display) {
    eprintln!(" WARN operations_api: {message}");
}

pub fn error(message: impl std::fmt::Display) {
    eprintln!("ERROR operations_api: {message}");
}
