//! The environment is read in one place (runtime/src/env.rs), once, and a
//! variable set to a value it does not take stops the run with a message
//! saying what it takes, instead of being ignored.

use crate::support::{demo_binary, run_with_env, workspace};

/// Variables read where they are used, on purpose: they belong to other
/// tools (the shell's PATH and HOME, Docker's own variables in docker.rs).
const READ_IN_PLACE: &[&str] = &["PATH", "HOME", "XDG_CACHE_HOME"];

#[verily::test(category = "contract")]
fn settings_are_read_in_env_rs_only() {
    let root = workspace().join("runtime/src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut outside = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under runtime/src");
        if relative == std::path::Path::new("env.rs")
            || relative == std::path::Path::new("infra/docker.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let Some(at) = line.find("std::env::var") else {
                continue;
            };
            let read = &line[at..];
            let allowed = READ_IN_PLACE
                .iter()
                .any(|name| read.contains(&format!("(\"{name}\")")));
            if !allowed {
                outside.push(format!(
                    "runtime/src/{}:{}: {}",
                    relative.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "read these through crate::env::env() (runtime/src/env.rs), where every variable is parsed once and documented:\n{}",
        outside.join("\n")
    );
}

fn collect(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[verily::test(category = "contract")]
fn a_variable_set_to_a_value_it_does_not_take_stops_the_run() {
    let demo = demo_binary().unwrap_or_else(|error| panic!("{error}"));
    for (variable, value, takes) in [
        ("VERILY_SHARED", "maybe", "it takes `1` or `0`"),
        (
            "VERILY_POSTGRES",
            "podman",
            "it takes `url`, `docker` or `local`",
        ),
        (
            "VERILY_CONNECT_TIMEOUT",
            "soon",
            "it takes a number of seconds",
        ),
    ] {
        let run = run_with_env(demo, &["--list"], &[(variable, value)]);
        assert_ne!(
            run.code, 0,
            "{variable}={value} was accepted:\n{}",
            run.stdout
        );
        assert!(
            run.stderr.contains(&format!("{variable}={value}: {takes}")),
            "{variable}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);
    }
    let fine = run_with_env(demo, &["--list"], &[("VERILY_SHARED", "0")]);
    assert_eq!(fine.code, 0, "{}", fine.stderr);
}
