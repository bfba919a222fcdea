//! Attribute keys, in one place, so parsing and messages agree.

pub const CATEGORY: &str = "category";
pub const TIMEOUT: &str = "timeout";
pub const IGNORE: &str = "ignore";
pub const MIGRATIONS: &str = "migrations";
pub const ROWS: &str = "rows";
pub const WHERE: &str = "where";
