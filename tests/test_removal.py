"""Removal policy and protection, applied per stage to every resource in one place."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import Bucket, Dynamo, current_app
from components.removal import STATEFUL_TYPES


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
    provider = plan.one("pulumi:providers:aws")
    assert '"stage": "staging"' in provider.inputs["defaultTags"]
    assert '"app": "harbor"' in provider.inputs["defaultTags"]
    aws_resources = [r for r in plan.resources if r.type.startswith("aws:")]
    assert all(r.provider and r.provider.startswith(provider.urn) for r in aws_resources)
