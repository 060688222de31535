"""examples/003-kefir: seed 003 (kefir-app) planned for dev and prod, with the seed's own facts."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.cli import main
from infra.harness import Plan

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "examples" / "003-kefir"
STAGES = ("dev", "prod")
FUNCTION = "aws:lambda/function:Function"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FUNCTIONS = ("handleBatches", "handlePhotos", "handlePublic", "RemindersHandler")
PROD_ORIGINS = ["https://kefirproducer.com", "https://*.kefirproducer.com"]


@pytest.fixture(autouse=True)
def shared_build_cache(monkeypatch):
    monkeypatch.setenv("HARBOR_CACHE_DIR", str(ROOT / ".build" / "harbor"))


@pytest.fixture(scope="module")
def plans(plan_cache) -> dict[str, Plan]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARBOR_CACHE_DIR", str(ROOT / ".build" / "harbor"))
        return {stage: plan_cache.plan(stage, PROGRAM) for stage in STAGES}


def origins(stage: str) -> list[str]:
    return PROD_ORIGINS if stage == "prod" else ["*"]


def test_the_seeds_two_stages_have_stage_files():
    assert sorted(p.name for p in PROGRAM.glob("Pulumi.*.yaml")) == ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.usefixtures("cli_plans")
def test_infra_plan_runs_offline_for_each_stage(stage):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--program", "examples/003-kefir", "--stage", stage, "--json"]) == 0
    plan = json.loads(out.getvalue())
    assert (plan["project"], plan["stage"]) == ("kefir-app", stage)


@pytest.mark.parametrize("stage", STAGES)
def test_every_resource_is_tagged_with_environment_and_application(plans, stage):
    provider = plans[stage].one("pulumi:providers:aws", "aws").inputs
    assert provider["region"] == "us-east-1"
    tags = json.loads(provider["defaultTags"])["tags"]
    assert tags == {"Environment": stage, "Application": "kefir-app",
                    "app": "kefir-app", "stage": stage, "managed-by": "pulumi"}


@pytest.mark.parametrize("stage", STAGES)
def test_single_table_with_gsi1_ttl_and_prod_only_pitr_and_protection(plans, stage):
    resource = plans[stage].one("aws:dynamodb/table:Table", "Table-table")
    table = resource.inputs
    prod = stage == "prod"
    assert table["name"] == f"kefir-app-{stage}-Table"
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert (table["hashKey"], table["rangeKey"]) == ("PK", "SK")
    assert table["globalSecondaryIndexes"] == [
        {"name": "GSI1", "hashKey": "GSI1PK", "rangeKey": "GSI1SK", "projectionType": "ALL"}]
    assert table["ttl"] == {"attributeName": "TTL", "enabled": True}
    assert table["serverSideEncryption"]["enabled"] is True
    assert table["pointInTimeRecovery"] == {"enabled": prod}
    assert table["deletionProtectionEnabled"] is prod
    assert (resource.protect, resource.retain_on_delete) == (prod, prod)


@pytest.mark.parametrize("stage", STAGES)
def test_photo_bucket_is_private_with_stage_cors_lifecycle_and_prod_versioning(plans, stage):
    plan = plans[stage]
    bucket = plan.one("aws:s3/bucket:Bucket", "Photos-bucket")
    assert bucket.inputs["bucket"].startswith(f"kefir-app-{stage}-photos-")
    assert plan.outputs["bucketName"] == bucket.inputs["bucket"]
    block = plan.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    (rule,) = plan.one("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration").inputs["corsRules"]
    assert rule == {"allowedHeaders": ["*"], "allowedMethods": ["GET", "PUT", "POST"],
                    "allowedOrigins": origins(stage), "exposeHeaders": ["ETag"], "maxAgeSeconds": 3000}
    rules = {r["id"]: r for r in
             plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]}
    assert set(rules) == {"delete-old-photos", "abort-incomplete-uploads"}
    delete, abort = rules["delete-old-photos"], rules["abort-incomplete-uploads"]
    assert delete["expiration"] == {"days": 365} and "abortIncompleteMultipartUpload" not in delete
    assert abort["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert all(r["status"] == "Enabled" and r["filter"] == {"prefix": ""} for r in rules.values())
    if stage == "prod":  # versioned: a deleted photo's old version goes after 365 days too
        assert delete["noncurrentVersionExpiration"] == {"noncurrentDays": 365}
        assert abort["expiration"] == {"expiredObjectDeleteMarker": True}
    else:
        assert "noncurrentVersionExpiration" not in delete and "expiration" not in abort
    versioning = plan.of_type("aws:s3/bucketVersioning:BucketVersioning")
    if stage == "prod":
        assert versioning[0].inputs["versioningConfiguration"] == {"status": "Enabled"}
        assert bucket.protect and bucket.retain_on_delete
    else:
        assert versioning == [] and not bucket.protect


@pytest.mark.parametrize("stage", STAGES)
def test_user_pool_signs_in_by_email_with_optional_totp_and_the_seeds_password_policy(plans, stage):
    resource = plans[stage].one("aws:cognito/userPool:UserPool")
    pool = resource.inputs
    assert pool["name"] == f"kefir-app-{stage}-Users"
    assert pool["usernameAttributes"] == ["email"] and pool["autoVerifiedAttributes"] == ["email"]
    assert pool["mfaConfiguration"] == "OPTIONAL"
    assert pool["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert pool["accountRecoverySetting"] == {"recoveryMechanisms": [{"name": "verified_email", "priority": 1}]}
    assert pool["passwordPolicy"] == {
        "minimumLength": 8, "requireLowercase": False, "requireUppercase": False,
        "requireNumbers": False, "requireSymbols": False, "temporaryPasswordValidityDays": 7}
    assert pool["schemas"] == [{"name": "email", "attributeDataType": "String", "required": True,
                                "mutable": False}]
    assert pool["emailConfiguration"] == {"emailSendingAccount": "COGNITO_DEFAULT"}
    prod = stage == "prod"
    assert pool["deletionProtection"] == ("ACTIVE" if prod else "INACTIVE")
    assert (resource.protect, resource.retain_on_delete) == (prod, prod)


@pytest.mark.parametrize("stage", STAGES)
def test_mobile_client_is_public_with_custom_auth_and_1h_1h_30d_tokens(plans, stage):
    client = plans[stage].one("aws:cognito/userPoolClient:UserPoolClient").inputs
    assert client["name"] == f"kefir-app-{stage}-Users-Mobile"
    assert client["userPoolId"] == plans[stage].outputs["userPoolId"]
    assert client["generateSecret"] is False
    assert sorted(client["explicitAuthFlows"]) == ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    units = client["tokenValidityUnits"]
    hours = {"minutes": 1 / 60, "hours": 1, "days": 24}
    assert client["accessTokenValidity"] * hours[units["accessToken"]] == 1
    assert client["idTokenValidity"] * hours[units["idToken"]] == 1
    assert client["refreshTokenValidity"] * hours[units["refreshToken"]] == 30 * 24
    assert client["preventUserExistenceErrors"] == "ENABLED"


@pytest.mark.parametrize("stage", STAGES)
def test_api_has_stage_cors_throttling_and_a_cognito_jwt_authorizer(plans, stage):
    plan = plans[stage]
    api = plan.one("aws:apigatewayv2/api:Api").inputs
    assert api["name"] == f"kefir-app-{stage}-Api" and api["protocolType"] == "HTTP"
    assert api["corsConfiguration"] == {
        "allowOrigins": origins(stage), "allowMethods": ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        "allowHeaders": ["Content-Type", "Authorization"], "exposeHeaders": ["Content-Type"],
        "maxAge": 300, "allowCredentials": False}
    api_stage = plan.one("aws:apigatewayv2/stage:Stage").inputs
    assert api_stage["name"] == "$default" and api_stage["autoDeploy"] is True
    assert api_stage["defaultRouteSettings"] == {"throttlingBurstLimit": 2000, "throttlingRateLimit": 1000}
    (authorizer,) = plan.of_type("aws:apigatewayv2/authorizer:Authorizer")
    pool_id = plan.outputs["userPoolId"]
    assert authorizer.inputs["authorizerType"] == "JWT"
    assert authorizer.inputs["identitySources"] == ["$request.header.Authorization"]
    assert authorizer.inputs["jwtConfiguration"] == {
        "issuer": f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}",
        "audiences": [plan.outputs["userPoolClientId"]]}


@pytest.mark.parametrize("stage", STAGES)
def test_routes_need_the_jwt_except_the_public_batch_page(plans, stage):
    plan = plans[stage]
    (authorizer,) = plan.of_type("aws:apigatewayv2/authorizer:Authorizer")
    routes = {r.inputs["routeKey"]: r for r in plan.of_type("aws:apigatewayv2/route:Route")}
    assert set(routes) == {"POST /batches", "GET /batches", "POST /batches/{batchId}/photos",
                           "GET /public/b/{batchId}"}
    public = routes.pop("GET /public/b/{batchId}")
    assert public.inputs["authorizationType"] == "NONE" and "authorizerId" not in public.inputs
    for key, route in routes.items():
        assert route.inputs["authorizationType"] == "JWT", key
        assert authorizer.urn in route.dependencies, key


@pytest.mark.parametrize(("stage", "retention"), [("dev", 14), ("prod", 30)])
def test_functions_are_node_20_arm64_512_mb_30_s_with_the_seeds_environment(plans, stage, retention):
    plan = plans[stage]
    for name in FUNCTIONS:
        function = plan.one(FUNCTION, f"{name}-function").inputs
        assert function["name"] == f"kefir-app-{stage}-{name}"
        assert function["runtime"] == "nodejs20.x" and function["architectures"] == ["arm64"]
        assert (function["memorySize"], function["timeout"]) == (512, 30)
        variables = function["environment"]["variables"]
        assert {k: variables[k] for k in ("TABLE_NAME", "BUCKET_NAME", "USER_POOL_ID", "USER_POOL_CLIENT_ID",
                                          "STAGE")} == {
            "TABLE_NAME": f"kefir-app-{stage}-Table", "BUCKET_NAME": plan.outputs["bucketName"],
            "USER_POOL_ID": plan.outputs["userPoolId"], "USER_POOL_CLIENT_ID": plan.outputs["userPoolClientId"],
            "STAGE": stage}
        group = plan.one("aws:cloudwatch/logGroup:LogGroup", f"{name}-log_group").inputs
        assert (group["name"], group["retentionInDays"]) == (f"/aws/lambda/kefir-app-{stage}-{name}", retention)


def test_table_functions_may_use_the_table_and_its_indexes_only(plans):
    plan = plans["prod"]
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/kefir-app-prod-Table"
    for name in ("handleBatches", "handlePublic", "RemindersHandler"):
        policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", f"{name}-policy").inputs["policy"])
        assert {r for s in policy["Statement"] for r in s["Resource"]} == {table, f"{table}/index/*"}, name
        assert {a for s in policy["Statement"] for a in s["Action"]} >= {
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
            "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}
    photos = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "handlePhotos-policy").inputs["policy"])
    bucket = f"arn:aws:s3:::{plan.outputs['bucketName']}"
    assert {r for s in photos["Statement"] for r in s["Resource"]} == {bucket, f"{bucket}/*"}


@pytest.mark.parametrize("stage", STAGES)
def test_reminders_run_daily_through_scheduler_with_a_least_privilege_role(plans, stage):
    plan = plans[stage]
    schedule = plan.one("aws:scheduler/schedule:Schedule").inputs
    assert schedule["name"] == f"kefir-app-{stage}-Reminders"
    assert schedule["scheduleExpression"] == "cron(0 8 * * ? *)"
    assert schedule["scheduleExpressionTimezone"] == "UTC" and schedule["state"] == "ENABLED"
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:kefir-app-{stage}-RemindersHandler"
    dlq_arn = f"arn:aws:sqs:us-east-1:123456789012:kefir-app-{stage}-Reminders-dlq"
    target = schedule["target"]
    assert target["arn"] == function_arn and target["deadLetterConfig"] == {"arn": dlq_arn}
    assert target["roleArn"] == f"arn:aws:iam::123456789012:role/kefir-app-{stage}-Reminders-scheduler"

    role = plan.one("aws:iam/role:Role", "Reminders-role").inputs
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    grants = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "Reminders-policy").inputs["policy"])
    assert sorted((s["Action"], s["Resource"]) for s in grants["Statement"]) == [
        ("lambda:InvokeFunction", function_arn), ("sqs:SendMessage", dlq_arn)]


def test_prod_alarms_on_each_functions_errors_as_the_seed_and_dev_has_none(plans):
    assert plans["dev"].of_type(ALARM) == []
    plan = plans["prod"]
    alarms = {a.inputs["name"]: a.inputs for a in plan.of_type(ALARM)}
    topic = "arn:aws:sns:us-east-1:123456789012:kefir-app-prod-Alarms"
    for name in FUNCTIONS:
        errors = alarms[f"kefir-app-prod-{name}-errors"]
        assert (errors["namespace"], errors["metricName"], errors["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
        assert errors["dimensions"] == {"FunctionName": f"kefir-app-prod-{name}"}
        # the seed: more than 10 errors in each of two 5-minute periods
        assert (errors["comparisonOperator"], errors["threshold"]) == ("GreaterThanOrEqualToThreshold", 11)
        assert (errors["period"], errors["evaluationPeriods"]) == (300, 2)
        assert errors["alarmActions"] == [topic]
        assert f"kefir-app-prod-{name}-throttles" in alarms
    assert alarms["kefir-app-prod-Reminders-dlq"]["dimensions"] == {"QueueName": "kefir-app-prod-Reminders-dlq"}
    assert len(alarms) == 2 * len(FUNCTIONS) + 1


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
@pytest.mark.parametrize("handler", ["batches", "photos", "public", "reminders"])
def test_each_handler_is_valid_node_module_exporting_handler(handler):
    source = PROGRAM / "functions" / f"{handler}.mjs"
    checked = subprocess.run(["node", "--check", str(source)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "export const handler = async" in source.read_text()
