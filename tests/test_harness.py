"""The offline harness itself: what a plan process loads, and what a run leaves behind."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.harness import run_mocked

ROOT = Path(__file__).resolve().parent.parent

# Every public name of a service package with the module defining it, as a program sees it.
_DEFINITIONS = """
import json, sys
from infra import lazy_sdk
if sys.argv[1] == "lazy":
    lazy_sdk.install("pulumi_aws")
import pulumi_aws as aws
found = {}
for service, first in (("sqs", "Queue"), ("ec2", "Vpc")):
    package = getattr(aws, service)
    getattr(package, first)  # the first read loads the package (the SDK's way or the harness's)
    for name in sorted(dir(package)):
        if not name.startswith("_"):
            value = getattr(package, name)
            found[f"{service}.{name}"] = getattr(value, "__module__", None) or getattr(value, "__name__", "")
print(json.dumps(found))
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout


def test_lazy_service_packages_resolve_every_name_to_the_sdks_own_definition() -> None:
    eager = json.loads(_python(_DEFINITIONS, "eager"))
    lazy = json.loads(_python(_DEFINITIONS, "lazy"))
    assert len(eager) > 1000  # EC2's resources, data sources, args and outputs
    assert lazy == eager


def test_a_lazy_service_package_loads_only_the_module_a_program_uses() -> None:
    code = """
import sys
from infra import lazy_sdk
lazy_sdk.install("pulumi_aws")
import pulumi_aws as aws
vpc = aws.ec2.Vpc
from pulumi_aws.ec2.vpc import Vpc
assert vpc is Vpc
loaded = sorted(m for m in sys.modules if m.startswith("pulumi_aws.ec2."))
print(",".join(loaded))
"""
    assert _python(code).strip().split(",") == ["pulumi_aws.ec2.vpc"]


def test_a_star_import_of_a_lazy_service_gets_all_of_it() -> None:
    code = """
from infra import lazy_sdk
lazy_sdk.install("pulumi_aws")
from pulumi_aws.sqs import *
print(Queue.__module__, QueuePolicy.__module__, RedrivePolicy.__module__)
"""
    assert _python(code).split() == ["pulumi_aws.sqs.queue", "pulumi_aws.sqs.queue_policy",
                                     "pulumi_aws.sqs.redrive_policy"]


def test_a_plan_process_imports_nothing_only_other_commands_need() -> None:
    code = """
import io, contextlib, json, sys
from infra.cli import main
sys.argv = ["infra", "plan", "--stage", "dev"]
with contextlib.redirect_stdout(io.StringIO()):
    main()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} | {m for m in sys.modules if m.startswith("infra.")})))
"""
    loaded = set(json.loads(_python(code)))
    unneeded = {"boto3", "botocore", "moto", "hypothesis", "pulumi_cloudflare", "pulumi_docker_build",
                "pulumi_random", "infra.dev", "infra.rules", "infra.cost", "infra.check"}
    assert "pulumi_aws" in loaded
    assert loaded & unneeded == set()


@pytest.mark.parametrize("enabled", [True, False])
def test_a_run_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        seen: list[bool] = []
        run_mocked(lambda: seen.append(gc.isenabled()), "harbor", "dev", {"harbor:region": "us-east-1"})
        assert seen == [False]
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
