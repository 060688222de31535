"""Postgres: Aurora Serverless v2 per stage, private and TLS-only, managed password, least-privilege links."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

import pulumi
import pytest

from components import ComponentError, Postgres, Vpc
from components.aws.postgres import DATA_API_ACTIONS, url_with_password
from components.core.linking import link_data, link_statements
from infra.harness import Plan
from infra.mocks import short_id
from tests.conftest import ROOT, replacement_outcome

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-"


@pytest.fixture(scope="module")
def real_plan(plan_cache):
    """The real program's plan per stage, shared by the session: whole-program plans are slow."""

    def get(stage: str) -> Plan:
        return plan_cache.plan(stage, ROOT)

    return get


def cluster(plan: Plan):
    return plan.one(CLUSTER)


def database(**kwargs: Any):
    def body() -> None:
        Postgres("Database", vpc=Vpc("Vpc"), **kwargs)

    return body


def linked(**kwargs: Any):
    """A program that exports the database's link data and IAM statements."""

    def body() -> None:
        db = Postgres("Database", vpc=Vpc("Vpc"), **kwargs)
        pulumi.export("link", link_data([db]))
        pulumi.export("statements", link_statements([db]))

    return body


def test_prod_cluster_is_encrypted_protected_backed_up_14_days_and_keeps_a_final_snapshot(real_plan):
    plan = real_plan("prod")
    db = cluster(plan)
    inputs = db.inputs
    assert inputs["engine"] == "aurora-postgresql" and inputs["engineMode"] == "provisioned"
    assert inputs["storageEncrypted"] is True
    assert inputs["deletionProtection"] is True
    assert inputs["backupRetentionPeriod"] == 14
    assert inputs["skipFinalSnapshot"] is False
    generation = plan.one("pulumi-python:dynamic:Resource", "Database-generation")
    # The mocks draw the generation id from its name; AWS names it once, at create.
    suffix = short_id("generation", "Database-generation", length=8)
    assert inputs["finalSnapshotIdentifier"] == f"harbor-prod-database-final-{suffix}"
    assert generation.urn in db.dependencies
    assert inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 4}
    assert db.protect and db.retain_on_delete
    writer = plan.one(INSTANCE)
    assert writer.protect and writer.retain_on_delete
    assert writer.inputs["instanceClass"] == "db.serverless"
    assert writer.inputs["publiclyAccessible"] is False


def test_prod_cluster_sits_in_the_private_subnets_only(real_plan):
    plan = real_plan("prod")
    private = sorted(f"subnet-{short_id('subnet', f'Vpc-private_subnet-az{z}')}" for z in "12")
    group = plan.one("aws:rds/subnetGroup:SubnetGroup").inputs
    assert sorted(group["subnetIds"]) == private
    assert cluster(plan).inputs["dbSubnetGroupName"] == group["name"]
    assert plan.one(INSTANCE).inputs["dbSubnetGroupName"] == group["name"]


