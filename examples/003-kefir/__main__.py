"""Seed 003 (kefir-app): single-table DynamoDB, a photo bucket, Cognito sign-in, an HTTP API,
daily reminders on EventBridge Scheduler and alarms, per stage (dev, prod).

    infra plan --program examples/003-kefir --stage dev      # also: prod

prod keeps and protects its data (PITR, deletion protection, versioned photos), restricts
CORS to kefirproducer.com and pages on function errors; dev is removed on destroy. Every
resource carries the seed's Environment and Application tags (the stage files' ``tags``);
harbor adds ``managed-by: pulumi`` itself, the seed's optional ManagedBy.
"""

import pulumi

from components import Alarms, ApiGatewayV2, Bucket, CognitoUserPool, Cron, Dynamo, Function, start_app

app = start_app()  # kefir-app, us-east-1
stage = app.stage
production = stage.is_production

# Names follow harbor's one rule, {app}-{stage}-{name} (kefir-app-dev-Table rather than the
# seed's kefir-app-dev), so every resource of a stage sorts together and never collides.

# -- DataStack: the single table and the photo bucket ----------------------------------------------
table = Dynamo(
    "Table",  # on demand and encrypted at rest: harbor's defaults, as the seed asks
    fields={"PK": "string", "SK": "string", "GSI1PK": "string", "GSI1SK": "string"},
    primary_index={"hash_key": "PK", "range_key": "SK"},
    global_indexes={"GSI1": {"hash_key": "GSI1PK", "range_key": "GSI1SK"}},  # projection ALL
    ttl="TTL",
    point_in_time_recovery=production,
    deletion_protection=production,
)

# Private (public access blocked), SSE-S3 (a bucket key only matters under KMS), versioned
# where the stage protects data (prod); dev's bucket never turns versioning on, which is what
# the seed's "Suspended" amounts to on a new bucket. The name ends in a hash of the account
# and region rather than the seed's account id: as unique, without publishing the account.
photos = Bucket(
    "Photos",
    cors=[{
        "allowed_origins": list(stage.allowed_origins()),  # the stage file's corsOrigins; "*" on dev
        "allowed_methods": ["GET", "PUT", "POST"],
        "allowed_headers": ["*"],
        "expose_headers": ["ETag"],
        "max_age_seconds": 3000,
    }],
    lifecycle=[
        {"id": "delete-old-photos", "expiration_days": 365, "abort_incomplete_upload_days": None},
        {"id": "abort-incomplete-uploads", "abort_incomplete_upload_days": 7},
    ],
)

# -- AuthStack: email sign-in for the mobile app ---------------------------------------------------
users = CognitoUserPool(
    "Users",
    sign_in="email",  # email as the username, verified automatically by a code
    # The seed's MFA is OPTIONAL with no method; AWS then offers users nothing to set up, so
    # harbor refuses that pool: an authenticator app (TOTP) is the method it can offer.
    mfa="optional",
    mfa_methods=["totp"],
    recovery="email",
    password={
        "minimum_length": 8,
        "require_lowercase": False,
        "require_uppercase": False,
        "require_numbers": False,
        "require_symbols": False,
    },
    required_attributes={"email": {"mutable": False}},
)
# Public (no secret), custom auth (the email OTP flow) plus refresh, 1 h / 1 h / 30 days, and
# no hint whether a user exists: harbor's defaults for a public client, spelled out.
mobile = users.add_client(
    "Mobile",
    auth_flows=["custom", "refresh-token"],
    access_token_minutes=60,
    id_token_minutes=60,
    refresh_token_days=30,
)

# -- ApiStack: Node.js 20 on arm64, 512 MB, 30 s, as the seed's lambdaDefaults -----------------------
# Logs go to /aws/lambda/<function> with the stage's retention (14 days dev, 30 prod). Lambda
# sets AWS_REGION itself and refuses a function that sets it, so the seed's copy is left out.
environment = {
    "TABLE_NAME": table.name,
    "BUCKET_NAME": photos.name,
    "USER_POOL_ID": users.id,
    "USER_POOL_CLIENT_ID": mobile.id,
    "STAGE": stage.name,
}
defaults = {"runtime": "nodejs20.x", "architecture": "arm64", "memory": 512, "timeout": 30,
            "environment": environment}

# Linking grants each function exactly its store's actions on that store's ARNs (the table's
# and its indexes' for the table), the seed's least privilege without a shared role.
handle_batches = Function("handleBatches", handler="functions/batches.handler", link=[table], **defaults)
handle_photos = Function("handlePhotos", handler="functions/photos.handler", link=[photos], **defaults)
handle_public = Function("handlePublic", handler="functions/public.handler", link=[table], **defaults)

api = ApiGatewayV2(
    "Api",
    cors={
        # The stage's corsOrigins: kefirproducer.com on prod, any on dev. API Gateway documents
        # only exact origins, "*", "https://*" and "http://*" for HTTP APIs, so the seed's
        # "https://*.kefirproducer.com" may match only literally: list subdomains that call the API.
        "allow_origins": None,
        "allow_methods": ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        "allow_headers": ["Content-Type", "Authorization"],
        "expose_headers": ["Content-Type"],
        "max_age": 300,
        "allow_credentials": False,
    },
    throttle={"rate_limit": 1000, "burst_limit": 2000},
)
# Passing the client makes a JWT authorizer: issuer the pool's, audience the client's id.
api.route("POST /batches", handle_batches, auth=mobile)
api.route("GET /batches", handle_batches, auth=mobile)
api.route("POST /batches/{batchId}/photos", handle_photos, auth=mobile)
api.route("GET /public/b/{batchId}", handle_public, auth=None)  # a batch's public page

# -- SchedulerStack: reminders ----------------------------------------------------------------------
# The seed leaves the schedule open ("future"); reminders go out daily at 08:00 UTC. The
# Scheduler role may invoke this function only (and write to its dead-letter queue).
reminders = Cron(
    "Reminders",
    schedule="cron(0 8 * * ? *)",
    timezone="UTC",
    function={"handler": "functions/reminders.handler", "link": [table], **defaults},
)

# -- MonitoringStack: the seed's error alarm, on every function, on prod ----------------------------
# The stage's alarms setting decides (on for prod, off for dev). The seed alarms when errors
# exceed 10 in each of two 5-minute periods; harbor counts "at least", so 11.
Alarms(
    "Alarms",
    functions=[handle_batches, handle_photos, handle_public, reminders.function],
    crons=[reminders],
    errors=11,
    period=300,
    evaluation_periods=2,
)

pulumi.export("apiUrl", api.url)
pulumi.export("userPoolId", users.id)
pulumi.export("userPoolClientId", mobile.id)
pulumi.export("tableName", table.name)
pulumi.export("bucketName", photos.name)
