"""The sample app's handlers end to end on moto: link data from our own encoder, read by sst-sdk.

The table is created in moto from the inputs the Dynamo component plans, the link
file is written by components.core.linking.encode_links with the Secret's value from the
mocked SSM, and the handlers are imported fresh after the environment is set, since
sst-sdk reads its links at import time.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import importlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from components import Dynamo, Secret, start_app
from components.core.linking import encode_links, link_data
from infra.harness import run_mocked
from infra.mocks import MockContext

ROOT = Path(__file__).resolve().parent.parent
STAGE = "handlers"
SIGNING_KEY = "test-signing-key-from-ssm"
REGION = "us-east-1"


# -- what the deployed function would receive ------------------------------------------------


@pytest.fixture(scope="module")
def planned() -> SimpleNamespace:
    """Plan the table and the secret as __main__.py does; keep the link data and table inputs."""
    captured: dict[str, Any] = {}

    def program() -> None:
        start_app()
        table = Dynamo(
            "Table",
            fields={"pk": "string", "sk": "string", "gsi1pk": "string", "gsi1sk": "string"},
            primary_index={"hash_key": "pk", "range_key": "sk"},
            global_indexes={"gsi1": {"hash_key": "gsi1pk", "range_key": "gsi1sk"}},
        )
        link_data([table, Secret("SecretKey")]).apply(lambda data: captured.setdefault("links", data))

    parameters = {f"/harbor/{STAGE}/SecretKey": SIGNING_KEY}
    plan = run_mocked(program, "harbor", STAGE, {}, context=MockContext(parameters=parameters))
    assert "links" in captured, "the link data never resolved"
    return SimpleNamespace(links=captured["links"], table=plan.one("aws:dynamodb/table:Table").inputs)


def create_table_like_the_plan(inputs: dict[str, Any]) -> None:
    types = {a["name"]: a["type"] for a in inputs["attributes"]}

    def schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
        keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        return keys + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else [])

    boto3.client("dynamodb").create_table(
        TableName=inputs["name"],
        BillingMode=inputs["billingMode"],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in types.items()],
        KeySchema=schema(inputs["hashKey"], inputs.get("rangeKey")),
        GlobalSecondaryIndexes=[
            {
                "IndexName": index["name"],
                "KeySchema": schema(index["hashKey"], index.get("rangeKey")),
                "Projection": {"ProjectionType": index["projectionType"]},
            }
            for index in inputs.get("globalSecondaryIndexes", [])
        ],
    )


@pytest.fixture
def app(planned, tmp_path, monkeypatch) -> Iterator[SimpleNamespace]:
    """moto with the planned table, the TaskTopic -> PersonaQueue fan-out, and fresh handlers."""
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SST_RESOURCE_App", "SST_KEY", "SST_KEY_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.syspath_prepend(str(ROOT))

    with mock_aws():
        create_table_like_the_plan(planned.table)
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(
            Name="harbor-handlers-TaskTopic.fifo",
            Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "false"},
        )["TopicArn"]
        queue_url = sqs.create_queue(
            QueueName="harbor-handlers-PersonaQueue.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
            Attributes={"FilterPolicy": json.dumps({"queue": ["persona"]})},
        )

        links = {**planned.links, "TaskTopic": {"arn": topic, "type": "sst.aws.SnsTopic"}}
        bundle = encode_links(links, app="harbor", stage=STAGE, key_file=str(tmp_path / "resource.enc"))
        (tmp_path / bundle.file_name).write_bytes(bundle.file_bytes)
        for key, value in bundle.environment.items():
            monkeypatch.setenv(key, value)

        modules = fresh_handlers()
        yield SimpleNamespace(
            items=modules["items"], worker=modules["worker"], table=planned.table["name"],
            queue_url=queue_url, queue_arn=queue_arn, dynamodb=boto3.client("dynamodb"), sqs=sqs,
        )
    for name in ("sst", "app.functions.items", "app.functions.worker"):
        sys.modules.pop(name, None)


def fresh_handlers() -> dict[str, ModuleType]:
    for name in ("sst", "app.functions.items", "app.functions.worker"):
        sys.modules.pop(name, None)
    return {
        "items": importlib.import_module("app.functions.items"),
        "worker": importlib.import_module("app.functions.worker"),
    }


# -- events ------------------------------------------------------------------------------------


def http(
    method: str,
    route: str,
    *,
    path_id: str | None = None,
    body: Any = None,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
    user: str | None = "user_1",
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event behind a JWT authorizer."""
    path = route.replace("{id}", path_id or "")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", "host": "api.example.com", "user-agent": "pytest"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "pytest"},
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": base64_body,
    }
    if user is not None:
        claims = {"sub": user, "iss": "https://clerk.example.com"}
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if query:
        event["queryStringParameters"] = query
    if path_id is not None:
        event["pathParameters"] = {"id": path_id}
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if text is not None:
        event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    return event


