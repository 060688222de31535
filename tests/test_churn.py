"""No churn: the same commit planned anywhere registers the same inputs.

Pulumi diffs what a program registers against the state of the last deploy, so any
input that depends on the machine (a folder, a build time, a cache location, the
order a file system lists files in) shows as a change on every deploy from another
laptop or from CI. The test plans the working tree from two fresh copies in folders
of different names and depths, each with an empty build cache (one inside the copy,
one elsewhere through ``HARBOR_CACHE_DIR``), in separate processes, and compares
every resource: type, parent, inputs (archives by the SHA-256 of their bytes, which
is all the engine compares), protection and the stack outputs. The Next.js sites are
planned when ``app/web`` has builds (``app/web/.harbor/opennext``); the copies get them.

The two-copy test builds everything twice from nothing (about 10 CPU seconds), so it
runs where ``HARBOR_CHURN=1`` is set, as ``.ci/run`` does after building the sites; the
tests of the comparison itself always run:

    HARBOR_CHURN=1 pytest tests/test_churn.py
    HARBOR_CHURN=1 HARBOR_CHURN_STAGES="prod dev" pytest tests/test_churn.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.harness import run_mocked

ROOT = Path(__file__).resolve().parent.parent
SITE_BUILDS = Path("app/web/.harbor/opennext")  # the Next.js builds, one per source hash
STAGES = os.environ.get("HARBOR_CHURN_STAGES", "prod").split()

# Runs in each copy, with that copy's own code first on the path: the plan as JSON, with
# archives and assets replaced by their bytes' SHA-256 and secrets by a digest of their
# value (so a difference is found without a secret being printed).
PLANNER = r"""
import hashlib, json, sys
from pathlib import Path
import pulumi
import infra.harness as harness

shown = harness._plain

def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()

def comparable(value):
    if harness.rpc.is_rpc_secret(value):
        return {"secret-sha256": digest(comparable(value["value"]))}
    if isinstance(value, pulumi.AssetArchive):  # inline archives (the edge signer): their members
        return {"archive-sha256": digest({k: comparable(v) for k, v in sorted(value.assets.items())})}
    if isinstance(value, pulumi.StringAsset):
        return {"asset-sha256": hashlib.sha256(value.text.encode()).hexdigest()}
    if isinstance(value, (pulumi.Archive, pulumi.Asset)) and getattr(value, "path", None):
        path = Path(value.path)
        data = path.read_bytes() if path.is_file() else None
        kind = "archive" if isinstance(value, pulumi.Archive) else "asset"
        return {kind + "-sha256": hashlib.sha256(data).hexdigest() if data is not None else "missing " + str(path)}
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    return shown(value)

