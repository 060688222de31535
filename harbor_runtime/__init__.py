"""Helpers for Lambda handlers of a harbor application. No Pulumi here: Lambda imports this.

Example (seed 002's DATABASE_URL, built when the handler starts)::

    from sst import Resource
    from harbor_runtime import database_url

    os.environ["DATABASE_URL"] = database_url(Resource.Database)
"""

from harbor_runtime.database import DatabaseLinkError, database_url

__all__ = ["DatabaseLinkError", "database_url"]