def body_of(response: dict[str, Any]) -> Any:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"]) if "body" in response else None


def create(app: SimpleNamespace, name: str = "Garage", user: str = "user_1", **extra: Any) -> dict[str, Any]:
    response = app.items.create(http("POST", "/items", body={"name": name, **extra}, user=user), None)
    assert response["statusCode"] == 201, response
    return body_of(response)


def sqs_event(app: SimpleNamespace, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS poller hands the worker for these received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": app.queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def record(message_id: str, body: Any, group: str | None = None) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": "1"} | ({"MessageGroupId": group} if group else {})
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": attributes, "eventSource": "aws:sqs"}


def stored(app: SimpleNamespace, user: str, project_id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"USER#{user}"}, "sk": {"S": f"PROJECT#{project_id}"}}
    return app.dynamodb.get_item(TableName=app.table, Key=key).get("Item", {})


# -- the API --------------------------------------------------------------------------------------


def test_links_reach_the_handler_through_sst_sdk(app):
    import sst

    assert sst.Resource.Table.name == "harbor-handlers-Table"
    assert sst.Resource.SecretKey.value == SIGNING_KEY
    assert sst.Resource.App.stage == STAGE


def test_create_stores_a_pending_project_in_the_callers_partition(app):
    project = create(app, "Garage", description="  my cars  ")
    assert project["name"] == "Garage" and project["status"] == "pending"
    assert project["description"] == "my cars"
    item = stored(app, "user_1", project["id"])
    assert item["gsi1pk"] == {"S": "USER#user_1#STATUS#pending"}
    assert item["gsi1sk"] == {"S": f"{project['createdAt']}#{project['id']}"}
    assert item["userId"] == {"S": "user_1"}


def test_create_publishes_a_persona_task_through_the_topic_to_the_queue(app):
    project = create(app)
    received = app.sqs.receive_message(QueueUrl=app.queue_url, MaxNumberOfMessages=10)["Messages"]
    (message,) = received
    envelope = json.loads(message["Body"])
    assert json.loads(envelope["Message"]) == {
        "type": "persona.requested", "userId": "user_1", "projectId": project["id"]
    }


def test_get_returns_the_project_and_404_for_unknown_or_someone_elses(app):
    project = create(app)
    found = app.items.get(http("GET", "/items/{id}", path_id=project["id"]), None)
    assert (found["statusCode"], body_of(found)) == (200, project)

    for path_id, user in ((project["id"], "intruder"), ("01JUNKNOWN00000000000000000", "user_1"), ("nope", "user_1")):
        missing = app.items.get(http("GET", "/items/{id}", path_id=path_id, user=user), None)
        assert missing["statusCode"] == 404
        assert body_of(missing)["error"] == "not_found"


def test_list_pages_newest_first_with_a_cursor_signed_by_the_linked_secret(app):
    ids = [create(app, f"P{i}")["id"] for i in range(3)]
    first = app.items.list_items(http("GET", "/items", query={"limit": "2"}), None)
    page = body_of(first)
    assert [p["id"] for p in page["items"]] == ids[::-1][:2]

    raw = base64.urlsafe_b64decode(page["nextCursor"] + "=" * (-len(page["nextCursor"]) % 4))
    key = hashlib.sha256(b"harbor-cursor\x00" + SIGNING_KEY.encode()).digest()
    assert raw[:16] == hmac.new(key, raw[16:], hashlib.sha256).digest()[:16]

    second = body_of(app.items.list_items(
        http("GET", "/items", query={"limit": "2", "cursor": page["nextCursor"]}), None
    ))
    assert [p["id"] for p in second["items"]] == [ids[0]]
    assert "nextCursor" not in second


