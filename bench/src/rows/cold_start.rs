//! Row 3: cold start to the first persistence test. Whole-process wall time
//! of the verily harness running one `#[persists]` test with its own
//! PostgreSQL (local cluster from an empty cache, from the cached pristine
//! data dir; a Docker container), with the harness's own `ready in` figure.
//! The peer is what a `#[sqlx::test]` user does by hand: initdb and start a
//! cluster (or `docker run` one), wait until it is ready, run the same one
//! test, stop it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cluster::{PG_BIN, scratch_dir};
use crate::leftovers::{self, containers, remove_containers};
use crate::measure::{self, Outcome, Watch, measured, median};
use crate::table::{Line, secs, times};
use crate::{Bench, BenchError};

const ROW: u8 = 3;
const IMAGE: &str = "postgres:15";
/// Label of the peer's containers, for the leftover check.
const PEER_LABEL: &str = "verily-bench.peer";

/// A local cluster started by hand, as a sqlx::test user would for CI:
/// initdb on tmpfs, the same settings as verily's, one test, stop.
const PEER_LOCAL: &str = r#"set -e
dir="$1"; sqlx="$2"; bin="$3"
trap 'runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true' EXIT
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" start >/dev/null
DATABASE_URL="postgres://postgres@localhost/postgres?host=$dir" "$sqlx" --exact t0
"#;

/// The same with Docker: the container verily would start, by hand.
const PEER_DOCKER: &str = r#"set -e
sqlx="$1"; bin="$2"; image="$3"; label="$4"
id=$(docker run -d --label "$label" -e POSTGRES_PASSWORD=bench -p 127.0.0.1::5432 "$image")
trap 'docker rm -f -v "$id" >/dev/null 2>&1' EXIT
port=$(docker port "$id" 5432/tcp | head -n 1 | sed 's/.*://')
until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do sleep 0.05; done
DATABASE_URL="postgres://postgres:bench@127.0.0.1:$port/postgres" "$sqlx" --exact t0
"#;

pub fn run(bench: &mut Bench) -> Result<(), BenchError> {
    let runs = bench.args.runs(5);
    let (_, verily_exe, sqlx_exe) = bench.persistence_subjects()?;
    local(bench, runs, &verily_exe, &sqlx_exe)?;
    docker(bench, runs, &verily_exe, &sqlx_exe)
}

/// verily running `harness::t0` alone with its own PostgreSQL.
fn verily_one(
    bench: &mut Bench,
    exe: &Path,
    env: &[(&str, &str)],
    watch: &Watch,
) -> Result<(Outcome, f64), BenchError> {
    let before = leftovers::snapshot();
    let mut command = Command::new(exe);
    Bench::clean_env(&mut command)
        .envs(env.iter().copied())
        .args(["--exact", "harness::t0", "--format", "json"]);
    let outcome = measure::run(&mut command, watch)?;
    if env.contains(&("VERILY_POSTGRES", "docker")) {
        bench.leftovers.check_docker("verily (docker)", outcome.pid);
    } else {
        bench.leftovers.check_local(
            "verily (local cluster)",
            &before,
            &[],
            Duration::from_secs(2),
        );
    }
    super::verily_passed(&outcome, 1)?;
    let (_, ready, _) = super::harness_timings(&outcome.stderr)?;
    Ok((outcome, ready))
}

