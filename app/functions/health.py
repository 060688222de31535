"""``GET /health``: a public liveness check for the API (the sample site's status page calls it).

It answers without touching any linked resource, so it says that API Gateway reaches a
running handler, and nothing about the database or the table. No caller data is read
and nothing secret is returned::

    {"status": "ok", "region": "eu-west-1", "time": "2026-11-22T07:30:00+00:00"}
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any


def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) handler."""
    body = {
        "status": "ok",
        "region": os.environ.get("AWS_REGION"),
        "time": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": json.dumps(body),
    }
