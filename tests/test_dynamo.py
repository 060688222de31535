"""Dynamo: single-table designs with indexes, secure defaults per stage, plan-time errors."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import ComponentError, Dynamo
from components.aws.dynamo import ITEM_ACTIONS, STREAM_ACTIONS
from components.core.linking import link_statements
from tests.conftest import replacement_outcome


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


def test_dev_keeps_point_in_time_recovery_but_leaves_deletion_protection_off(build):
    inputs = table_inputs(build(single_table, stage="dev"))
    assert inputs["pointInTimeRecovery"] == {"enabled": True}
    assert inputs["deletionProtectionEnabled"] is False


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_point_in_time_recovery_can_be_turned_off(build, stage):
    inputs = table_inputs(build(lambda: single_table(point_in_time_recovery=False), stage=stage))
    assert inputs["pointInTimeRecovery"] == {"enabled": False}


def test_a_table_without_subscribers_or_stream_has_no_stream(build):
    inputs = table_inputs(build(single_table))
    assert inputs["streamEnabled"] is False and "streamViewType" not in inputs


# -- stream subscribers ---------------------------------------------------------------------

MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/harbor-dev-Table/stream/2026-01-01T00:00:00.000"


def test_subscribe_turns_the_stream_on_and_sends_changes_through_filters(build):
    def body() -> None:
        table = single_table()
        table.subscribe("Audit", "app/functions/worker.handler", filters=[{"eventName": ["INSERT", "MODIFY"]}],
                        timeout=30)

    plan = build(body)

    table = table_inputs(plan)
    assert table["streamEnabled"] is True and table["streamViewType"] == "NEW_AND_OLD_IMAGES"
    mapping = plan.one(MAPPING)
    assert mapping.inputs["eventSourceArn"] == STREAM
    assert mapping.inputs["functionName"] == "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-TableAudit"
    assert mapping.inputs["startingPosition"] == "LATEST"
    assert mapping.inputs["filterCriteria"] == {"filters": [{"pattern": '{"eventName":["INSERT","MODIFY"]}'}]}
    assert mapping.inputs["bisectBatchOnFunctionError"] is True
    assert mapping.inputs["maximumRetryAttempts"] == 3
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    failures = plan.one("aws:sqs/queue:Queue")
    assert failures.inputs["name"] == "harbor-dev-Table-Audit-failures"
    assert failures.inputs["sqsManagedSseEnabled"] is True
    assert mapping.inputs["destinationConfig"] == {
        "onFailure": {"destinationArn": "arn:aws:sqs:us-east-1:123456789012:harbor-dev-Table-Audit-failures"}
    }
    assert plan.one("aws:lambda/function:Function").inputs["timeout"] == 30


def test_the_subscriber_may_read_this_stream_and_park_failures_only_before_its_mapping_exists(build):
    def body() -> None:
        single_table(stream="new-image").subscribe("Audit", "app/functions/worker.handler")

    plan = build(body)

    assert table_inputs(plan)["streamViewType"] == "NEW_IMAGE"  # the view given is kept
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("Table-")]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert statements == [
        {"Effect": "Allow", "Action": sorted(STREAM_ACTIONS), "Resource": [STREAM]},
        {"Effect": "Allow", "Action": ["sqs:SendMessage"],
         "Resource": ["arn:aws:sqs:us-east-1:123456789012:harbor-dev-Table-Audit-failures"]},
    ]
    assert policy.inputs["role"].startswith("TableAudit-role")  # the subscriber's own role
    assert policy.urn in plan.one(MAPPING).dependencies
    assert "filterCriteria" not in plan.one(MAPPING).inputs


def test_two_subscribers_get_their_own_mapping_and_failure_queue(build):
    def body() -> None:
        table = single_table()
        table.subscribe("Audit", "app/functions/worker.handler", starting_position="trim-horizon")
        table.subscribe("Search", "app/functions/worker.handler", retries=0, batch_size=10)

    plan = build(body)
    mappings = {m.name: m.inputs for m in plan.of_type(MAPPING)}
    assert mappings["Table-event_source_mapping-Audit"]["startingPosition"] == "TRIM_HORIZON"
    assert mappings["Table-event_source_mapping-Search"]["maximumRetryAttempts"] == 0
    assert mappings["Table-event_source_mapping-Search"]["batchSize"] == 10
    assert len(plan.of_type("aws:sqs/queue:Queue")) == 2


@pytest.mark.parametrize(
    ("subscribe", "problem"),
    [
        ({"filters": {"eventName": ["INSERT"]}}, "non-empty list of patterns"),
        ({"filters": []}, "non-empty list of patterns"),
        ({"filters": [{}]}, "non-empty dict"),
        ({"filters": [{"eventname": ["INSERT"]}]}, "filter key 'eventname' is not in a stream record"),
        ({"filters": [{"eventName": ["INSERT"]}] * 6}, "6 filters; Lambda accepts 5"),
        ({"batch_size": 0}, "batch_size 0"),
        ({"retries": -1}, "retries -1"),
        ({"starting_position": "at-timestamp"}, "starting_position 'at-timestamp' must be 'latest'"),
    ],
)
def test_bad_subscriptions_are_refused(build, subscribe, problem):
    with pytest.raises(ComponentError, match=problem):
        build(lambda: single_table().subscribe("Audit", "app/functions/worker.handler", **subscribe))


def test_a_second_subscriber_with_the_same_name_is_refused(build):
    def body() -> None:
        table = single_table()
        table.subscribe("Audit", "app/functions/worker.handler")
        table.subscribe("Audit", "app/functions/worker.handler")

    with pytest.raises(ComponentError, match="already has a subscriber named 'Audit'"):
        build(body)


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


# DynamoDB index names: 3-255 of a-z, A-Z, 0-9, '_', '-', '.'
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html)
@pytest.mark.parametrize("kind", ["global_indexes", "local_indexes"])
@pytest.mark.parametrize("index", ["g1", "x", "by user", "i" * 256])
def test_index_names_dynamodb_refuses_are_refused(build, kind, index):
    spec = {"hash_key": "gpk"} if kind == "global_indexes" else {"range_key": "gpk"}
    with pytest.raises(ComponentError, match=r"index name .* must be 3-255 letters, digits"):
        build(lambda: Dynamo("Table", fields={"pk": "string", "sk": "string", "gpk": "string"},
                             primary_index={"hash_key": "pk", "range_key": "sk"}, **{kind: {index: spec}}))


@pytest.mark.parametrize("index", ["gs1", "by-user.v2_x", "i" * 255])
def test_index_names_at_the_limits_are_accepted(build, index):
    plan = build(lambda: Dynamo("Table", fields={"pk": "string", "gpk": "string"},
                                primary_index={"hash_key": "pk"}, global_indexes={index: {"hash_key": "gpk"}}))
    (gsi,) = plan.one("aws:dynamodb/table:Table").inputs["globalSecondaryIndexes"]
    assert gsi["name"] == index


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


@pytest.mark.parametrize(("stage", "outcome"), [("dev", "delete-first"), ("staging", "delete-first"),
                                                ("prod", "refused")])
def test_a_new_table_key_replaces_on_stages_that_remove_data_and_is_refused_on_prod(build, stage, outcome):
    before = build(lambda: single_table(), stage=stage)
    after = build(lambda: single_table(transform={"table": {"hash_key": "gsi1pk"}}), stage=stage)
    old, new = (p.one("aws:dynamodb/table:Table") for p in (before, after))
    assert new.inputs["name"] == old.inputs["name"] == f"harbor-{stage}-Table"
    assert replacement_outcome(old, new) == outcome