fn local(
    bench: &mut Bench,
    runs: usize,
    verily_exe: &Path,
    sqlx_exe: &Path,
) -> Result<(), BenchError> {
    // Caches on the temp dir's file system, as ~/.cache would be on disk.
    let mut caches: Vec<PathBuf> = Vec::new();
    let new_cache = |caches: &mut Vec<PathBuf>| -> Result<PathBuf, BenchError> {
        let cache = scratch_dir(&std::env::temp_dir(), "vy-bench-cache")?;
        caches.push(cache.clone());
        Ok(cache)
    };
    let result = (|| {
        let mut empty = Vec::new();
        let mut warm = Vec::new();
        let mut peer = Vec::new();
        let watch = Watch::default();
        let mut disturbed = std::mem::take(&mut bench.disturbed);
        for round in 0..runs {
            // Empty cache first (that run fills it), then warm from the
            // cache it filled, then the peer. A repeated empty-cache run
            // gets an empty cache of its own.
            let mut filled = None;
            empty.push(measured("cold start, empty cache", &mut disturbed, || {
                let cache = new_cache(&mut caches)?;
                let cache_str = cache.to_string_lossy().into_owned();
                let env = [
                    ("VERILY_POSTGRES", "local"),
                    ("VERILY_CACHE_DIR", cache_str.as_str()),
                ];
                filled = Some(cache_str.clone());
                verily_one(bench, verily_exe, &env, &watch)
                    .map(|(o, ready)| ((o.wall, ready), o.foreign))
            })?);
            let cache_str = filled.expect("the empty-cache run made a cache");
            let env = [
                ("VERILY_POSTGRES", "local"),
                ("VERILY_CACHE_DIR", cache_str.as_str()),
            ];
            warm.push(measured("cold start, warm cache", &mut disturbed, || {
                verily_one(bench, verily_exe, &env, &watch)
                    .map(|(o, ready)| ((o.wall, ready), o.foreign))
            })?);
            peer.push(measured(
                "cold start, initdb by hand",
                &mut disturbed,
                || {
                    let before = leftovers::snapshot();
                    let dir = scratch_dir(Path::new("/dev/shm"), "vy-bench-peer")?;
                    let mut command = Command::new("sh");
                    Bench::clean_env(&mut command)
                        .args(["-c", PEER_LOCAL, "sh"])
                        .arg(&dir)
                        .arg(sqlx_exe)
                        .arg(PG_BIN);
                    let outcome = measure::run(&mut command, &watch);
                    let _ = fs::remove_dir_all(&dir);
                    bench.leftovers.check_local(
                        "the peer's initdb script",
                        &before,
                        &[],
                        Duration::from_secs(2),
                    );
                    let outcome = outcome?;
                    super::libtest_passed(&outcome, 1)?;
                    Ok((outcome.wall, outcome.foreign))
                },
            )?);
            eprintln!(
                "  run {}/{runs}: empty cache {}, warm cache {}, initdb by hand {}",
                round + 1,
                secs(empty[round].0),
                secs(warm[round].0),
                secs(peer[round])
            );
        }
        bench.disturbed = disturbed;
        let walls = |runs: &[(f64, f64)]| runs.iter().map(|r| r.0).collect::<Vec<f64>>();
        let readies = |runs: &[(f64, f64)]| runs.iter().map(|r| r.1).collect::<Vec<f64>>();
        let (e, w, p) = (median(&walls(&empty)), median(&walls(&warm)), median(&peer));
        let report = &mut bench.report;
        report.lines.push(
            Line::new(
                ROW,
                "local cluster, empty cache: one persistence test (wall)",
            )
            .verily(format!(
                "{} (ready in {})",
                secs(e),
                secs(median(&readies(&empty)))
            ))
            .peer(format!("initdb + pg_ctl + sqlx {}", secs(p)))
            .ratio(format!("peer/verily {}", times(p / e))),
        );
        report.lines.push(
            Line::new(
                ROW,
                "local cluster, cached data dir: one persistence test (wall)",
            )
            .verily(secs(w))
            .peer(format!("initdb + pg_ctl + sqlx {}", secs(p)))
            .ratio(format!("peer/verily {}", times(p / w)))
            .target("verily wall < 0.5 s", w < 0.5),
        );
        let ready = median(&readies(&warm));
        report.lines.push(
            Line::new(ROW, "  of which PostgreSQL ready (stderr `ready in`)")
                .verily(secs(ready))
                .target("verily ready < 0.5 s", ready < 0.5),
        );
        report.raw(ROW, "local, empty cache, wall (s)", &walls(&empty), |v| {
            format!("{v:.3}")
        });
        report.raw(
            ROW,
            "local, empty cache, ready in (s)",
            &readies(&empty),
            |v| format!("{v:.2}"),
        );
        report.raw(
            ROW,
            "local, cached data dir, wall (s)",
            &walls(&warm),
            |v| format!("{v:.3}"),
        );
        report.raw(
            ROW,
            "local, cached data dir, ready in (s)",
            &readies(&warm),
            |v| format!("{v:.2}"),
        );
        report.raw(
            ROW,
            "peer: initdb + pg_ctl start + #[sqlx::test] t0 + stop (s)",
            &peer,
            |v| format!("{v:.3}"),
        );
        Ok(())
    })();
    for cache in caches {
        let _ = fs::remove_dir_all(cache);
    }
    result
}

