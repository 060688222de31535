"""Time the test suite: its wall time, the slowest tests, and the time per test file.

    .venv/bin/python bench/suite_time.py                       # the whole `pytest`, once
    .venv/bin/python bench/suite_time.py --runs 3              # median of three runs
    .venv/bin/python bench/suite_time.py -- tests/test_api.py  # arguments after -- go to pytest

Each run is a new ``pytest`` process from the project folder; the timer covers it whole
(collection, fixtures, teardown). pytest's own ``--durations`` figures give the slowest
tests and the sum per file, so a slow group (servers, real builds) shows against its
budget. The exit code is pytest's, so a failing suite is not timed as a good one.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=10, help="how many of the slowest tests to list")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    runs = [run_once(args.pytest_args) for _ in range(max(1, args.runs))]
    last = runs[-1]
    per_file: dict[str, float] = collections.defaultdict(float)
    for test, seconds in last["per_test"].items():
        per_file[test.split("::")[0]] += seconds
    result = {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"{platform.system()} {platform.machine()}",
        "load_average": os.getloadavg()[0],
        "walls": [r["wall_s"] for r in runs],
        "median_s": statistics.median(r["wall_s"] for r in runs),
        "summary": last["summary"],
        "failed": last["failed"],
        "returncode": last["returncode"],
        "slowest": sorted(last["per_test"].items(), key=lambda item: -item[1])[: args.top],
        "per_file": sorted(per_file.items(), key=lambda item: -item[1]),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"pytest {' '.join(args.pytest_args)} · {result['machine']} · load {result['load_average']:.2f}")
        print(f"suite: median {result['median_s']:.1f} s over {len(runs)} run(s) · {result['summary'] or last['tail']}")
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
