"""The application, assembled per stage. Read it as a table of contents.

Each section builds one part with the harbor components; the stage file
(Pulumi.<stage>.yaml) decides removal policy, protection, NAT, domains and sizes.
"""

import pulumi

from components import (
    ApiGatewayV2,
    Bucket,
    Dynamo,
    Nextjs,
    Postgres,
    Queue,
    SnsTopic,
    Vpc,
    declare_secrets,
    start_app,
)
from components.core.removal import destroy_guard

app = start_app()  # validates Pulumi.<stage>.yaml before any resource exists

# -- Secrets (seed 002): SSM SecureStrings at /harbor/<stage>/<Name>, fallback /harbor/.fallback/<Name>
# Checked before any resource exists; a missing one stops the run with the `infra secret set`
# command to fix it. Placeholders let dev and personal stages run without the third-party
# keys; staging and prod always need real values. SecretKey signs API cursors: never a placeholder.
secrets = declare_secrets(
    [
        "ClerkPublishableKey", "ClerkSecretKey", "ClerkWebhookSecret",
        "R2Endpoint", "R2AccessKeyId", "R2SecretAccessKey",
        "StripeSecretKey", "StripeWebhookSecret",
        "ResendApiKey", "DvlaApiKey", "SecretKey",
    ],
    placeholders={
        "ClerkPublishableKey": "pk_test_placeholder",
        "ClerkSecretKey": "sk_test_placeholder",
        "ClerkWebhookSecret": "whsec_placeholder",
        "R2Endpoint": "https://placeholder.r2.cloudflarestorage.com",
        "R2AccessKeyId": "placeholder",
        "R2SecretAccessKey": "placeholder",
        "StripeSecretKey": "sk_test_placeholder",
        "StripeWebhookSecret": "whsec_placeholder",
        "ResendApiKey": "re_placeholder",
        "DvlaApiKey": "placeholder",
    },
)

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

# -- Network and database: private subnets, NAT from the stage, Aurora Serverless v2 (seed 002)
vpc = Vpc("Vpc")
database = Postgres("Database", vpc=vpc)

# -- Messaging: tasks fan out from a FIFO topic to filtered FIFO queues (seed 001) --------
# Publishers set the message attribute `queue`; each queue takes its own tasks, and a
# failing task lands in the queue's dead-letter queue after 3 tries.
tasks = SnsTopic("TaskTopic", fifo=True)
persona = Queue("PersonaQueue", fifo=True)
tasks.subscribe_queue("PersonaQueue", persona, filter={"queue": ["persona"]})
persona.subscribe("app/functions/worker.handler", link=[table])

# -- API: Python routes on an HTTP API at api.<domain> / <stage>-api.<domain> (seeds 001/002)
# Callers sign in with the stage's identity provider (harbor:auth, Clerk in seed 002); its JWTs
# carry the user id the handlers trust. A stage without one (a personal stage) demands
# SigV4-signed (IAM) requests instead.
api = ApiGatewayV2("Api", domain=app.stage.domain_for("api"))
api_auth = {"jwt": app.stage.auth.model_dump()} if app.stage.auth else "iam"
# Link only what the handlers use (items.py reads Table, SecretKey and TaskTopic): a database
# link would put them in the VPC, behind the NAT, with network interfaces to release on destroy.
api_function = {"link": [table, secrets.SecretKey, tasks]}
item_routes = {
    "GET /items": "list_items",
    "POST /items": "create",
    "GET /items/{id}": "get",
    "DELETE /items/{id}": "delete",
}
for route_key, handler in item_routes.items():
    api.route(route_key, {"handler": f"app/functions/items.{handler}", **api_function}, auth=api_auth)
# Public liveness check, read by the sites' status page; it links nothing and reveals nothing.
api.route("GET /health", {"handler": "app/functions/health.handler"})

# -- Web: the Next.js sites through OpenNext, at <domain> / <stage>.<domain> (seeds 000/002)
# Built from app/web when its sources, lockfile or build-time values change, reused otherwise.
# A clone without app/web/node_modules plans the sites as skipped, with a warning (`npm ci`
# there to plan them). NEXT_PUBLIC_ values are compiled into the browser bundle, so they must
# be plain strings; both sites build the one app folder, so they share them.
public_env = {"NEXT_PUBLIC_HARBOR_SITE": f"{app.name} sample site"}
web = Nextjs(
    "Web",
    path="app/web",
    link=[table],
    environment={"API_URL": api.url, **public_env},
    domain=app.stage.domain_for(),
)
# Seed 002's admin site at admin.<domain> / <stage>-admin.<domain>; it shares the sample app.
admin = Nextjs("Admin", path="app/web", environment=public_env, domain=app.stage.domain_for("admin"))

pulumi.export("tableName", table.name)
pulumi.export("artifactsBucket", artifacts.name)
pulumi.export("logsBucket", logs.name)
pulumi.export("vpcId", vpc.id)
pulumi.export("privateSubnetIds", vpc.private_subnet_ids)
pulumi.export("databaseHost", database.host)
pulumi.export("databaseSecretArn", database.secret_arn)
pulumi.export("taskTopicArn", tasks.arn)
pulumi.export("personaQueueUrl", persona.url)
pulumi.export("apiUrl", api.url)
pulumi.export("webUrl", web.url)
pulumi.export("adminUrl", admin.url)

# -- Last: on a protecting stage (prod), a protected guard that depends on everything above,
# so `pulumi destroy` deletes nothing, even with --skip-preview (see components/core/removal.py).
destroy_guard()
