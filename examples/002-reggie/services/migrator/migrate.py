"""ReggieDbMigrator: `alembic upgrade head` against ReggieDb, run once per deploy that changes it.

The password is read from Secrets Manager at run time and URL-encoded into DATABASE_URL
(RDS generates passwords with characters a URL cannot hold as they are) by harbor_runtime,
which the image carries as a zip would. An exception here fails the deploy, with this
function's error message.
"""

from __future__ import annotations

import os


def handler(event, context):
    from alembic import command
    from alembic.config import Config
    from sst import Resource

    from harbor_runtime import database_url

    os.environ["DATABASE_URL"] = database_url(Resource.ReggieDb, driver="postgresql+psycopg")
    config = Config(os.path.join(os.path.dirname(__file__), "alembic.ini"))
    revision = event.get("revision", "head")
    command.upgrade(config, revision)
    return {"upgraded": revision}
