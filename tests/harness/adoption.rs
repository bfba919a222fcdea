//! What a new user hits while setting verily up, answered at build time.

use crate::support::cargo;

/// A `[[test]]` target with libtest's harness runs libtest's main and
/// reports "running 0 tests ... ok": main! must stop that build instead,
/// saying what to add to Cargo.toml.
#[verily::test(category = "integration", timeout = "10m")]
fn main_in_a_target_without_harness_false_is_a_compile_error() -> Result<(), String> {
    let output = cargo()
        .args(["test", "-p", "renamed", "--test", "forgot_harness_false"])
        .args(["--features", "demo-forgot-harness-false", "--no-run"])
        .output()
        .map_err(|error| format!("could not run cargo: {error}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        return Err(format!(
            "the target built; expected main! to refuse it:\n{stderr}"
        ));
    }
    let expected =
        "verily::main! replaces libtest's harness, so this test target needs `harness = false`";
    if !stderr.contains(expected) || !stderr.contains("name = \"forgot_harness_false\"\n") {
        return Err(format!(
            "expected the harness = false advice, got:\n{stderr}"
        ));
    }
    Ok(())
}
