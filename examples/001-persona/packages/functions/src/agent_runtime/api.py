"""The persona API: list a user's personas, and request a new one (queued through the task topic)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from sst import Resource

_table = None
_sns = None


def _personas():
    global _table
    if _table is None:
        _table = boto3.resource("dynamodb").Table(Resource.Persona.name)
    return _table


def _topic():
    global _sns
    if _sns is None:
        _sns = boto3.client("sns")
    return _sns


def _user(event: dict[str, Any]) -> str | None:
    return (event.get("queryStringParameters") or {}).get("userId")


def get_all_user_personas_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """GET /personas?userId=...: the user's personas, through the UserIdIndex."""
    user = _user(event)
    if not user:
        return {"statusCode": 400, "body": json.dumps({"error": "userId is required"})}
    items = _personas().query(IndexName="UserIdIndex", KeyConditionExpression=Key("userId").eq(user))["Items"]
    return {"statusCode": 200, "body": json.dumps({"personas": items}, default=str)}


def request_persona_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """POST /personas: record the request and hand it to the persona queue."""
    body = json.loads(event.get("body") or "{}")
    user = body.get("userId")
    if not user:
        return {"statusCode": 400, "body": json.dumps({"error": "userId is required"})}
    persona_id = str(uuid.uuid4())
    _personas().put_item(Item={"personaId": persona_id, "userId": user, "personaStatus": "requested"})
    _topic().publish(
        TopicArn=Resource.TaskTopic.arn,
        Message=json.dumps({"personaId": persona_id, "userId": user}),
        MessageGroupId=user,
        MessageAttributes={"queue": {"DataType": "String", "StringValue": "persona"}},
    )
    return {"statusCode": 202, "body": json.dumps({"personaId": persona_id})}
