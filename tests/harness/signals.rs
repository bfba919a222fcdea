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
