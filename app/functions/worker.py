"""The PersonaQueue worker: prepares projects that the API created.

Messages come from the TaskTopic (SNS) through the PersonaQueue (SQS), either in
SNS's envelope or raw (``RawMessageDelivery``); the task itself is JSON::

    {"type": "persona.requested", "userId": "user_123", "projectId": "01J..."}

The worker marks the project ``ready`` and moves it to the ready list of the
``gsi1`` index (see items.py for the key layout). Links: ``Table``.

The event source mapping must enable ``ReportBatchItemFailures``: the handler
returns only the records that failed, so one bad record does not redeliver the
whole batch. A malformed record is reported as failed too; after the queue's
``maxReceiveCount`` it moves to the dead-letter queue where a person can read it,
instead of vanishing. A task for a project deleted meanwhile is done, not failed.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from sst import Resource

logger = logging.getLogger()
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

_dynamodb = boto3.client("dynamodb")

TASK_TYPES = ("persona.requested",)


class BadMessage(ValueError):
    """A record that no retry can fix."""


def parse_task(body: str) -> dict[str, str]:
    """The task in one SQS record body, unwrapped from SNS's envelope if present."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
            message = json.loads(message["Message"])
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadMessage(f"body is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise BadMessage("task must be a JSON object")
    if message.get("type") not in TASK_TYPES:
        raise BadMessage(f"unknown task type {message.get('type')!r}; expected one of {TASK_TYPES}")
    for field in ("userId", "projectId"):
        if not isinstance(message.get(field), str) or not message[field]:
            raise BadMessage(f"task lacks '{field}'")
    return message


def prepare_project(user_id: str, project_id: str) -> bool:
    """Mark the project ready; False when it no longer exists. Safe to run twice."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        _dynamodb.update_item(
            TableName=Resource.Table.name,
            Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"PROJECT#{project_id}"}},
            # gsi1sk stays <createdAt>#<id>, so the ready list keeps creation order.
            UpdateExpression="SET #status = :ready, gsi1pk = :gsi1pk, readyAt = if_not_exists(readyAt, :now)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":ready": {"S": "ready"},
                ":gsi1pk": {"S": f"USER#{user_id}#STATUS#ready"},
                ":now": {"S": now},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def handler(event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Process an SQS batch; return the message ids to retry as ``batchItemFailures``."""
    failures: list[dict[str, str]] = []
    blocked_groups: set[str] = set()
    for record in event.get("Records", []):
        message_id = record.get("messageId", "")
        group = (record.get("attributes") or {}).get("MessageGroupId")
        if group is not None and group in blocked_groups:
            # FIFO: a later task of a group must not overtake the failed one before it.
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            task = parse_task(record.get("body", ""))
            if not prepare_project(task["userId"], task["projectId"]):
                logger.info("project %s was deleted before it was prepared; dropping the task", task["projectId"])
        except BadMessage as exc:
            logger.error("record %s is malformed and will go to the dead-letter queue: %s", message_id, exc)
            failures.append({"itemIdentifier": message_id})
        except Exception:
            logger.exception("record %s failed; SQS will deliver it again", message_id)
            failures.append({"itemIdentifier": message_id})
        else:
            continue
        if group is not None:
            blocked_groups.add(group)
    return {"batchItemFailures": failures}
