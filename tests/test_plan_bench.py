"""bench/plan_bench.py: its synthetic application still plans with today's components."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from infra.harness import ROOT, run_program

spec = importlib.util.spec_from_file_location("plan_bench", ROOT / "bench" / "plan_bench.py")
assert spec is not None and spec.loader is not None
plan_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plan_bench)


def test_the_synthetic_application_builds_routes_tables_and_queues(tmp_path: Path) -> None:
    counts = plan_bench.write_program(tmp_path, 0.02)
    assert counts == {"routes": 4, "tables": 1, "queues": 1}
    plan = run_program(tmp_path, "bench")
    assert len(plan.of_type("aws:dynamodb/table:Table")) == 1
    assert len(plan.of_type("aws:apigatewayv2/route:Route")) == 4
    # Each queue gets its dead-letter queue; each route and worker its own function.
    assert len(plan.of_type("aws:sqs/queue:Queue")) == 2
    assert len(plan.of_type("aws:lambda/function:Function")) == 5
