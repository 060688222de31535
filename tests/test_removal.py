"""Removal policy and protection, applied per stage to every resource in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import Bucket, Dynamo, current_app
from components.core.removal import STATEFUL_TYPES
from infra.harness import read_stage_file

ROOT = Path(__file__).resolve().parent.parent


def _table() -> Dynamo:
    return Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})


def _stateful(plan):
    return [r for r in plan.resources if r.type in STATEFUL_TYPES]


def test_prod_protects_and_retains_every_stateful_resource(plan_stage):
    plan = plan_stage("prod")
    stateful = _stateful(plan)
    assert {r.type for r in stateful} >= {"aws:dynamodb/table:Table", "aws:s3/bucket:Bucket"}
    assert all(r.protect and r.retain_on_delete for r in stateful), [
        r.name for r in stateful if not (r.protect and r.retain_on_delete)
    ]


def test_prod_leaves_stateless_resources_deletable(plan_stage):
    plan = plan_stage("prod")
    policies = plan.of_type("aws:s3/bucketPolicy:BucketPolicy")
    assert policies and not any(r.protect or r.retain_on_delete for r in policies)


def test_dev_and_personal_stages_protect_and_retain_nothing(plan_stage):
    for stage in ("dev", "alice"):
        plan = plan_stage(stage)
        assert not any(r.protect or r.retain_on_delete for r in plan.resources), stage


def test_retain_all_keeps_every_aws_resource(build):
    plan = build(lambda: Bucket("Uploads"), stage="dev", removal="retain-all")
    custom = [r for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    assert custom and all(r.retain_on_delete for r in custom)
    assert not any(r.protect for r in custom)


def test_retain_without_protect_keeps_data_but_allows_destroy(build):
    plan = build(_table, stage="staging", removal="retain", protect=False)
    table = plan.one("aws:dynamodb/table:Table")
    assert table.retain_on_delete and not table.protect


def test_policy_covers_resources_created_outside_components(build):
    def body() -> None:
        aws.dynamodb.Table(
            "Raw",
            hash_key="id",
            attributes=[{"name": "id", "type": "S"}],
            billing_mode="PAY_PER_REQUEST",
            opts=pulumi.ResourceOptions(provider=current_app().provider),
        )

    plan = build(body, stage="prod")
    raw = plan.one("aws:dynamodb/table:Table", "Raw")
    assert raw.protect and raw.retain_on_delete


def test_an_explicit_choice_on_a_resource_wins_over_the_stage(build):
    def body() -> None:
        Dynamo(
            "Cache",
            fields={"pk": "string"},
            primary_index={"hash_key": "pk"},
            transform={"table": lambda args, opts: setattr(opts, "retain_on_delete", False)},
        )

    plan = build(body, stage="prod")
    table = plan.one("aws:dynamodb/table:Table")
    assert table.protect and not table.retain_on_delete


def test_every_resource_goes_through_the_stage_provider_with_default_tags(plan_stage):
    plan = plan_stage("staging")
    provider = plan.one("pulumi:providers:aws", "aws")  # "aws-lookups" serves invokes only
    assert '"stage": "staging"' in provider.inputs["defaultTags"]
    assert '"app": "harbor"' in provider.inputs["defaultTags"]
    aws_resources = [r for r in plan.resources if r.type.startswith("aws:")]
    assert all(r.provider and r.provider.startswith(provider.urn) for r in aws_resources)


def test_raw_resources_get_the_stage_provider_region_tags_and_removal_policy(build):
    """A resource made straight from pulumi_aws, with no provider, is treated like a component's."""

    def body() -> None:
        aws.s3.Bucket("RawBucket")
        aws.dynamodb.Table(
            "RawTable", hash_key="id", attributes=[{"name": "id", "type": "S"}], billing_mode="PAY_PER_REQUEST"
        )
        aws.sns.Topic("RawTopic")

    plan = build(body, stage="prod", region="ap-southeast-1", tags={"Owner": "team-kefir"})
    provider = plan.one("pulumi:providers:aws", "aws")
    assert provider.inputs["region"] == "ap-southeast-1"
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "Owner": "team-kefir", "app": "harbor", "stage": "prod", "managed-by": "pulumi",
    }
    for name in ("RawBucket", "RawTable", "RawTopic"):
        assert plan.named(name).provider.startswith(provider.urn + "::"), name
    assert plan.named("RawBucket").protect and plan.named("RawBucket").retain_on_delete
    assert plan.named("RawTable").protect and plan.named("RawTable").retain_on_delete
    assert not plan.named("RawTopic").protect and not plan.named("RawTopic").retain_on_delete


