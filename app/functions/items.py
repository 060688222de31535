"""HTTP API handlers for projects, stored in the single-table design.

Routes (API Gateway HTTP API, payload format 2.0)::

    POST   /items             create      body {"name": str, "description"?: str}
    GET    /items             list_items  ?status=pending|ready  &limit=1..100  &cursor=...
    GET    /items/{id}        get
    DELETE /items/{id}        delete

Each item is a project owned by the caller.

Links: ``Table`` (required), ``SecretKey`` (signs list cursors) and, when linked,
``TaskTopic`` (create publishes a ``persona.requested`` task for the worker).

Item layout in ``Resource.Table`` (keys are strings)::

    pk     = USER#<userId>                     a user's projects live in one partition
    sk     = PROJECT#<projectId>               project ids sort by creation time
    gsi1pk = USER#<userId>#STATUS#<status>     "gsi1": a user's projects by status,
    gsi1sk = <createdAt>#<projectId>           oldest first

The caller is the ``sub`` claim of the JWT authorizer (Clerk in seed 002), or the
IAM principal on a stage whose routes use IAM auth; the handlers never trust a user
id sent in the body, path or headers.

Every response is JSON. Client mistakes get 4xx with ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from sst import Resource

logger = logging.getLogger()
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

NAME_MAX = 100
DESCRIPTION_MAX = 1000
BODY_MAX = 16 * 1024
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
STATUSES = ("pending", "ready")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Created once per container: boto3 clients are thread-safe and slow to build.
_dynamodb = boto3.client("dynamodb")
_sns = None


class HttpError(Exception):
    """A request the handler refuses, with the status and the body the client sees."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# -- keys and items ------------------------------------------------------------------------


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def project_sk(project_id: str) -> str:
    return f"PROJECT#{project_id}"


def status_pk(user_id: str, status: str) -> str:
    return f"USER#{user_id}#STATUS#{status}"


def new_project_id(now_ms: int | None = None) -> str:
    """A ULID-style id (26 Crockford base32 chars): ms timestamp then 80 random bits.

    Ids that sort by creation time keep ``sk`` ordered, so the newest-first list
    is a plain reverse query with no extra index.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def is_project_id(value: str) -> bool:
    return len(value) == 26 and all(c in CROCKFORD for c in value)


def to_public(item: dict[str, Any]) -> dict[str, Any]:
    """The client's view of a stored item: plain values, no key attributes."""
    project = {
        "id": item["id"]["S"],
        "name": item["name"]["S"],
        "status": item["status"]["S"],
        "createdAt": item["createdAt"]["S"],
    }
    for optional in ("description", "readyAt"):
        if optional in item:
            project[optional] = item[optional]["S"]
    return project


# -- HTTP plumbing -------------------------------------------------------------------------


def respond(status: int, body: Any | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
    }
    if body is not None:
        response["body"] = json.dumps(body)
    return response


def error(status: int, code: str, message: str) -> dict[str, Any]:
    return respond(status, {"error": code, "message": message})


