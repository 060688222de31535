"""SST-style AWS components for Python, on the Pulumi engine.

Start the app, then create components; each follows the stage's naming, tags,
removal policy and protection::

    from components import Bucket, Dynamo, start_app

    app = start_app()
    table = Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
"""

from components.base import Component, ComponentArgs, ComponentError
from components.bucket import Bucket
from components.context import App, current_app, start_app
from components.dynamo import Dynamo
from components.linking import Linkable, Permission

__all__ = [
    "App",
    "Bucket",
    "Component",
    "ComponentArgs",
    "ComponentError",
    "Dynamo",
    "Linkable",
    "Permission",
    "current_app",
    "start_app",
]
