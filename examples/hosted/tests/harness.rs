//! A service of the test crate's own, added from outside the framework:
//! a static file server (`python3 -m http.server`) as one `impl Service`.
//! Under `cargo nextest run` (a process per test) one server serves every
//! process, as the run's PostgreSQL and Redis do; under `cargo test` the
//! run starts it once.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hosted::Documents;
use verily::{Config, Fixture, FixtureError, InfraError, Service, TestContext};

/// `python3 -m http.server` serving a directory of its own.
#[derive(Debug)]
struct FileServer {
    port: u16,
    dir: PathBuf,
    /// The server's pid, so the tests can show they share one.
    pid: u32,
    /// The child, in the process that started it.
    child: Mutex<Option<tokio::process::Child>>,
}

#[verily::service]
impl Service for FileServer {
    const NAME: &'static str = "file-server";

    async fn start(_config: &Config) -> Result<Self, InfraError> {
        let started = Instant::now();
        let dir = std::env::temp_dir().join(format!("file-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|error| {
            InfraError::with_source(format!("creating {}", dir.display()), error)
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(|error| InfraError::with_source("finding a free port", error))?;
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                InfraError::with_source(
                    "starting python3 -m http.server (is python3 installed?)",
                    error,
                )
            })?;
        let pid = child.id().unwrap_or_default();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(20) {
                return Err(InfraError::new(
                    "python3 -m http.server did not listen within 20 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "file-server: python3 -m http.server (pid {pid}) on 127.0.0.1:{port}, serving {}, ready in {:.2} s",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(Self {
            port,
            dir,
            pid,
            child: Mutex::new(Some(child)),
        })
    }

    async fn shutdown(&self, _keep: bool) {
        let child = self.child.lock().expect("not poisoned").take();
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn endpoint(&self) -> String {
        format!("{}\n{}\n{}", self.port, self.pid, self.dir.display())
    }

    async fn attach(endpoint: &str, _config: &Config) -> Result<Self, InfraError> {
        let mut parts = endpoint.splitn(3, '\n');
        let (Some(port), Some(pid), Some(dir)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InfraError::new(format!(
                "not a file-server endpoint: {endpoint:?}"
            )));
        };
        let bad =
            |error: std::num::ParseIntError| InfraError::with_source("file-server endpoint", error);
        Ok(Self {
            port: port.parse().map_err(bad)?,
            pid: pid.parse().map_err(bad)?,
            dir: PathBuf::from(dir),
            child: Mutex::new(None),
        })
    }
}

/// A test's own directory on the shared server, removed when it ends.
struct Shelf {
    dir: PathBuf,
    documents: Documents,
    /// The server's pid.
    served_by: u32,
}

impl Shelf {
    fn put(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).expect("the shelf is writable");
    }
}

impl Fixture for Shelf {
    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        let server = ctx.service::<FileServer>().await?;
        let name = ctx.test_name().replace("::", "-");
        let dir = server.dir.join(&name);
        std::fs::create_dir_all(&dir).map_err(|error| {
            FixtureError::with_source(format!("creating {}", dir.display()), error)
        })?;
        eprintln!("{}: served by pid {}", ctx.test_name(), server.pid);
        let remove = dir.clone();
        ctx.at_end(move |_passed| async move {
            let _ = std::fs::remove_dir_all(remove);
        });
        Ok(Shelf {
            documents: Documents::new("127.0.0.1", server.port, format!("/{name}/")),
            dir,
            served_by: server.pid,
        })
    }
}

#[verily::test]
async fn a_document_put_on_the_shelf_is_served(shelf: Shelf) {
    shelf.put("readme.txt", "hello");
    let text = shelf.documents.get("readme.txt").await.expect("served");
    assert_eq!(text.as_deref(), Some("hello"));
}

#[verily::test]
async fn a_missing_document_is_none(shelf: Shelf) {
    let text = shelf
        .documents
        .get("nothing-here.txt")
        .await
        .expect("served");
    assert_eq!(text, None);
}

/// The run's Redis is shared the same way: one server for every process.
#[verily::test]
async fn redis_is_shared_too(redis: verily::Redis) {
    let mut connection = redis.connection();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut connection)
        .await
        .expect("SET");
    eprintln!("redis_is_shared_too: on {}", redis.url());
}

/// A fixture built from two others declares nothing: what the test needs
/// (`file-server`, `redis`) is what its fixtures asked for.
struct CachedShelf {
    shelf: Shelf,
    cache: verily::Redis,
}

impl Fixture for CachedShelf {
    async fn setup(ctx: &mut TestContext) -> Result<Self, FixtureError> {
        Ok(CachedShelf {
            shelf: ctx.fixture::<Shelf>().await?,
            cache: ctx.fixture::<verily::Redis>().await?,
        })
    }
}

#[verily::test]
async fn a_cached_document_is_served_and_cached(cached: CachedShelf) {
    cached.shelf.put("page.txt", "cached");
    let text = cached
        .shelf
        .documents
        .get("page.txt")
        .await
        .expect("served");
    let mut connection = cached.cache.connection();
    let _: () = redis::cmd("SET")
        .arg("page.txt")
        .arg(text.as_deref().unwrap_or_default())
        .query_async(&mut connection)
        .await
        .expect("SET");
}

/// Holds the shared server until killed (the suite kills it with -9 and
/// checks that the server goes anyway).
#[verily::test(ignore = "run by the suite, which kills it")]
async fn holds_the_server_until_killed(shelf: Shelf) {
    println!("served by pid {}", shelf.served_by);
    println!("holding {}", shelf.dir.display());
    std::future::pending::<()>().await;
}

verily::main!(hosted);
