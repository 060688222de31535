"""The embedded AWS: moto's server on 127.0.0.1, holding the stage's resources from its plan.

:func:`provision` creates, from the plan's recorded inputs: DynamoDB tables (keys,
global and local indexes, TTL, streams), S3 buckets, SQS queues (dead-letter queues
first, then the queues that redrive to them), SNS topics and their subscriptions
(raw delivery, filter policies and their scope), the stage's local secret values as
SSM SecureStrings at ``/<app>/<stage>/<Name>``, and each local database's master
secret in Secrets Manager. Moto keeps everything in memory; :func:`save_data` and
:func:`restore_data` carry tables' items and buckets' objects across a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from components.aws.secret import secret_path
from infra.dev.model import DevApp
from infra.mocks import ACCOUNT_ID

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class EmbeddedAws:
    """moto's server in a thread of this process, bound to 127.0.0.1."""

    def __init__(self, port: int, region: str) -> None:
        from moto.server import ThreadedMotoServer

        # The server logs every request; the invocation lines say what matters.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = port
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()
        self._reset()

    def stop(self) -> None:
        self._reset()
        self._server.stop()

    def _reset(self) -> None:
        # Moto's backends are per process, not per server: start and leave them empty.
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def environment(self) -> dict[str, str]:
        """What points the AWS SDKs (boto3, the JavaScript SDK, the CLI) at this server."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


def database_secret_name(identifier: str) -> str:
    """Where a local database's master credentials live (RDS names its managed secrets alike)."""
    return f"rds!cluster-{identifier}"


def database_secret_arn(region: str, identifier: str) -> str:
    """A partial ARN (no random suffix), which Secrets Manager resolves like the full one."""
    return f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{database_secret_name(identifier)}"


