"""ReggieDbMigrator: `alembic upgrade head` against ReggieDb, run once per deploy that changes it.

The password is read from Secrets Manager at run time and URL-encoded into DATABASE_URL
(RDS generates passwords with characters a URL cannot hold as they are). An exception here
fails the deploy, with this function's error message.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote


def database_url() -> str:
    import boto3
    from sst import Resource

    db = Resource.ReggieDb
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=db.secretArn)
    password = quote(json.loads(secret["SecretString"])["password"], safe="")
    return f"postgresql+psycopg://{db.username}:{password}@{db.host}:{db.port}/{db.database}?sslmode=require"


def handler(event, context):
    from alembic import command
    from alembic.config import Config

    os.environ["DATABASE_URL"] = database_url()
    config = Config(os.path.join(os.path.dirname(__file__), "alembic.ini"))
    command.upgrade(config, event.get("revision", "head"))
    return {"upgraded": event.get("revision", "head")}