def test_a_tampered_or_borrowed_cursor_is_refused(app):
    for i in range(2):
        create(app, f"P{i}")
    cursor = body_of(app.items.list_items(http("GET", "/items", query={"limit": "1"}), None))["nextCursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    attempts = (({"cursor": tampered}, "user_1"), ({"cursor": cursor}, "intruder"), ({"cursor": "%%%"}, "user_1"))
    for query, user in attempts:
        response = app.items.list_items(http("GET", "/items", query=query, user=user), None)
        assert response["statusCode"] == 400
        assert body_of(response)["error"] == "invalid_cursor"


def test_delete_removes_the_project_and_a_second_delete_is_404(app):
    project = create(app)
    gone = app.items.delete(http("DELETE", "/items/{id}", path_id=project["id"]), None)
    assert gone["statusCode"] == 204 and "body" not in gone
    assert stored(app, "user_1", project["id"]) == {}
    again = app.items.delete(http("DELETE", "/items/{id}", path_id=project["id"]), None)
    assert again["statusCode"] == 404


def test_the_iam_principal_is_the_caller_when_routes_use_iam_auth(app):
    event = http("POST", "/items", body={"name": "Signed"}, user=None)
    arn = "arn:aws:sts::123456789012:assumed-role/developer/alice"
    event["requestContext"]["authorizer"] = {"iam": {"userArn": arn, "accountId": "123456789012"}}
    project = body_of(app.items.create(event, None))
    assert stored(app, arn, project["id"])["userId"] == {"S": arn}


def test_a_base64_encoded_body_is_accepted(app):
    response = app.items.create(http("POST", "/items", body={"name": "B64"}, base64_body=True), None)
    assert response["statusCode"] == 201 and body_of(response)["name"] == "B64"


@pytest.mark.parametrize(
    ("event_kwargs", "status", "code", "says"),
    [
        ({}, 400, "missing_body", "send a JSON object"),
        ({"raw_body": '{"name": "x",'}, 400, "malformed_json", "not valid JSON"),
        ({"raw_body": "[1, 2]"}, 400, "malformed_json", "must be a JSON object"),
        ({"body": {"description": "no name"}}, 400, "missing_field", "'name' is required"),
        ({"body": {"name": 42}}, 400, "invalid_field", "'name' must be a string"),
        ({"body": {"name": "   "}}, 400, "invalid_field", "'name' must not be empty"),
        ({"body": {"name": "x" * 101}}, 400, "invalid_field", "at most 100 characters"),
        ({"body": {"name": "x", "owner": "someone"}}, 400, "unknown_field", "unknown field(s): owner"),
        ({"body": {"name": "x"}, "user": None}, 401, "unauthorized", "sign in first"),
        ({"raw_body": "x" * 20000}, 413, "body_too_large", "larger than"),
    ],
)
def test_bad_create_requests_get_a_4xx_with_a_clear_json_body(app, event_kwargs, status, code, says):
    response = app.items.create(http("POST", "/items", **event_kwargs), None)
    assert response["statusCode"] == status
    body = body_of(response)
    assert body["error"] == code and says in body["message"]
    assert app.dynamodb.scan(TableName=app.table)["Count"] == 0


@pytest.mark.parametrize(
    ("query", "code"),
    [({"limit": "0"}, "invalid_limit"), ({"limit": "abc"}, "invalid_limit"), ({"limit": "101"}, "invalid_limit"),
     ({"status": "archived"}, "invalid_status")],
)
def test_bad_list_parameters_get_a_400(app, query, code):
    response = app.items.list_items(http("GET", "/items", query=query), None)
    assert response["statusCode"] == 400 and body_of(response)["error"] == code


# -- the worker -----------------------------------------------------------------------------------


def test_worker_marks_the_project_ready_and_list_by_status_finds_it_through_gsi1(app):
    ready, waiting = create(app, "Ready"), create(app, "Waiting", user="user_1")
    messages = app.sqs.receive_message(
        QueueUrl=app.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    mine = [m for m in messages if ready["id"] in m["Body"]]
    assert len(mine) == 1

    result = app.worker.handler(sqs_event(app, mine), None)
    assert result == {"batchItemFailures": []}
    item = stored(app, "user_1", ready["id"])
    assert item["status"] == {"S": "ready"} and "readyAt" in item
    assert item["gsi1pk"] == {"S": "USER#user_1#STATUS#ready"}

    def listed(status: str) -> list[str]:
        page = app.items.list_items(http("GET", "/items", query={"status": status}), None)
        return [p["id"] for p in body_of(page)["items"]]

    assert listed("ready") == [ready["id"]]
    assert listed("pending") == [waiting["id"]]
    # Running the same task again changes nothing (SQS delivers at least once).
    assert app.worker.handler(sqs_event(app, mine), None) == {"batchItemFailures": []}
    assert stored(app, "user_1", ready["id"])["readyAt"] == item["readyAt"]


def test_worker_reports_only_the_records_that_failed(app):
    project = create(app)
    task = {"type": "persona.requested", "userId": "user_1", "projectId": project["id"]}
    event = {"Records": [
        record("bad-json", "{not json"),
        record("good", task),
        record("unknown-type", {**task, "type": "persona.deleted"}),
        record("no-user", {"type": "persona.requested", "projectId": project["id"]}),
    ]}
    result = app.worker.handler(event, None)
    assert result == {"batchItemFailures": [
        {"itemIdentifier": "bad-json"}, {"itemIdentifier": "unknown-type"}, {"itemIdentifier": "no-user"}
    ]}
    assert stored(app, "user_1", project["id"])["status"] == {"S": "ready"}


def test_worker_drops_a_task_for_a_project_deleted_meanwhile(app):
    project = create(app)
    app.items.delete(http("DELETE", "/items/{id}", path_id=project["id"]), None)
    task = {"type": "persona.requested", "userId": "user_1", "projectId": project["id"]}
    assert app.worker.handler({"Records": [record("late", task)]}, None) == {"batchItemFailures": []}
    assert stored(app, "user_1", project["id"]) == {}  # not recreated by the update


def test_worker_keeps_fifo_order_by_failing_the_rest_of_a_broken_group(app):
    first, second = create(app, "First"), create(app, "Second", user="user_2")
    event = {"Records": [
        record("g1-bad", "{", group="user_1"),
        record("g1-later", {"type": "persona.requested", "userId": "user_1", "projectId": first["id"]}, group="user_1"),
        record("g2", {"type": "persona.requested", "userId": "user_2", "projectId": second["id"]}, group="user_2"),
    ]}
    result = app.worker.handler(event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "g1-bad"}, {"itemIdentifier": "g1-later"}]}
    assert stored(app, "user_1", first["id"])["status"] == {"S": "pending"}
    assert stored(app, "user_2", second["id"])["status"] == {"S": "ready"}