def _table(inputs: dict[str, Any]) -> dict[str, Any]:
    def keys(spec: dict[str, Any]) -> list[dict[str, str]]:
        schema = [{"AttributeName": spec["hashKey"], "KeyType": "HASH"}]
        if spec.get("rangeKey"):
            schema.append({"AttributeName": spec["rangeKey"], "KeyType": "RANGE"})
        return schema

    def projection(spec: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {"ProjectionType": spec.get("projectionType") or "ALL"}
        if spec.get("nonKeyAttributes"):
            found["NonKeyAttributes"] = list(spec["nonKeyAttributes"])
        return found

    request: dict[str, Any] = {
        "TableName": inputs["name"],
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        "KeySchema": keys(inputs),
        "BillingMode": inputs.get("billingMode") or "PAY_PER_REQUEST",
    }
    provisioned = request["BillingMode"] == "PROVISIONED"
    throughput = {"ReadCapacityUnits": int(inputs.get("readCapacity") or 1),
                  "WriteCapacityUnits": int(inputs.get("writeCapacity") or 1)}
    if provisioned:
        request["ProvisionedThroughput"] = throughput
    indexes = []
    for index in inputs.get("globalSecondaryIndexes") or []:
        entry = {"IndexName": index["name"], "KeySchema": keys(index), "Projection": projection(index)}
        if provisioned:
            entry["ProvisionedThroughput"] = throughput
        indexes.append(entry)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    local = [
        {"IndexName": index["name"],
         "KeySchema": [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"},
                       {"AttributeName": index["rangeKey"], "KeyType": "RANGE"}],
         "Projection": projection(index)}
        for index in inputs.get("localSecondaryIndexes") or []
    ]
    if local:
        request["LocalSecondaryIndexes"] = local
    if inputs.get("streamEnabled"):
        request["StreamSpecification"] = {"StreamEnabled": True,
                                          "StreamViewType": inputs.get("streamViewType") or "NEW_AND_OLD_IMAGES"}
    return request


QUEUE_ATTRIBUTES = {
    "fifoQueue": "FifoQueue",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "delaySeconds": "DelaySeconds",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "maxMessageSize": "MaximumMessageSize",
    "redrivePolicy": "RedrivePolicy",
    "deduplicationScope": "DeduplicationScope",
    "fifoThroughputLimit": "FifoThroughputLimit",
}


def _queue_attributes(inputs: dict[str, Any]) -> dict[str, str]:
    attributes = {}
    for key, name in QUEUE_ATTRIBUTES.items():
        value = inputs.get(key)
        if value is None or value == "" or (key in ("fifoQueue", "contentBasedDeduplication") and not value):
            continue
        if isinstance(value, bool):
            attributes[name] = "true" if value else "false"
        elif isinstance(value, float):
            attributes[name] = str(int(value))
        else:
            attributes[name] = str(value)
    return attributes


def provision(aws: EmbeddedAws, app: DevApp, secrets: dict[str, str], databases: dict[str, dict[str, str]]) -> None:
    """Create the plan's resources in the embedded AWS."""
    dynamodb = aws.client("dynamodb")
    for table in app.tables:
        dynamodb.create_table(**_table(table))
        ttl = table.get("ttl") or {}
        if ttl.get("enabled") and ttl.get("attributeName"):
            dynamodb.update_time_to_live(
                TableName=table["name"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )

    s3 = aws.client("s3")
    for bucket in app.buckets:
        if aws.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": aws.region})

    sqs = aws.client("sqs")
    # A redrive policy names its dead-letter queue, which must exist first.
    for queue in sorted(app.queues, key=lambda q: bool(q.get("redrivePolicy"))):
        sqs.create_queue(QueueName=queue["name"], Attributes=_queue_attributes(queue))

    sns = aws.client("sns")
    for topic in app.topics:
        attributes = {}
        if topic.get("fifoTopic"):
            attributes["FifoTopic"] = "true"
        if topic.get("contentBasedDeduplication"):
            attributes["ContentBasedDeduplication"] = "true"
        sns.create_topic(Name=topic["name"], Attributes=attributes)
    for subscription in app.subscriptions:
        if subscription.get("protocol") != "sqs":
            continue  # function subscribers are wired by infra.dev.workers
        sns.subscribe(
            TopicArn=subscription["topic"], Protocol="sqs", Endpoint=subscription["endpoint"],
            Attributes=subscription_attributes(subscription),
        )

    ssm = aws.client("ssm")
    for name, value in sorted(secrets.items()):
        ssm.put_parameter(Name=secret_path(app.project, app.stage, name), Value=value, Type="SecureString")

    secretsmanager = aws.client("secretsmanager")
    for identifier, credentials in databases.items():
        secretsmanager.create_secret(Name=database_secret_name(identifier), SecretString=json.dumps(credentials))


def subscription_attributes(subscription: dict[str, Any]) -> dict[str, str]:
    """A subscription's delivery settings as SNS's Subscribe takes them."""
    attributes: dict[str, str] = {}
    if subscription.get("rawMessageDelivery"):
        attributes["RawMessageDelivery"] = "true"
    if subscription.get("filterPolicy"):
        attributes["FilterPolicy"] = subscription["filterPolicy"]
        attributes["FilterPolicyScope"] = subscription.get("filterPolicyScope") or "MessageAttributes"
    return attributes


# -- what survives a restart ------------------------------------------------------------------------
# Moto keeps data in memory only; the items of each table and the objects of each bucket are
# written to the stage's folder when infra dev stops and put back when it starts. Queue
# messages and topic deliveries in flight are not kept.


def save_data(aws: EmbeddedAws, app: DevApp, folder: Path) -> None:
    """Write every table's items and every bucket's objects under ``folder``."""
    dynamodb = aws.client("dynamodb")
    tables = folder / "dynamodb"
    tables.mkdir(parents=True, exist_ok=True)
    for table in app.tables:
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=table["name"]):
            items.extend(page.get("Items") or [])
        (tables / f"{table['name']}.json").write_text(json.dumps(items))
    s3 = aws.client("s3")
    for bucket in app.buckets:
        target = folder / "s3" / bucket
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        index = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents") or []:
                key = entry["Key"]
                found = s3.get_object(Bucket=bucket, Key=key)
                name = hashlib.sha256(key.encode()).hexdigest()
                (target / name).write_bytes(found["Body"].read())
                index[key] = {"file": name, "contentType": found.get("ContentType")}
        (target / "index.json").write_text(json.dumps(index))


def restore_data(aws: EmbeddedAws, app: DevApp, folder: Path) -> list[str]:
    """Put back what :func:`save_data` wrote; returns a note per table or bucket it could not restore."""
    notes = []
    dynamodb = aws.client("dynamodb")
    for table in app.tables:
        path = folder / "dynamodb" / f"{table['name']}.json"
        if not path.exists():
            continue
        items = json.loads(path.read_text())
        try:
            for start in range(0, len(items), 25):
                dynamodb.batch_write_item(
                    RequestItems={table["name"]: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
                )
        except Exception as error:  # the table's keys changed since: start it empty, say so
            notes.append(f"table {table['name']}: saved items no longer fit ({error}); starting empty")
    s3 = aws.client("s3")
    for bucket in app.buckets:
        target = folder / "s3" / bucket
        if not (target / "index.json").exists():
            continue
        for key, entry in json.loads((target / "index.json").read_text()).items():
            extra = {"ContentType": entry["contentType"]} if entry.get("contentType") else {}
            s3.put_object(Bucket=bucket, Key=key, Body=(target / entry["file"]).read_bytes(), **extra)
    return notes
