//! Driving real cargo and real harness binaries from the suite.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The workspace root (the facade's manifest directory).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo` as the outer build ran it, in the workspace.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace());
    // The outer run's flags (colors, nextest's variables) must not leak in.
    command.env_remove("NEXTEST").env_remove("NEXTEST_RUN_ID");
    command
}

/// Runs `cargo ARGS --message-format=json-render-diagnostics` and returns
/// the executable it built.
pub fn cargo_executable(args: &[&str]) -> Result<PathBuf, String> {
    let output = cargo()
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .output()
        .map_err(|error| format!("could not run cargo: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // `cargo test --no-run` also builds the package's binaries; prefer the
    // test executable when there is one.
    let executables: Vec<(bool, PathBuf)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            let path = message["executable"].as_str()?;
            Some((message["profile"]["test"] == true, PathBuf::from(path)))
        })
        .collect();
    let tests_first = executables.iter().rev().find(|(test, _)| *test);
    tests_first
        .or(executables.last())
        .map(|(_, path)| path.clone())
        .ok_or_else(|| format!("cargo {} named no executable", args.join(" ")))
}

/// Builds a test target with `cargo test --no-run` and returns its path.
pub fn build_test_binary(args: &[&str]) -> Result<PathBuf, String> {
    let mut all = vec!["test", "--no-run"];
    all.extend_from_slice(args);
    cargo_executable(&all)
}

/// The demo harness of `tests/demo.rs`, built once per process.
pub fn demo_binary() -> Result<&'static Path, String> {
    static DEMO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DEMO.get_or_init(|| build_test_binary(&["-p", "verily", "--test", "demo"]))
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// A target dir of the caller's own, `target/<label>`, seeded with hard
/// links of `target/debug` so its first build is incremental. Tests that
/// run the example's `operations-api` need one: cargo gives the harness
/// the uplifted `target/debug/operations-api`, which every concurrent
/// `cargo test -p operations --features ...` of the suite overwrites.
pub fn private_target(label: &str) -> PathBuf {
    // Two tests seeding one label at once would copy debug/ into debug/.
    static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _seeding = SEEDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let shared = workspace().join("target");
    let private = shared.join(label);
    if !private.join("debug").is_dir() {
        std::fs::create_dir_all(&private).expect("a private target dir");
        let seeded = Command::new("cp")
            .arg("-al")
            .arg(shared.join("debug"))
            .arg(private.join("debug"))
            .status();
        assert!(
            seeded.is_ok_and(|status| status.success()),
            "cannot seed {} from target/debug",
            private.display()
        );
        // Cargo rewrites fingerprint files in place: hard-linked, a build
        // here would rewrite the shared target's too. They are small: copy
        // them instead.
        let fingerprints = private.join("debug/.fingerprint");
        let _ = std::fs::remove_dir_all(&fingerprints);
        let copied = Command::new("cp")
            .arg("-a")
            .arg(shared.join("debug/.fingerprint"))
            .arg(&fingerprints)
            .status();
        assert!(
            copied.is_ok_and(|status| status.success()),
            "cannot copy the fingerprints into {}",
            private.display()
        );
        // The example's harness names its app with env!("CARGO_BIN_EXE_..."),
        // an absolute path fixed when it compiles: a harness linked in from
        // target/debug would start target/debug's operations-api, which the
        // suite's other tests rebuild with incident features at any moment.
        // Without the example's fingerprints, it is compiled here, naming
        // this target's binary.
        if let Ok(entries) = std::fs::read_dir(&fingerprints) {
            for entry in entries.filter_map(Result::ok) {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("operations-")
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    private
}

/// The app demo harness of `tests/demo_app.rs`, built once per process.
pub fn demo_app_binary() -> Result<&'static Path, String> {
    static DEMO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DEMO.get_or_init(|| build_test_binary(&["-p", "verily", "--test", "demo_app"]))
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// A finished harness run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Every JSON event of a `--format json` run.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not a JSON event ({error}): {line}"))
            })
            .collect()
    }

    /// The event that closes each test (libtest's `ok`, `failed` or
    /// `ignored`), by name.
    pub fn finished(&self) -> std::collections::BTreeMap<String, Value> {
        self.events()
            .into_iter()
            .filter(|event| {
                event["type"] == "test"
                    && !matches!(event["event"].as_str(), Some("started" | "timeout"))
            })
            .map(|event| (event["name"].as_str().unwrap_or_default().to_owned(), event))
            .collect()
    }

    /// The outcome of one test, by the last part of its name.
    pub fn outcome(&self, test: &str) -> String {
        let finished = self.finished();
        let (_, event) = finished
            .iter()
            .find(|(name, _)| name.rsplit("::").next() == Some(test))
            .unwrap_or_else(|| panic!("no test `{test}` in the run:\n{}", self.stdout));
        event["outcome"].as_str().unwrap_or_default().to_owned()
    }
}

/// Runs a harness binary with `args`.
pub fn run(binary: &Path, args: &[&str]) -> Run {
    run_with_env(binary, args, &[])
}

/// Runs a harness binary with `args` and extra environment.
pub fn run_with_env(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_RUN_ID");
    for (key, value) in env {
        command.env(key, value);
    }
    Run::from_output(command.output().expect("the harness binary runs"))
}

/// Runs the example's harness through `cargo test`, with `features` and
/// extra environment.
pub fn cargo_test_example(
    package: &str,
    features: &[&str],
    harness_args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = cargo();
    for (key, value) in env {
        command.env(key, value);
    }
    command.args(["test", "-q", "-p", package, "--test", "harness"]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    command.arg("--").args(harness_args);
    Run::from_output(command.output().expect("cargo runs"))
}
