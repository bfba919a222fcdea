//! The harness CLI, checked against the demo harness of `tests/demo.rs`
//! whose tests pass, fail, panic, hang and are ignored on purpose.

use std::collections::BTreeSet;

use crate::support::{demo_binary, run, run_with_env};

fn names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(|line| {
            line.strip_suffix(": test")
                .unwrap_or_else(|| panic!("not a `name: test` line: {line:?}"))
                .to_owned()
        })
        .collect()
}

#[verily::test(category = "integration", timeout = "10m")]
fn list_terse_prints_only_name_test_lines() -> Result<(), String> {
    let demo = demo_binary()?;
    let listed = run(demo, &["--list", "--format", "terse"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let names = names(&listed.stdout);
    assert_eq!(names.len(), 17, "{}", listed.stdout);
    assert!(
        names.iter().all(|name| name.starts_with("demo::")),
        "{names:?}"
    );
    let ignored = names_of(&run(demo, &["--list", "--format", "terse", "--ignored"]).stdout);
    assert_eq!(
        ignored,
        [
            "demo::ignored_by_libtest_attribute",
            "demo::ignored_with_reason"
        ]
    );
    Ok(())
}

fn names_of(listing: &str) -> Vec<String> {
    names(listing)
}

#[verily::test(category = "integration", timeout = "10m")]
fn under_nextest_names_carry_their_category() -> Result<(), String> {
    let demo = demo_binary()?;
    let listed = run_with_env(demo, &["--list", "--format", "terse"], &[("NEXTEST", "1")]);
    let names = names(&listed.stdout);
    assert!(
        names.contains(&"[smoke] demo::passes".to_owned()),
        "{names:?}"
    );
    // nextest then runs each test by that name.
    let one = run(
        demo,
        &["--exact", "[smoke] demo::passes", "--format", "json"],
    );
    assert_eq!(one.code, 0, "{}", one.stdout);
    assert_eq!(one.finished().len(), 1);
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn exact_and_skip_select_by_name() -> Result<(), String> {
    let demo = demo_binary()?;
    let exact = run(demo, &["--exact", "demo::passes", "--format", "json"]);
    assert_eq!(
        exact.finished().keys().collect::<Vec<_>>(),
        ["demo::passes"]
    );
    // A substring filter also matches `passes_async`; --skip is repeatable.
    let filtered = run(
        demo,
        &[
            "passes", "--skip", "async", "--skip", "nothing", "--format", "json",
        ],
    );
    assert_eq!(
        filtered.finished().keys().collect::<Vec<_>>(),
        ["demo::passes"]
    );
    let suite = filtered.events().pop().unwrap_or_default();
    assert_eq!(suite["filtered_out"], 16, "{suite}");
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn bad_command_lines_exit_101_and_name_the_problem() -> Result<(), String> {
    let demo = demo_binary()?;
    let unknown_flag = run(demo, &["--frobnicate"]);
    assert_eq!(unknown_flag.code, 101);
    assert!(
        unknown_flag.stderr.contains("'frobnicate'"),
        "{}",
        unknown_flag.stderr
    );
    let unknown_category = run(demo, &["--category", "persistance"]);
    assert_eq!(unknown_category.code, 101);
    assert!(
        unknown_category
            .stderr
            .contains("unknown category `persistance`")
            && unknown_category.stderr.contains("persistence")
            && unknown_category.stderr.contains("concurrency"),
        "the message must list built-in and registered categories: {}",
        unknown_category.stderr
    );
    let bad_shard = run(demo, &["--shard", "4/3"]);
    assert_eq!(bad_shard.code, 101);
    assert!(bad_shard.stderr.contains("--shard"), "{}", bad_shard.stderr);
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn each_failure_is_reported_alone_and_the_rest_go_on() -> Result<(), String> {
    let demo = demo_binary()?;
    let all = run(
        demo,
        &[
            "--format",
            "json",
            "--skip",
            "sleeps_a_second",
            "--test-threads",
            "4",
        ],
    );
    assert_eq!(all.code, 101, "{}", all.stdout);
    assert_eq!(all.outcome("passes"), "passed");
    assert_eq!(all.outcome("passes_async"), "passed");
    assert_eq!(all.outcome("meets_a"), "passed");
    assert_eq!(all.outcome("ignored_with_reason"), "ignored");
    assert_eq!(all.outcome("skips_itself"), "skipped");
    assert_eq!(
        all.finished()["demo::skips_itself"]["message"],
        "no Docker engine on this machine"
    );
    assert_eq!(all.outcome("hangs_async"), "timed_out");
    assert_eq!(all.outcome("hangs_blocking"), "timed_out");
    let finished = all.finished();
    let panic = &finished["demo::panics_with_a_message"];
    assert_eq!(panic["outcome"], "failed");
    let message = panic["message"].as_str().unwrap_or_default();
    assert!(message.contains("arithmetic still works"), "{message}");
    let location = panic["location"].as_str().unwrap_or_default();
    assert!(
        location.starts_with("tests/demo.rs:"),
        "the panic's own location: {location}"
    );
    let error = &finished["demo::returns_an_error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{error}"
    );
    let fixture = &finished["demo::broken_fixture"];
    let message = fixture["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("fixture failed") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    let timeout = finished["demo::hangs_async"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(timeout.contains("timed out after 0.300s"), "{timeout}");
    // #[wired] through Box, a user's own Wire type, OnceCell, Weak, async
    // factories and Result factories.
    assert_eq!(all.outcome("boxed_client"), "passed");
    assert_eq!(
        finished["demo::disconnected_client"]["message"],
        "disconnected_client() returned Client with connection not wired (not connected), \
         parent not wired (Weak points to nothing), cache not wired (OnceCell not set); wired: nothing"
    );
    assert_eq!(
        finished["demo::client_from_config"]["message"],
        "client_from_config() returned Err: \"DATABASE_URL is not set\""
    );
    // #[enum_complete] handlers: each variant's Err is named.
    assert_eq!(
        finished["demo::stopping_distance"]["message"],
        "stopping_distance failed for 1 of 3 variants of Light:\n  Amber: returned Err(\"amber has no rule yet\")"
    );
    let suite = all.events().pop().unwrap_or_default();
    assert_eq!(suite["failed"], 8, "{suite}");
    assert_eq!(suite["ignored"], 3, "{suite}");
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn timeout_flag_is_the_default_and_a_test_can_override_it() -> Result<(), String> {
    let demo = demo_binary()?;
    let run = run(
        demo,
        &[
            "--format",
            "json",
            "--test-threads",
            "3",
            "--timeout",
            "200ms",
            "--exact",
            "demo::sleeps_a_second",
            "demo::meets_a",
            "demo::meets_b",
        ],
    );
    assert_eq!(
        run.outcome("sleeps_a_second"),
        "timed_out",
        "--timeout applies to tests without their own"
    );
    // meets_a and meets_b set `timeout = "10s"`, which wins over the flag.
    assert_eq!(run.outcome("meets_a"), "passed", "{}", run.stdout);
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn tests_run_in_parallel_up_to_test_threads() -> Result<(), String> {
    let demo = demo_binary()?;
    let together = run(
        demo,
        &[
            "--category",
            "concurrency",
            "--test-threads",
            "2",
            "--format",
            "json",
        ],
    );
    assert_eq!(together.code, 0, "{}", together.stdout);
    let alone = run(
        demo,
        &[
            "--category",
            "concurrency",
            "--test-threads",
            "1",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        alone.code, 101,
        "with one thread the two tests cannot meet: {}",
        alone.stdout
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn ignored_tests_run_only_when_asked() -> Result<(), String> {
    let demo = demo_binary()?;
    let only = run(demo, &["--ignored", "--format", "json"]);
    assert_eq!(only.finished().len(), 2);
    assert_eq!(
        only.outcome("ignored_with_reason"),
        "failed",
        "it panics when run"
    );
    assert_eq!(only.outcome("ignored_by_libtest_attribute"), "passed");
    let include = run(
        demo,
        &[
            "--include-ignored",
            "--category",
            "smoke",
            "--format",
            "json",
        ],
    );
    assert_eq!(include.finished().len(), 6);
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn shards_split_the_suite_with_no_overlap_and_no_gap() -> Result<(), String> {
    let demo = demo_binary()?;
    let everything: BTreeSet<String> = names(&run(demo, &["--list", "--format", "terse"]).stdout)
        .into_iter()
        .collect();
    let mut seen = BTreeSet::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let part = names(&run(demo, &["--list", "--format", "terse", "--shard", shard]).stdout);
        for name in part {
            assert!(seen.insert(name.clone()), "{name} is in two shards");
        }
    }
    assert_eq!(seen, everything);
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn pretty_output_ends_with_a_table_per_category() -> Result<(), String> {
    let demo = demo_binary()?;
    let pretty = run(demo, &["--category", "smoke", "--color", "never"]);
    assert_eq!(pretty.code, 101);
    let stdout = &pretty.stdout;
    assert!(stdout.contains("test demo::passes ... ok"), "{stdout}");
    assert!(
        stdout.contains("test demo::ignored_with_reason ... ignored"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test demo::skips_itself ... skipped: no Docker engine on this machine"),
        "{stdout}"
    );
    assert!(
        stdout.contains("---- demo::panics_with_a_message [smoke] ----"),
        "{stdout}"
    );
    let table = stdout
        .lines()
        .find(|line| line.starts_with("smoke "))
        .unwrap_or_else(|| panic!("no row for smoke:\n{stdout}"));
    let cells: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(&cells[..4], ["smoke", "2", "1", "3"], "{table}");
    assert!(
        stdout.contains(
            "test result: FAILED. 2 passed; 1 failed; 3 ignored; 0 measured; 11 filtered out"
        ),
        "{stdout}"
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn junit_report_has_a_suite_per_category() -> Result<(), String> {
    let demo = demo_binary()?;
    let dir = std::env::temp_dir().join(format!("verily-junit-{}", std::process::id()));
    let path = dir.join("nested/report.xml");
    let path_text = path.to_string_lossy().into_owned();
    let junit = run(
        demo,
        &[
            "--junit",
            &path_text,
            "--skip",
            "sleeps_a_second",
            "--test-threads",
            "4",
            "-q",
        ],
    );
    assert_eq!(junit.code, 101);
    let xml = std::fs::read_to_string(&path).map_err(|error| format!("{path_text}: {error}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(xml.starts_with("<?xml"), "{xml}");
    for suite in [
        "name=\"smoke\"",
        "name=\"integration\"",
        "name=\"concurrency\"",
    ] {
        assert!(
            xml.contains(&format!("<testsuite {suite}")),
            "missing {suite}:\n{xml}"
        );
    }
    assert!(
        xml.lines()
            .any(|line| line.contains("<failure ") && line.contains("type=\"timed_out\"")),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"passes\" classname=\"demo\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<skipped/>").count(), 1, "{xml}");
    assert!(
        xml.contains("<skipped message=\"needs a broker\"/>"),
        "an ignore reason: {xml}"
    );
    assert!(
        xml.contains("<skipped message=\"no Docker engine on this machine\"/>"),
        "{xml}"
    );
    Ok(())
}

#[verily::test(category = "integration", timeout = "10m")]
fn nocapture_prints_panics_as_they_happen_and_color_is_chosen() -> Result<(), String> {
    let demo = demo_binary()?;
    let panic = ["--exact", "demo::panics_with_a_message"];
    let captured = run(demo, &panic);
    assert!(
        !captured.stderr.contains("arithmetic still works"),
        "{}",
        captured.stderr
    );
    assert!(
        captured.stdout.contains("arithmetic still works"),
        "the failure report has it"
    );
    let printed = run(demo, &[&panic[..], &["--nocapture"]].concat());
    assert!(
        printed.stderr.contains("arithmetic still works"),
        "{}",
        printed.stderr
    );

    let colored = run(demo, &["--exact", "demo::passes", "--color", "always"]);
    assert!(
        colored.stdout.contains("... \u{1b}[32mok\u{1b}[0m"),
        "{:?}",
        colored.stdout
    );
    let plain = run(demo, &["--exact", "demo::passes", "--color", "never"]);
    assert!(!plain.stdout.contains('\u{1b}'), "{:?}", plain.stdout);
    Ok(())
}
