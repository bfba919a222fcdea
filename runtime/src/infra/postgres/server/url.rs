//! An existing server named by `VERILY_DATABASE_URL` or `DATABASE_URL`.
//! The run only creates and drops databases carrying its own prefix.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::infra::InfraError;
use crate::infra::postgres::sql::describe;
pub use crate::infra::source::redacted;

/// `2`, `0.5`: a timeout as the user would write it.
fn seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds}")
    }
}

/// The variable that named the server, and its value.
pub fn from_env() -> Option<(&'static str, String)> {
    crate::env::env().database_url.clone()
}

/// How long connecting to the server may take, unless
/// `VERILY_CONNECT_TIMEOUT` (seconds) says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connect timeout, from `VERILY_CONNECT_TIMEOUT` or the default.
pub fn connect_timeout() -> Result<Duration, InfraError> {
    Ok(crate::env::env().connect_timeout.unwrap_or(CONNECT_TIMEOUT))
}

/// Connects once to check the server is there and the user may create
/// databases: within the connect timeout, so a server that accepts
/// connections but never answers is named at once instead of making every
/// test wait for its own timeout.
pub async fn connect(variable: &str, url: &str) -> Result<PgConnectOptions, InfraError> {
    let options = PgConnectOptions::from_str(url).map_err(|error| {
        InfraError::new(format!("{variable} is not a PostgreSQL URL ({error})"))
    })?;
    let timeout = connect_timeout()?;
    let connecting = tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await;
    let mut connection = match connecting {
        Ok(connected) => connected.map_err(|error| {
            InfraError::new(format!(
                "cannot connect to PostgreSQL at {variable} ({}): {}; start that server, fix the URL, or unset it to let verily start its own PostgreSQL",
                redacted(url),
                describe(&error)
            ))
        })?,
        Err(_) => {
            return Err(InfraError::new(format!(
                "PostgreSQL at {variable} ({}) did not answer within {} s: something accepts connections there but does not speak PostgreSQL, or the server is stuck; check the URL, or allow longer with VERILY_CONNECT_TIMEOUT=<seconds>",
                redacted(url),
                seconds(timeout)
            )));
        }
    };
    let (user, may_create): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut connection)
    .await
    .map_err(|error| {
        InfraError::new(format!(
            "cannot read the role of {variable}'s user: {}",
            describe(&error)
        ))
    })?;
    let _ = connection.close().await;
    if !may_create {
        return Err(InfraError::new(format!(
            "the user `{user}` of {variable} cannot CREATE DATABASE, and verily gives each test a database of its own; grant it with `ALTER ROLE \"{user}\" CREATEDB`, or name a server where it can"
        )));
    }
    Ok(options)
}

/// The same URL naming another database: the path is replaced, the query
/// kept.
pub fn with_database(url: &str, database: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return url.to_owned();
    };
    let after = scheme + 3;
    let (authority_and_path, query) = match url[after..].find('?') {
        Some(at) => (&url[after..after + at], &url[after + at..]),
        None => (&url[after..], ""),
    };
    let authority = authority_and_path.split('/').next().unwrap_or_default();
    format!("{}{authority}/{database}{query}", &url[..after])
}

#[cfg(test)]
mod tests {
    #[test]
    fn another_database_on_the_same_server() {
        assert_eq!(
            super::with_database("postgres://app:pw@db:5432/app?sslmode=disable", "vy_1"),
            "postgres://app:pw@db:5432/vy_1?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://db", "vy_1"),
            "postgres://db/vy_1"
        );
    }
}
