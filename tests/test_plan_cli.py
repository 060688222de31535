"""`infra plan`: the real program, offline, for every stage, as a tree and as contract JSON."""

from __future__ import annotations

import json

import pytest

from components.core.removal import STATEFUL_TYPES
from infra.cli import main
from infra.harness import SECRET

# The commands here read the session's shared plans: one run of the program per stage.
pytestmark = pytest.mark.usefixtures("cli_plans")

CONTRACT_KEYS = {
    "urn", "type", "name", "parent", "custom", "inputs", "protect", "retainOnDelete", "dependencies",
}


def plan_json(capsys, stage: str) -> dict:
    assert main(["plan", "--stage", stage, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("stage", ["dev", "staging", "prod", "alice"])
def test_plan_json_follows_the_contract_for_every_stage(capsys, stage):
    plan = plan_json(capsys, stage)
    assert plan["project"] == "harbor" and plan["stage"] == stage
    assert set(plan) == {"project", "stage", "resources", "outputs"}
    urns = {r["urn"] for r in plan["resources"]}
    for resource in plan["resources"]:
        assert set(resource) == CONTRACT_KEYS
        assert resource["parent"] is None or resource["parent"] in urns
        assert isinstance(resource["inputs"], dict)
        assert set(resource["dependencies"]) <= urns
        if resource["parent"] is not None:
            assert resource["parent"] in resource["dependencies"]
    (stack,) = [r for r in plan["resources"] if r["parent"] is None]
    assert stack["type"] == "pulumi:pulumi:Stack" and stack["name"] == f"harbor-{stage}"
    assert plan["outputs"]["tableName"] == f"harbor-{stage}-Table"


def test_plan_json_lists_what_each_resource_waits_for(capsys):
    resources = plan_json(capsys, "dev")["resources"]

    def one(type_: str, name: str) -> dict:
        (found,) = [r for r in resources if r["type"] == type_ and r["name"] == name]
        return found

    function = one("aws:lambda/function:Function", "PersonaQueueSubscriber-function")
    role = one("aws:iam/role:Role", "PersonaQueueSubscriber-role")
    log_group = one("aws:cloudwatch/logGroup:LogGroup", "PersonaQueueSubscriber-log_group")
    component = one("harbor:aws:Function", "PersonaQueueSubscriber")
    # The role's ARN feeds the function (an input), the log group is an explicit depends_on,
    # the component is its parent; each is ordered before the function, nothing else unasked.
    assert {role["urn"], log_group["urn"], component["urn"]} <= set(function["dependencies"])
    assert function["dependencies"] == sorted(function["dependencies"])
    assert function["urn"] not in role["dependencies"]
    mapping = one("aws:lambda/eventSourceMapping:EventSourceMapping", "PersonaQueue-event_source_mapping")
    assert function["urn"] in mapping["dependencies"]


def test_prod_plan_protects_and_retains_every_stateful_resource(capsys):
    stateful = [r for r in plan_json(capsys, "prod")["resources"] if r["type"] in STATEFUL_TYPES]
    assert stateful and all(r["protect"] and r["retainOnDelete"] for r in stateful)


def test_dev_plan_protects_nothing(capsys):
    resources = plan_json(capsys, "dev")["resources"]
    assert not any(r["protect"] or r["retainOnDelete"] for r in resources)


def test_tree_shows_components_children_markers_and_counts(capsys):
    assert main(["plan", "--stage", "prod"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "harbor · stage prod"
    assert "├─ harbor:aws:Dynamo  Table" in out or "└─ harbor:aws:Dynamo  Table" in out
    assert "aws:dynamodb/table:Table  Table-table  [protected, retained]" in out
    assert " resources: " in out and "protected" in out
    assert "tableName: harbor-prod-Table" in out


def test_secret_inputs_are_masked_in_the_plan():
    from pulumi.runtime import rpc

    from infra.harness import _plain

    masked = _plain({"password": rpc.wrap_rpc_secret("hunter2"), "plain": "x"})
    assert masked == {"password": SECRET, "plain": "x"}


def test_unknown_stage_is_planned_as_a_personal_stage(capsys):
    plan = plan_json(capsys, "bob")
    assert not any(r["protect"] for r in plan["resources"])


def test_a_missing_program_folder_is_a_clear_error(capsys):
    with pytest.raises(SystemExit, match=r"no Pulumi\.yaml"):
        main(["plan", "--stage", "dev", "--program", "/nonexistent"])


def test_a_clone_without_node_modules_plans_and_says_the_sites_were_skipped(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy(root / name, tmp_path / name)
    shutil.copytree(
        root / "app", tmp_path / "app",
        ignore=shutil.ignore_patterns("node_modules", ".open-next", ".next", "__pycache__"),
    )
    env = {**os.environ, "HARBOR_CACHE_DIR": str(root / ".build" / "harbor")}
    infra = Path(sys.executable).parent / "infra"
    result = subprocess.run(
        [str(infra), "plan", "--stage", "dev", "--program", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING: Nextjs 'Web' skipped: app/web has no node_modules" in result.stderr
    assert "run `npm ci` in app/web" in result.stderr


@pytest.mark.parametrize(("command", "collector_on"), [("plan", False), ("dev", True)])
def test_the_infra_command_runs_short_commands_without_the_cycle_collector(monkeypatch, command, collector_on):
    # The console script is what users run; a plan spends a quarter of its CPU time in the
    # collector otherwise (bench/plan_time.py), while infra dev serves for hours and needs it.
    import gc
    import sys
    import tomllib
    from pathlib import Path

    from infra import cli, launch

    scripts = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["infra"] == "infra.launch:main"
    seen: list[bool] = []
    cli.build_parser()  # registers every subcommand, so the one below replaces the real run
    help_text, (configure, _run) = cli.SUBCOMMANDS[command]
    def run(args: object) -> int:
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setitem(cli.SUBCOMMANDS, command, (help_text, (configure, run)))
    monkeypatch.setattr(sys, "argv", ["infra", command, "--stage", "dev"])
    try:
        assert launch.main() == 0
    finally:
        gc.enable()
    assert seen == [collector_on]
