//! SIGINT, SIGTERM and SIGHUP (what CI systems send on timeout or cancel)
//! run the same teardown as the end of a run, then exit with 128 + the
//! signal's number.

use std::time::Duration;

use crate::leftovers::{self, PrivateDirs};
use crate::postgres::demo_db;

#[verily::test(category = "e2e", timeout = "10m")]
fn each_termination_signal_tears_the_run_down_and_exits_with_its_status() {
    for (signal, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
    ] {
        let dirs = PrivateDirs::new("signal");
        let mut env = dirs.env(false);
        env.push(("VERILY_POSTGRES".to_owned(), "local".to_owned()));
        let mut harness = leftovers::spawn(
            demo_db(),
            &[
                "--exact",
                "demo_db::waits_forever_with_a_server",
                "--nocapture",
            ],
            &env,
        );
        let holding = leftovers::wait_for_line(&mut harness, "holding ", Duration::from_secs(120));
        assert!(
            holding.is_some(),
            "{name}: the test never held its database and server: {}",
            leftovers::stderr_of(&mut harness)
        );
        assert!(
            !leftovers::processes_touching(&[&dirs.base]).is_empty(),
            "{name}: no server runs in {}",
            dirs.base.display()
        );
        leftovers::signal(&harness, signal);
        let status = leftovers::wait_with_limit(&mut harness, Duration::from_secs(90));
        let stderr = leftovers::stderr_of(&mut harness);
        assert_eq!(
            status.and_then(|status| status.code()),
            Some(128 + signal),
            "{name}: {status:?}\n{stderr}"
        );
        assert_eq!(
            dirs.leftover_files(),
            Vec::<String>::new(),
            "{name} left files in {}\n{stderr}",
            dirs.root().display()
        );
        assert_eq!(
            dirs.leftover_processes(),
            Vec::<String>::new(),
            "{name} left processes\n{stderr}"
        );
    }
}

/// A second signal cuts the teardown short: the harness exits at once, and
/// whatever it had not removed yet the next run removes.
#[verily::test(category = "e2e", timeout = "10m")]
fn a_second_signal_during_teardown_leaves_nothing_the_next_run_keeps() {
    let dirs = PrivateDirs::new("second-signal");
    let mut env = dirs.env(false);
    env.push(("VERILY_POSTGRES".to_owned(), "local".to_owned()));
    let mut harness = leftovers::spawn(
        demo_db(),
        &[
            "--exact",
            "demo_db::waits_forever_with_a_server",
            "--nocapture",
        ],
        &env,
    );
    let holding = leftovers::wait_for_line(&mut harness, "holding ", Duration::from_secs(120));
    assert!(holding.is_some(), "{}", leftovers::stderr_of(&mut harness));
    leftovers::signal(&harness, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(5));
    leftovers::signal(&harness, libc::SIGINT);
    let status = leftovers::wait_with_limit(&mut harness, Duration::from_secs(90));
    let stderr = leftovers::stderr_of(&mut harness);
    assert_eq!(
        status.and_then(|status| status.code()),
        Some(128 + libc::SIGTERM),
        "{status:?}\n{stderr}"
    );
    assert!(
        stderr.contains("interrupted (SIGINT) during teardown: exiting now"),
        "the second signal did not cut the teardown short:\n{stderr}"
    );

    let next = crate::support::run_with_env(
        demo_db(),
        &["--exact", "demo_db::writes_a_thing"],
        &env.iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(
        dirs.leftover_files(),
        Vec::<String>::new(),
        "first run:\n{stderr}"
    );
    assert_eq!(dirs.leftover_processes(), Vec::<String>::new());
}
