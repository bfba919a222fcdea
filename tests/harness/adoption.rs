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

/// A service on sqlx 0.8 whose lockfile is old (here: every package at the
/// lowest version its requirements allow, as a lockfile from the day sqlx
/// 0.8.0 came out would hold): adding verily fails to resolve until the
/// README's one command moves the shared packages forward.
#[verily::test(category = "integration", timeout = "10m")]
fn an_old_lockfile_takes_verily_after_the_readmes_one_cargo_update() -> Result<(), String> {
    let workspace = crate::support::workspace();
    let readme = std::fs::read_to_string(workspace.join("README.md")).map_err(|e| e.to_string())?;
    let command = readme
        .lines()
        .find(|line| line.trim_start().starts_with("cargo update") && line.contains("# resolves"))
        .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
        .ok_or("the README states no `cargo update ...   # resolves ...` command")?;
    let dir = std::env::temp_dir().join(format!("vy-old-lockfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    let manifest = r#"[package]
name = "old-service"
version = "0.1.0"
edition = "2021"

[dependencies]
sqlx = { version = "0.8", default-features = false, features = ["postgres", "runtime-tokio"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[workspace]
"#;
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    let in_dir = |args: &[&str]| {
        let mut command = cargo();
        command
            .current_dir(&dir)
            .args(args)
            .env("RUSTC_BOOTSTRAP", "1");
        command.output()
    };
    let old = in_dir(&["generate-lockfile", "-Z", "minimal-versions"])
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !old.status.success() {
        let stderr = String::from_utf8_lossy(&old.stderr);
        if stderr.contains("index.crates.io") || stderr.contains("failed to download") {
            verily::skip("crates.io's index is not reachable: this check resolves real versions");
        }
        return Err(format!("the old service's lockfile: {stderr}"));
    }
    let with_verily = format!(
        "{manifest}\n[dev-dependencies]\nverily = {{ path = {:?}, features = [\"testing\", \"sqlx-0_8\"] }}\n",
        workspace.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), with_verily).map_err(|e| e.to_string())?;
    let added = in_dir(&["update", "--workspace"]).map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&added.stderr);
    if added.status.success() || !stderr.contains("failed to select a version") {
        return Err(format!(
            "expected the old lockfile to refuse verily as it refused the newsletter port:\n{stderr}"
        ));
    }
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let fixed = in_dir(&args).map_err(|e| e.to_string())?;
    let tree = in_dir(&["tree", "--offline", "-e", "normal,dev", "--depth", "1"])
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if !fixed.status.success() {
        return Err(format!(
            "`{command}` failed:\n{}",
            String::from_utf8_lossy(&fixed.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&tree.stdout).into_owned();
    if !tree.contains("verily v0.1.0") || !tree.contains("sqlx v0.8.") {
        return Err(format!(
            "after `{command}`, the service should have verily and keep sqlx 0.8:\n{tree}"
        ));
    }
    Ok(())
}
