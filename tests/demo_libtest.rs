//! A harness for the libtest drop-in checks of `tests/harness/libtest.rs`:
//! the tests of `tests/fixtures/libtest/twin.rs` (a plain `#[test]` crate
//! whose output is compared with this one's), plus tags, retries and a
//! slow test. `cargo test` does not run it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

verily::main!();

#[verily::test(category = "smoke", tags = ["fast"])]
fn passes() {}

#[verily::test(category = "smoke")]
fn fails() {
    assert_eq!(1 + 1, 3, "arithmetic");
}

#[verily::test(category = "integration")]
fn returns_an_error() -> Result<(), String> {
    Err("the service answered 503".to_owned())
}

#[verily::test(category = "smoke", ignore = "not today")]
fn ignored_with_reason() {}

#[verily::test(category = "smoke")]
#[ignore]
fn ignored_plain() {}

#[verily::test(category = "integration", tags = ["slow"])]
fn slow_integration() {}

#[verily::test(category = "integration", tags = ["slow", "nightly"])]
fn slow_nightly_integration() {}

#[verily::test(category = "smoke", tags = ["nightly"])]
fn nightly_smoke() {}

static FLAKY_TRIES: AtomicUsize = AtomicUsize::new(0);

/// Fails its first try and passes its second.
#[verily::test(category = "flaky", retries = 2)]
fn fails_once() {
    let tries = FLAKY_TRIES.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(tries > 1, "first try fails");
}

static ALWAYS_TRIES: AtomicUsize = AtomicUsize::new(0);

/// Fails every try, saying which.
#[verily::test(category = "flaky", retries = 2)]
fn fails_every_try() {
    let tries = ALWAYS_TRIES.fetch_add(1, Ordering::SeqCst) + 1;
    panic!("try {tries} fails too");
}

static CLI_TRIES: AtomicUsize = AtomicUsize::new(0);

/// Sets no retries of its own: `--retries` decides.
#[verily::test(category = "flaky")]
fn fails_once_without_retries() {
    let tries = CLI_TRIES.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(tries > 1, "first try fails");
}

#[verily::test(category = "report")]
fn colors_its_message() {
    panic!("\x1b[31mred\x1b[0m & <markup> \"quoted\"");
}

#[verily::test(category = "report")]
async fn sleeps_past_slow() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}
