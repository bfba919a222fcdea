//! The example services' incidents, each switched on by a feature, caught
//! by the named test with its message: real cargo, real harness, JSON report.

use crate::support::{cargo, cargo_test_example};

#[verily::test(category = "e2e", timeout = "15m")]
fn unwired_repository_is_caught_by_the_wiring_tests() {
    let healthy = cargo_test_example(
        "operations",
        &[],
        &["--category", "wiring", "--format", "json"],
        &[],
    );
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    let wiring = healthy.finished();
    assert_eq!(wiring.len(), 4, "{:?}", wiring.keys());
    assert!(wiring.values().all(|event| event["outcome"] == "passed"));

    let broken = cargo_test_example(
        "operations",
        &["bug-unwired-repository"],
        &["--category", "wiring", "--format", "json"],
        &[],
    );
    assert_eq!(broken.code, 101, "{}\n{}", broken.stdout, broken.stderr);
    let finished = broken.finished();
    let factory = &finished["operations::service::get_operations_service"];
    assert_eq!(factory["outcome"], "failed");
    assert_eq!(
        factory["message"],
        "get_operations_service() returned OperationsService with repository not wired (None); wired: metrics, checkpoints, checkpoints.pool"
    );
    // Found again through the detector, with the full path to the repository.
    let detector = &finished["operations::detector::get_orphan_detector"];
    let message = detector["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("operations_service.repository not wired (None)"),
        "{message}"
    );
    let started = &finished["operations::detector::start_orphan_detector"];
    let message = started["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("start_orphan_detector() returned OrphanDetector with"),
        "{message}"
    );
    let services = &finished["operations::service::build_services"];
    let message = services["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("detector.operations_service.repository not wired (None)"),
        "{message}"
    );
}

#[verily::test(category = "e2e", timeout = "15m")]
fn linkme_backend_finds_the_same_tests_as_inventory() {
    let listing = |features: &[&str]| {
        let run = cargo_test_example(
            "operations",
            features,
            &["--list", "--format", "terse"],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let inventory = listing(&[]);
    let linkme = listing(&["verily/linkme"]);
    assert_eq!(inventory.lines().count(), 28, "{inventory}");
    assert_eq!(inventory, linkme);
}

/// The production build of the example contains no generated test and no
/// test-only dependency; its test build has both (the check can fail).
#[verily::test(category = "e2e", timeout = "15m")]
fn production_builds_carry_no_tests() {
    let tree = cargo()
        // Proc-macro crates run at build time and link nothing in.
        .args([
            "tree",
            "-e",
            "normal,no-proc-macro",
            "-p",
            "operations",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    // tokio and sqlx are the service's own; these come only with `testing`.
    for test_only in [
        "inventory",
        "linkme",
        "testcontainers",
        "bollard",
        "verily-runtime",
    ] {
        assert!(
            !tree
                .lines()
                .any(|line| line.starts_with(&format!("{test_only} "))),
            "`{test_only}` reaches the production build:\n{tree}"
        );
    }

    // A target dir of its own: a concurrent `cargo test -p operations`
    // would otherwise overwrite target/debug/operations with a test build.
    let target = crate::support::workspace().join("target/production-check");
    let target = target.to_string_lossy();
    let binary = crate::support::cargo_executable(&[
        "build",
        "-p",
        "operations",
        "--bin",
        "operations",
        "--target-dir",
        &target,
    ])
    .expect("the production build succeeds");
    let binary = binary.to_string_lossy();
    let production = registry_symbols(&binary);
    assert_eq!(
        production, 0,
        "the production binary {binary} holds {production} registry symbols"
    );

    let test_binary = crate::support::build_test_binary(&["-p", "operations", "--test", "harness"])
        .expect("the example's harness builds");
    let tests = registry_symbols(&test_binary.to_string_lossy());
    assert!(
        tests > 0,
        "the test binary should hold registry symbols: the check is blind"
    );
}

/// Symbols of verily's registry and runner in a binary.
fn registry_symbols(binary: &str) -> usize {
    let output = std::process::Command::new("nm")
        .args(["--demangle", binary])
        .output()
        .expect("nm (binutils) is installed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("verily_runtime::") || line.contains("inventory::"))
        .count()
}

/// `cargo nextest run` on the example's harness, selecting the wiring
/// category by a filter expression: it sees the incident too.
#[verily::test(category = "e2e", timeout = "15m")]
fn nextest_runs_a_category_by_filter_expression() {
    let nextest = cargo().args(["nextest", "--version"]).output();
    if !nextest.is_ok_and(|output| output.status.success()) {
        verily::skip(
            "cargo-nextest is not installed: `cargo install cargo-nextest` to run this check",
        );
    }
    let run = |features: &str| {
        let mut command = cargo();
        command.args([
            "nextest",
            "run",
            "-p",
            "operations",
            "--test",
            "harness",
            "--no-fail-fast",
        ]);
        command.args(["-E", r"test(/^\[wiring\]/)", "--color", "never"]);
        if !features.is_empty() {
            command.args(["--features", features]);
        }
        command.output().expect("cargo nextest runs")
    };
    let healthy = run("");
    let stderr = String::from_utf8_lossy(&healthy.stderr);
    assert!(healthy.status.success(), "{stderr}");
    assert!(
        stderr.contains("4 tests run: 4 passed, 24 skipped"),
        "{stderr}"
    );
    let broken = run("bug-unwired-repository");
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(!broken.status.success(), "{stderr}");
    assert!(
        stderr.contains("4 tests run: 0 passed, 4 failed, 24 skipped"),
        "{stderr}"
    );
    assert!(stderr.contains("repository not wired (None)"), "{stderr}");
}
