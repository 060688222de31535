"""``database_url``: a Postgres connection URL from a linked ``Postgres``, its password read at run time.

The link data holds the host, port, database, user and the ARN of the secret Aurora keeps
the password in, never the password itself (it rotates, and link data is fixed at deploy
time). This reads the secret with the function's own grant (``secretsmanager:GetSecretValue``
on that secret only, which linking gives), and URL-encodes user and password, since
generated passwords contain characters such as ``@``, ``/`` and ``%`` that would break
the URL.

Example::

    from sst import Resource
    from harbor_runtime import database_url

    url = database_url(Resource.Database)                       # postgresql://app:p%40ss@host:5432/app?sslmode=require
    url = database_url(Resource.Database, driver="postgresql+psycopg")   # for SQLAlchemy / Alembic
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

CACHE_SECONDS = 300.0
"""How long a password read stays in memory; a rotated password is picked up after this."""

_REQUIRED = ("host", "port", "database", "secretArn")
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


class DatabaseLinkError(RuntimeError):
    """The link or the secret does not hold what a connection URL needs."""


def database_url(
    link: Any,
    *,
    driver: str = "postgresql",
    sslmode: str | None = "require",
    client: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """``{driver}://{user}:{password}@{host}:{port}/{database}?sslmode=...`` for a linked Postgres.

    ``link`` is what SST's SDK gives for the link (``Resource.Database``) or a dict of the
    same fields. ``client`` is a boto3 Secrets Manager client (default: one for the
    function's region). The password is cached for :data:`CACHE_SECONDS`.
    """
    fields = _fields(link)
    missing = [name for name in _REQUIRED if fields.get(name) in (None, "")]
    if missing:
        raise DatabaseLinkError(
            f"the database link has no {', '.join(missing)}; link the Postgres component itself "
            "(link=[database]) so its host, port, database and secretArn are present"
        )
    secret = _secret(str(fields["secretArn"]), client, clock)
    username = secret.get("username") or fields.get("username")
    password = secret.get("password")
    if not username or not password:
        raise DatabaseLinkError(
            f"secret {fields['secretArn']} has no username/password; it must be the cluster's master "
            "user secret (a JSON object with both)"
        )
    credentials = f"{quote(str(username), safe='')}:{quote(str(password), safe='')}"
    query = f"?{urlencode({'sslmode': sslmode})}" if sslmode else ""
    database = quote(str(fields["database"]), safe="")
    return f"{driver}://{credentials}@{fields['host']}:{int(fields['port'])}/{database}{query}"


def clear_cache() -> None:
    """Forget cached passwords (tests, or after a known rotation)."""
    _cache.clear()


def _fields(link: Any) -> Mapping[str, Any]:
    if isinstance(link, Mapping):
        return link
    # SST's SDK hands out objects whose attributes are the link's properties.
    names = (*_REQUIRED, "username")
    found = {name: getattr(link, name, None) for name in names}
    if all(value is None for value in found.values()):
        raise DatabaseLinkError(
            f"{link!r} is not a database link; pass Resource.<Name> of a linked Postgres, or a dict"
        )
    return found


def _secret(arn: str, client: Any, clock: Callable[[], float]) -> dict[str, Any]:
    now = clock()
    cached = _cache.get(arn)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    if client is None:
        import boto3  # in every Lambda Python runtime

        client = boto3.client("secretsmanager")
    response = client.get_secret_value(SecretId=arn)
    try:
        value = json.loads(response["SecretString"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise DatabaseLinkError(f"secret {arn} is not a JSON object with username and password") from None
    if not isinstance(value, dict):
        raise DatabaseLinkError(f"secret {arn} is not a JSON object with username and password")
    _cache[arn] = (now, value)
    return value