harness._plain = comparable
assert Path(harness.__file__).resolve().is_relative_to(Path.cwd().resolve()), harness.__file__
plan = harness.run_program(Path.cwd(), sys.argv[1])
print(json.dumps(plan.to_json(), sort_keys=True))
"""


def plan_differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """One line per difference between two plans (``plan.to_json()`` form), by URN and key path.

    Resources are matched by URN; every other field of a resource is compared in full,
    so a timestamp, a folder or a reordered list anywhere in an input shows up.
    """
    differences: list[str] = []
    ours = {r["urn"]: r for r in first["resources"]}
    theirs = {r["urn"]: r for r in second["resources"]}
    for urn in sorted(ours.keys() - theirs.keys()):
        differences.append(f"{urn}: only in the first plan")
    for urn in sorted(theirs.keys() - ours.keys()):
        differences.append(f"{urn}: only in the second plan")
    for urn in sorted(ours.keys() & theirs.keys()):
        differences.extend(_compare(urn, ours[urn], theirs[urn], ""))
    differences.extend(_compare("stack outputs", first.get("outputs"), second.get("outputs"), ""))
    return differences


def _compare(urn: str, a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(a.keys() | b.keys(), key=str):
            if key not in a or key not in b:
                found.append(f"{urn}: {path}{key} only in the {'first' if key in a else 'second'} plan")
            else:
                found.extend(_compare(urn, a[key], b[key], f"{path}{key}."))
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True)) for line in _compare(urn, x, y, f"{path}{i}.")]
    if a != b:
        return [f"{urn}: {path.rstrip('.')}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]
    return []


# -- the comparison itself, proven against inputs that do churn ------------------------------

def test_identical_plans_have_no_differences():
    plan = {"resources": [{"urn": "u", "type": "t", "inputs": {"tags": {"app": "harbor"}, "list": [1, 2]}}],
            "outputs": {"url": "x"}}
    assert plan_differences(plan, json.loads(json.dumps(plan))) == []


def test_every_kind_of_difference_is_reported_with_its_resource_and_key():
    first = {"resources": [{"urn": "a", "inputs": {"tags": {"app": "harbor"}, "policy": ["s3:GetObject"]}},
                           {"urn": "gone", "inputs": {}}],
             "outputs": {"url": "x"}}
    second = {"resources": [{"urn": "a", "inputs": {"tags": {"app": "harbor", "extra": "1"},
                                                    "policy": ["s3:PutObject"]}},
                            {"urn": "new", "inputs": {}}],
              "outputs": {"url": "y"}}
    assert plan_differences(first, second) == [
        "gone: only in the first plan",
        "new: only in the second plan",
        "a: inputs.policy.0: \"s3:GetObject\" != \"s3:PutObject\"",
        "a: inputs.tags.extra only in the second plan",
        "stack outputs: url: \"x\" != \"y\"",
    ]


def _timestamped_program() -> None:
    """A program with a deliberately non-deterministic input: its build time as a tag."""
    import pulumi_aws as aws

    aws.s3.Bucket("files", bucket="harbor-dev-files", tags={"app": "harbor", "built": str(time.time_ns())})


def _steady_program() -> None:
    import pulumi_aws as aws

    aws.s3.Bucket("files", bucket="harbor-dev-files", tags={"app": "harbor"})


def test_a_timestamp_in_an_input_is_reported_as_churn():
    first = run_mocked(_timestamped_program, "harbor", "dev", {}).to_json()
    second = run_mocked(_timestamped_program, "harbor", "dev", {}).to_json()
    differences = plan_differences(first, second)
    assert len(differences) == 1 and "inputs.tags.built" in differences[0], differences
    steady = [run_mocked(_steady_program, "harbor", "dev", {}).to_json() for _ in range(2)]
    assert plan_differences(*steady) == []


def test_a_lambda_archive_that_differs_between_checkouts_is_reported(tmp_path, monkeypatch):
    """Two checkouts whose handler differs by a generated build stamp give different archives."""
    from components import Function, start_app
    from components.aws.packaging import forget_process_cache

    plans = []
    for index, folder in enumerate(("one", "two/deeper")):
        program = tmp_path / folder
        (program / "handlers").mkdir(parents=True)
        stamp = f"BUILT = {time.time_ns() + index}\n"
        (program / "handlers" / "api.py").write_text(stamp + "def main(e, c):\n    return 1\n")
        monkeypatch.chdir(program)
        monkeypatch.setenv("HARBOR_CACHE_DIR", str(tmp_path / f"cache-{index}"))
        forget_process_cache()

        def body() -> None:
            start_app()
            Function("Api", handler="handlers/api.main")

        plan = run_mocked(body, "harbor", "dev", {}).to_json()
        code = next(r for r in plan["resources"] if r["type"] == "aws:lambda/function:Function")["inputs"]["code"]
        # As the planner in each copy does: an archive is compared by its bytes, not its path.
        path = Path(code["archive"])
        code.clear()
        code["archive-sha256"] = hashlib.sha256((program / path).read_bytes()).hexdigest()
        plans.append(plan)
    differences = plan_differences(*plans)
    assert any("inputs.code.archive-sha256" in line for line in differences), differences
    assert any("inputs.sourceCodeHash" in line for line in differences), differences


# -- the real program from two fresh copies -------------------------------------------------

def _copy_working_tree(destination: Path) -> None:
    """The files git would check out (committed or not, ignored files left out), plus the
    Next.js build when there is one: a fresh clone of what is being tested."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    builds = ROOT / SITE_BUILDS
    if builds.is_dir():
        shutil.copytree(builds, destination / SITE_BUILDS, symlinks=True)


def _start_plan(copy: Path, stage: str, cache: Path | None) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HARBOR_", "PULUMI_"))}
    environment["PYTHONPATH"] = str(copy)
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    if cache is not None:
        environment["HARBOR_CACHE_DIR"] = str(cache)
    return subprocess.Popen(
        [sys.executable, "-c", PLANNER, stage], cwd=copy, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.skipif(not os.environ.get("HARBOR_CHURN"), reason="plans two fresh copies; set HARBOR_CHURN=1")
@pytest.mark.parametrize("stage", STAGES)
def test_two_fresh_copies_with_empty_caches_plan_identical_inputs(tmp_path, stage):
    first, second = tmp_path / "a" / "harbor", tmp_path / "elsewhere" / "deeper" / "checkout-2"
    for copy in (first, second):
        _copy_working_tree(copy)
    # One cache in the copy's own .build, one outside it (as CI sets HARBOR_CACHE_DIR).
    running = [_start_plan(first, stage, None), _start_plan(second, stage, tmp_path / "ci-cache")]
    plans = []
    for process in running:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        plans.append(json.loads(out.strip().splitlines()[-1]))
    assert len(plans[0]["resources"]) > 100
    functions = [r for r in plans[0]["resources"] if r["type"] == "aws:lambda/function:Function"]
    assert functions and all("archive-sha256" in json.dumps(f["inputs"]) or "secret-sha256" in json.dumps(f["inputs"])
                             for f in functions)
    if (ROOT / SITE_BUILDS).is_dir():
        assert any(r["type"].endswith("Nextjs") for r in plans[0]["resources"]), "sites were built but not planned"
    assert plan_differences(*plans) == []
