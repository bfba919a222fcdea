//! A small HTTP/1.1 client on tokio's `TcpStream`, for the common case of
//! a test talking to its app: one request per connection
//! (`Connection: close`), a body by `Content-Length`, chunks or end of
//! stream. It adds no dependency (hyper or reqwest would add a dozen
//! crates to every harness build); any other client works on `App::url`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take before it is an error, not a hang.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// An answer of the app.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (`201`).
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HttpError> {
        serde_json::from_str(&self.body).map_err(|error| {
            HttpError(format!(
                "the body of a {} answer is not JSON ({error}): {}",
                self.status, self.body
            ))
        })
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

/// A request that got no answer: the app is not listening, closed the
/// connection, or answered something that is not HTTP/1.1.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpError(pub(crate) String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Shown as the message when a test returns or unwraps it.
impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// Sends one request to `address` and reads the whole answer.
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Result<Response, HttpError> {
    let what = format!("{method} http://{address}{path}");
    tokio::time::timeout(REQUEST_LIMIT, exchange(address, method, path, body))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", REQUEST_LIMIT.as_secs())))
        .map_err(|error| HttpError(format!("{what}: {error}")))
}

async fn exchange(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Result<Response, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|error| error.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAccept: */*\r\n"
    );
    if let Some((content_type, bytes)) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            bytes.len()
        ));
    } else if matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    if let Some((_, bytes)) = body {
        request.extend_from_slice(bytes);
    }
    stream
        .write_all(&request)
        .await
        .map_err(|error| format!("sending the request: {error}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|error| format!("reading the answer: {error}"))?;
    parse(&raw)
}

/// Parses a complete HTTP/1.1 answer.
pub(crate) fn parse(raw: &[u8]) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| {
            if raw.is_empty() {
                "the connection closed without an answer".to_owned()
            } else {
                format!(
                    "the answer has no end of headers: {}",
                    String::from_utf8_lossy(raw)
                )
            }
        })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length: {length}"))?;
        rest.get(..length)
            .ok_or_else(|| {
                format!(
                    "the answer ended after {} of {length} body bytes",
                    rest.len()
                )
            })?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or("a chunk has no size line")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size: {size_text}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("the answer ended inside a chunk")?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size + 2..)
            .ok_or("the answer ended after a chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn content_length_bodies() {
        let response = parse(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 8\r\n\r\n{\"id\":1}",
        )
        .unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.json().unwrap()["id"], 1);
    }

    #[test]
    fn chunked_bodies() {
        let response = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(response.body, "Wikipedia");
    }

    #[test]
    fn bodies_to_end_of_stream_and_broken_answers() {
        assert_eq!(
            parse(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap().body,
            "nope"
        );
        assert!(parse(b"").unwrap_err().contains("closed without an answer"));
        assert!(
            parse(b"SSH-2.0\r\n\r\n")
                .unwrap_err()
                .contains("not an HTTP")
        );
        assert!(
            parse(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort")
                .unwrap_err()
                .contains("ended after 5 of 10")
        );
    }
}
