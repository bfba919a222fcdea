//! An existing server named by `VERILY_REDIS_URL`. The run uses only
//! databases it found empty (never database 0) and flushes only those.

use crate::infra::InfraError;

/// The variable naming an existing server.
pub const VARIABLE: &str = "VERILY_REDIS_URL";

/// `VERILY_REDIS_URL`, if set and not empty.
pub fn from_env() -> Option<String> {
    crate::env::env().redis_url.clone()
}

/// The same server's URL naming database `database`: the path of a TCP URL
/// (`redis://host:6379/3`), the `db` parameter of a unix socket URL
/// (`redis+unix:///run/redis.sock?db=3`); everything else is kept.
pub fn with_database(url: &str, database: u32) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    if base.starts_with("unix:") || base.starts_with("redis+unix:") {
        let mut parameters: Vec<String> = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .filter(|parameter| !parameter.is_empty() && !parameter.starts_with("db="))
            .map(str::to_owned)
            .collect();
        parameters.push(format!("db={database}"));
        return format!("{base}?{}", parameters.join("&"));
    }
    let Some(scheme) = base.find("://") else {
        return url.to_owned();
    };
    let authority = base[scheme + 3..].split('/').next().unwrap_or_default();
    let query = query.map(|query| format!("?{query}")).unwrap_or_default();
    format!("{}{authority}/{database}{query}", &base[..scheme + 3])
}

/// Checks the URL's shape, so a typo is reported before any connection.
pub fn parse(url: &str) -> Result<::redis::Client, InfraError> {
    ::redis::Client::open(url).map_err(|error| {
        InfraError::new(format!(
            "{VARIABLE} is not a Redis URL ({error}); expected redis://[user:password@]host:port"
        ))
    })
}

pub use crate::infra::source::redacted;

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn another_database_on_the_same_server() {
        assert_eq!(
            with_database("redis://:pw@cache:6379/0?protocol=resp3", 5),
            "redis://:pw@cache:6379/5?protocol=resp3"
        );
        assert_eq!(
            with_database("redis://127.0.0.1:6379", 2),
            "redis://127.0.0.1:6379/2"
        );
        assert_eq!(
            with_database("redis+unix:///run/redis.sock?db=1&user=a", 7),
            "redis+unix:///run/redis.sock?user=a&db=7"
        );
    }
}
