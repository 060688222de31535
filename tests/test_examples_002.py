"""examples/002-reggie: seed 002 planned for each of its stages, with the seed's own facts."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from infra.cli import main
from infra.harness import Plan

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "examples" / "002-reggie"
STAGES = ("production", "staging", "alice")  # alice: a personal stage, no stage file
FUNCTION = "aws:lambda/function:Function"
IMAGE = "docker-build:index:Image"
CLUSTER = "aws:rds/cluster:Cluster"
SECRETS = {
    "ClerkPublishableKey", "ClerkSecretKey", "ClerkWebhookSecret", "R2Endpoint", "R2AccessKeyId",
    "R2SecretAccessKey", "StripeSecretKey", "StripeWebhookSecret", "ResendApiKey", "DvlaApiKey", "SecretKey",
}


@pytest.fixture(scope="module")
def plans(plan_cache) -> dict[str, Plan]:
    return {stage: plan_cache.plan(stage, PROGRAM) for stage in STAGES}


def function(plan: Plan, name: str) -> dict:
    return plan.one(FUNCTION, f"{name}-function").inputs


def test_the_seeds_stages_have_stage_files_and_personal_stages_need_none():
    assert sorted(p.name for p in PROGRAM.glob("Pulumi.*.yaml")) == [
        "Pulumi.production.yaml", "Pulumi.staging.yaml"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.usefixtures("cli_plans")
def test_infra_plan_runs_for_each_stage(stage):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--program", "examples/002-reggie", "--stage", stage, "--json"]) == 0
    plan = json.loads(out.getvalue())
    assert (plan["project"], plan["stage"]) == ("reggie", stage)
    (provider,) = [r for r in plan["resources"] if r["type"] == "pulumi:providers:aws" and r["name"] == "aws"]
    assert provider["inputs"]["region"] == "us-east-1"


@pytest.mark.parametrize("stage", ["production", "staging"])
def test_vpc_is_10_0_in_two_zones_with_two_ec2_nat_instances(plans, stage):
    plan = plans[stage]
    assert plan.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == "10.0.0.0/16"
    private = [s for s in plan.of_type("aws:ec2/subnet:Subnet") if "private" in s.name]
    assert len(private) == 2
    nat = plan.of_type("aws:ec2/instance:Instance")
    assert len(nat) == 2 and {n.inputs["instanceType"] for n in nat} == {"t4g.nano"}
    assert not plan.of_type("aws:ec2/natGateway:NatGateway")


@pytest.mark.parametrize(("stage", "acu", "backup_days"), [("production", (0.5, 4), 14), ("staging", (0.5, 2), 7)])
def test_database_is_encrypted_postgres_17_sized_and_protected_per_stage(plans, stage, acu, backup_days):
    cluster = plans[stage].one(CLUSTER)
    inputs = cluster.inputs
    assert inputs["clusterIdentifier"] == f"reggie-{stage}-reggiedb"
    assert inputs["engine"] == "aurora-postgresql" and inputs["engineVersion"].startswith("17.")
    assert inputs["storageEncrypted"] is True
    scaling = inputs["serverlessv2ScalingConfiguration"]
    assert (scaling["minCapacity"], scaling["maxCapacity"]) == acu and "secondsUntilAutoPause" not in scaling
    assert inputs["backupRetentionPeriod"] == backup_days
    assert inputs["deletionProtection"] is True, "every deployed stage keeps deletion protection"
    assert cluster.retain_on_delete is (stage == "production")


def test_production_takes_prod_defaults_under_its_own_name(plans):
    plan = plans["production"]
    assert all(r.protect and r.retain_on_delete for r in plan.of_type("aws:ecr/repository:Repository"))
    groups = {r.inputs["name"]: r.inputs["retentionInDays"] for r in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups["/aws/lambda/reggie-production-ReggieDbMigrator"] == 30


def test_a_personal_stage_database_can_be_destroyed(plans):
    cluster = plans["alice"].one(CLUSTER)
    assert cluster.inputs["deletionProtection"] is False and not cluster.protect


@pytest.mark.parametrize("stage", STAGES)
def test_valuation_is_an_arm64_container_with_1536_mb(plans, stage):
    plan = plans[stage]
    valuation = function(plan, "ReggieValuation")
    assert valuation["name"] == f"reggie-{stage}-ReggieValuation"
    assert valuation["packageType"] == "Image" and valuation["architectures"] == ["arm64"]
    assert valuation["memorySize"] == 1536
    repository = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/reggie-{stage}-reggievaluation"
    assert valuation["imageUri"].startswith(f"{repository}@sha256:")
    image = plan.one(IMAGE, "ReggieValuation-image").inputs
    assert image["platforms"] == ["linux/arm64"]
    assert image["dockerfile"]["inline"].startswith("FROM public.ecr.aws/lambda/python:3.11\n")


@pytest.mark.parametrize("stage", STAGES)
def test_migrator_is_an_x86_64_container_with_512_mb_and_300_seconds(plans, stage):
    plan = plans[stage]
    migrator = function(plan, "ReggieDbMigrator")
    assert migrator["packageType"] == "Image" and migrator["architectures"] == ["x86_64"]
    assert migrator["memorySize"] == 512 and migrator["timeout"] == 300
    assert migrator["imageConfig"] == {"commands": ["migrate.handler"]}
    image = plan.one(IMAGE, "ReggieDbMigrator-image").inputs
    assert image["platforms"] == ["linux/amd64"]
    own = (PROGRAM / "services/migrator/Dockerfile").read_text()
    assert image["dockerfile"]["inline"].startswith(own)
    # migrate.py builds DATABASE_URL with harbor_runtime, which the image carries as a zip would.
    assert image["dockerfile"]["inline"].endswith("COPY --from=harbor-links harbor_runtime /var/task/harbor_runtime\n")


@pytest.mark.parametrize("stage", STAGES)
def test_migrations_run_on_deploy_after_the_database(plans, stage):
    plan = plans[stage]
    # The sites (planned in full when app/web has node_modules) seed their tag caches too.
    invocation = plan.one("aws:lambda/invocation:Invocation", "ReggieDbMigrator-run_on_deploy")
    assert invocation.inputs["functionName"] == f"reggie-{stage}-ReggieDbMigrator"
    assert json.loads(invocation.inputs["input"]) == {"revision": "head"}
    for waited in (plan.one(CLUSTER), plan.one("aws:rds/clusterInstance:ClusterInstance"),
                   plan.one(FUNCTION, "ReggieDbMigrator-function"), *plan.of_type("aws:ec2/route:Route")):
        assert waited.urn in invocation.dependencies, waited.name


def test_container_functions_run_in_the_vpc_and_link_the_database(plans):
    plan = plans["production"]
    for name in ("ReggieValuation", "ReggieDbMigrator"):
        inputs = function(plan, name)
        assert len(inputs["vpcConfig"]["subnetIds"]) == 2
        statements = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", f"{name}-policy").inputs["policy"])
        (grant,) = statements["Statement"]
        assert grant["Action"] == ["secretsmanager:GetSecretValue"]


@pytest.mark.parametrize("stage", STAGES)
def test_api_route_is_node_22_on_arm64_with_1024_mb(plans, stage):
    plan = plans[stage]
    (route,) = plan.of_type("aws:apigatewayv2/route:Route")
    assert route.inputs["routeKey"] == "ANY /{proxy+}"
    site_parts = ("NextjsShared", "ReggieWeb", "ReggieAdmin")  # the sites' own functions
    api_function = next(f.inputs for f in plan.of_type(FUNCTION)
                        if f.inputs.get("runtime", "").startswith("nodejs") and not f.name.startswith(site_parts))
    assert api_function["runtime"] == "nodejs22.x" and api_function["architectures"] == ["arm64"]
    assert api_function["memorySize"] == 1024


@pytest.mark.parametrize(("stage", "host"), [("production", "api.getreggie.io"),
                                             ("staging", "staging-api.getreggie.io")])
def test_api_domain_is_cloudflare_proxied(plans, stage, host):
    plan = plans[stage]
    assert plan.one("aws:apigatewayv2/domainName:DomainName").inputs["domainName"] == host
    record = next(r.inputs for r in plan.of_type("cloudflare:index/dnsRecord:DnsRecord") if r.inputs["name"] == host)
    assert record["proxied"] is True
    assert plan.outputs["apiUrl"] == f"https://{host}"


@pytest.mark.parametrize(("stage", "origins"), [
    ("production", ["https://getreggie.io", "https://admin.getreggie.io"]),
    ("staging", ["https://staging.getreggie.io", "https://staging-admin.getreggie.io"]),
    ("alice", ["*"]),
])
def test_api_cors_allows_the_stages_own_sites(plans, stage, origins):
    cors = plans[stage].one("aws:apigatewayv2/api:Api").inputs["corsConfiguration"]
    assert cors["allowOrigins"] == origins


def test_personal_stages_have_no_domain(plans):
    assert not plans["alice"].of_type("aws:apigatewayv2/domainName:DomainName")


def test_the_eleven_secrets_are_declared(plans):
    assert {r.name for r in plans["production"].of_type("harbor:sst:Secret")} == SECRETS


def test_both_sites_are_declared(plans):
    assert {r.name for r in plans["production"].of_type("harbor:aws:Nextjs")} == {"ReggieWeb", "ReggieAdmin"}
