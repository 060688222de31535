"""The CrossGuard pack: the same rules as infra check, exercised without the Pulumi CLI.

Each policy's ``validate`` is called directly with synthetic ``StackValidationArgs``;
``policy/__main__.py`` is never imported because building the PolicyPack starts a server.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from guardrail_stack import good_stack
from pulumi_policy import EnforcementLevel, PolicyResource, PolicyResourceOptions, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from infra.harness import ROOT
from infra.rules import RULES, Resource
from policy.policies import build_policies, plain, stage_of

PROTECT_PROD = {"protectingStages": ["prod"]}


def _urn(urn: str, stage: str) -> str:
    for synthetic in ("urn:pulumi:test::", "urn:pulumi:prod::"):
        urn = urn.replace(synthetic, f"urn:pulumi:{stage}::")
    return urn


def _policy_resources(resources: list[Resource], stage: str) -> list[PolicyResource]:
    """The resources as CrossGuard hands them over: proxied props, parents as objects."""
    built: dict[str, PolicyResource] = {}
    for resource in resources:
        parent = _urn(resource.parent, stage) if resource.parent else None
        opts = PolicyResourceOptions(  # type: ignore[arg-type]
            resource.protect, [], resource.delete_before_replace, [], None, [], parent)
        urn = _urn(resource.urn, stage)
        built[urn] = PolicyResource(
            resource.type, unknown_checking_proxy(copy.deepcopy(resource.inputs)), urn, resource.name,
            opts, None, None, [], {},
        )
    for resource, policy_resource in zip(resources, built.values(), strict=True):
        policy_resource.parent = built.get(policy_resource.opts.parent or "")
        policy_resource.dependencies = [built[_urn(urn, stage)] for urn in resource.dependencies]
    return list(built.values())


def _violations(policy_id: str, resources: list[Resource], config: dict[str, Any] | None = None,
                stage: str = "prod") -> list[tuple[str, str | None]]:
    policy = next(p for p in build_policies() if p.name == policy_id)
    reported: list[tuple[str, str | None]] = []
    args = StackValidationArgs(_policy_resources(resources, stage), config or {})
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))
    return reported


def test_the_pack_has_one_policy_per_rule_and_blocks_on_high_severity() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [r.id.lower() for r in RULES]
    for policy, rule in zip(policies, RULES, strict=True):
        expected = EnforcementLevel.MANDATORY if rule.severity == "high" else EnforcementLevel.ADVISORY
        assert policy.enforcement_level == expected
        assert policy.remediation_steps == rule.fix


def test_a_well_configured_stack_passes_every_policy() -> None:
    for policy in build_policies():
        assert _violations(policy.name, good_stack(), PROTECT_PROD) == [], policy.name


def test_a_bucket_without_access_block_is_reported_with_its_urn() -> None:
    resources = [r for r in good_stack() if r.name != "assets-pab"]
    reported = _violations("pub-s3-block", resources, PROTECT_PROD)
    assert len(reported) == 1
    message, urn = reported[0]
    assert "has no public access block" in message and "Fix:" in message
    assert urn == "urn:pulumi:prod::harbor::aws:s3/bucket:Bucket::assets"


def test_wildcard_iam_is_reported_by_the_pack() -> None:
    resources = good_stack()
    policy = next(r for r in resources if r.name == "worker-policy")
    policy.inputs["policy"] = '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    assert len(_violations("iam-action-star", resources, PROTECT_PROD)) == 1
    assert len(_violations("iam-resource-star", resources, PROTECT_PROD)) == 1


def test_protection_rules_follow_the_stage_file_when_no_config_is_given() -> None:
    resources = good_stack()
    table = next(r for r in resources if r.name == "table")
    table.protect = False
    assert [m for m, _ in _violations("prot-stateful", resources, stage="prod")] == [
        "aws:dynamodb/table:Table table: not protected. Fix: " + next(r.fix for r in RULES if r.id == "PROT-STATEFUL")
    ]
    assert _violations("prot-stateful", resources, stage="dev") == []
    assert _violations("prot-stateful", resources, {"protectingStages": []}, stage="prod") == []


def test_unknown_preview_values_do_not_stop_the_other_checks() -> None:
    resources = good_stack()
    fn = next(r for r in resources if r.name == "worker")
    fn.inputs["loggingConfig"]["logGroup"] = UNKNOWN_STRING_VALUE
    table = next(r for r in resources if r.name == "table")
    table.inputs["serverSideEncryption"]["enabled"] = False
    assert _violations("log-function", resources, PROTECT_PROD) == []
    assert len(_violations("enc-dynamo", resources, PROTECT_PROD)) == 1


def test_plain_unwraps_nested_proxies_and_marks_unknowns() -> None:
    proxy = unknown_checking_proxy({"a": [{"b": UNKNOWN_STRING_VALUE, "c": 1}], "d": {"e": True}})
    assert plain(proxy) == {"a": [{"b": "[unknown]", "c": 1}], "d": {"e": True}}


def test_the_stage_comes_from_the_urns() -> None:
    assert stage_of([Resource("aws:s3/bucket:Bucket", "b", urn="urn:pulumi:staging::harbor::t::b")]) == "staging"


def test_the_pack_project_file_runs_python_in_the_project_venv() -> None:
    project = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (ROOT / "policy" / project["runtime"]["options"]["virtualenv"]).resolve() == ROOT / ".venv"
    assert "PolicyPack(" in (ROOT / "policy" / "__main__.py").read_text()


@pytest.fixture(autouse=True)
def _no_pack_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything here builds a PolicyPack (it would serve forever)."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("PolicyPack must only be built in policy/__main__.py")

    monkeypatch.setattr("pulumi_policy.PolicyPack.__init__", refuse)


def test_another_projects_stack_is_judged_by_its_own_protection() -> None:
    bootstrap = [
        Resource("aws:s3/bucket:Bucket", "state", {"bucket": "state"}, protect=True,
                 urn="urn:pulumi:shared::harbor-bootstrap::aws:s3/bucket:Bucket::state"),
        Resource("aws:kms/key:Key", "secrets", {}, protect=False,
                 urn="urn:pulumi:shared::harbor-bootstrap::aws:kms/key:Key::secrets"),
    ]
    reported = _violations("prot-stateful", bootstrap, stage="shared")
    assert [urn for _, urn in reported] == ["urn:pulumi:shared::harbor-bootstrap::aws:kms/key:Key::secrets"]


def test_a_prefixed_name_reported_by_state_is_not_a_pinned_name() -> None:
    # CrossGuard sees outputs: a prefixed group reports the name AWS completed as well.
    group = Resource("aws:ec2/securityGroup:SecurityGroup", "db-sg", {
        "name": "harbor-prod-db-20261122073000000000000001", "namePrefix": "harbor-prod-db-",
        "description": "Postgres", "vpcId": "vpc-1"})
    assert _violations("replace-name", [group], PROTECT_PROD) == []
    pinned = Resource("aws:ec2/securityGroup:SecurityGroup", "db-sg", {
        "name": "harbor-prod-db", "description": "Postgres", "vpcId": "vpc-1"})
    assert len(_violations("replace-name", [pinned], PROTECT_PROD)) == 1
