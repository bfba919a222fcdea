//! A client of a static document server: what the tests exercise against a
//! real one (`python3 -m http.server`, which the test crate adds as a
//! service of its own: see `tests/harness.rs`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads documents from a server at `host:port` under a path prefix.
#[derive(Debug, Clone)]
pub struct Documents {
    host: String,
    port: u16,
    prefix: String,
}

impl Documents {
    /// Documents under `prefix` (`/` or `/team-a/`) on `host:port`.
    pub fn new(host: impl Into<String>, port: u16, prefix: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            prefix: prefix.into(),
        }
    }

    /// The document's text, or `None` when the server has no such document.
    pub async fn get(&self, name: &str) -> std::io::Result<Option<String>> {
        let mut stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let request = format!(
            "GET {}{name} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.prefix, self.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.split_whitespace().nth(1).unwrap_or_default();
        match status {
            "200" => Ok(Some(body.to_owned())),
            "404" => Ok(None),
            other => Err(std::io::Error::other(format!(
                "the document server answered {other}: {head}"
            ))),
        }
    }
}