def test_a_raw_resource_with_its_own_provider_keeps_it(build):
    def body() -> None:
        other = aws.Provider("elsewhere", region="eu-west-1")
        aws.sns.Topic("Pinned", opts=pulumi.ResourceOptions(provider=other))

    plan = build(body)
    assert plan.named("Pinned").provider.startswith(plan.named("elsewhere").urn + "::")


def test_custom_tags_reach_every_component_through_the_provider(plan_stage):
    plan = plan_stage("dev", config={**read_stage_file(ROOT, "dev"), "harbor:tags": '{"CostCenter": "CC-7"}'})
    provider = plan.one("pulumi:providers:aws", "aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"]["CostCenter"] == "CC-7"
    aws_resources = [r for r in plan.resources if r.type.startswith("aws:")]
    assert aws_resources and all(r.provider.startswith(provider.urn + "::") for r in aws_resources)


def test_an_explicit_protect_false_is_honoured_on_prod(build):
    def body() -> None:
        Dynamo(
            "Scratch",
            fields={"pk": "string"},
            primary_index={"hash_key": "pk"},
            transform={"table": lambda args, opts: setattr(opts, "protect", False)},
        )
        aws.s3.Bucket("RawScratch", opts=pulumi.ResourceOptions(provider=current_app().provider, protect=False))
        _table()  # the stage's default still protects everything else

    plan = build(body, stage="prod")
    tables = {t.name: t for t in plan.of_type("aws:dynamodb/table:Table")}
    assert not tables["Scratch-table"].protect and tables["Scratch-table"].retain_on_delete
    assert not plan.one("aws:s3/bucket:Bucket", "RawScratch").protect
    (protected,) = [t for name, t in tables.items() if name != "Scratch-table"]
    assert protected.protect


def test_a_preview_stage_uses_no_nat_no_elastic_ip_and_no_instance(plan_stage):
    plan = plan_stage("pr-12")
    types = {r.type for r in plan.resources}
    assert not types & {"aws:ec2/eip:Eip", "aws:ec2/instance:Instance", "aws:ec2/natGateway:NatGateway"}
    assert not any(r.protect or r.retain_on_delete for r in plan.resources)


def test_every_role_carries_the_stage_permissions_boundary(plan_stage):
    for stage in ("prod", "pr-12"):
        roles = plan_stage(stage).of_type("aws:iam/role:Role")
        assert roles, stage
        assert {r.inputs.get("permissionsBoundary") for r in roles} == {
            "arn:aws:iam::123456789012:policy/harbor-permissions-boundary"
        }, stage


def test_a_stage_without_a_boundary_creates_plain_roles(build):
    from components import Function

    plan = build(lambda: Function("Api", handler="app/functions/items.create"), stage="dev", permissionsBoundary="")
    (role,) = plan.of_type("aws:iam/role:Role")
    assert "permissionsBoundary" not in role.inputs
    arn = "arn:aws:iam::123456789012:policy/team-boundary"
    plan = build(lambda: Function("Api", handler="app/functions/items.create"), stage="dev", permissionsBoundary=arn)
    assert plan.one("aws:iam/role:Role").inputs["permissionsBoundary"] == arn


def test_destroying_prod_deletes_nothing_even_with_skip_preview(plan_stage):
    # The engine deletes a resource's dependents first and, when a delete fails, skips
    # everything that resource depends on: a protected guard depending on every resource
    # is the first delete and stops all of them.
    plan = plan_stage("prod")
    guard = plan.one("aws:resourcegroups/group:Group")
    assert guard.protect and guard.inputs["name"] == "harbor-prod"
    others = {r.urn for r in plan.resources
              if r.custom and r.urn != guard.urn and not r.type.startswith("pulumi:providers:")}
    assert len(others) > 100 and others <= set(guard.dependencies), others - set(guard.dependencies)
    query = json.loads(guard.inputs["resourceQuery"]["query"])
    assert query["TagFilters"] == [{"Key": "app", "Values": ["harbor"]}, {"Key": "stage", "Values": ["prod"]}]


def test_stages_that_do_not_protect_have_no_destroy_guard(plan_stage):
    assert not plan_stage("staging").of_type("aws:resourcegroups/group:Group")


def test_a_finished_program_run_leaves_nothing_of_itself_alive(plan_stage):
    import gc

    from components.core.context import App

    # prod has what keeps state per run: a permissions boundary, secrets and sites. Only the
    # engine settings hold on to the last run, until the next one replaces them.
    plan_stage("prod", fresh=True)
    pulumi.runtime.settings.reset_options()
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, App)] == []
