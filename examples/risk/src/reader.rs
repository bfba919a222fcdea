//! Reads an account's risk state from Redis, on a connection that
//! reconnects by itself after an outage.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::state::{self, DecodeError, RiskState};

/// Why the state of an account could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskError {
    /// Redis did not answer: the caller must treat the account as unknown
    /// (and block its orders), not as flat.
    Unavailable(String),
    /// A field is not in its writer's format.
    Corrupt { key: String, error: DecodeError },
}

impl fmt::Display for RiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiskError::Unavailable(why) => write!(f, "risk state unavailable: {why}"),
            RiskError::Corrupt { key, error } => write!(f, "{key}: {error}"),
        }
    }
}

impl std::error::Error for RiskError {}

/// Reads `risk:{account}` hashes.
#[derive(Clone)]
pub struct RiskReader {
    connection: ConnectionManager,
}

/// A risk check waits this long for Redis before it reports it unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

impl RiskReader {
    /// Connects to the Redis at `url` (`redis://host:port/db`), as the
    /// service does from its configuration.
    pub async fn connect(url: &str) -> Result<Self, RiskError> {
        let unavailable = |error: redis::RedisError| RiskError::Unavailable(error.to_string());
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self { connection })
    }

    /// The account's risk state; an account nobody wrote reads as zeros.
    pub async fn state(&self, account: &str) -> Result<RiskState, RiskError> {
        let key = format!("risk:{account}");
        let mut connection = self.connection.clone();
        // Bytes mode: the reader decodes each field by its writer's format.
        let fields: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .map_err(|error| RiskError::Unavailable(error.to_string()))?;
        let mut state = RiskState::default();
        for (field, value) in &fields {
            state::decode_field(&mut state, field, value).map_err(|error| RiskError::Corrupt {
                key: key.clone(),
                error,
            })?;
        }
        Ok(state)
    }
}
