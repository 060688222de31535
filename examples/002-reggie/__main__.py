"""Seed 002 (Reggie): VPC with EC2 NAT, Aurora Serverless v2, an HTTP API, container Lambdas, two sites.

    infra plan --program examples/002-reggie --stage production   # also: staging, or any personal name

Stages as the seed has them: production (prod's defaults: retain, protected; serves at the
apex), staging (remove) and personal stages (no stage file: dev's defaults, no domain).
Every deployed stage keeps the database's deletion protection; domains are
Cloudflare-proxied under getreggie.io.
"""

import pulumi

from components import ApiGatewayV2, Function, Nextjs, Postgres, Vpc, declare_secrets, start_app

app = start_app()
stage = app.stage.name
deployed = stage in ("production", "staging")

# -- Secrets: SST Secrets -> SSM Parameter Store, one per secret per stage ----------------------
secrets = declare_secrets([
    "ClerkPublishableKey", "ClerkSecretKey", "ClerkWebhookSecret",
    "R2Endpoint", "R2AccessKeyId", "R2SecretAccessKey",
    "StripeSecretKey", "StripeWebhookSecret",
    "ResendApiKey", "DvlaApiKey", "SecretKey",
])

# -- Networking and database ---------------------------------------------------------------------
vpc = Vpc("ReggieVpc", cidr="10.0.0.0/16")  # 2 AZs, EC2 NAT instances (t4g.nano) from the stage file
# Aurora Serverless v2, PostgreSQL 17, encrypted; ACUs and backup days from the stage file.
# The seed links a DATABASE_URL holding the password; harbor links the URL without it and the
# handlers add the password from Secrets Manager at run time with harbor_runtime.database_url
# (see services/migrator/migrate.py): a password must not sit in link data or the console.
database = Postgres("ReggieDb", vpc=vpc, version="17.4", deletion_protection=deployed or None)

# -- Services: container Lambdas (LightGBM and Alembic exceed a zip's 250 MB) ---------------------
valuation = Function(
    "ReggieValuation",
    handler="services/valuation/app.handler",  # Dockerfile generated from public.ecr.aws/lambda/python:3.11
    runtime="python3.11",
    architecture="arm64",
    memory=1536,
    image=True,
    link=[database],
    vpc=vpc,
)
migrator = Function(
    "ReggieDbMigrator",
    handler="services/migrator/migrate.handler",  # services/migrator/Dockerfile
    runtime="python3.11",
    architecture="x86_64",
    memory=512,
    timeout=300,
    image=True,
    link=[database],
    vpc=vpc,
    # `alembic upgrade head` once after each deploy that changes the migrator, after the database
    # (and the VPC's NAT routes); a failed migration fails the deploy with Alembic's error.
    run_on_deploy={"after": [database], "input": {"revision": "head"}},
)

# -- API: one Node.js 22 route function behind every path (Hono), CORS, custom domain -------------
api = ApiGatewayV2("ReggieApi", domain=app.stage.domain_for("api"))  # api.getreggie.io / staging-api.…
api.route(
    "ANY /{proxy+}",
    {
        "handler": "services/api/index.handler",
        "runtime": "nodejs22.x",
        "architecture": "arm64",
        "memory": 1024,
        # The API prices vehicles through ReggieValuation (lambda:InvokeFunction on it only).
        "link": [database, valuation, secrets.ClerkSecretKey, secrets.StripeSecretKey,
                 secrets.StripeWebhookSecret, secrets.ClerkWebhookSecret, secrets.ResendApiKey,
                 secrets.DvlaApiKey, secrets.R2Endpoint, secrets.R2AccessKeyId,
                 secrets.R2SecretAccessKey, secrets.SecretKey],
        "vpc": vpc,
    },
    auth=None,  # the Hono app verifies Clerk sessions itself, as in the seed
)

# -- Frontends: both Next.js apps (web and admin link to the sample app in app/web) ---------------
web = Nextjs("ReggieWeb", path="web", link=[secrets.ClerkPublishableKey],
             environment={"API_URL": api.url}, domain=app.stage.domain_for())
admin = Nextjs("ReggieAdmin", path="admin", link=[secrets.ClerkPublishableKey],
               environment={"API_URL": api.url}, domain=app.stage.domain_for("admin"))

pulumi.export("apiUrl", api.url)
pulumi.export("webUrl", web.url)
pulumi.export("adminUrl", admin.url)
pulumi.export("valuationFunction", valuation.name)
pulumi.export("migratorFunction", migrator.name)
pulumi.export("databaseHost", database.host)
