"""Seed 000: a single-table DynamoDB design and a Next.js site, per stage (dev, test, prod).

    infra plan --program examples/000-my-app --stage prod
"""

import pulumi

from components import Dynamo, Nextjs, start_app

app = start_app()  # my-app, us-east-1; prod retains and protects, dev and test remove

# On-demand billing is harbor's default, so the seed's transform setting it is not needed.
table = Dynamo(
    "Table",
    fields={"pk": "string", "sk": "string", "gsi1pk": "string", "gsi1sk": "string"},
    primary_index={"hash_key": "pk", "range_key": "sk"},
    global_indexes={"gsi1": {"hash_key": "gsi1pk", "range_key": "gsi1sk"}},
)

# myapp.com in prod, <stage>.myapp.com elsewhere, in the Route 53 zone myapp.com.
# apps/web links to the repository's sample Next.js app, standing in for the seed's own.
site = Nextjs(
    "Site",
    path="apps/web",
    link=[table],
    environment={"TABLE_NAME": table.name},
    domain=app.stage.domain_for(),
)

pulumi.export("url", site.url)
pulumi.export("tableName", table.name)
