"""Time ``infra plan --stage prod`` as a user runs it: the median of N runs, each a new process.

    .venv/bin/python bench/plan_time.py                  # 7 runs of prod with the build cache as it is
    .venv/bin/python bench/plan_time.py --runs 11 --stage dev
    .venv/bin/python bench/plan_time.py --cold           # each run with an empty build cache
    .venv/bin/python bench/plan_time.py --json

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


def run_once(stage: str, environment: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``infra plan`` in a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*infra_command(), "plan", "--stage", stage], cwd=ROOT, env=environment,
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(stage: str, runs: int, cold: bool) -> dict[str, Any]:
    environment = dict(os.environ)
    cache = Path(environment.get("HARBOR_CACHE_DIR") or ROOT / ".build" / "harbor")
    run_once(stage, environment)  # fills the cache (and pip's) before anything is timed
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
    return {
        "stage": stage,
        "runs": runs,
        "cache": "empty (requirements kept)" if cold else "warm",
        "sites_built": (ROOT / "app" / "web" / ".open-next").is_dir(),
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "median_cpu_s": statistics.median(cpus),
        "walls": walls,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"{platform.system()} {platform.machine()}",
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cold", action="store_true", help="an empty build cache for every run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = measure(args.stage, args.runs, args.cold)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"infra plan --stage {result['stage']} · {result['machine']} · load {result['load_average']:.2f}")
    print(f"sites built: {'yes' if result['sites_built'] else 'no (app/web/.open-next missing)'} · "
          f"build cache: {result['cache']}")
    print(f"median {result['median_s']:.2f} s over {result['runs']} runs "
          f"(min {result['min_s']:.2f}, max {result['max_s']:.2f}; median CPU {result['median_cpu_s']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
