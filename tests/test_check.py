"""infra check: every guardrail rule catches a deliberately broken input and passes a good one."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from guardrail_stack import DEV, PROD, drop, good_stack, named, policy_json, set_attr, set_input

from components import Bucket, Dynamo
from infra.check import check_plan, stage_context
from infra.cli import main
from infra.harness import ROOT
from infra.rules import PUBLIC_INGRESS_TAG, RULES, Context, Resource, evaluate, rule_by_id

BREAKAGES: dict[str, tuple[str, Callable[[list[Resource]], None]]] = {
    "table without encryption": ("ENC-DYNAMO", set_input("table", "serverSideEncryption.enabled", False)),
    "bucket without encryption": ("ENC-S3", drop("assets-enc")),
    "unencrypted database": ("ENC-RDS", set_input("db", "storageEncrypted", False)),
    "unencrypted queue": ("ENC-SQS", set_input("jobs", "sqsManagedSseEnabled", False)),
    "unencrypted topic": ("ENC-SNS", set_input("events", "kmsMasterKeyId", None)),
    "log group on the default key": ("ENC-LOGS", set_input("api-logs", "kmsKeyId", None)),
    "bucket without access block": ("PUB-S3-BLOCK", drop("assets-pab")),
    "access block with a public policy allowed": ("PUB-S3-BLOCK", set_input("assets-pab", "blockPublicPolicy", False)),
    "public database": ("PUB-RDS", set_input("db-1", "publiclyAccessible", True)),
    "ingress from anywhere": ("PUB-INGRESS", set_input("db-sg", "ingress.0.cidrBlocks", ["0.0.0.0/0"])),
    "ingress from anywhere over IPv6": ("PUB-INGRESS", set_input("db-sg", "ingress.0.ipv6CidrBlocks", ["::/0"])),
    "public function URL without CloudFront": ("PUB-FN-URL", drop("cdn")),
    "wildcard action": ("IAM-ACTION-STAR", set_input("worker-policy", "policy", policy_json(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:us-east-1:1:table/t"}))),
    "wildcard resource": ("IAM-RESOURCE-STAR", set_input("worker-policy", "policy", policy_json(
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}))),
    "scopable call mixed into an unscopable statement": ("IAM-RESOURCE-STAR", set_input(
        "worker-policy", "policy",
        policy_json({"Effect": "Allow", "Action": ["ec2:DescribeNetworkInterfaces", "sqs:SendMessage"],
                     "Resource": "*"}))),
    "administrator policy attached": ("IAM-MANAGED-ADMIN", lambda resources: resources.append(Resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin",
        {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))),
    "bucket without a TLS-only policy": ("TLS-S3", drop("assets-policy")),
    "CloudFront on TLS 1.0": ("TLS-CLOUDFRONT", set_input("cdn", "viewerCertificate.minimumProtocolVersion", "TLSv1")),
    "CloudFront on the default certificate": ("TLS-CLOUDFRONT-DEFAULT-CERT", set_input(
        "cdn", "viewerCertificate", {"cloudfrontDefaultCertificate": True})),
    "CloudFront allowing plain HTTP": ("TLS-CLOUDFRONT", set_input("cdn", "defaultCacheBehavior.viewerProtocolPolicy",
                                                              "allow-all")),
    "CloudFront reaching its origin over plain HTTP": ("TLS-CLOUDFRONT", set_input(
        "cdn", "origins.0.customOriginConfig.originProtocolPolicy", "http-only")),
    "CloudFront reaching its origin the way the viewer came": ("TLS-CLOUDFRONT", set_input(
        "cdn", "origins.0.customOriginConfig.originProtocolPolicy", "match-viewer")),
    "API domain on TLS 1.0": ("TLS-API-DOMAIN", set_input("api-domain", "domainNameConfiguration.securityPolicy",
                                                     "TLS_1_0")),
    "table without PITR": ("PROT-DYNAMO-PITR", set_input("table", "pointInTimeRecovery.enabled", False)),
    "table without deletion protection": ("PROT-DELETION", set_input("table", "deletionProtectionEnabled", False)),
    "database without deletion protection": ("PROT-DELETION", set_input("db", "deletionProtection", False)),
    "database with 1 day of backups": ("PROT-RDS-BACKUP", set_input("db", "backupRetentionPeriod", 1.0)),
    "database skipping its final snapshot": ("PROT-RDS-BACKUP", set_input("db", "skipFinalSnapshot", True)),
    "unprotected table": ("PROT-STATEFUL", set_attr("table", "protect", False)),
    "bucket deleted with the stack": ("PROT-STATEFUL", set_attr("assets", "retain_on_delete", False)),
    "unversioned bucket": ("PROT-S3-VERSIONING", drop("assets-versioning")),
    "any origin in production": ("CORS-PROD", set_input("http-api", "corsConfiguration.allowOrigins", ["*"])),
    "log group kept forever": ("LOG-RETENTION", set_input("worker-logs", "retentionInDays", None)),
    "function logging to an unmanaged group": ("LOG-FUNCTION", drop("api-logs")),
    "queue consumer without a dead-letter queue": ("DLQ-CONSUMER", set_input("jobs", "redrivePolicy", None)),
    "SNS-invoked function without a dead-letter queue": ("DLQ-ASYNC", lambda resources: resources.append(Resource(
        "aws:sns/topicSubscription:TopicSubscription", "events-to-api",
        {"protocol": "lambda", "endpoint": "arn:aws:lambda:us-east-1:1:function:harbor-prod-api"}))),
    "VPC function created before its VPC access policy": ("ORDER-VPC-FUNCTION", set_attr(
        "worker", "dependencies", ["urn:pulumi:test::harbor::aws:iam/role:Role::worker-role",
                                   "urn:pulumi:test::harbor::aws:iam/rolePolicy:RolePolicy::worker-policy"])),
    "VPC function whose role cannot manage network interfaces": ("ORDER-VPC-FUNCTION", lambda resources: [
        resources.remove(named(resources, "worker-vpc-access")),
        set_input("worker-policy", "policy", policy_json(
            {"Effect": "Allow", "Action": ["dynamodb:GetItem"],
             "Resource": ["arn:aws:dynamodb:us-east-1:1:table/harbor-prod-table"]}))(resources)]),
    "security group with a fixed name": ("REPLACE-NAME", lambda resources: named(resources, "db-sg").inputs.update(
        {"name": "harbor-prod-db", "namePrefix": None})),
    "subnet replaced create-before-delete": ("REPLACE-NAME", set_attr("private-a", "delete_before_replace", False)),
    "stream consumer without a failure destination": ("DLQ-CONSUMER", set_input(
        "jobs-consumer", "eventSourceArn", "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026")),
}


def test_a_well_configured_stack_passes_every_rule() -> None:
    assert evaluate(good_stack(), PROD) == []


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_rule_catches_its_deliberately_broken_input(breakage: str) -> None:
    rule_id, mutate = BREAKAGES[breakage]
    resources = copy.deepcopy(good_stack())
    mutate(resources)
    assert {f.rule for f in evaluate(resources, PROD)} == {rule_id}


def test_every_rule_has_a_breakage_test_and_an_actionable_text() -> None:
    tested = {rule_id for rule_id, _ in BREAKAGES.values()}
    untested = {r.id for r in RULES} - tested - {"ENC-EFS"}
    assert not untested
    for rule in RULES:
        assert rule.reason and rule.fix and rule.severity in ("high", "medium", "low")


def test_an_sns_invoked_function_with_an_on_failure_destination_passes() -> None:
    resources = good_stack()
    resources.append(Resource("aws:sns/topicSubscription:TopicSubscription", "events-to-api", {
        "protocol": "lambda", "endpoint": "arn:aws:lambda:us-east-1:1:function:harbor-prod-api"}))
    resources.append(Resource("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "api-async", {
        "functionName": "harbor-prod-api",
        "destinationConfig": {"onFailure": {"destination": "arn:aws:sqs:us-east-1:1:failed"}}}))
    assert evaluate(resources, PROD) == []


def test_efs_without_encryption_is_caught() -> None:
    bad = [Resource("aws:efs/fileSystem:FileSystem", "fs", {"encrypted": False}, protect=True, retain_on_delete=True)]
    assert [f.rule for f in evaluate(bad, PROD)] == ["ENC-EFS"]


def test_production_data_rules_only_apply_to_protecting_stages() -> None:
    resources = good_stack()
    set_input("table", "pointInTimeRecovery.enabled", False)(resources)
    set_attr("table", "protect", False)(resources)
    assert evaluate(resources, DEV) == []


def test_a_documented_public_ingress_is_allowed() -> None:
    resources = good_stack()
    set_input("db-sg", "ingress.0.cidrBlocks", ["0.0.0.0/0"])(resources)
    named(resources, "db-sg").inputs["tags"] = {PUBLIC_INGRESS_TAG: "public HTTPS listener of the load balancer"}
    assert evaluate(resources, PROD) == []
    named(resources, "db-sg").inputs["tags"] = {PUBLIC_INGRESS_TAG: " "}
    assert [f.rule for f in evaluate(resources, PROD)] == ["PUB-INGRESS"]


def test_function_url_with_iam_auth_needs_no_cloudfront() -> None:
    resources = good_stack()
    drop("cdn")(resources)
    set_input("server-url", "authorizationType", "AWS_IAM")(resources)
    assert evaluate(resources, PROD) == []


def test_queue_consumer_of_a_queue_outside_the_stack_is_reported() -> None:
    resources = good_stack()
    set_input("jobs-consumer", "eventSourceArn", "arn:aws:sqs:us-east-1:1:someone-elses")(resources)
    assert [f.message for f in evaluate(resources, PROD)] == [
        "consumes queue 'someone-elses', which is not in this stack"
    ]


def test_broken_component_transforms_are_caught_on_a_real_plan(build: Callable[..., Any]) -> None:
    def body() -> None:
        Bucket("Uploads", transform={"public_access_block": {"block_public_policy": False}})
        Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"}, point_in_time_recovery=False)

    findings = check_plan(build(body, stage="prod", protect=True, removal="retain"), PROD)
    assert {(f.rule, f.name) for f in findings if f.severity == "high"} == {
        ("PUB-S3-BLOCK", "Uploads-bucket"),
        ("PROT-DYNAMO-PITR", "Table-table"),
    }


def test_stage_context_reads_protection_from_the_stage_file() -> None:
    assert stage_context(ROOT, "prod") == Context(stage="prod", protecting=True, production=True)
    assert stage_context(ROOT, "dev").protecting is False
    assert stage_context(ROOT, "alice").protecting is False


@pytest.mark.usefixtures("cli_plans")
def test_infra_check_prod_passes_with_no_high_finding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--stage", "prod", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["protecting"]
    assert not [f for f in report["findings"] if f["severity"] == "high"]


def test_a_program_without_harbor_stage_settings_is_judged_by_its_own_protection() -> None:
    from infra.harness import Plan, PlannedResource

    bucket = PlannedResource("urn:b", "aws:s3/bucket:Bucket", "state", None, True, {}, True, True)
    bootstrap = ROOT / "bootstrap"
    if not (bootstrap / "Pulumi.example.yaml").exists():
        pytest.skip("no bootstrap program in this tree")
    assert stage_context(bootstrap, "example", Plan("harbor-bootstrap", "example", [bucket], {})).protecting
    assert not stage_context(bootstrap, "example", Plan("harbor-bootstrap", "example", [], {})).protecting


def test_a_rebuildable_bucket_may_skip_protection_only_when_it_says_why() -> None:
    from infra.rules import DERIVED_DATA_TAG

    site_bucket = Resource("aws:s3/bucket:Bucket", "Web-assets_bucket", {"bucket": "harbor-prod-web-assets"},
                           urn="urn:pulumi:prod::harbor::harbor:aws:Nextjs$aws:s3/bucket:Bucket::Web-assets_bucket")
    tagged = Resource("aws:s3/bucket:Bucket", "cache", {"bucket": "c", "tags": {DERIVED_DATA_TAG: "build cache"}})
    silent = Resource("aws:s3/bucket:Bucket", "uploads", {"bucket": "u"})
    rules = [rule_by_id("PROT-STATEFUL"), rule_by_id("PROT-S3-VERSIONING")]
    findings = evaluate([site_bucket, tagged, silent], PROD, rules)
    assert {f.name for f in findings} == {"uploads"}


@pytest.mark.parametrize(("policy", "code"), [("http-only", 1), ("https-only", 0)])
def test_infra_check_fails_a_program_whose_cloudfront_origin_is_plain_http(tmp_path, capsys, policy, code) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  harbor:protect: true\n  harbor:removal: retain\n")
    (tmp_path / "__main__.py").write_text(f"""
