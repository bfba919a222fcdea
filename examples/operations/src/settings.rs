//! Configuration read at startup.

use std::time::Duration;

/// What the service needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a running operation may stay silent before it is an orphan.
    pub orphan_timeout: Duration,
}

impl Settings {
    /// Reads `OPERATIONS_ORPHAN_TIMEOUT_SECS`, defaulting to five minutes.
    pub fn from_env() -> Result<Self, String> {
        let seconds = match std::env::var("OPERATIONS_ORPHAN_TIMEOUT_SECS") {
            Ok(raw) => raw.parse().map_err(|_| {
                format!("OPERATIONS_ORPHAN_TIMEOUT_SECS must be a number of seconds, not `{raw}`")
            })?,
            Err(_) => 300,
        };
        Ok(Self {
            orphan_timeout: Duration::from_secs(seconds),
        })
    }
}

// Tests build their settings directly, not from the environment.
#[groundtruth::fixture]
impl groundtruth::Fixture for Settings {
    async fn setup(_ctx: &mut groundtruth::TestContext) -> Result<Self, groundtruth::FixtureError> {
        Ok(Settings {
            orphan_timeout: Duration::from_secs(60),
        })
    }
}