def test_worker_retries_a_record_when_dynamodb_throttles(app, monkeypatch):
    def throttled(**kwargs: Any) -> None:
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
        raise ClientError({"Error": error}, "UpdateItem")

    monkeypatch.setattr(app.worker._dynamodb, "update_item", throttled)
    task = {"type": "persona.requested", "userId": "user_1", "projectId": "01J0000000000000000000000"}
    result = app.worker.handler({"Records": [record("m1", task)]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


# -- the runtime code stays deployable --------------------------------------------------------------


def test_no_module_under_app_imports_pulumi():
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "pulumi"]
    assert offenders == []


def test_health_answers_ok_as_json_without_any_link(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    sys.path.insert(0, str(ROOT))
    try:
        health = importlib.import_module("app.functions.health")
    finally:
        sys.path.remove(str(ROOT))
    response = health.handler({"rawPath": "/health", "requestContext": {"http": {"method": "GET"}}})
    assert response["statusCode"] == 200
    assert response["headers"] == {"content-type": "application/json", "cache-control": "no-store"}
    body = json.loads(response["body"])
    assert set(body) == {"status", "region", "time"}
    assert (body["status"], body["region"]) == ("ok", "eu-west-1")
    assert datetime.fromisoformat(body["time"]).tzinfo is not None
    # The handler module stays free of pulumi, as everything Lambda imports.
    tree = ast.parse((ROOT / "app/functions/health.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "pulumi" not in imported
