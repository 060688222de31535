"""Time ``infra plan --stage prod`` as a user runs it: the median of N runs, each a new process.

    .venv/bin/python bench/plan_time.py                  # 7 runs of prod with the build cache as it is
    .venv/bin/python bench/plan_time.py --runs 11 --stage dev
    .venv/bin/python bench/plan_time.py --cold           # each run with an empty build cache
    .venv/bin/python bench/plan_time.py --json

Besides wall and CPU seconds (median, min, max) it prints the resource count and where the
time goes, from extra runs that time every top-level import inside the process: starting
and ending the interpreter, importing modules (pulumi, the provider SDK's services, pydantic, the
components; lazily loaded ones included, wherever they load), and running the program
(registering resources under the mocks, packaging, rendering the tree).

The timer covers the whole command (interpreter start, imports, the program under the
mocks, printing the tree), so it is the wait a person sees. One untimed run first fills
the build cache (installed requirements, compressed bundles), as any earlier plan on the
machine would have. With ``--cold`` every run gets an empty ``HARBOR_CACHE_DIR`` except
for the installed requirements, which come from PyPI and are copied in: that measures a
new stage name or a fresh CI cache, not the network. The script prints whether the
Next.js sites were built (``app/web/.open-next``), since they add two sites' functions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def infra_command() -> list[str]:
    script = Path(sys.executable).parent / "infra"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from infra.cli import main; main()"]


# Runs ``infra plan`` as the console command does (its entry point), timing each outermost import (the
# ``import`` statement and importlib both go through ``_find_and_load``).
BREAKDOWN = """
import importlib._bootstrap as bootstrap, io, contextlib, json, sys, time
wall0, cpu0 = time.perf_counter(), time.process_time()
original, depth, spent = bootstrap._find_and_load, [0], [0.0, 0.0]
def timed(name, import_):
    if depth[0]:
        return original(name, import_)
    depth[0] += 1
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return original(name, import_)
    finally:
        depth[0] -= 1
        spent[0] += time.perf_counter() - wall
        spent[1] += time.process_time() - cpu
bootstrap._find_and_load = timed
sys.argv = ["infra", "plan", "--stage", sys.argv[1]]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        from infra.launch import main  # the console entry: process settings, then the CLI
    except ImportError:
        from infra.cli import main
    main()
print(json.dumps({"in_process_wall": time.perf_counter() - wall0, "in_process_cpu": time.process_time() - cpu0,
                  "import_wall": spent[0], "import_cpu": spent[1]}))
"""


def _timed(command: list[str], environment: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of a command in a new process, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, check=True, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def run_once(stage: str, environment: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``infra plan`` in a new process."""
    wall, cpu, _output = _timed([*infra_command(), "plan", "--stage", stage], environment)
    return wall, cpu


def resource_count(stage: str, environment: dict[str, str]) -> int:
    """How many resources the stage's plan registers (the tree's closing line)."""
    _wall, _cpu, output = _timed([*infra_command(), "plan", "--stage", stage], environment)
    found = re.search(r"^(\d+) resources:", output, re.MULTILINE)
    return int(found.group(1)) if found else 0


def breakdown(stage: str, environment: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds (wall and CPU) of interpreter start-up, imports and the program run."""
    parts: dict[str, list[float]] = {}
    for _ in range(runs):
        wall, cpu, output = _timed([sys.executable, "-c", BREAKDOWN, stage], environment)
        inside = json.loads(output.strip().splitlines()[-1])
        measured = {
            "startup_wall_s": wall - inside["in_process_wall"],
            "startup_cpu_s": cpu - inside["in_process_cpu"],
            "import_wall_s": inside["import_wall"],
            "import_cpu_s": inside["import_cpu"],
            "program_wall_s": inside["in_process_wall"] - inside["import_wall"],
            "program_cpu_s": inside["in_process_cpu"] - inside["import_cpu"],
        }
        for key, value in measured.items():
            parts.setdefault(key, []).append(value)
    return {key: statistics.median(values) for key, values in parts.items()}


def measure(stage: str, runs: int, cold: bool, breakdown_runs: int = 3) -> dict[str, Any]:
    environment = dict(os.environ)
    cache = Path(environment.get("HARBOR_CACHE_DIR") or ROOT / ".build" / "harbor")
    resources = resource_count(stage, environment)  # also fills the cache before anything is timed
    walls, cpus = [], []
    with tempfile.TemporaryDirectory(prefix="harbor-plan-time-") as scratch:
        for index in range(runs):
            if cold:
                fresh = Path(scratch) / f"cache-{index}"
                if (cache / "requirements").is_dir():
                    shutil.copytree(cache / "requirements", fresh / "requirements", symlinks=True)
                environment["HARBOR_CACHE_DIR"] = str(fresh)
            wall, cpu = run_once(stage, environment)
            walls.append(wall)
            cpus.append(cpu)
    if cold:
        environment.pop("HARBOR_CACHE_DIR", None)
    parts = breakdown(stage, environment, breakdown_runs) if breakdown_runs else {}
    return {
        "stage": stage,
        "runs": runs,
        "cache": "empty (requirements kept)" if cold else "warm",
        "sites_built": (ROOT / "app" / "web" / ".open-next").is_dir(),
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "median_cpu_s": statistics.median(cpus),
        "min_cpu_s": min(cpus),
        "max_cpu_s": max(cpus),
        "resources": resources,
        "walls": walls,
        "cpus": cpus,
        "breakdown": parts,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"{platform.system()} {platform.machine()}",
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cold", action="store_true", help="an empty build cache for every run")
    parser.add_argument("--breakdown-runs", type=int, default=3,
                        help="extra runs timing imports apart (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = measure(args.stage, args.runs, args.cold, args.breakdown_runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"infra plan --stage {result['stage']} · {result['machine']} · load {result['load_average']:.2f}")
    print(f"sites built: {'yes' if result['sites_built'] else 'no (app/web/.open-next missing)'} · "
          f"build cache: {result['cache']}")
    print(f"{result['resources']} resources; {result['runs']} runs")
    print(f"wall: median {result['median_s']:.2f} s (min {result['min_s']:.2f}, max {result['max_s']:.2f})")
    print(f"CPU:  median {result['median_cpu_s']:.2f} s (min {result['min_cpu_s']:.2f}, "
          f"max {result['max_cpu_s']:.2f})")
    parts = result["breakdown"]
    if parts:
        print(f"where it goes (median of {args.breakdown_runs} more runs, wall / CPU s):")
        for label, key in (("interpreter start-up and exit", "startup"), ("imports", "import"),
                           ("program run (resources, packaging, output)", "program")):
            print(f"  {label:<44} {parts[key + '_wall_s']:5.2f} / {parts[key + '_cpu_s']:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
