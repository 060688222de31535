"""IAM and resource-policy building blocks that several components share.

Example::

    policy_json(deny_insecure_transport("sqs:*", queue_arn), allow_service(
        "AllowSnsSend", "sns.amazonaws.com", "sqs:SendMessage", queue_arn, source_arn=topic_arn))
"""

from __future__ import annotations

import json
from typing import Any


def deny_insecure_transport(action: str, resource: str | list[str]) -> dict[str, Any]:
    """A statement refusing every request to ``resource`` that is not made over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def allow_service(sid: str, service: str, action: str, resource: str, *, source_arn: str) -> dict[str, Any]:
    """A statement letting one AWS service act on ``resource``, only on behalf of ``source_arn``.

    The ``aws:SourceArn`` condition keeps another account's topic or rule (the confused
    deputy) from using the same service principal against this resource.
    """
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": action,
        "Resource": resource,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    }


def policy_json(*statements: dict[str, Any]) -> str:
    """A policy document; keys sorted so the same statements always give the same text."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)