/// Whether a Docker engine answers; builds the image from this machine's
/// PostgreSQL (.ci/postgres-image.sh) when it is missing.
fn docker_ready(bench: &Bench) -> Result<bool, BenchError> {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !engine.is_ok_and(|out| out.status.success()) {
        return Ok(false);
    }
    let present = |_: ()| {
        Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !present(()) {
        eprintln!("building the {IMAGE} image with .ci/postgres-image.sh...");
        let script = bench.workspace.repo.join(".ci/postgres-image.sh");
        crate::cluster::checked(Command::new("bash").arg(&script).arg(IMAGE))?;
        if !present(()) {
            return Err(BenchError::new(format!(
                "{} did not build {IMAGE}",
                script.display()
            )));
        }
    }
    Ok(true)
}

fn docker(
    bench: &mut Bench,
    runs: usize,
    verily_exe: &Path,
    sqlx_exe: &Path,
) -> Result<(), BenchError> {
    if !docker_ready(bench)? {
        bench.report.lines.push(
            Line::new(ROW, "docker: one persistence test (wall)")
                .verily("skipped: no engine")
                .peer("skipped: no engine"),
        );
        return Ok(());
    }
    // Docker's processes run under dockerd: not ours to account.
    let watch = Watch {
        account: false,
        ..Watch::default()
    };
    let env = [("VERILY_POSTGRES", "docker")];
    // A container start costs seconds; three runs say enough.
    let runs = runs.min(3);
    let mut verily = Vec::new();
    let mut peer = Vec::new();
    let mut disturbed = std::mem::take(&mut bench.disturbed);
    let peer_run = |bench: &mut Bench| -> Result<(f64, Option<f64>), BenchError> {
        let label = format!("{PEER_LABEL}={}", std::process::id());
        let mut command = Command::new("sh");
        Bench::clean_env(&mut command)
            .args(["-c", PEER_DOCKER, "sh"])
            .arg(sqlx_exe)
            .arg(PG_BIN)
            .arg(IMAGE)
            .arg(&label);
        let outcome = measure::run(&mut command, &watch)?;
        let left = containers(&format!("label={label}"));
        if !left.is_empty() {
            bench
                .leftovers
                .found
                .push(format!("the peer's docker script left containers {left:?}"));
            remove_containers(&left);
        }
        super::libtest_passed(&outcome, 1)?;
        Ok((outcome.wall, None))
    };
    // The first container start after a while pays for cold page caches;
    // reported apart from the next ones.
    let (first, _) = verily_one(bench, verily_exe, &env, &watch)?;
    let first_peer = peer_run(bench)?.0;
    for round in 0..runs {
        verily.push(measured("cold start, docker", &mut disturbed, || {
            verily_one(bench, verily_exe, &env, &watch).map(|(o, ready)| ((o.wall, ready), None))
        })?);
        peer.push(measured(
            "cold start, docker by hand",
            &mut disturbed,
            || peer_run(bench),
        )?);
        eprintln!(
            "  docker run {}/{runs}: verily {}, by hand {}",
            round + 1,
            secs(verily[round].0),
            secs(peer[round])
        );
    }
    bench.disturbed = disturbed;
    let walls: Vec<f64> = verily.iter().map(|r| r.0).collect();
    let readies: Vec<f64> = verily.iter().map(|r| r.1).collect();
    let (g, p) = (median(&walls), median(&peer));
    let report = &mut bench.report;
    report.lines.push(
        Line::new(ROW, "docker (postgres:15): one persistence test (wall)")
            .verily(format!("{} (ready in {})", secs(g), secs(median(&readies))))
            .peer(format!("docker run + sqlx {}", secs(p)))
            .ratio(format!("peer/verily {}", times(p / g))),
    );
    report.raw(
        ROW,
        "docker, first run (not in the median): verily, by hand (s)",
        &[first.wall, first_peer],
        |v| format!("{v:.3}"),
    );
    report.raw(ROW, "docker, verily wall (s)", &walls, |v| {
        format!("{v:.3}")
    });
    report.raw(ROW, "docker, verily ready in (s)", &readies, |v| {
        format!("{v:.2}")
    });
    report.raw(
        ROW,
        "docker, peer: docker run + pg_isready + #[sqlx::test] t0 + rm (s)",
        &peer,
        |v| format!("{v:.3}"),
    );
    Ok(())
}