def test_dev_pauses_at_zero_acu_keeps_one_day_of_backups_and_is_not_protected(real_plan):
    plan = real_plan("dev")
    db = cluster(plan)
    assert db.inputs["serverlessv2ScalingConfiguration"] == {
        "minCapacity": 0, "maxCapacity": 2, "secondsUntilAutoPause": 300
    }
    assert db.inputs["backupRetentionPeriod"] == 1
    assert db.inputs["deletionProtection"] is False
    assert db.inputs["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in db.inputs
    assert not db.protect and not db.retain_on_delete
    assert not plan.one(INSTANCE).protect


def test_staging_pauses_after_15_idle_minutes_and_keeps_7_days(real_plan):
    db = cluster(real_plan("staging"))
    assert db.inputs["serverlessv2ScalingConfiguration"]["secondsUntilAutoPause"] == 900
    assert db.inputs["backupRetentionPeriod"] == 7


def test_a_retaining_stage_keeps_a_final_snapshot_even_without_protection(build):
    db = cluster(build(database(), stage="qa", removal="retain", protect=False))
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["finalSnapshotIdentifier"].startswith("harbor-qa-database-final-")
    assert db.retain_on_delete and not db.protect and db.inputs["deletionProtection"] is False


def test_master_password_is_managed_by_secrets_manager_and_never_in_the_plan(real_plan):
    plan = real_plan("prod")
    inputs = cluster(plan).inputs
    assert inputs["manageMasterUserPassword"] is True
    assert "masterPassword" not in inputs and "masterPasswordWo" not in inputs
    for resource in plan.descendants(plan.named("Database")):
        keys = set(_keys(resource.inputs))
        assert not {k for k in keys if "password" in k.lower()} - {"manageMasterUserPassword"}, resource.name


def _keys(value: Any):
    """Every key of a nested input value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def test_engine_version_and_database_name_defaults(build):
    inputs = cluster(build(database())).inputs
    assert inputs["engineVersion"] == "17"
    assert inputs["databaseName"] == "harbor"
    assert inputs["masterUsername"] == "postgres"
    assert inputs["clusterIdentifier"] == "harbor-dev-database"


def test_tls_is_enforced_by_the_cluster_parameter_group_of_the_engine_family(build):
    plan = build(database(version="16.8"))
    group = plan.one("aws:rds/clusterParameterGroup:ClusterParameterGroup").inputs
    assert group["family"] == "aurora-postgresql16"
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "immediate"} in group["parameters"]
    assert cluster(plan).inputs["dbClusterParameterGroupName"].startswith(group["namePrefix"])


def test_security_group_admits_5432_only_from_the_vpc_component_group(build):
    plan = build(database())
    group = plan.named("Database-security_group").inputs
    vpc_group = f"sg-{short_id('sg', 'Vpc-security_group')}"
    assert group["ingress"] == [
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": [vpc_group],
         "description": "components inside the VPC"}
    ]
    assert group["egress"] == []
    own = f"sg-{short_id('sg', 'Database-security_group')}"
    assert cluster(plan).inputs["vpcSecurityGroupIds"] == [own]


def test_link_properties_follow_sst_and_carry_no_password(build):
    plan = build(linked())
    link = plan.outputs["link"]["Database"]
    assert link["type"] == "sst.aws.Postgres"
    assert set(link) == {"type", "clusterArn", "secretArn", "database", "username", "host", "port", "url"}
    assert link["host"] == "harbor-dev-database.cluster-c0abcdefghij.us-east-1.rds.amazonaws.com"
    assert link["port"] == 5432 and link["database"] == "harbor" and link["username"] == "postgres"
    assert link["clusterArn"] == "arn:aws:rds:us-east-1:123456789012:cluster:harbor-dev-database"
    assert link["secretArn"].startswith(SECRET_ARN)
    assert link["url"] == f"postgresql://postgres@{link['host']}:5432/harbor?sslmode=require"


def test_url_with_password_encodes_the_characters_generated_passwords_contain():
    url = "postgresql://postgres@db.example:5432/harbor?sslmode=require"
    password = "p@ss/w:rd%?#&=+ ü"
    full = url_with_password(url, password)
    parts = urlsplit(full)
    assert parts.hostname == "db.example" and parts.port == 5432 and parts.username == "postgres"
    assert unquote(parts.password) == password
    assert parts.path == "/harbor" and parts.query == "sslmode=require"


def test_link_grants_reading_that_secret_only(build):
    plan = build(linked())
    statements = plan.outputs["statements"]
    secret = plan.outputs["link"]["Database"]["secretArn"]
    assert statements == [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [secret]}
    ]


def test_data_api_adds_rds_data_actions_on_that_cluster_only(build):
    plan = build(linked(data_api=True))
    assert cluster(plan).inputs["enableHttpEndpoint"] is True
    statements = plan.outputs["statements"]
    data = [s for s in statements if any(a.startswith("rds-data:") for a in s["Action"])]
    assert data == [{
        "Effect": "Allow",
        "Action": sorted(DATA_API_ACTIONS),
        "Resource": ["arn:aws:rds:us-east-1:123456789012:cluster:harbor-dev-database"],
    }]
    assert all("*" not in resource for s in statements for resource in s["Resource"])
    assert all(not action.endswith(":*") for s in statements for action in s["Action"])


def test_data_api_is_off_by_default(build):
    assert cluster(build(database())).inputs["enableHttpEndpoint"] is False


def test_proxy_requires_tls_signs_in_with_the_managed_secret_and_becomes_the_host(build):
    plan = build(linked(proxy=True))
    proxy = plan.one("aws:rds/proxy:Proxy").inputs
    link = plan.outputs["link"]["Database"]
    assert proxy["requireTls"] is True and proxy["engineFamily"] == "POSTGRESQL"
    assert proxy["auths"][0]["authScheme"] == "SECRETS"
    assert proxy["auths"][0]["secretArn"] == link["secretArn"]
    assert link["host"] == "harbor-dev-database.proxy-c0abcdefghij.us-east-1.rds.amazonaws.com"
    target = plan.one("aws:rds/proxyTarget:ProxyTarget").inputs
    assert target["dbClusterIdentifier"] == "harbor-dev-database"
    policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": link["secretArn"]}
    ]
    ingress = plan.named("Database-security_group").inputs["ingress"]
    assert [rule.get("self") for rule in ingress] == [None, True]


def test_scaling_can_be_overridden_per_component(build):
    scaling = {"min_capacity": 1, "max_capacity": 8}
    db = cluster(build(database(scaling=scaling)))
    assert db.inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 1, "maxCapacity": 8}


def test_transform_reaches_the_cluster(build):
    db = cluster(build(database(transform={"cluster": {"preferred_backup_window": "03:00-04:00"}})))
    assert db.inputs["preferredBackupWindow"] == "03:00-04:00"
    assert db.inputs["storageEncrypted"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scaling": {"min_capacity": 4, "max_capacity": 1}}, "minCapacity 4 is above maxCapacity 1"),
        ({"scaling": {"min_capacity": 0, "max_capacity": 2}, "version": "16.2"},
         r"auto-pause\) needs Aurora PostgreSQL 16.3 or later"),
        ({"version": "17.x"}, "must be an Aurora PostgreSQL major from 14 on"),
        ({"version": "12.9"}, "from 14 on"),
        ({"database": "my-db"}, "must start with a lowercase letter"),
        ({"username": "rdsadmin"}, "reserved by RDS"),
        ({"engine": "mysql"}, "engine is not an argument"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(build, kwargs, message):
    with pytest.raises(ComponentError, match=message):
        build(database(**kwargs))


def test_a_stage_that_pauses_needs_a_version_that_can(build):
    # dev pauses at 0 ACU; 15.4 predates auto-pause support.
    with pytest.raises(ComponentError, match=r"needs Aurora PostgreSQL 15.7 or later, not 15.4"):
        build(database(version="15.4"))


def test_stage_capacity_above_its_maximum_stops_the_plan(plan_stage):
    from stages.loader import StageConfigError

    with pytest.raises(StageConfigError, match="minCapacity 8 is above maxCapacity 4"):
        plan_stage("prod", config={"harbor:database": json.dumps({"minCapacity": 8, "maxCapacity": 4})})


def test_a_single_zone_vpc_is_refused(build):
    def body() -> None:
        Postgres("Database", vpc=Vpc("Vpc", az_count=1, nat_count=1))

    with pytest.raises(ComponentError, match="Aurora needs subnets in at least two zones"):
        build(body, natCount=1)


def test_parameter_and_security_group_changes_replace_beside_the_old_ones(build):
    before = build(database())
    after = build(database(transform={"parameter_group": {"description": "Edited"},
                                      "security_group": {"description": "Edited"}}))
    for role in ("parameter_group", "security_group"):
        old, new = before.named(f"Database-{role}"), after.named(f"Database-{role}")
        assert "name" not in new.inputs and new.inputs["namePrefix"].startswith("harbor-dev-")
        assert replacement_outcome(old, new) == "coexist"


def test_a_major_version_follows_aws_minor_upgrades_and_applies_changes_now(build):
    plan = build(database())
    inputs, writer = cluster(plan).inputs, plan.one(INSTANCE).inputs
    # "17" stays "17" in state while AWS runs 17.x, so an automatic minor upgrade is no diff.
    assert inputs["engineVersion"] == "17" and "engineVersion" not in writer
    assert writer["autoMinorVersionUpgrade"] is True
    assert inputs["applyImmediately"] is True and writer["applyImmediately"] is True
    assert inputs["allowMajorVersionUpgrade"] is True
    assert plan.one("aws:rds/clusterParameterGroup:ClusterParameterGroup").inputs["family"] == "aurora-postgresql17"


def test_a_pinned_minor_stays_pinned(build):
    plan = build(database(version="16.8"))
    assert cluster(plan).inputs["engineVersion"] == "16.8"
    # AWS would otherwise move it and every later deploy would try to go back.
    assert plan.one(INSTANCE).inputs["autoMinorVersionUpgrade"] is False


def test_server_logs_go_to_a_log_group_with_the_stages_retention(build):
    plan = build(database(), stage="prod", logRetentionDays=30)
    db = cluster(plan)
    assert db.inputs["enabledCloudwatchLogsExports"] == ["postgresql"]
    group = plan.named("Database-log_group")
    assert group.inputs == {"name": "/aws/rds/cluster/harbor-prod-database/postgresql", "retentionInDays": 30}
    assert group.urn in db.dependencies
    # ...and so does everything built on the cluster, through it.
    assert plan.waits_for(plan.one(INSTANCE), group) and not plan.waits_for(group, db)


def test_each_generation_of_a_cluster_gets_its_own_final_snapshot_name():
    from components.core.generation import GenerationIdProvider

    provider = GenerationIdProvider()
    keepers = {"cluster": "harbor-prod-database"}
    first = provider.create({"kind": "harbor:generation-id", "keepers": keepers, "hex": None})
    again = provider.create({"kind": "harbor:generation-id", "keepers": keepers, "hex": None})
    assert len(first.outs["hex"]) == 8 and first.outs["hex"] != again.outs["hex"]
    # The same generation redeployed keeps its id; a renamed cluster is a new generation.
    assert provider.diff(first.id, first.outs, {**first.outs, "hex": None}).changes is False
    renamed = provider.diff(first.id, first.outs, {"keepers": {"cluster": "harbor-prod-db2"}})
    assert renamed.replaces == ["keepers"]


def test_a_retaining_stage_keeps_what_the_cluster_sits_in(build):
    plan = build(database(), stage="prod", removal="retain", protect=True)
    kept = {r.type for r in plan.resources if r.custom and r.retain_on_delete}
    assert {"aws:rds/subnetGroup:SubnetGroup", "aws:rds/clusterParameterGroup:ClusterParameterGroup",
            "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet",
            "aws:rds/cluster:Cluster", "aws:rds/clusterInstance:ClusterInstance"} <= kept
    groups = plan.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert groups and all(g.retain_on_delete for g in groups)
    # What holds no data and pins nothing is still removed with the stack.
    assert not any(r.retain_on_delete for r in plan.of_type("aws:ec2/routeTable:RouteTable"))
    dev = build(database(), stage="dev")
    assert not any(r.retain_on_delete for r in dev.resources)
