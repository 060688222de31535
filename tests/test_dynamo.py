"""Dynamo: single-table designs with indexes, secure defaults per stage, plan-time errors."""

from __future__ import annotations

import pulumi
import pytest

from components import ComponentError, Dynamo
from components.dynamo import ITEM_ACTIONS
from components.linking import link_statements


def single_table(**extra) -> Dynamo:
    return Dynamo(
        "Table",
        fields={"pk": "string", "sk": "string", "gsi1pk": "string", "gsi1sk": "string"},
        primary_index={"hash_key": "pk", "range_key": "sk"},
        global_indexes={"gsi1": {"hash_key": "gsi1pk", "range_key": "gsi1sk"}},
        **extra,
    )


def table_inputs(plan):
    return plan.one("aws:dynamodb/table:Table").inputs


def test_single_table_design_with_a_global_index(build):
    inputs = table_inputs(build(single_table))
    assert inputs["name"] == "harbor-dev-Table"
    assert inputs["billingMode"] == "PAY_PER_REQUEST"
    assert (inputs["hashKey"], inputs["rangeKey"]) == ("pk", "sk")
    assert {a["name"]: a["type"] for a in inputs["attributes"]} == {
        "pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"
    }
    (index,) = inputs["globalSecondaryIndexes"]
    assert index == {"name": "gsi1", "hashKey": "gsi1pk", "rangeKey": "gsi1sk", "projectionType": "ALL"}


def test_encrypted_at_rest_on_every_stage(build):
    for stage in ("dev", "prod"):
        assert table_inputs(build(single_table, stage=stage))["serverSideEncryption"]["enabled"] is True


def test_prod_turns_on_point_in_time_recovery_and_deletion_protection(build):
    inputs = table_inputs(build(single_table, stage="prod"))
    assert inputs["pointInTimeRecovery"] == {"enabled": True}
    assert inputs["deletionProtectionEnabled"] is True


def test_dev_leaves_recovery_and_deletion_protection_off(build):
    inputs = table_inputs(build(single_table, stage="dev"))
    assert inputs["pointInTimeRecovery"] == {"enabled": False}
    assert inputs["deletionProtectionEnabled"] is False


def test_projections_local_indexes_stream_and_ttl(build):
    def body() -> None:
        Dynamo(
            "Deployments",
            fields={"projectId": "string", "deploymentId": "string", "createdAt": "number", "userId": "string"},
            primary_index={"hash_key": "projectId", "range_key": "deploymentId"},
            global_indexes={
                "UserIdIndex": {"hash_key": "userId", "projection": "keys-only"},
                "DeploymentIdIndex": {"hash_key": "deploymentId", "projection": ["status", "url"]},
            },
            local_indexes={"ByCreatedAt": {"range_key": "createdAt"}},
            stream="new-and-old-images",
            ttl="expiresAt",
        )

    inputs = table_inputs(build(body))
    indexes = {i["name"]: i for i in inputs["globalSecondaryIndexes"]}
    assert indexes["UserIdIndex"]["projectionType"] == "KEYS_ONLY"
    assert indexes["DeploymentIdIndex"]["projectionType"] == "INCLUDE"
    assert indexes["DeploymentIdIndex"]["nonKeyAttributes"] == ["status", "url"]
    assert inputs["localSecondaryIndexes"] == [
        {"name": "ByCreatedAt", "rangeKey": "createdAt", "projectionType": "ALL"}
    ]
    assert inputs["streamEnabled"] is True and inputs["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert inputs["ttl"] == {"attributeName": "expiresAt", "enabled": True}


def test_transform_merges_into_the_table_arguments(build):
    plan = build(lambda: single_table(transform={"table": {"table_class": "STANDARD_INFREQUENT_ACCESS"}}))
    assert table_inputs(plan)["tableClass"] == "STANDARD_INFREQUENT_ACCESS"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"fields": {"pk": "string", "unused": "string"}, "primary_index": {"hash_key": "pk"}},
            "fields 'unused' are not used by the primary index or any index",
        ),
        (
            {"fields": {"pk": "string"}, "primary_index": {"hash_key": "pk", "range_key": "sk"}},
            "primary_index.range_key uses 'sk', which is not in fields",
        ),
        (
            {"fields": {"pk": "string"}, "primary_index": {"hash_key": "pk"},
             "global_indexes": {"byUser": {"hash_key": "userId"}}},
            "global_indexes['byUser'].hash_key uses 'userId', which is not in fields",
        ),
        (
            {"fields": {"pk": "string", "at": "number"}, "primary_index": {"hash_key": "pk"},
             "local_indexes": {"byAt": {"range_key": "at"}}},
            "needs a table with a range key",
        ),
        (
            {"fields": {"pk": "text"}, "primary_index": {"hash_key": "pk"}},
            "fields.pk Input should be 'string', 'number' or 'binary'",
        ),
        (
            {"fields": {"pk": "string"}, "primary_index": {"hash_key": "pk"}, "transform": {"tabel": {}}},
            "transform has no child 'tabel'; it can transform 'table'",
        ),
    ],
)
def test_bad_definitions_fail_at_plan_time_with_the_fix(build, kwargs, message):
    with pytest.raises(ComponentError) as error:
        build(lambda: Dynamo("Table", **kwargs))
    assert "Dynamo 'Table'" in str(error.value)
    assert message in str(error.value)


def test_link_grants_item_actions_on_the_table_and_indexes_only(build):
    def body() -> None:
        table = single_table(stream="keys-only")
        assert table.link_name == "Table" and table.link_type == "sst.aws.Dynamo"
        pulumi.export("statements", link_statements([table]))

    statements = build(body).outputs["statements"]
    actions = {action for statement in statements for action in statement["Action"]}
    resources = {arn for statement in statements for arn in statement["Resource"]}
    assert "dynamodb:*" not in actions and set(ITEM_ACTIONS) <= actions
    assert not actions & {"dynamodb:DeleteTable", "dynamodb:CreateTable", "dynamodb:UpdateTable"}
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/harbor-dev-Table"
    assert resources == {table_arn, f"{table_arn}/index/*", f"{table_arn}/stream/2026-01-01T00:00:00.000"}
