"""The plans tests share (tests/shared_plans.py): read-only, and never stale.

Each test plans a small program in its own folder, so what it changes (a stage file, a
variable, a patched module) can only be seen if the shared plan is planned again.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import pytest
from shared_plans import PlanCache

import components
from infra.cli import main

TABLE = "aws:dynamodb/table:Table"
PROGRAM = """\
import os

import pulumi

import components
from components import Dynamo, start_app

start_app()
Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
pulumi.export("variable", os.environ.get("SHARED_PLANS_PROBE", "unset"))
pulumi.export("attribute", getattr(components, "SHARED_PLANS_PROBE", "unset"))
"""


def stage_file(protect: bool) -> str:
    return f"config:\n  harbor:removal: {'retain' if protect else 'remove'}\n  harbor:protect: {str(protect).lower()}\n"


@pytest.fixture
def program(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    (tmp_path / "Pulumi.dev.yaml").write_text(stage_file(protect=False))
    return tmp_path


def test_a_stage_is_planned_once_and_every_test_gets_that_same_plan(plan_stage, plan_cache: PlanCache, program):
    runs = plan_cache.runs
    first = plan_stage("dev", program=program)
    assert plan_stage("dev", program=program) is first
    assert plan_cache.runs == runs + 1


def test_a_shared_plan_refuses_every_change_and_copies_are_free_to_change(plan_stage, program):
    plan = plan_stage("dev", program=program)
    table = plan.one(TABLE)
    changes = [
        lambda: plan.resources.append(table),
        lambda: plan.resources.sort(key=str),
        lambda: plan.outputs.update(variable="changed"),
        lambda: table.inputs.__setitem__("billingMode", "PROVISIONED"),
        lambda: table.inputs["attributes"].append({"name": "sk", "type": "S"}),
        lambda: table.inputs["attributes"][0].pop("name"),
        lambda: setattr(table, "protect", True),
        lambda: table.dependencies.clear(),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert plan.outputs["variable"] == "unset" and not table.protect

    own = copy.deepcopy(plan)
    own.one(TABLE).inputs["billingMode"] = "PROVISIONED"
    own.resources.clear()
    assert plan.one(TABLE).inputs["billingMode"] == "PAY_PER_REQUEST"
    outputs = json.loads(json.dumps(plan.to_json()))["outputs"]
    assert (outputs["variable"], outputs["attribute"]) == ("unset", "unset")


def test_a_shared_plan_equals_a_fresh_run_of_the_same_stage(plan_stage, program):
    shared = plan_stage("dev", program=program)
    fresh = plan_stage("dev", program=program, fresh=True)
    assert fresh is not shared
    assert fresh.resources == shared.resources and shared.resources == fresh.resources
    assert fresh.to_json() == shared.to_json()


def test_a_changed_stage_file_is_planned_again(plan_stage, program):
    assert not plan_stage("dev", program=program).one(TABLE).protect
    (program / "Pulumi.dev.yaml").write_text(stage_file(protect=True))
    assert plan_stage("dev", program=program).one(TABLE).protect


def test_a_changed_environment_variable_is_planned_again(plan_stage, program, monkeypatch):
    assert plan_stage("dev", program=program).outputs["variable"] == "unset"
    monkeypatch.setenv("SHARED_PLANS_PROBE", "set")
    assert plan_stage("dev", program=program).outputs["variable"] == "set"


def test_a_test_that_patched_what_the_program_reads_gets_its_own_run(plan_stage, plan_cache, program, monkeypatch):
    assert plan_stage("dev", program=program).outputs["attribute"] == "unset"
    monkeypatch.setattr(components, "SHARED_PLANS_PROBE", "patched", raising=False)
    runs = plan_cache.runs
    assert plan_stage("dev", program=program).outputs["attribute"] == "patched"
    assert plan_cache.runs == runs  # planned for this test only, not shared


def test_other_settings_are_never_served_from_the_shared_plans(plan_stage, program):
    shared = plan_stage("dev", program=program)
    overridden = plan_stage("dev", config={"harbor:removal": "retain", "harbor:protect": "true"}, program=program)
    assert overridden.one(TABLE).protect and not shared.one(TABLE).protect


def plan_command(program: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--program", str(program), "--stage", "dev", "--json"]) == 0
    return json.loads(out.getvalue())


def test_the_plan_command_reads_the_shared_plan_and_sees_a_changed_stage_file(cli_plans, plan_stage, program):
    runs = cli_plans.runs
    shared = plan_stage("dev", program=program)
    assert plan_command(program) == json.loads(json.dumps(shared.to_json()))
    assert cli_plans.runs == runs + 1
    (program / "Pulumi.dev.yaml").write_text(stage_file(protect=True))
    (table,) = [r for r in plan_command(program)["resources"] if r["type"] == TABLE]
    assert table["protect"] is True
