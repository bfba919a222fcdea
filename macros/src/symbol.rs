//! Attribute keys, in one place, so parsing and messages agree.

pub const CATEGORY: &str = "category";
pub const TIMEOUT: &str = "timeout";
pub const IGNORE: &str = "ignore";
pub const TAGS: &str = "tags";
pub const RETRIES: &str = "retries";
pub const MIGRATIONS: &str = "migrations";
pub const ROWS: &str = "rows";
pub const WHERE: &str = "where";
pub const SERDE: &str = "serde";
pub const STRINGS: &str = "strings";
pub const PG_TYPE: &str = "pg_type";
pub const SCAN: &str = "scan";
pub const SCAN_KEY: &str = "scan_key";
pub const SAMPLE: &str = "sample";
pub const ALLOW_WILDCARD: &str = "allow_wildcard";
pub const ENUM_COMPLETE: &str = "enum_complete";
pub const CRATE: &str = "crate";
pub const CONCURRENCY: &str = "concurrency";
pub const ITERATIONS: &str = "iterations";
pub const DURATION: &str = "duration";
pub const WARMUP: &str = "warmup";
pub const MAX_CONNECTIONS: &str = "max_connections";
pub const MAX_ERROR_RATE: &str = "max_error_rate";
pub const MAX_MEMORY_GROWTH: &str = "max_memory_growth";
pub const P99: &str = "p99";
pub const AFTER: &str = "after";
