//! The helpers' HTTP client: one request at a time to the test's app, on
//! `ureq` 3 (no TLS, no compression), run on tokio's blocking pool. Any
//! other client works on `App::url` (the example's tests use reqwest).
//!
//! Why ureq: the cost each candidate adds on top of what the runtime
//! already builds, measured in a scratch crate outside the workspace: a
//! crate with the runtime's tokio, serde, serde_json, sqlx, libc and
//! inventory built once, its target copied, then the candidate and 20
//! lines doing one POST added and `cargo build` (debug, 2 shared cores;
//! median of 3, wall / CPU):
//!
//! | client | build | crates the runtime did not build |
//! |---|---|---|
//! | ureq 3, default-features = false | 3.7 s / 4.9 s | 6: ureq, ureq-proto, utf8-zero, http, httparse, base64 0.23 |
//! | hyper 1 + hyper-util + http-body-util (`http1`, `client`) | 15.5 s / 19.0 s | 9: hyper, hyper-util, http-body(-util), http, httparse, want, try-lock, atomic-waker |
//! | reqwest 0.13, default-features = false | 23.3 s / 23.5 s | 16: the 9 of hyper, tower(-http, -layer, -service), sync_wrapper, ipnet, reqwest |
//!
//! ureq is well kept (3.x, 3.5 at the time of measuring) and sync: a request
//! takes a thread of tokio's blocking pool, nothing next to an app's answer.

use std::fmt;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

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
    let url = format!("http://{address}{path}");
    let what = format!("{method} {url}");
    let method = ureq::http::Method::from_bytes(method.as_bytes())
        .map_err(|error| HttpError(format!("{what}: bad method: {error}")))?;
    let body = body.map(|(content_type, bytes)| (content_type.to_owned(), bytes.to_vec()));
    tokio::task::spawn_blocking(move || exchange(method, &url, body))
        .await
        .unwrap_or_else(|error| Err(format!("the request's thread ended: {error}")))
        .map_err(|error| HttpError(format!("{what}: {error}")))
}

/// One request per connection, as the app's readiness probe and a test's
/// calls are: nothing pooled to go stale when the app restarts.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .allow_non_standard_methods(true)
                .max_idle_connections(0)
                .timeout_global(Some(REQUEST_LIMIT))
                .build(),
        )
    })
}

fn exchange(
    method: ureq::http::Method,
    url: &str,
    body: Option<(String, Vec<u8>)>,
) -> Result<Response, String> {
    let builder = ureq::http::Request::builder().method(method).uri(url);
    let sent = match body {
        Some((content_type, bytes)) => agent().run(
            builder
                .header("content-type", content_type)
                .body(bytes)
                .map_err(|error| error.to_string())?,
        ),
        None => agent().run(builder.body(()).map_err(|error| error.to_string())?),
    };
    let mut answer = sent.map_err(|error| match error {
        ureq::Error::Timeout(_) => format!("no answer within {} s", REQUEST_LIMIT.as_secs()),
        error => error.to_string(),
    })?;
    let headers = answer
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = answer
        .body_mut()
        .read_to_vec()
        .map_err(|error| format!("reading the answer: {error}"))?;
    Ok(Response {
        status: answer.status().as_u16(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener};

    use super::request;

    /// Answers one connection with `answer` and returns what it was sent.
    fn serve_once(
        answer: &'static [u8],
    ) -> (std::net::SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut received = Vec::new();
            let mut buffer = [0; 4096];
            // The request's head, then as many body bytes as it announced.
            let complete = |received: &[u8]| {
                let text = String::from_utf8_lossy(received).to_ascii_lowercase();
                text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .map_or(0, |length| length.trim().parse().unwrap());
                    body.len() >= length
                })
            };
            while !complete(&received) {
                let read = stream.read(&mut buffer).unwrap();
                assert_ne!(read, 0, "the request ended early");
                received.extend_from_slice(&buffer[..read]);
            }
            stream.write_all(answer).unwrap();
            String::from_utf8_lossy(&received).into_owned()
        });
        (address, server)
    }

    #[tokio::test]
    async fn status_headers_and_chunked_bodies() {
        let (address, server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        );
        let response = request(
            address,
            "POST",
            "/things",
            Some(("application/json", b"{}")),
        )
        .await
        .unwrap();
        let sent = server.join().unwrap();
        assert!(sent.starts_with("POST /things HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{sent}"
        );
        assert_eq!(response.status, 404);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.json().unwrap()["a"], 1);
        assert!(!response.is_success());
    }

    #[tokio::test]
    async fn an_error_names_the_request() {
        let (address, server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        let error = request(address, "GET", "/health", None).await.unwrap_err();
        server.join().unwrap();
        assert!(
            error
                .to_string()
                .starts_with(&format!("GET http://{address}/health: ")),
            "{error}"
        );
    }
}
