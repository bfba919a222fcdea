//! When an app counts as started: an HTTP path answers 2xx, its port
//! accepts connections, or a line appears in its output.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::http;
use super::logs::Logs;

/// How often a readiness probe tries again.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// What a test waits for before its body runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// `GET <path>` answers 2xx.
    Http(String),
    /// The app's port accepts a TCP connection.
    Tcp,
    /// A line of its output contains this text.
    Log(String),
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ready::Http(path) => write!(f, "GET {path} to answer 2xx"),
            Ready::Tcp => f.write_str("its port to accept a connection"),
            Ready::Log(pattern) => write!(f, "a log line containing `{pattern}`"),
        }
    }
}

impl Ready {
    /// One probe: `Ok` when ready, else what it saw, for the message.
    pub async fn probe(&self, address: SocketAddr, logs: &Logs, since: u64) -> Result<(), String> {
        match self {
            Ready::Http(path) => match http::request(address, "GET", path, None).await {
                Ok(response) if response.is_success() => Ok(()),
                Ok(response) => Err(format!("last answer: {response:?}")),
                Err(error) => Err(format!("last attempt: {error}")),
            },
            Ready::Tcp => tokio::net::TcpStream::connect(address)
                .await
                .map(drop)
                .map_err(|error| format!("last attempt: {error}")),
            Ready::Log(pattern) => match logs.find_since(since, pattern) {
                Some(_) => Ok(()),
                None => Err("no such line yet".to_owned()),
            },
        }
    }

    /// Waits a probe interval, or less when a line arrives.
    pub async fn pause(&self, lines: &mut tokio::sync::watch::Receiver<u64>) {
        match self {
            Ready::Log(_) => {
                let _ = tokio::time::timeout(PROBE_INTERVAL * 10, lines.changed()).await;
            }
            _ => tokio::time::sleep(PROBE_INTERVAL).await,
        }
    }
}
