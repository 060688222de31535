"""examples/: one program per seed, planned for each of its stages, with the seed's own facts."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.cli import main
from infra.harness import Plan, project_name, read_stage_file
from stages import load_stage

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


@pytest.fixture(autouse=True)
def shared_build_cache(monkeypatch):
    # The examples' handlers need the same requirements as the root app: install them once.
    monkeypatch.setenv("HARBOR_CACHE_DIR", str(ROOT / ".build" / "harbor"))


@pytest.fixture
def plan(plan_stage) -> Callable[[str, str], Plan]:
    """An example's plan for a stage: ``plan("000-my-app", "prod")``."""
    return lambda example, stage: plan_stage(stage, program=EXAMPLES / example)


def stage_of(example: str, stage: str):
    program = EXAMPLES / example
    return load_stage(stage, project_name(program), read_stage_file(program, stage))


def table(plan: Plan, name: str) -> dict:
    return plan.one(TABLE, f"{name}-table").inputs


def indexes(inputs: dict) -> dict[str, tuple[str, str | None]]:
    return {i["name"]: (i["hashKey"], i.get("rangeKey")) for i in inputs.get("globalSecondaryIndexes") or []}


@pytest.mark.parametrize(
    ("example", "stages"),
    [
        ("000-my-app", ("dev", "test", "prod")),
        ("001-persona", ("dev", "staging", "prod")),
        ("004-anchor-deploy", ("dev", "production")),
    ],
)
def test_each_example_ships_a_stage_file_per_seed_stage(example, stages):
    files = sorted(p.name for p in (EXAMPLES / example).glob("Pulumi.*.yaml"))
    assert files == sorted(f"Pulumi.{stage}.yaml" for stage in stages)


# -- seed 000: my-app --------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "kept", "domain"),
                         [("dev", False, "dev.myapp.com"), ("test", False, "test.myapp.com"),
                          ("prod", True, "myapp.com")])
def test_seed_000_single_table_and_site_domain_per_stage(plan, stage, kept, domain):
    result = plan("000-my-app", stage)

    assert result.project == "my-app"
    inputs = table(result, "Table")
    assert inputs["name"] == f"my-app-{stage}-Table"
    assert inputs["billingMode"] == "PAY_PER_REQUEST"
    assert (inputs["hashKey"], inputs["rangeKey"]) == ("pk", "sk")
    assert indexes(inputs) == {"gsi1": ("gsi1pk", "gsi1sk")}
    table_resource = result.one(TABLE, "Table-table")  # the site adds its tag-cache table
    assert (table_resource.protect, table_resource.retain_on_delete) == (kept, kept)
    provider = result.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    assert result.outputs["tableName"] == f"my-app-{stage}-Table"
    config = stage_of("000-my-app", stage)
    assert config.domain_for() == domain and config.dns_zone == "myapp.com"
    site = [r for r in result.resources if r.type == "harbor:aws:Nextjs"]
    assert [r.name for r in site] == ["Site"]
    distributions = result.of_type("aws:cloudfront/distribution:Distribution")
    if distributions:  # built when app/web has node_modules
        assert distributions[0].inputs["aliases"] == [domain]
    else:
        assert "skipped" in result.outputs["url"]