def caller(event: dict[str, Any]) -> str:
    """The authenticated user id: the JWT's subject, a Lambda authorizer's userId or the IAM principal."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    user_id = (
        claims.get("sub")
        or (authorizer.get("lambda") or {}).get("userId")
        or (authorizer.get("iam") or {}).get("userArn")
    )
    if not isinstance(user_id, str) or not user_id:
        raise HttpError(401, "unauthorized", "sign in first: the request carries no user identity")
    return user_id


def json_body(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body")
    if raw is None or raw == "":
        raise HttpError(400, "missing_body", 'send a JSON object, e.g. {"name": "My project"}')
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "malformed_body", "the body is not valid base64-encoded UTF-8") from exc
    if len(raw) > BODY_MAX:
        raise HttpError(413, "body_too_large", f"the body is larger than {BODY_MAX} bytes")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "malformed_json", "the body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool, max_length: int) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise HttpError(400, "missing_field", f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise HttpError(400, "invalid_field", f"'{name}' must be a string")
    value = value.strip()
    if required and not value:
        raise HttpError(400, "invalid_field", f"'{name}' must not be empty")
    if len(value) > max_length:
        raise HttpError(400, "invalid_field", f"'{name}' must be at most {max_length} characters")
    return value


def path_id(event: dict[str, Any]) -> str:
    project_id = (event.get("pathParameters") or {}).get("id")
    if not project_id:
        raise HttpError(400, "missing_id", "the path needs a project id: /items/{id}")
    if not is_project_id(project_id):
        # Same answer as a missing project: ids are opaque, and a 404 reveals nothing.
        raise HttpError(404, "not_found", f"no project with id '{project_id}'")
    return project_id


def handle(fn):
    """Turn HttpError into its response and anything unexpected into a logged 500."""

    def wrapper(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        try:
            return fn(event)
        except HttpError as exc:
            return error(exc.status, exc.code, exc.message)
        except Exception:
            logger.exception("unhandled error in %s", fn.__name__)
            return error(500, "internal", "something went wrong on our side; try again")

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# -- cursors ---------------------------------------------------------------------------------


def _cursor_key() -> bytes:
    return hashlib.sha256(b"harbor-cursor\x00" + Resource.SecretKey.value.encode()).digest()


def encode_cursor(last_key: dict[str, Any], user_id: str) -> str:
    """An opaque next-page token, signed so a client cannot aim the query elsewhere."""
    payload = json.dumps({"u": user_id, "k": last_key}, sort_keys=True, separators=(",", ":")).encode()
    tag = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")


def decode_cursor(token: str, user_id: str) -> dict[str, Any]:
    invalid = HttpError(400, "invalid_cursor", "the cursor is not one this API issued; start again without it")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as exc:
        raise invalid from exc
    tag, payload = raw[:16], raw[16:]
    expected = hmac.new(_cursor_key(), payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(tag, expected):
        raise invalid
    data = json.loads(payload)
    if data.get("u") != user_id:
        raise invalid
    return data["k"]


# -- handlers --------------------------------------------------------------------------------


@handle
def create(event: dict[str, Any]) -> dict[str, Any]:
    """POST /items: store a new pending project and ask the worker to prepare it."""
    user_id = caller(event)
    body = json_body(event)
    name = text_field(body, "name", required=True, max_length=NAME_MAX)
    description = text_field(body, "description", required=False, max_length=DESCRIPTION_MAX)
    unknown = sorted(set(body) - {"name", "description"})
    if unknown:
        raise HttpError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}; allowed: name, description")

    project_id = new_project_id()
    created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    item = {
        "pk": {"S": user_pk(user_id)},
        "sk": {"S": project_sk(project_id)},
        "gsi1pk": {"S": status_pk(user_id, "pending")},
        "gsi1sk": {"S": f"{created_at}#{project_id}"},
        "id": {"S": project_id},
        "userId": {"S": user_id},
        "name": {"S": name},
        "status": {"S": "pending"},
        "createdAt": {"S": created_at},
    }
    if description:
        item["description"] = {"S": description}
    _dynamodb.put_item(
        TableName=Resource.Table.name,
        Item=item,
        ConditionExpression="attribute_not_exists(pk)",  # never overwrite on an id collision
    )
    _request_persona(user_id, project_id)
    return respond(201, to_public(item))


@handle
def get(event: dict[str, Any]) -> dict[str, Any]:
    """GET /items/{id}: one of the caller's projects."""
    user_id = caller(event)
    project_id = path_id(event)
    found = _dynamodb.get_item(
        TableName=Resource.Table.name,
        Key={"pk": {"S": user_pk(user_id)}, "sk": {"S": project_sk(project_id)}},
        ConsistentRead=True,  # a client reading right after create must see its project
    )
    if "Item" not in found:
        raise HttpError(404, "not_found", f"no project with id '{project_id}'")
    return respond(200, to_public(found["Item"]))


@handle
def list_items(event: dict[str, Any]) -> dict[str, Any]:
    """GET /items: the caller's projects, newest first; ``?status=`` lists by status via gsi1."""
    user_id = caller(event)
    params = event.get("queryStringParameters") or {}
    limit_text = params.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise HttpError(400, "invalid_limit", f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise HttpError(400, "invalid_status", f"'status' must be one of: {', '.join(STATUSES)}")

    query: dict[str, Any] = {"TableName": Resource.Table.name, "Limit": int(limit_text)}
    if status is None:
        query.update(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": user_pk(user_id)}, ":prefix": {"S": "PROJECT#"}},
            ScanIndexForward=False,
        )
    else:
        query.update(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :gsi1pk",
            ExpressionAttributeValues={":gsi1pk": {"S": status_pk(user_id, status)}},
        )
    if params.get("cursor"):
        query["ExclusiveStartKey"] = decode_cursor(params["cursor"], user_id)

    page = _dynamodb.query(**query)
    body: dict[str, Any] = {"items": [to_public(item) for item in page.get("Items", [])]}
    if "LastEvaluatedKey" in page:
        body["nextCursor"] = encode_cursor(page["LastEvaluatedKey"], user_id)
    return respond(200, body)


@handle
def delete(event: dict[str, Any]) -> dict[str, Any]:
    """DELETE /items/{id}: remove one of the caller's projects."""
    user_id = caller(event)
    project_id = path_id(event)
    try:
        _dynamodb.delete_item(
            TableName=Resource.Table.name,
            Key={"pk": {"S": user_pk(user_id)}, "sk": {"S": project_sk(project_id)}},
            ConditionExpression="attribute_exists(pk)",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise HttpError(404, "not_found", f"no project with id '{project_id}'") from exc
        raise
    return respond(204)


# -- the task for the worker --------------------------------------------------------------


def _linked(name: str) -> Any | None:
    """A linked resource, or None when this function was deployed without that link."""
    try:
        return getattr(Resource, name)
    except Exception:  # sst-sdk raises a bare Exception for a missing link
        return None


def _request_persona(user_id: str, project_id: str) -> None:
    topic = _linked("TaskTopic")
    if topic is None:
        return
    global _sns
    if _sns is None:
        _sns = boto3.client("sns")
    publish: dict[str, Any] = {
        "TopicArn": topic.arn,
        "Message": json.dumps({"type": "persona.requested", "userId": user_id, "projectId": project_id}),
        # The subscription filter routes on this attribute (seed 001: queue = persona).
        "MessageAttributes": {"queue": {"DataType": "String", "StringValue": "persona"}},
    }
    if topic.arn.endswith(".fifo"):
        publish["MessageGroupId"] = user_id  # one user's tasks in order, users in parallel
        publish["MessageDeduplicationId"] = project_id
    _sns.publish(**publish)
