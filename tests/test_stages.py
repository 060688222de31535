"""The stage model: defaults per stage, domains, and one clear error per bad setting."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.harness import read_stage_file
from stages import StageConfigError, load_stage

ROOT = Path(__file__).resolve().parent.parent


def load(stage: str, **config: str):
    return load_stage(stage, "harbor", {f"harbor:{k}": v for k, v in config.items()})


def test_dev_and_staging_remove_and_do_not_protect():
    for stage in ("dev", "staging"):
        config = load(stage)
        assert (config.removal, config.protect) == ("remove", False)


def test_prod_retains_and_protects():
    config = load("prod")
    assert (config.removal, config.protect) == ("retain", True)
    assert config.backup_days == 14
    assert (config.database.min_capacity, config.database.max_capacity) == (0.5, 4)


def test_personal_stage_gets_dev_defaults_and_no_domain():
    alice, dev = load("alice"), load("dev")
    assert alice.model_dump(exclude={"name"}) == dev.model_dump(exclude={"name"})
    assert alice.domain is None and alice.domain_for("api") is None


def test_dev_database_can_pause_at_zero():
    database = load("dev").database
    assert database.min_capacity == 0 and database.auto_pause_seconds


def test_prod_serves_at_the_apex_and_other_stages_one_level_below():
    prod = load("prod", domain="getreggie.io")
    staging = load("staging", domain="getreggie.io")
    assert prod.domain_for() == "getreggie.io"
    assert prod.domain_for("api") == "api.getreggie.io"
    assert staging.domain_for() == "staging.getreggie.io"
    assert staging.domain_for("admin") == "staging-admin.getreggie.io"


def test_cors_is_open_outside_prod_and_limited_to_stage_domains_in_prod():
    assert load("dev", domain="getreggie.io").allowed_origins() == ("*",)
    assert load("prod", domain="getreggie.io").allowed_origins() == (
        "https://getreggie.io",
        "https://admin.getreggie.io",
    )


def test_config_values_arrive_as_strings_and_objects_as_json():
    config = load("dev", azCount="3", natCount="2", protect="true", database='{"maxCapacity": 8}')
    assert (config.az_count, config.nat_count, config.protect) == (3, 2, True)
    assert config.database.max_capacity == 8
    assert config.database.min_capacity == 0  # the rest of dev's database defaults stay


def test_other_namespaces_are_ignored():
    assert load_stage("dev", "harbor", {"aws:region": "eu-west-1", "other:x": "1"}).name == "dev"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"natt": "ec2"}, "harbor:natt is not a stage setting; did you mean harbor:nat?"),
        ({"nat": "nats"}, "harbor:nat must be 'none', 'ec2' or 'managed' (got 'nats')"),
        ({"azCount": "two"}, "harbor:azCount must be a valid integer"),
        ({"removal": "keep"}, "harbor:removal must be 'remove', 'retain' or 'retain-all'"),
        ({"logRetentionDays": "8"}, "harbor:logRetentionDays 8 is not a CloudWatch retention period"),
        ({"database": '{"minCapacity": 5, "maxCapacity": 2}'}, "minCapacity 5 is above maxCapacity 2"),
        ({"natCount": "3"}, "natCount 3 must be between 1 and azCount (2)"),
        ({"domain": "Not A Domain"}, "is not a lowercase DNS name"),
        ({"dnsProxied": "true"}, "dnsProxied only applies with dns: cloudflare"),
        ({"database": '{"maxCapacity": 4, "autoPauseSeconds": 600, "minCapacity": 1}'},
         "autoPauseSeconds needs minCapacity 0"),
    ],
)
def test_bad_settings_name_the_key_and_the_stage_file(config, expected):
    with pytest.raises(StageConfigError) as error:
        load("dev", **config)
    message = str(error.value)
    assert message.startswith("Pulumi.dev.yaml: ")
    assert expected in message


def test_a_stage_name_that_cannot_be_part_of_resource_names_is_refused():
    with pytest.raises(StageConfigError, match="stage name 'Bad_Stage'"):
        load("Bad_Stage")


def test_the_committed_stage_files_are_valid():
    for stage in ("dev", "staging", "prod"):
        config = load_stage(stage, "harbor", read_stage_file(ROOT, stage))
        assert config.name == stage
    assert load_stage("prod", "harbor", read_stage_file(ROOT, "prod")).domain_for() == "getreggie.io"


def _plan_with_stage_file(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "Pulumi.broken.yaml").write_text(body)
    infra = Path(sys.executable).parent / "infra"
    return subprocess.run(
        [str(infra), "plan", "--stage", "broken", "--program", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("config:\n  harbor:natType: ec2\n", "harbor:natType"),
        ("config:\n  harbor:azCount: lots\n", "harbor:azCount"),
        ("config:\n  harbor:nat: gateway\n", "harbor:nat"),
    ],
)
def test_infra_plan_stops_on_a_bad_stage_file_with_one_line_and_no_traceback(tmp_path, body, key):
    result = _plan_with_stage_file(tmp_path, body)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Pulumi.broken.yaml" in lines[0] and key in lines[0]
    assert "Traceback" not in result.stderr


def test_api_auth_comes_from_the_stage_and_must_be_https():
    config = load("prod", auth='{"issuer": "https://clerk.getreggie.io", "audiences": ["https://getreggie.io"]}')
    assert config.auth is not None and config.auth.issuer == "https://clerk.getreggie.io"
    assert load("alice").auth is None
    with pytest.raises(StageConfigError, match=r"harbor:auth\.issuer"):
        load("prod", auth='{"issuer": "http://clerk.getreggie.io", "audiences": ["x"]}')


# -- a production stage under another name, custom tags ---------------------------------------


def test_a_stage_taking_prod_defaults_is_production_and_serves_at_the_apex():
    production = load("production", defaults="prod", domain="getreggie.io")
    assert (production.removal, production.protect, production.backup_days) == ("retain", True, 14)
    assert production.is_production
    assert production.domain_for() == "getreggie.io"
    assert production.domain_for("api") == "api.getreggie.io"


def test_without_defaults_a_stage_named_production_is_a_personal_dev_like_stage():
    production = load("production", domain="getreggie.io")
    assert (production.removal, production.protect) == ("remove", False)
    assert not production.is_production
    assert production.domain_for("api") == "production-api.getreggie.io"


def test_apex_alone_moves_a_stage_to_the_apex_without_prod_defaults():
    live = load("live", apex="true", domain="example.com")
    assert live.domain_for("api") == "api.example.com"
    assert (live.removal, live.protect) == ("remove", False)
    # and prod can be told it is not the apex (a shadow prod on a subdomain)
    assert load("prod", apex="false", domain="example.com").domain_for() == "prod.example.com"


def test_settings_in_the_file_override_the_defaults_it_takes():
    config = load("production", defaults="prod", backupDays="21", protect="false")
    assert (config.backup_days, config.protect, config.removal) == (21, False, "retain")


def test_staging_defaults_can_be_taken_by_another_name():
    qa = load("qa", defaults="staging")
    assert (qa.backup_days, qa.log_retention_days) == (7, 14)
    assert not qa.is_production


def test_tags_come_from_the_stage_file():
    config = load("dev", tags='{"Environment": "dev", "Owner": "team-kefir", "CostCenter": "CC-42"}')
    assert config.tags == {"Environment": "dev", "Owner": "team-kefir", "CostCenter": "CC-42"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"defaults": "production"}, "harbor:defaults must be one of dev, staging, prod (got 'production')"),
        ({"defaults": '["prod"]'}, "harbor:defaults must be one of dev, staging, prod"),
        ({"apex": "maybe"}, "harbor:apex must be a valid boolean"),
        ({"tags": '{"aws:owner": "x"}'}, "the aws: prefix is reserved"),
        ({"tags": '{"stage": "x"}'}, "tag 'stage' is set by harbor itself"),
        ({"tags": '{"Owner": "a|b"}'}, "tag 'Owner' value 'a|b' must be up to 256"),
        ({"tags": '{"bad#key": "x"}'}, "tag key 'bad#key' must be 1-128"),
        ({"tags": '{"Owner": 5}'}, "harbor:tags.Owner must be a valid string"),
    ],
)
def test_bad_production_and_tag_settings_are_named(config, expected):
    with pytest.raises(StageConfigError) as error:
        load("dev", **config)
    assert str(error.value).startswith("Pulumi.dev.yaml: ")
    assert expected in str(error.value)


def test_tag_values_may_name_the_stage_and_the_app():
    config = load("qa", tags='{"Environment": "{stage}", "Application": "{app}-api"}')
    assert config.tags == {"Environment": "qa", "Application": "harbor-api"}


def test_project_settings_in_pulumi_yaml_reach_every_stage_and_the_stage_file_wins(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: kefir-app\nruntime: python\nconfig:\n"
        "  tags:\n    value:\n      Environment: '{stage}'\n      Application: kefir-app\n      Owner: team-kefir\n"
        "  kefir-app:logRetentionDays: 30\n"
        "  kefir-app:azCount:\n    type: integer\n    default: 3\n"
        "  kefir-app:natCount:\n    type: integer\n"
    )
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  kefir-app:logRetentionDays: 90\n")

    prod = load_stage("prod", "kefir-app", read_stage_file(tmp_path, "prod"))
    dev = load_stage("dev", "kefir-app", read_stage_file(tmp_path, "dev"))  # no stage file at all

    assert prod.tags == {"Environment": "prod", "Application": "kefir-app", "Owner": "team-kefir"}
    assert dev.tags["Environment"] == "dev"
    assert (prod.log_retention_days, dev.log_retention_days) == (90, 30)
    assert prod.az_count == dev.az_count == 3
    assert prod.nat_count == 2  # a declaration without a value sets nothing


@pytest.mark.parametrize(("region", "suggestion"), [("us-esat-1", "us-east-1"), ("eu-wset-2", "eu-west-2")])
def test_a_misspelt_region_is_refused_with_the_region_meant(region, suggestion):
    with pytest.raises(StageConfigError) as error:
        load("dev", region=region)
    assert str(error.value) == (
        f"Pulumi.dev.yaml: harbor:region {region!r} is not an AWS region; did you mean {suggestion}?"
    )


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1"])
def test_regions_botocore_knows_are_accepted(region):
    assert load("dev", region=region).region == region


def test_aws_region_and_the_app_region_must_agree():
    with pytest.raises(StageConfigError) as error:
        load_stage("dev", "harbor", {"aws:region": "us-west-2", "harbor:region": "us-east-1"})
    assert str(error.value) == (
        "Pulumi.dev.yaml: aws:region 'us-west-2' and harbor:region 'us-east-1' disagree; "
        "set both to the region the stage deploys to"
    )


def test_the_program_follows_aws_region_when_it_alone_is_set():
    assert load_stage("dev", "harbor", {"aws:region": "eu-west-1"}).region == "eu-west-1"
    with pytest.raises(StageConfigError, match="'us-esat-1' is not an AWS region"):
        load_stage("dev", "harbor", {"aws:region": "us-esat-1"})


def test_a_cloudflare_stage_without_a_domain_is_refused():
    with pytest.raises(StageConfigError, match="dns: cloudflare needs a domain"):
        load("dev", dns="cloudflare")
    assert load("dev", dns="cloudflare", domain="getreggie.io").dns == "cloudflare"


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("", "stage '' cannot name a Pulumi stack"),
        ("a b", "stage 'a b' cannot name a Pulumi stack"),
        ("x" * 101, "cannot name a Pulumi stack"),
        ("Alice", "stage name 'Alice' must be 1-24 lowercase letters"),
        ("feature_x", "stage name 'feature_x' must be 1-24 lowercase letters"),
        ("a" * 25, "must be 1-24 lowercase letters"),
    ],
)
def test_stage_names_pulumi_or_aws_names_would_refuse_are_refused(stage, expected):
    with pytest.raises(StageConfigError, match=re.escape(expected)):
        load_stage(stage, "harbor", {})
    with pytest.raises(StageConfigError, match=re.escape(expected)):
        read_stage_file(ROOT, stage)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("config:\n  harbor:nat: ec2\n  harbor:natCount: [1\n", "Pulumi.broken.yaml line 4: not valid YAML"),
        ("config:\n  harbor:nat: ec2\n\tharbor:azCount: 2\n", "Pulumi.broken.yaml line 3: not valid YAML"),
        ("# a comment\nconfig:\n  - harbor:nat\n", "Pulumi.broken.yaml line 3: `config:` must be a mapping"),
        ("config: ec2\n", "Pulumi.broken.yaml line 1: `config:` must be a mapping"),
        ("- config\n", "Pulumi.broken.yaml line 1: a stage file is a mapping"),
    ],
)
def test_a_stage_file_that_is_not_yaml_or_not_a_mapping_names_the_file_and_line(tmp_path, body, expected):
    (tmp_path / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (tmp_path / "Pulumi.broken.yaml").write_text(body)
    with pytest.raises(StageConfigError) as error:
        read_stage_file(tmp_path, "broken")
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


def test_infra_plan_says_once_on_stderr_that_a_stage_without_a_file_is_personal(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "__main__.py").write_text(
        "from components import Dynamo, start_app\n"
        "start_app()\n"
        "Dynamo('Table', fields={'pk': 'string'}, primary_index={'hash_key': 'pk'})\n"
    )
    infra = Path(sys.executable).parent / "infra"
    result = subprocess.run(
        [str(infra), "plan", "--stage", "prd", "--program", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "Pulumi.prd.yaml" in line]
    assert notes == [
        "WARNING: stage 'prd' has no Pulumi.prd.yaml: a personal stage with dev's defaults "
        "(known stages: dev, staging, prod)"
    ]
    assert "Pulumi.prd.yaml" not in result.stdout


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("config:\n  harbor:nat: [ec2\n", "error: Pulumi.broken.yaml line 3: not valid YAML"),
        ("config:\n  harbor:region: us-esat-1\n", "did you mean us-east-1?"),
        ("config:\n  aws:region: us-west-2\n  harbor:region: us-east-1\n", "disagree"),
        ("config:\n  harbor:dns: cloudflare\n", "dns: cloudflare needs a domain"),
    ],
)
def test_infra_plan_refuses_a_broken_stage_file_in_one_line(tmp_path, body, expected):
    result = _plan_with_stage_file(tmp_path, body)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr


def test_preview_stages_are_quota_light_and_carry_the_deploy_boundary():
    preview = load("pr-42")
    assert (preview.removal, preview.protect, preview.nat) == ("remove", False, "none")
    assert (preview.log_retention_days, preview.backup_days) == (3, 1)
    assert preview.database.min_capacity == 0 and preview.database.auto_pause_seconds == 300
    assert preview.permissions_boundary == "harbor-permissions-boundary"
    # only pr-<number> is a preview stage; anything else is personal (dev's defaults)
    assert load("pr-x").nat == "ec2" and load("preview").nat == "ec2"


def test_stages_deployed_from_github_carry_the_boundary_unless_set_empty():
    for stage in ("dev", "staging", "prod", "alice"):
        assert load(stage).permissions_boundary == "harbor-permissions-boundary", stage
    assert load("dev", permissionsBoundary="").permissions_boundary is None
    arn = "arn:aws:iam::123456789012:policy/team-boundary"
    assert load("dev", permissionsBoundary=arn).permissions_boundary == arn
    with pytest.raises(StageConfigError, match=r"harbor:permissionsBoundary .*IAM policy name"):
        load("dev", permissionsBoundary="not a policy!")
