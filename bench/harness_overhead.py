#!/usr/bin/env python3
"""Harness overhead: N trivial groundtruth tests vs N plain #[test] functions.

Generates two crates under bench/work/ (one with N `#[groundtruth::test]`
functions run by `groundtruth::main!()`, one with N `#[test]` functions run
by libtest), builds both in the dev profile `cargo test` uses, then times
whole-process wall time of each binary, alternating, and prints medians and
the ratio. Also times `--list --format terse` and `--exact NAME` of the
groundtruth binary (nextest calls the latter once per test).

Usage: python3 bench/harness_overhead.py [--tests 5000] [--runs 11]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
TARGET = ROOT / "bench" / "target"


def write_crate(name: str, manifest_extra: str, harness: str) -> Path:
    crate = WORK / name
    (crate / "src").mkdir(parents=True, exist_ok=True)
    (crate / "tests").mkdir(parents=True, exist_ok=True)
    (crate / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n'
        f"[workspace]\n\n{manifest_extra}"
    )
    (crate / "src" / "lib.rs").write_text("")
    harness_path = crate / "tests" / "harness.rs"
    if not harness_path.exists() or harness_path.read_text() != harness:
        harness_path.write_text(harness)
    return crate


def build(crate: Path) -> str:
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    out = subprocess.run(
        ["cargo", "test", "--no-run", "--message-format=json-render-diagnostics"],
        cwd=crate, env=env, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    exes = [m["executable"] for m in map(json.loads, out.splitlines())
            if m.get("reason") == "compiler-artifact" and m.get("executable")
            and m["profile"]["test"]]
    return exes[-1]


def wall(cmd) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {result.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    n = args.tests

    gt_src = "groundtruth::main!();\n\n" + "".join(
        f'#[groundtruth::test(category = "smoke")]\nfn t{i}() {{ assert_eq!({i} % 7, {i % 7}); }}\n'
        for i in range(n))
    lt_src = "".join(f"#[test]\nfn t{i}() {{ assert_eq!({i} % 7, {i % 7}); }}\n" for i in range(n))
    gt = write_crate(
        "gt_overhead",
        f'[dev-dependencies]\ngroundtruth = {{ path = "{ROOT}", features = ["testing"] }}\n\n'
        '[[test]]\nname = "harness"\nharness = false\n',
        gt_src)
    lt = write_crate("libtest_overhead", "", lt_src)

    print(f"building {n} groundtruth tests and {n} libtest tests (dev profile)...", file=sys.stderr)
    gt_exe, lt_exe = build(gt), build(lt)

    rows = {"run": ([], []), "list": ([], []), "exact": ([], [])}
    for _ in range(args.runs):
        rows["run"][0].append(wall([gt_exe]))
        rows["run"][1].append(wall([lt_exe]))
        rows["list"][0].append(wall([gt_exe, "--list", "--format", "terse"]))
        rows["list"][1].append(wall([lt_exe, "--list", "--format", "terse"]))
        rows["exact"][0].append(wall([gt_exe, "--exact", f"harness::t{n // 2}"]))
        rows["exact"][1].append(wall([lt_exe, "--exact", f"t{n // 2}"]))

    cores = os.cpu_count()
    print(f"\nharness overhead, {n} trivial tests, median of {args.runs} runs, {cores} cores")
    print(f"{'measure':<34} {'groundtruth':>12} {'libtest':>12} {'ratio':>7}")
    labels = {"run": f"run all {n} tests (wall)", "list": "--list --format terse",
              "exact": "--exact NAME (one test)"}
    for key, (gt_times, lt_times) in rows.items():
        g, l = statistics.median(gt_times), statistics.median(lt_times)
        print(f"{labels[key]:<34} {g * 1000:>10.1f}ms {l * 1000:>10.1f}ms {g / l:>6.2f}x")


if __name__ == "__main__":
    main()