# -- seed 001: persona -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_seed_001_persona_table_api_and_fifo_topic_to_a_standard_queue(plan, stage):
    result = plan("001-persona", stage)

    persona = table(result, "Persona")
    assert persona["name"] == f"persona-{stage}-Persona"
    assert persona["hashKey"] == "personaId" and "rangeKey" not in persona
    assert indexes(persona) == {"UserIdIndex": ("userId", None), "StatusIndex": ("personaStatus", None)}
    persona_table = result.one(TABLE, "Persona-table")  # the site adds its tag-cache table
    assert (persona_table.protect, persona_table.retain_on_delete) == ((stage == "prod"),) * 2

    topic = result.one("aws:sns/topic:Topic").inputs
    assert topic["name"] == f"persona-{stage}-TaskTopic.fifo" and topic["fifoTopic"] is True
    queue = result.one("aws:sqs/queue:Queue", "PersonaQueue-queue").inputs
    assert queue["name"] == f"persona-{stage}-PersonaQueue" and "fifoQueue" not in queue
    subscription = result.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert subscription["endpoint"] == f"arn:aws:sqs:us-east-1:123456789012:persona-{stage}-PersonaQueue"
    assert json.loads(subscription["filterPolicy"]) == {"queue": ["persona"]}
    # The site (planned in full when app/web has node_modules) brings queues and functions of its own.
    (queue_policy,) = [q for q in result.of_type("aws:sqs/queuePolicy:QueuePolicy") if not q.name.startswith("MyWeb")]
    (allow,) = [s for s in json.loads(queue_policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == topic["name"].join(
        ["arn:aws:sns:us-east-1:123456789012:", ""])

    routes = {r.inputs["routeKey"] for r in result.of_type("aws:apigatewayv2/route:Route")}
    assert routes == {"GET /personas", "POST /personas"}
    assert result.one("aws:apigatewayv2/api:Api").inputs["name"] == f"persona-{stage}-BackendApi"
    handlers = {r.inputs["handler"] for r in result.of_type("aws:lambda/function:Function")
                if not r.name.startswith(("MyWeb", "NextjsShared"))}
    assert handlers == {"agent_runtime.api.get_all_user_personas_handler", "agent_runtime.api.request_persona_handler"}
    assert [r.name for r in result.resources if r.type == "harbor:aws:Nextjs"] == ["MyWeb"]
    assert result.outputs["apiUrl"].startswith("https://")


# -- seed 004: anchor-deploy ----------------------------------------------------------------


@pytest.mark.parametrize(("stage", "kept"), [("dev", False), ("production", True)])
def test_seed_004_tables_buckets_and_lifecycle_in_singapore(plan, stage, kept):
    result = plan("004-anchor-deploy", stage)

    assert result.one("pulumi:providers:aws").inputs["region"] == "ap-southeast-1"
    projects = table(result, "ProjectsTable")
    assert projects["name"] == f"anchor-deploy-{stage}-ProjectsTable"
    assert projects["hashKey"] == "projectId" and "rangeKey" not in projects
    assert indexes(projects) == {"UserIdIndex": ("userId", None)}
    deployments = table(result, "DeploymentsTable")
    assert (deployments["hashKey"], deployments["rangeKey"]) == ("projectId", "deploymentId")
    assert indexes(deployments) == {"DeploymentIdIndex": ("deploymentId", None), "UserIdIndex": ("userId", None)}
    assert all(t.inputs["billingMode"] == "PAY_PER_REQUEST" for t in result.of_type(TABLE))

    buckets = {b.name: b for b in result.of_type(BUCKET)}
    assert buckets["ArtifactsBucket-bucket"].inputs["bucket"].startswith(f"anchor-deploy-{stage}-artifactsbucket-")
    assert buckets["LogsBucket-bucket"].inputs["bucket"].startswith(f"anchor-deploy-{stage}-logsbucket-")
    rules = {r.name: r.inputs["rules"] for r in result.of_type(LIFECYCLE)}
    (artifacts,) = rules["ArtifactsBucket-lifecycle"]
    assert artifacts["expiration"] == {"days": 90}
    assert artifacts["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    (logs,) = rules["LogsBucket-lifecycle"]
    assert logs["transitions"] == [{"days": 30, "storageClass": "GLACIER"},
                                   {"days": 365, "storageClass": "DEEP_ARCHIVE"}]
    assert logs["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    if kept:
        # Versioned: old versions archive like current ones, and bare delete markers go.
        assert logs["expiration"] == {"expiredObjectDeleteMarker": True}
        assert [t["storageClass"] for t in logs["noncurrentVersionTransitions"]] == ["GLACIER", "DEEP_ARCHIVE"]
    else:
        assert "expiration" not in logs and "noncurrentVersionTransitions" not in logs

    stateful = result.of_type(TABLE) + result.of_type(BUCKET)
    assert len(stateful) == 4
    assert all((r.protect, r.retain_on_delete) == (kept, kept) for r in stateful)


def test_seed_004_production_is_the_production_stage_under_its_own_name():
    production = stage_of("004-anchor-deploy", "production")
    assert production.is_production and (production.removal, production.protect) == ("retain", True)
    assert not stage_of("004-anchor-deploy", "dev").is_production


# -- infra plan --program examples/<seed> --------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "stage", "project"),
    [("000-my-app", "test", "my-app"), ("001-persona", "prod", "persona"),
     ("004-anchor-deploy", "production", "anchor-deploy")],
)
@pytest.mark.usefixtures("cli_plans")
def test_infra_plan_runs_each_example_offline(example, stage, project):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--program", f"examples/{example}", "--stage", stage, "--json"]) == 0
    result = json.loads(out.getvalue())
    assert (result["project"], result["stage"]) == (project, stage)
    assert any(r["type"] == TABLE for r in result["resources"])


# -- seed 001's handlers on moto, with the link data the plan gives them -------------------------


def test_seed_001_handlers_request_and_list_personas_through_the_topic_and_queue(plan, tmp_path, monkeypatch):
    import importlib
    import sys

    import boto3
    from moto import mock_aws

    from components.core.linking import encode_links

    result = plan("001-persona", "dev")
    persona = table(result, "Persona")
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SST_RESOURCE_App", "SST_KEY", "SST_KEY_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(EXAMPLES / "001-persona" / "packages" / "functions" / "src"))

    with mock_aws():
        types = {a["name"]: a["type"] for a in persona["attributes"]}
        boto3.client("dynamodb").create_table(
            TableName=persona["name"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in types.items()],
            KeySchema=[{"AttributeName": persona["hashKey"], "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {"IndexName": i["name"], "KeySchema": [{"AttributeName": i["hashKey"], "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": i["projectionType"]}}
                for i in persona["globalSecondaryIndexes"]
            ],
        )
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic_inputs = result.one("aws:sns/topic:Topic").inputs
        topic = sns.create_topic(Name=topic_inputs["name"],
                                 Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
        queue_url = sqs.create_queue(QueueName=result.one("aws:sqs/queue:Queue", "PersonaQueue-queue").inputs["name"])[
            "QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subscription = result.one("aws:sns/topicSubscription:TopicSubscription").inputs
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"FilterPolicy": subscription["filterPolicy"], "RawMessageDelivery": "true"})

        links = {"Persona": {"name": persona["name"], "type": "sst.aws.Dynamo"},
                 "TaskTopic": {"arn": topic, "type": "sst.aws.SnsTopic"}}
        bundle = encode_links(links, app="persona", stage="dev", key_file=str(tmp_path / "resource.enc"))
        (tmp_path / bundle.file_name).write_bytes(bundle.file_bytes)
        for key, value in bundle.environment.items():
            monkeypatch.setenv(key, value)
        for name in ("sst", "agent_runtime", "agent_runtime.api"):
            sys.modules.pop(name, None)
        try:
            api = importlib.import_module("agent_runtime.api")

            created = api.request_persona_handler({"body": json.dumps({"userId": "u1"})}, None)
            assert created["statusCode"] == 202
            persona_id = json.loads(created["body"])["personaId"]
            listed = api.get_all_user_personas_handler({"queryStringParameters": {"userId": "u1"}}, None)
            assert listed["statusCode"] == 200
            assert [p["personaId"] for p in json.loads(listed["body"])["personas"]] == [persona_id]
            assert api.get_all_user_personas_handler({}, None)["statusCode"] == 400
            (message,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
            assert json.loads(message["Body"]) == {"personaId": persona_id, "userId": "u1"}
        finally:
            for name in ("sst", "agent_runtime", "agent_runtime.api"):
                sys.modules.pop(name, None)
