"""Time ``infra plan`` for the real prod stage and for a synthetic large application.

    .venv/bin/python bench/plan_bench.py                 # prod + synthetic at 1/4, 1/2 and full size
    .venv/bin/python bench/plan_bench.py --sizes 1 2     # full size and twice that
    .venv/bin/python bench/plan_bench.py --json

The synthetic application is a generated Pulumi program (a temp folder with Pulumi.yaml
and __main__.py) that, at size 1, has an HTTP API with 200 routes (one Lambda function
each, linked to a table), 50 DynamoDB tables and 20 queues, each with a worker and a
dead-letter queue. Each measurement runs in a fresh Python process, so its peak memory
(``ru_maxrss``) is that plan's alone; the timer covers the program run under the mocks,
not interpreter start-up or imports. Growth is linear when CPU seconds per resource stay flat
across sizes: the script prints that ratio and fails (exit 1) above ``--max-ratio``.

"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FULL = {"routes": 200, "tables": 50, "queues": 20}

HANDLER = '''\
"""A do-nothing handler for the benchmark's functions."""


def main(event, context):
    return {"statusCode": 200, "body": "ok"}
'''

PROGRAM = '''\
"""Synthetic application for bench/plan_bench.py: {routes} routes, {tables} tables, {queues} queues."""

from components import ApiGatewayV2, Dynamo, Queue, start_app

app = start_app()
tables = [
    Dynamo(
        f"Table{{i}}",
        fields={{"pk": "string", "sk": "string", "gsi1pk": "string"}},
        primary_index={{"hash_key": "pk", "range_key": "sk"}},
        global_indexes={{"gsi1": {{"hash_key": "gsi1pk"}}}},
    )
    for i in range({tables})
]
for i in range({queues}):
    Queue(f"Queue{{i}}").subscribe("handlers/worker.main", link=[tables[i % len(tables)]])
api = ApiGatewayV2("Api")
for i in range({routes}):
    api.route(f"GET /items{{i}}/{{{{id}}}}", {{"handler": "handlers/api.main", "link": [tables[i % len(tables)]]}})
'''


def write_program(folder: Path, scale: float) -> dict[str, int]:
    """A synthetic program at ``scale`` times the full size."""
    counts = {key: max(1, round(value * scale)) for key, value in FULL.items()}
    (folder / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (folder / "Pulumi.bench.yaml").write_text(
        "config:\n  harbor:removal: remove\n  harbor:protect: false\n  harbor:logRetentionDays: 7\n"
    )
    (folder / "handlers").mkdir(exist_ok=True)
    (folder / "handlers" / "api.py").write_text(HANDLER)
    (folder / "handlers" / "worker.py").write_text(HANDLER)
    (folder / "__main__.py").write_text(PROGRAM.format(**counts))
    return counts


WARM_MODULES = ("ec2", "dynamodb", "s3", "lambda_", "apigatewayv2", "sqs", "sns", "iam", "cloudwatch", "rds",
                "ssm", "kms", "acm", "route53", "cloudfront", "secretsmanager")


def measure_once(program: Path, stage: str) -> dict[str, Any]:
    """Run one plan in this process and report time, resources and peak memory.

    pulumi_aws loads each service module on first use (ec2 alone takes about 2 s), so those
    imports are timed apart: they are paid once per process whatever the program's size.
    """
    import gc
    import importlib

    from infra.harness import run_program

    start = time.perf_counter()
    for module in WARM_MODULES:
        # The module object is a lazy proxy: reading any attribute loads it for real.
        hasattr(importlib.import_module(f"pulumi_aws.{module}"), "_loaded_by_bench")
    imports = time.perf_counter() - start
    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    plan = run_program(program, stage)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "import_seconds": imports,
        "resources": len(plan.resources),
        "custom": sum(r.custom for r in plan.resources),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(program: Path, stage: str, collector: str = "off") -> dict[str, Any]:
    """``measure_once`` in a fresh interpreter, so memory and caches start clean."""
    output = subprocess.run(
        [sys.executable, __file__, "--one", str(program), stage, "--collector", collector],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def machine() -> str:
    import os

    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0],
                        help="synthetic sizes as multiples of 200 routes / 50 tables / 20 queues")
    parser.add_argument("--max-ratio", type=float, default=1.6,
                        help="fail when seconds per resource at the largest size exceed the smallest's by this")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--collector", choices=["off", "on"], default="off",
                        help="the cyclic garbage collector during each plan: off, as the infra command runs")
    parser.add_argument("--one", nargs=2, metavar=("PROGRAM", "STAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        if args.collector == "off":
            import gc

            gc.disable()  # as infra.launch does for every short command
        else:
            from infra import harness

            harness.PAUSE_COLLECTOR = False  # the old way: collector on during the run too
        print(json.dumps(measure_once(Path(args.one[0]), args.one[1])))
        return 0

    rows: list[dict[str, Any]] = [{"name": "prod (real program)", **measure(ROOT, "prod", args.collector)}]
    with tempfile.TemporaryDirectory(prefix="harbor-bench-") as tmp:
        for size in sorted(args.sizes):
            folder = Path(tmp) / f"size-{size:g}"
            folder.mkdir()
            counts = write_program(folder, size)
            label = (f"synthetic x{size:g}: {counts['routes']} routes, {counts['tables']} tables, "
                     f"{counts['queues']} queues")
            rows.append({"name": label, "size": size, **counts, **measure(folder, "bench", args.collector)})
    for row in rows:
        row["per_second"] = row["resources"] / row["seconds"]
        row["ms_per_resource"] = 1000 * row["seconds"] / row["resources"]
        row["cpu_ms_per_resource"] = 1000 * row["cpu_seconds"] / row["resources"]
    synthetic = [r for r in rows if "size" in r]
    # CPU time, not wall time: on a shared machine the wall clock also measures the neighbours.
    ratio = synthetic[-1]["cpu_ms_per_resource"] / synthetic[0]["cpu_ms_per_resource"] if len(synthetic) > 1 else 1.0
    linear = ratio <= args.max_ratio

    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows, "ratio": ratio, "linear": linear}, indent=2))
    else:
        print(f"infra plan benchmark · {machine()}")
        print(f"{'plan':58} {'resources':>9} {'wall s':>7} {'cpu s':>6} {'res/s':>6} {'cpu ms/res':>10} "
              f"{'peak MB':>7} {'imports s':>9}")
        for row in rows:
            print(f"{row['name']:58} {row['resources']:9d} {row['seconds']:7.2f} {row['cpu_seconds']:6.2f} "
                  f"{row['per_second']:6.0f} {row['cpu_ms_per_resource']:10.2f} {row['peak_mb']:7.0f} "
                  f"{row['import_seconds']:9.2f}")
        print(f"\nCPU seconds per resource, largest vs smallest synthetic size: x{ratio:.2f} "
              f"({'linear' if linear else 'NOT linear'}; limit x{args.max_ratio:g})")
    return 0 if linear else 1


if __name__ == "__main__":
    sys.exit(main())
