"""Time the test suite: its wall time, the slowest tests, and the time per test file.

    .venv/bin/python bench/suite_time.py                       # the whole `pytest`, once
    .venv/bin/python bench/suite_time.py --runs 3              # median of three runs
    .venv/bin/python bench/suite_time.py -- tests/test_api.py  # arguments after -- go to pytest

Each run is a new ``pytest`` process from the project folder; the timer covers it whole
(collection, fixtures, teardown). pytest's own ``--durations`` figures give the slowest
tests and the sum per file. Two figures are printed apart: the tests that start servers
(``--servers``, by default tests/test_dev.py) or run a real Next.js build (any test
longer than ``--build-seconds``), each group with its own budget, and the planning
tests, which are the wall time less those two groups. The exit code is pytest's, so a
failing suite is not timed as a good one.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DURATION = re.compile(r"^(?P<seconds>\d+\.\d+)s (?P<phase>call|setup|teardown)\s+(?P<test>\S+)")
SUMMARY = re.compile(r"^=*\s*(?P<text>\d+ (passed|failed).*?)\s*=*$")


def run_once(pytest_args: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "pytest", "-rfE", "--durations=0", "--durations-min=0.05", *pytest_args]
    start = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    per_test: dict[str, float] = collections.defaultdict(float)
    summary = ""
    failed = [line.split()[1] for line in finished.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    for line in finished.stdout.splitlines():
        match = DURATION.match(line.strip())
        if match:
            per_test[match["test"]] += float(match["seconds"])
        summary_match = SUMMARY.match(line.strip())
        if summary_match:
            summary = summary_match["text"]
    return {"wall_s": wall, "returncode": finished.returncode, "summary": summary,
            "per_test": dict(per_test), "failed": failed, "tail": finished.stdout.splitlines()[-5:]}


def tests_existing_at(commit: str) -> list[str]:
    """``file::function`` of each test function that exists both at ``commit`` and now."""
    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=ROOT, check=True, capture_output=True, text=True).stdout

    then = set()
    for path in git("ls-tree", "--name-only", commit, "tests/").split():
        if re.fullmatch(r"tests/test_\w+\.py", path):
            for name in re.findall(r"^(?:async )?def (test_\w+)", git("show", f"{commit}:{path}"), re.MULTILINE):
                then.add(f"{path}::{name}")
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts="],
                               cwd=ROOT, capture_output=True, text=True).stdout
    now = {line.split("[")[0] for line in collected.splitlines() if "::" in line}
    kept = sorted(then & now)
    print(f"{len(kept)} of the {len(then)} test functions at {commit} still exist", file=sys.stderr)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=10, help="how many of the slowest tests to list")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--servers", nargs="*", default=["tests/test_dev.py"],
                        help="test files (or node ids) that start servers")
    parser.add_argument("--build-seconds", type=float, default=10.0,
                        help="a test longer than this ran a real build")
    parser.add_argument("--tests-of", metavar="COMMIT",
                        help="run only the test functions that already existed at COMMIT (every current "
                             "parametrisation of each), to compare with that commit's suite time")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    if args.tests_of:
        args.pytest_args = [*tests_existing_at(args.tests_of), *args.pytest_args]
    runs = [run_once(args.pytest_args) for _ in range(max(1, args.runs))]
    last = runs[-1]
    per_file: dict[str, float] = collections.defaultdict(float)
    for test, seconds in last["per_test"].items():
        per_file[test.split("::")[0]] += seconds
    servers = {t: s for t, s in last["per_test"].items() if any(t.startswith(p) for p in args.servers)}
    builds = {t: s for t, s in last["per_test"].items() if t not in servers and s > args.build_seconds}
    groups = {"servers": sum(servers.values()), "builds": sum(builds.values())}
    planning = last["wall_s"] - groups["servers"] - groups["builds"]
    result = {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"{platform.system()} {platform.machine()}",
        "load_average": os.getloadavg()[0],
        "walls": [r["wall_s"] for r in runs],
        "median_s": statistics.median(r["wall_s"] for r in runs),
        "summary": last["summary"],
        "planning_s": planning,
        "servers_s": groups["servers"],
        "builds_s": groups["builds"],
        "builds": sorted(builds.items(), key=lambda item: -item[1]),
        "failed": last["failed"],
        "returncode": last["returncode"],
        "slowest": sorted(last["per_test"].items(), key=lambda item: -item[1])[: args.top],
        "per_file": sorted(per_file.items(), key=lambda item: -item[1]),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        shown = ' '.join(args.pytest_args) if len(args.pytest_args) <= 5 else f"({len(args.pytest_args)} arguments)"
        print(f"pytest {shown} · {result['machine']} · load {result['load_average']:.2f}")
        print(f"suite: median {result['median_s']:.1f} s over {len(runs)} run(s) · {result['summary'] or last['tail']}")
        print(f"planning tests: {planning:.1f} s (the last run's wall time less the two groups below)")
        print(f"tests starting servers: {groups['servers']:.1f} s ({', '.join(args.servers)})")
        print(f"tests running real builds (over {args.build_seconds:g} s each): {groups['builds']:.1f} s")
        for test, seconds in result["builds"]:
            print(f"  {seconds:7.2f} s  {test}")
        for test in result["failed"]:
            print(f"  failed: {test}")
        print("\nslowest tests (setup + call + teardown):")
        for test, seconds in result["slowest"]:
            print(f"  {seconds:7.2f} s  {test}")
        print("\nper file:")
        for name, seconds in result["per_file"]:
            print(f"  {seconds:7.2f} s  {name}")
    return last["returncode"]


if __name__ == "__main__":
    sys.exit(main())
