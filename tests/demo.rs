//! A harness whose tests end in every way a test can end, so the
//! framework's own suite can check what the CLI and reports make of them.
//! Built and run by `tests/harness/cli.rs`; `cargo test` does not run it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

verily::main!();

#[verily::test(category = "smoke")]
fn passes() {}

#[verily::test(category = "smoke")]
async fn passes_async() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[verily::test(category = "smoke")]
fn panics_with_a_message() {
    let expected = 2;
    assert_eq!(1 + 1, expected + 1, "arithmetic still works");
}

#[verily::test(category = "integration")]
fn returns_an_error() -> Result<(), String> {
    Err("the service answered 503".to_owned())
}

#[verily::test(category = "integration", timeout = "300ms")]
async fn hangs_async() {
    std::future::pending::<()>().await;
}

#[verily::test(category = "integration", timeout = "300ms")]
fn hangs_blocking() {
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sleeps past a `--timeout` given on the command line, not past its own.
#[verily::test(category = "integration")]
async fn sleeps_a_second() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[verily::test(category = "smoke", ignore = "needs a broker")]
fn ignored_with_reason() {
    panic!("ignored tests do not run unless asked");
}

#[verily::test(category = "smoke")]
#[ignore]
fn ignored_by_libtest_attribute() {}

#[verily::test(category = "smoke")]
fn skips_itself() {
    verily::skip("no Docker engine on this machine");
}

/// Two tests that pass only when they run at the same time: proof of
/// parallelism that does not depend on the machine's speed.
static RENDEZVOUS: AtomicUsize = AtomicUsize::new(0);

async fn meet() {
    RENDEZVOUS.fetch_add(1, Ordering::SeqCst);
    for _ in 0..200 {
        if RENDEZVOUS.load(Ordering::SeqCst) >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the other test never ran alongside this one");
}

#[verily::test(category = "concurrency", timeout = "10s")]
async fn meets_a() {
    meet().await;
}

#[verily::test(category = "concurrency", timeout = "10s")]
async fn meets_b() {
    meet().await;
}

/// A user's own holder type: wired once connected.
pub struct Connection {
    connected: bool,
}

impl verily::Wire for Connection {
    type Target = Connection;

    fn visit(&self, f: &mut dyn FnMut(&Connection)) -> Result<(), verily::Unwired> {
        if !self.connected {
            return Err(verily::Unwired::new("not connected"));
        }
        f(self);
        Ok(())
    }
}

pub struct Client {
    connection: Connection,
    cache: std::cell::OnceCell<String>,
    parent: std::sync::Weak<u32>,
}

#[verily::wired(connection, cache)]
fn boxed_client() -> Box<Client> {
    let cache = std::cell::OnceCell::new();
    let _ = cache.set("warm".to_owned());
    Box::new(Client {
        connection: Connection { connected: true },
        cache,
        parent: std::sync::Weak::new(),
    })
}

#[verily::wired(connection, parent, cache)]
async fn disconnected_client() -> Client {
    tokio::time::sleep(Duration::from_millis(1)).await;
    Client {
        connection: Connection { connected: false },
        cache: std::cell::OnceCell::new(),
        parent: std::sync::Weak::new(),
    }
}

#[verily::wired(connection)]
fn client_from_config() -> Result<Client, String> {
    Err("DATABASE_URL is not set".to_owned())
}

/// A fixture that cannot be built: the test fails without running its body.
struct BrokenFixture;

impl verily::Fixture for BrokenFixture {
    async fn setup(_ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
        Err(verily::FixtureError::new(
            "the broker is not reachable at 127.0.0.1:1",
        ))
    }
}

#[verily::test(category = "integration")]
fn broken_fixture(_broker: BrokenFixture) {
    panic!("the body must not run when a fixture fails");
}

/// A declared enum and a handler that refuses one variant.
#[verily::enum_complete]
#[derive(Debug)]
enum Light {
    Red,
    Amber,
    Green,
}

#[verily::enum_complete(Light)]
fn stopping_distance(light: &Light) -> Result<u32, String> {
    match light {
        Light::Red => Ok(0),
        Light::Amber => Err("amber has no rule yet".to_owned()),
        Light::Green => Ok(100),
    }
}
