"""The application, assembled per stage. Read it as a table of contents.

Each section builds one part with the harbor components; the stage file
(Pulumi.<stage>.yaml) decides removal policy, protection, NAT, domains and sizes.
"""

import pulumi

from components import Bucket, Dynamo, start_app

app = start_app()  # validates Pulumi.<stage>.yaml before any resource exists

# -- Data: the single-table design (seed 000) -------------------------------------------
table = Dynamo(
    "Table",
    fields={"pk": "string", "sk": "string", "gsi1pk": "string", "gsi1sk": "string"},
    primary_index={"hash_key": "pk", "range_key": "sk"},
    global_indexes={"gsi1": {"hash_key": "gsi1pk", "range_key": "gsi1sk"}},
    ttl="expiresAt",
)

# -- Storage: build artifacts and logs with lifecycle rules (seed 004) -------------------
artifacts = Bucket("Artifacts", lifecycle=[{"id": "expire-artifacts", "expiration_days": 90}])
logs = Bucket(
    "Logs",
    lifecycle=[
        {
            "id": "archive-logs",
            "transitions": [
                {"days": 30, "storage_class": "GLACIER"},
                {"days": 365, "storage_class": "DEEP_ARCHIVE"},
            ],
        }
    ],
)

pulumi.export("tableName", table.name)
pulumi.export("artifactsBucket", artifacts.name)
pulumi.export("logsBucket", logs.name)