import pulumi
import pulumi_aws as aws
from components import start_app

app = start_app()
aws.cloudfront.Distribution(
    "cdn",
    enabled=True,
    origins=[{{"origin_id": "api", "domain_name": "api.example.com",
              "custom_origin_config": {{"http_port": 80, "https_port": 443,
                                        "origin_protocol_policy": "{policy}",
                                        "origin_ssl_protocols": ["TLSv1.2"]}}}}],
    default_cache_behavior={{"target_origin_id": "api", "viewer_protocol_policy": "redirect-to-https",
                            "allowed_methods": ["GET", "HEAD"], "cached_methods": ["GET", "HEAD"],
                            "cache_policy_id": "658327ea-f89d-4fab-a63d-7e88639e58f6"}},
    restrictions={{"geo_restriction": {{"restriction_type": "none"}}}},
    viewer_certificate={{"acm_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/c",
                        "minimum_protocol_version": "TLSv1.2_2021", "ssl_support_method": "sni-only"}},
    opts=pulumi.ResourceOptions(provider=app.provider),
)
""")
    assert main(["check", "--stage", "prod", "--program", str(tmp_path), "--json"]) == code
    report = json.loads(capsys.readouterr().out)
    high = [(f["rule"], f["message"]) for f in report["findings"] if f["severity"] == "high"]
    expected = [("TLS-CLOUDFRONT", "origin 'api' is reached with 'http-only'")] if code else []
    assert high == expected


def test_a_pinned_name_that_opted_out_of_replacement_is_caught_on_a_real_plan(build: Callable[..., Any]) -> None:
    import pulumi
    import pulumi_aws as aws

    def body() -> None:
        aws.ec2.SecurityGroup("Legacy", name="harbor-dev-legacy", description="kept by hand", vpc_id="vpc-1",
                              opts=pulumi.ResourceOptions(delete_before_replace=False))
        aws.ec2.SecurityGroup("Managed", name="harbor-dev-managed", description="prefixed", vpc_id="vpc-1")

    plan = build(body)
    findings = [f for f in check_plan(plan, DEV) if f.rule == "REPLACE-NAME"]
    assert [f.name for f in findings] == ["Legacy"]


def test_a_store_the_stage_keeps_is_left_to_its_protection_and_retention() -> None:
    table = Resource("aws:dynamodb/table:Table", "t", {"name": "harbor-x-t", "hashKey": "pk",
                                                       "serverSideEncryption": {"enabled": True}})
    assert [f.rule for f in evaluate([table], DEV)] == ["REPLACE-NAME"]
    for kept in ({"protect": True}, {"retain_on_delete": True}, {"delete_before_replace": True}):
        assert evaluate([dataclasses.replace(table, **kept)], DEV) == []
