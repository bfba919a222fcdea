//! The harness as a drop-in for libtest: its JSON read by libtest's own
//! readers (rust-analyzer's structs, cargo2junit), its flags and exit codes
//! beside a plain `#[test]` twin built by `rustc --test`, tags, retries and
//! the CI habits (`--durations`, `--slow`, `--fail-fast`, `--last-failed`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{Run, build_test_binary, run, run_with_env, workspace};

/// The tests `tests/demo_libtest.rs` shares with the twin, by last name.
const TWINS: [&str; 5] = [
    "passes",
    "fails",
    "returns_an_error",
    "ignored_with_reason",
    "ignored_plain",
];

/// `-Z unstable-options` needs this on a stable toolchain.
const BOOTSTRAP: &[(&str, &str)] = &[("RUSTC_BOOTSTRAP", "1")];

/// Keys verily adds to libtest's test events.
const EXTRA_KEYS: &[&str] = &[
    "category", "tags", "file", "line", "needs", "retries", "outcome", "duration", "message",
    "location", "tries", "flaky", "load",
];

fn demo() -> Result<&'static Path, String> {
    static DEMO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DEMO.get_or_init(|| build_test_binary(&["-p", "verily", "--test", "demo_libtest"]))
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// `tests/fixtures/libtest/twin.rs` built by `rustc --test`: libtest itself.
fn twin() -> Result<&'static Path, String> {
    static TWIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TWIN.get_or_init(|| {
        let dir = workspace().join("target/libtest-twin");
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let binary = dir.join("twin");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let output = Command::new(rustc)
            .args(["--edition", "2021", "--test", "-o"])
            .arg(&binary)
            .arg(workspace().join("tests/fixtures/libtest/twin.rs"))
            .output()
            .map_err(|error| format!("could not run rustc: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "rustc --test twin.rs failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(binary)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// The demo's arguments that select just the twins.
fn only_twins() -> Vec<String> {
    let mut args = vec!["--exact".to_owned()];
    args.extend(TWINS.iter().map(|name| format!("demo_libtest::{name}")));
    args
}

fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// `(type, event, last name)` of each event, in order.
fn shape(event: &Value) -> (String, String, String) {
    (
        event["type"].as_str().unwrap_or_default().to_owned(),
        event["event"].as_str().unwrap_or_default().to_owned(),
        short(event["name"].as_str().unwrap_or_default()).to_owned(),
    )
}

fn keys(event: &Value) -> BTreeSet<&str> {
    event
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn demo_run(extra: &[&str]) -> Result<Run, String> {
    Ok(run(demo()?, extra))
}

#[verily::test(category = "integration", timeout = "10m")]
fn json_is_libtests_json_with_extra_keys() -> Result<(), String> {
    let (demo, twin) = (demo()?, twin()?);
    for report_time in [false, true] {
        let mut args = vec!["--format", "json", "-Z", "unstable-options"];
        if report_time {
            args.push("--report-time");
        }
        let theirs = run_with_env(twin, &args, BOOTSTRAP);
        let only = only_twins();
        let ours_args: Vec<&str> = args
            .iter()
            .copied()
            .chain(only.iter().map(String::as_str))
            .collect();
        let ours = run(demo, &ours_args);
        assert_eq!(ours.code, theirs.code, "{}\n{}", ours.stdout, theirs.stdout);
        let (their_events, our_events) = (theirs.events(), ours.events());
        let mut their_shapes: Vec<_> = their_events.iter().map(shape).collect();
        let mut our_shapes: Vec<_> = our_events.iter().map(shape).collect();
        // Tests run in parallel: the same events, maybe in another order,
        // with the suite's first and last.
        assert_eq!(our_shapes.first(), their_shapes.first());
        assert_eq!(our_shapes.last(), their_shapes.last());
        their_shapes.sort();
        our_shapes.sort();
        assert_eq!(our_shapes, their_shapes, "{}", ours.stdout);

        let ours_by_shape: BTreeMap<_, &Value> = our_events
            .iter()
            .map(|event| (shape(event), event))
            .collect();
        for theirs in &their_events {
            let ours = ours_by_shape[&shape(theirs)];
            let (their_keys, our_keys) = (keys(theirs), keys(ours));
            if theirs["type"] == "suite" {
                assert_eq!(our_keys, their_keys, "{ours} vs libtest's {theirs}");
                for count in ["passed", "failed", "ignored", "measured"] {
                    assert_eq!(ours[count], theirs[count], "{ours} vs libtest's {theirs}");
                }
                continue;
            }
            assert!(
                their_keys.is_subset(&our_keys),
                "{ours} lacks keys of libtest's {theirs}"
            );
            let extra: Vec<&str> = our_keys.difference(&their_keys).copied().collect();
            assert!(
                extra.iter().all(|key| EXTRA_KEYS.contains(key)),
                "unexpected keys {extra:?} in {ours}"
            );
            if theirs["event"] == "ignored" {
                assert_eq!(ours["message"], theirs["message"], "{ours}");
            }
        }
        let failed = |events: &[Value], name: &str| -> String {
            events
                .iter()
                .find(|event| {
                    event["event"] == "failed"
                        && short(event["name"].as_str().unwrap_or_default()) == name
                })
                .and_then(|event| event["stdout"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        for events in [&their_events, &our_events] {
            let panic = failed(events, "fails");
            assert!(
                panic.contains("panicked at ")
                    && panic.contains(
                        "assertion `left == right` failed: arithmetic\n  left: 2\n right: 3\n"
                    ),
                "{panic}"
            );
            let error = failed(events, "returns_an_error");
            assert!(
                error.starts_with("Error: ") && error.contains("the service answered 503"),
                "{error}"
            );
        }
    }
    Ok(())
}

/// rust-analyzer's reader of libtest's JSON (`crates/rust-analyzer/src/
/// test_runner.rs`), copied field for field: a line it cannot read becomes
/// `Custom`, which its test explorer shows as noise, not as a result.
mod rust_analyzer {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "event", rename_all = "camelCase")]
    pub enum TestState {
        Started,
        Ok,
        Ignored,
        Failed {
            #[serde(default)]
            stdout: String,
        },
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "camelCase")]
    pub enum CargoTestOutput {
        Test {
            name: String,
            #[serde(flatten)]
            state: TestState,
        },
        Suite,
        Finished,
        Custom {
            text: String,
        },
    }

    /// `CargoTestOutputParser::from_line` (less `disable_recursion_limit`,
    /// which needs serde_json's `unbounded_depth`; our events are flat).
    pub fn from_line(line: &str) -> CargoTestOutput {
        let mut deserializer = serde_json::Deserializer::from_str(line);
        CargoTestOutput::deserialize(&mut deserializer).unwrap_or_else(|_| {
            CargoTestOutput::Custom {
                text: line.to_owned(),
            }
        })
    }
}

#[verily::test(category = "integration", timeout = "10m")]
fn rust_analyzer_reads_every_line() -> Result<(), String> {
    use rust_analyzer::{CargoTestOutput, TestState};
    // The arguments rust-analyzer's test explorer passes.
    let ours = run_with_env(
        demo()?,
        &["demo_libtest::", "-Z", "unstable-options", "--format=json"],
        BOOTSTRAP,
    );
    let mut states: BTreeMap<String, Vec<TestState>> = BTreeMap::new();
    let mut suites = 0;
    for line in ours.stdout.lines() {
        match rust_analyzer::from_line(line) {
            CargoTestOutput::Test { name, state } => states
                .entry(short(&name).to_owned())
                .or_default()
                .push(state),
            CargoTestOutput::Suite => suites += 1,
            CargoTestOutput::Custom { text } => panic!("rust-analyzer cannot read {text}"),
            CargoTestOutput::Finished => unreachable!("only at the end of the stream"),
        }
    }
    assert_eq!(suites, 2, "started and finished");
    assert_eq!(states.len(), 13, "{states:?}");
    for (name, states) in &states {
        assert_eq!(states.len(), 2, "{name}: started, then an end: {states:?}");
        assert_eq!(states[0], TestState::Started, "{name}");
    }
    assert_eq!(states["passes"][1], TestState::Ok);
    assert_eq!(states["fails_once"][1], TestState::Ok, "flaky, but passed");
    assert_eq!(states["ignored_with_reason"][1], TestState::Ignored);
    match &states["fails"][1] {
        TestState::Failed { stdout } => assert!(stdout.contains("arithmetic"), "{stdout}"),
        other => panic!("fails ended {other:?}"),
    }
    Ok(())
}

/// `target/tools/bin/cargo2junit`, installed from crates.io on first use.
fn cargo2junit() -> Result<PathBuf, String> {
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        let root = workspace().join("target/tools");
        let binary = root.join("bin/cargo2junit");
        if binary.is_file() {
            return Ok(binary);
        }
        let output = crate::support::cargo()
            .args(["install", "--locked", "--quiet", "cargo2junit", "--root"])
            .arg(&root)
            .output()
            .map_err(|error| format!("could not run cargo install: {error}"))?;
        if output.status.success() && binary.is_file() {
            Ok(binary)
        } else {
            Err(format!(
                "`cargo install cargo2junit --root {}` failed:\n{}",
                root.display(),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    })
    .clone()
}

#[verily::test(category = "integration", timeout = "20m")]
fn cargo2junit_turns_our_json_into_junit() -> Result<(), String> {
    let tool = match cargo2junit() {
        Ok(tool) => tool,
        Err(why) => verily::skip(format!("cargo2junit is not available: {why}")),
    };
    // --slow also makes the harness print libtest's `timeout` warning event.
    let ours = demo_run(&["--format", "json", "--slow", "300ms"])?;
    let mut child = Command::new(&tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("{}: {error}", tool.display()))?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(ours.stdout.as_bytes())
            .map_err(|error| error.to_string())?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| error.to_string())?;
    let xml = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // cargo2junit exits 1 when the report it wrote has failures.
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{xml}");
    assert!(stderr.contains("One or more tests failed"), "{stderr}");
    assert!(
        xml.contains("tests=\"13\"") && xml.contains("failures=\"5\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 13, "{xml}");
    assert_eq!(xml.matches("<skipped").count(), 2, "{xml}");
    assert!(
        xml.contains("<testcase name=\"passes\"") && xml.contains("classname=\"demo_libtest\""),
        "{xml}"
    );
    assert!(xml.contains("the service answered 503"), "{xml}");
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn bad_command_lines_exit_101_in_libtests_words() -> Result<(), String> {
    let (demo, twin) = (demo()?, twin()?);
    for (args, message) in [
        (
            &["--frobnicate"][..],
            "error: Unrecognized option: 'frobnicate'",
        ),
        (&["--skip"][..], "error: Argument to option 'skip' missing"),
    ] {
        let (ours, theirs) = (run(demo, args), run(twin, args));
        assert_eq!(theirs.code, 101, "{}", theirs.stderr);
        assert_eq!(ours.code, theirs.code, "{args:?}: {}", ours.stderr);
        assert!(theirs.stderr.starts_with(message), "{}", theirs.stderr);
        assert!(ours.stderr.starts_with(message), "{}", ours.stderr);
    }
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn list_ends_with_libtests_footer() -> Result<(), String> {
    let (demo, twin) = (demo()?, twin()?);
    let only = only_twins();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    for format in [&[][..], &["--format", "terse"][..]] {
        let theirs = run(twin, &[&["--list"][..], format].concat());
        let ours = run(demo, &[&["--list"][..], format, &only].concat());
        assert_eq!(ours.code, theirs.code);
        let footer = |stdout: &str| -> Vec<String> {
            stdout
                .lines()
                .filter(|line| !line.ends_with(": test"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(footer(&ours.stdout), footer(&theirs.stdout), "{format:?}");
    }
    let one = run(demo, &["--list", "--exact", "demo_libtest::passes"]);
    assert!(
        one.stdout.ends_with("\n1 test, 0 benchmarks\n"),
        "{}",
        one.stdout
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn logfile_report_time_and_accepted_flags_mean_what_they_mean_in_libtest() -> Result<(), String> {
    let (demo, twin) = (demo()?, twin()?);
    let dir = std::env::temp_dir().join(format!("verily-logfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let (their_log, our_log) = (dir.join("libtest.log"), dir.join("verily.log"));
    let only = only_twins();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    let theirs = run(twin, &["--logfile", &their_log.to_string_lossy()]);
    let ours = run(
        demo,
        &[&["--logfile", &our_log.to_string_lossy()][..], &only].concat(),
    );
    assert_eq!(ours.code, theirs.code);
    let lines = |path: &Path, prefix: &str| -> Vec<String> {
        let mut lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| line.replacen(prefix, "", 1))
            .collect();
        lines.sort();
        lines
    };
    let expected = lines(&their_log, "");
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert_eq!(lines(&our_log, "demo_libtest::"), expected);
    let _ = std::fs::remove_dir_all(&dir);

    // --report-time: the time after the word, as libtest prints it.
    let args = [
        "-Z",
        "unstable-options",
        "--report-time",
        "--color",
        "never",
    ];
    let theirs = run_with_env(twin, &args, BOOTSTRAP);
    let ours = run(demo, &[&args[..], &only].concat());
    for stdout in [&theirs.stdout, &ours.stdout] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with("test ") && line.contains("passes ... ok"))
            .unwrap_or_else(|| panic!("no passes line:\n{stdout}"));
        assert!(line.ends_with("s>") && line.contains(" ok <"), "{line}");
    }

    // Flags libtest takes that change nothing here, with its exit code.
    let accepted = [
        "-Z",
        "unstable-options",
        "--show-output",
        "--ensure-time",
        "--exclude-should-panic",
        "--exact",
        "passes",
    ];
    let theirs = run_with_env(twin, &accepted, BOOTSTRAP);
    let mut ours_args = accepted.to_vec();
    ours_args[6] = "demo_libtest::passes";
    let ours = run(demo, &ours_args);
    assert_eq!(theirs.code, 0, "{}", theirs.stderr);
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    Ok(())
}

/// The order tests start in under `--test-threads 1`.
fn started_order(run: &Run) -> Vec<String> {
    run.events()
        .iter()
        .filter(|event| event["type"] == "test" && event["event"] == "started")
        .map(|event| short(event["name"].as_str().unwrap_or_default()).to_owned())
        .collect()
}

#[verily::test(category = "integration", timeout = "10m")]
fn shuffle_seed_replays_an_order() -> Result<(), String> {
    let demo = demo()?;
    let args = |seed: &'static str| {
        [
            "--format",
            "json",
            "--test-threads",
            "1",
            "--skip",
            "sleeps",
            "--shuffle-seed",
            seed,
        ]
    };
    let first = started_order(&run(demo, &args("3")));
    let again = started_order(&run(demo, &args("3")));
    let other = started_order(&run(demo, &args("4")));
    let sorted = started_order(&run(
        demo,
        &[
            "--format",
            "json",
            "--test-threads",
            "1",
            "--skip",
            "sleeps",
        ],
    ));
    assert_eq!(first, again, "one seed, one order");
    assert_ne!(first, sorted, "shuffled");
    assert_ne!(first, other, "another seed, another order");
    let pretty = run(
        demo,
        &["--shuffle-seed", "3", "--exact", "demo_libtest::passes"],
    );
    assert!(
        pretty.stdout.contains("running 1 test (shuffle seed: 3)"),
        "as libtest prints it: {}",
        pretty.stdout
    );
    let random = run(demo, &["--shuffle", "--exact", "demo_libtest::passes"]);
    assert!(
        random.stdout.contains("(shuffle seed: "),
        "{}",
        random.stdout
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn fail_fast_starts_no_test_after_the_first_failure() -> Result<(), String> {
    let demo = demo()?;
    // By name, `fails` runs before `passes`.
    let args = [
        "--test-threads",
        "1",
        "--exact",
        "demo_libtest::fails",
        "demo_libtest::passes",
    ];
    let all = run(demo, &[&args[..], &["--format", "json"]].concat());
    assert_eq!(all.finished().len(), 2, "{}", all.stdout);
    let fast = run(
        demo,
        &[&args[..], &["--format", "json", "--fail-fast"]].concat(),
    );
    assert_eq!(fast.code, 101);
    assert_eq!(
        fast.finished().keys().collect::<Vec<_>>(),
        ["demo_libtest::fails"],
        "{}",
        fast.stdout
    );
    let pretty = run(
        demo,
        &[&args[..], &["--fail-fast", "--color", "never"]].concat(),
    );
    assert!(
        pretty
            .stdout
            .contains("1 tests not run: --fail-fast stopped the run at the first failure"),
        "{}",
        pretty.stdout
    );
    Ok(())
}

/// The last names `--list --format terse` prints with these arguments.
fn listed(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(|name| short(name).to_owned())
        .collect()
}

#[verily::test(category = "integration", timeout = "10m")]
fn tags_select_with_and_or_not_and_parentheses() -> Result<(), String> {
    let demo = demo()?;
    let select = |expression: &str| {
        listed(&run(
            demo,
            &["--list", "--format", "terse", "--tags", expression],
        ))
    };
    assert_eq!(select("slow & !nightly"), ["slow_integration"]);
    assert_eq!(select("slow and not nightly"), ["slow_integration"]);
    assert_eq!(
        select("nightly | fast"),
        ["nightly_smoke", "passes", "slow_nightly_integration"]
    );
    // The category is a tag too.
    assert_eq!(select("integration & !slow"), ["returns_an_error"]);
    assert_eq!(
        select("smoke and not (fast or nightly)"),
        ["fails", "ignored_plain", "ignored_with_reason"]
    );
    // Two --tags must both hold.
    let both = run(
        demo,
        &[
            "--list", "--format", "terse", "--tags", "slow", "--tags", "nightly",
        ],
    );
    assert_eq!(listed(&both), ["slow_nightly_integration"]);

    let typo = run(demo, &["--tags", "slow & !nightyl"]);
    assert_eq!(typo.code, 101);
    assert!(
        typo.stderr
            .contains("unknown tag `nightyl` in --tags (did you mean `nightly`?); known tags: ")
            && typo.stderr.contains("fast"),
        "{}",
        typo.stderr
    );
    let unclosed = run(demo, &["--tags", "(slow | nightly"]);
    assert_eq!(unclosed.code, 101);
    assert!(
        unclosed
            .stderr
            .contains("invalid --tags `(slow | nightly`: a `(` is not closed"),
        "{}",
        unclosed.stderr
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn tags_reach_json_junit_and_nextest() -> Result<(), String> {
    let demo = demo()?;
    let json = run(demo, &["--format", "json", "--tags", "nightly"]);
    let finished = json.finished();
    assert_eq!(
        finished["demo_libtest::slow_nightly_integration"]["tags"],
        serde_json::json!(["integration", "slow", "nightly"])
    );
    let dir = std::env::temp_dir().join(format!("verily-tags-{}", std::process::id()));
    let path = dir.join("report.xml");
    run(
        demo,
        &[
            "-q",
            "--tags",
            "nightly",
            "--junit",
            &path.to_string_lossy(),
        ],
    );
    let xml =
        std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        xml.contains("<property name=\"tag\" value=\"slow\"/>")
            && xml.contains("<property name=\"tag\" value=\"nightly\"/>")
            && xml.contains("<property name=\"category\" value=\"integration\"/>"),
        "{xml}"
    );
    // nextest passes no flags to a harness, but passes the environment:
    // VERILY_TAGS selects what it lists (names with their category).
    let nextest = run_with_env(
        demo,
        &["--list", "--format", "terse"],
        &[("NEXTEST", "1"), ("VERILY_TAGS", "slow & !nightly")],
    );
    assert_eq!(
        nextest.stdout,
        "[integration] demo_libtest::slow_integration: test\n"
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn a_test_passing_on_a_retry_is_flaky_never_silently_passed() -> Result<(), String> {
    let demo = demo()?;
    let flaky = ["--exact", "demo_libtest::fails_once", "--color", "never"];
    let pretty = run(demo, &flaky);
    assert_eq!(pretty.code, 0, "flaky still passes: {}", pretty.stdout);
    let stdout = &pretty.stdout;
    assert!(
        stdout.contains("test demo_libtest::fails_once ... ok (flaky, passed on try 2)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("flaky (passed on a retry):\n    demo_libtest::fails_once (try 2; earlier: panicked: first try fails)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 12 filtered out; 1 flaky; finished in "),
        "{stdout}"
    );
    let json = run(demo, &[&flaky[..2], &["--format", "json"]].concat());
    let event = &json.finished()["demo_libtest::fails_once"];
    assert_eq!(event["event"], "ok", "{event}");
    assert_eq!(event["flaky"], true, "{event}");
    assert_eq!(event["tries"], 2, "{event}");
    assert_eq!(event["retries"], 2, "{event}");

    // A test that fails every try fails, with the last try's failure.
    let always = run(
        demo,
        &[
            "--exact",
            "demo_libtest::fails_every_try",
            "--format",
            "json",
        ],
    );
    assert_eq!(always.code, 101);
    let event = &always.finished()["demo_libtest::fails_every_try"];
    assert_eq!(event["event"], "failed", "{event}");
    assert_eq!(event["tries"], 3, "{event}");
    assert_eq!(event["flaky"], false, "{event}");
    assert_eq!(event["message"], "panicked: try 3 fails too", "{event}");
    let pretty = run(
        demo,
        &[
            "--exact",
            "demo_libtest::fails_every_try",
            "--color",
            "never",
        ],
    );
    assert!(
        pretty
            .stdout
            .contains("test demo_libtest::fails_every_try ... FAILED (failed all 3 tries)"),
        "{}",
        pretty.stdout
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn retries_flag_applies_to_tests_that_set_none() -> Result<(), String> {
    let demo = demo()?;
    let exact = [
        "--exact",
        "demo_libtest::fails_once_without_retries",
        "--format",
        "json",
    ];
    let once = run(demo, &exact);
    assert_eq!(once.code, 101);
    assert_eq!(
        once.finished()["demo_libtest::fails_once_without_retries"]["tries"],
        1
    );
    let retried = run(demo, &[&exact[..], &["--retries", "1"]].concat());
    assert_eq!(retried.code, 0, "{}", retried.stdout);
    let event = &retried.finished()["demo_libtest::fails_once_without_retries"];
    assert_eq!(event["flaky"], true, "{event}");
    // A test's own `retries` wins over the flag: fails_every_try keeps 2.
    let own = run(
        demo,
        &[
            "--exact",
            "demo_libtest::fails_every_try",
            "--format",
            "json",
            "--retries",
            "5",
        ],
    );
    assert_eq!(own.finished()["demo_libtest::fails_every_try"]["tries"], 3);
    let bad = run(demo, &["--retries", "many"]);
    assert_eq!(bad.code, 101);
    assert!(
        bad.stderr
            .contains("argument for --retries must be a whole number (was many)"),
        "{}",
        bad.stderr
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn junit_has_flaky_failures_system_out_and_no_raw_control_characters() -> Result<(), String> {
    use quick_junit::{NonSuccessReruns, TestCaseStatus};
    let demo = demo()?;
    let dir = std::env::temp_dir().join(format!("verily-junit-libtest-{}", std::process::id()));
    let path = dir.join("report.xml");
    let junit = run(
        demo,
        &["-q", "--skip", "sleeps", "--junit", &path.to_string_lossy()],
    );
    assert_eq!(junit.code, 101);
    let xml =
        std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!xml.contains('\u{1b}'), "a raw ESC: {xml}");
    let report = quick_junit::Report::deserialize_from_str(&xml)
        .map_err(|error| format!("not well-formed JUnit ({error}):\n{xml}"))?;
    assert!(report.timestamp.is_some(), "{xml}");
    let cases: BTreeMap<&str, &quick_junit::TestCase> = report
        .test_suites
        .iter()
        .flat_map(|suite| &suite.test_cases)
        .map(|case| (case.name.as_str(), case))
        .collect();
    assert_eq!(cases.len(), 12, "{xml}");
    assert!(cases.values().all(|case| case.timestamp.is_some()), "{xml}");

    let colored = cases["colors_its_message"];
    let out = colored
        .system_out
        .as_ref()
        .map(|out| out.as_str())
        .unwrap_or_default();
    assert!(out.contains("red & <markup> \"quoted\""), "{out:?}");
    match &colored.status {
        TestCaseStatus::NonSuccess { message, .. } => assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("panicked: red & <markup> \"quoted\"")
        ),
        other => panic!("{other:?}"),
    }

    let fails = cases["fails"];
    let out = fails
        .system_out
        .as_ref()
        .map(|out| out.as_str())
        .unwrap_or_default();
    assert!(
        out.contains("assertion `left == right` failed: arithmetic"),
        "{out}"
    );

    match &cases["fails_once"].status {
        TestCaseStatus::Success { flaky_runs } => {
            assert_eq!(flaky_runs.len(), 1, "{xml}");
            assert_eq!(
                flaky_runs[0].message.as_ref().map(|m| m.as_str()),
                Some("panicked: first try fails")
            );
        }
        other => panic!("fails_once: {other:?}"),
    }
    assert!(xml.contains("<flakyFailure"), "{xml}");
    match &cases["fails_every_try"].status {
        TestCaseStatus::NonSuccess {
            reruns: NonSuccessReruns { runs, .. },
            ..
        } => assert_eq!(runs.len(), 2, "two earlier tries: {xml}"),
        other => panic!("fails_every_try: {other:?}"),
    }
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn durations_and_slow_warnings() -> Result<(), String> {
    let demo = demo()?;
    // sleeps_past_slow sleeps 1.5 s; every other test returns at once.
    let pretty = run(
        demo,
        &["--durations", "2", "--slow", "300ms", "--color", "never"],
    );
    let stdout = &pretty.stdout;
    assert!(
        stdout.contains("SLOW [> 0.300s] demo_libtest::sleeps_past_slow\n"),
        "{stdout}"
    );
    let (_, after) = stdout
        .split_once("test result: ")
        .ok_or_else(|| format!("no result line:\n{stdout}"))?;
    let slowest: Vec<&str> = after
        .lines()
        .skip_while(|line| !line.starts_with("slowest 2 tests:"))
        .skip(1)
        .take(2)
        .collect();
    assert_eq!(slowest.len(), 2, "after the summary: {stdout}");
    assert!(
        slowest[0].ends_with("  [report] demo_libtest::sleeps_past_slow"),
        "{slowest:?}"
    );
    // JSON: libtest's own warning event, and the list on stderr.
    let json = run(
        demo,
        &["--format", "json", "--durations", "1", "--slow", "300ms"],
    );
    assert!(
        json.events().iter().any(|event| event["event"] == "timeout"
            && event["name"] == "demo_libtest::sleeps_past_slow"),
        "{}",
        json.stdout
    );
    assert!(
        json.stderr.contains("slowest 1 tests:\n"),
        "{}",
        json.stderr
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn last_failed_reruns_what_failed_in_the_previous_run() -> Result<(), String> {
    let demo = demo()?;
    let state = std::env::temp_dir().join(format!("verily-last-failed-{}", std::process::id()));
    let state_text = state.to_string_lossy().into_owned();
    let env = [("VERILY_LAST_FAILED", state_text.as_str())];
    let _ = std::fs::remove_file(&state);
    let names = |run: &Run| -> Vec<String> {
        run.finished()
            .keys()
            .map(|name| short(name).to_owned())
            .collect()
    };

    // Nothing recorded: everything runs.
    let first = run_with_env(
        demo,
        &["--format", "json", "--skip", "sleeps", "--last-failed"],
        &env,
    );
    assert_eq!(first.finished().len(), 12, "{}", first.stderr);
    let failed = [
        "colors_its_message",
        "fails",
        "fails_every_try",
        "fails_once_without_retries",
        "returns_an_error",
    ];
    let again = run_with_env(demo, &["--format", "json", "--last-failed"], &env);
    assert_eq!(names(&again), failed);
    // A filtered run forgets only what it ran and passed.
    let fixed = run_with_env(
        demo,
        &[
            "--format",
            "json",
            "--retries",
            "1",
            "--exact",
            "demo_libtest::fails_once_without_retries",
        ],
        &env,
    );
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    let rest = run_with_env(demo, &["--format", "json", "--last-failed"], &env);
    assert_eq!(
        names(&rest),
        [
            "colors_its_message",
            "fails",
            "fails_every_try",
            "returns_an_error"
        ]
    );
    let _ = std::fs::remove_file(&state);

    // Without the variable, the state lives under the target directory of
    // the binary (a copy, so no other test's run of the demo writes there).
    let target = std::env::temp_dir().join(format!("verily-target-{}/target", std::process::id()));
    let deps = target.join("debug/deps");
    std::fs::create_dir_all(&deps).map_err(|error| error.to_string())?;
    let copy = deps.join(demo.file_name().unwrap_or_default());
    std::fs::copy(demo, &copy).map_err(|error| error.to_string())?;
    run(&copy, &["--exact", "demo_libtest::fails"]);
    let file = target
        .join("verily/last-failed")
        .join(demo.file_name().unwrap_or_default());
    let recorded =
        std::fs::read_to_string(&file).map_err(|error| format!("{}: {error}", file.display()));
    let _ = std::fs::remove_dir_all(target.parent().unwrap_or(&target));
    assert_eq!(recorded?, "demo_libtest::fails\n");
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn verily_json_keeps_the_old_schema_with_category_tables() -> Result<(), String> {
    let ours = demo_run(&["--format", "verily-json", "--skip", "sleeps"])?;
    let events = ours.events();
    assert_eq!(events[0]["schema"], "verily/1", "{}", ours.stdout);
    let fails = events
        .iter()
        .find(|event| event["event"] == "finished" && event["name"] == "demo_libtest::fails_once")
        .ok_or_else(|| format!("no finished event:\n{}", ours.stdout))?;
    assert_eq!(fails["outcome"], "passed");
    assert_eq!(fails["flaky"], true);
    let suite = events.last().cloned().unwrap_or_default();
    assert_eq!(suite["event"], "finished", "{suite}");
    assert_eq!(suite["flaky"], 1, "{suite}");
    let flaky = suite["categories"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["category"] == "flaky"))
        .ok_or_else(|| format!("no flaky row: {suite}"))?;
    assert_eq!(
        (&flaky["passed"], &flaky["failed"]),
        (&1.into(), &2.into()),
        "{flaky}"
    );
    Ok(())
}
