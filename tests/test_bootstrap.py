"""The bootstrap program: OIDC provider, exact-subject deploy roles, protected state bucket, rotating key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootstrap.settings import BootstrapConfigError, load_settings
from components.github_oidc import GITHUB_ISSUER, POWER_USER, GithubOidc
from infra.cli import main
from infra.harness import Plan, read_stage_file, run_program

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "bootstrap"
PREFIX = "harbor-bootstrap"
ENVIRONMENTS = ("dev", "staging", "prod", "preview")


def config(**settings: object) -> dict[str, str]:
    """Bootstrap stack config as the Pulumi CLI passes it."""
    flat = {"aws:region": "us-east-1"}
    for key, value in settings.items():
        flat[f"{PREFIX}:{key}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return flat


def plan(stack: str = "shared", **settings: object) -> Plan:
    settings = {"owner": "getreggie", "repository": "harbor", **settings}
    return run_program(PROGRAM, stack, config=config(**settings))


@pytest.fixture(scope="module")
def example() -> dict:
    """`infra plan --program bootstrap --json` of the shipped example stack."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--program", "bootstrap", "--stage", "example", "--json"]) == 0
    return json.loads(out.getvalue())


def resources(plan_json: dict, resource_type: str) -> list[dict]:
    return [r for r in plan_json["resources"] if r["type"] == resource_type]


def trust(role_inputs: dict) -> dict:
    (statement,) = json.loads(role_inputs["assumeRolePolicy"])["Statement"]
    return statement


# -- infra plan --program bootstrap ------------------------------------------------------
def test_plan_json_names_the_bootstrap_project_and_stack(example):
    assert example["project"] == "harbor-bootstrap" and example["stage"] == "example"
    (stack,) = [r for r in example["resources"] if r["parent"] is None]
    assert stack["name"] == "harbor-bootstrap-example"


def test_plan_shows_githubs_oidc_provider_for_sts(example):
    (provider,) = resources(example, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider["inputs"]["url"] == "https://token.actions.githubusercontent.com"
    assert provider["inputs"]["clientIdLists"] == ["sts.amazonaws.com"]


def test_every_environment_gets_a_role_trusting_exactly_its_repository_and_environment(example):
    roles = {r["inputs"]["name"]: r["inputs"] for r in resources(example, "aws:iam/role:Role")}
    assert set(roles) == {f"harbor-bootstrap-example-deploy-{env}" for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        statement = trust(roles[f"harbor-bootstrap-example-deploy-{env}"])
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{GITHUB_ISSUER}")
        assert set(statement["Condition"]) == {"StringEquals"}, "no StringLike: subjects are exact"
        equals = statement["Condition"]["StringEquals"]
        assert equals[f"{GITHUB_ISSUER}:aud"] == "sts.amazonaws.com"
        assert equals[f"{GITHUB_ISSUER}:sub"] == [
            f"repo:getreggie/harbor:environment:{env}",
            f"repo:getreggie@1234567/harbor@890123456:environment:{env}",
        ]
        assert "*" not in json.dumps(statement) and "?" not in json.dumps(statement)


def test_roles_limit_the_session_duration(example):
    for role in resources(example, "aws:iam/role:Role"):
        assert role["inputs"]["maxSessionDuration"] == 3600


def test_state_bucket_is_protected_retained_versioned_encrypted_with_the_key_and_private(example):
    (bucket,) = resources(example, "aws:s3/bucket:Bucket")
    assert bucket["protect"] and bucket["retainOnDelete"]
    assert bucket["inputs"]["forceDestroy"] is False
    (versioning,) = resources(example, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    (encryption,) = resources(
        example, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    (rule,) = encryption["inputs"]["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"] == example["outputs"]["secretsKeyArn"]
    (block,) = resources(example, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block["inputs"][flag] for flag in (
        "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    (policy,) = resources(example, "aws:s3/bucketPolicy:BucketPolicy")
    (deny,) = json.loads(policy["inputs"]["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_secrets_key_rotates_is_protected_and_has_an_alias(example):
    (key,) = resources(example, "aws:kms/key:Key")
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["protect"] and key["retainOnDelete"]
    (alias,) = resources(example, "aws:kms/alias:Alias")
    assert alias["inputs"]["name"] == "alias/harbor-bootstrap-example-pulumi-secrets"


def test_outputs_are_the_repository_variables_the_workflows_read(example):
    outputs = example["outputs"]
    assert outputs["PULUMI_BACKEND_URL"].startswith("s3://harbor-bootstrap-example-pulumistate-")
    assert outputs["PULUMI_BACKEND_URL"].endswith("?region=us-east-1")
    assert outputs["PULUMI_SECRETS_PROVIDER"] == (
        "awskms://alias/harbor-bootstrap-example-pulumi-secrets?region=us-east-1"
    )
    assert outputs["AWS_REGION"] == "us-east-1"
    for env in ENVIRONMENTS:
        assert outputs[f"AWS_ROLE_ARN_{env.upper()}"] == (
            f"arn:aws:iam::123456789012:role/harbor-bootstrap-example-deploy-{env}"
        )


# -- what a deploy role may do ------------------------------------------------------------
def _policy(plan_: Plan, name: str) -> list[dict]:
    return json.loads(plan_.named(name).inputs["policy"])["Statement"]


def test_each_role_reaches_only_its_own_stacks_state_and_the_secrets_key():
    result = plan()
    prod = {s["Sid"]: s for s in _policy(result, "Github-state_policy-prod")}
    assert all("/.pulumi/" in arn for arn in prod["StackState"]["Resource"])
    assert any(arn.endswith("/.pulumi/stacks/harbor/prod.json*") for arn in prod["StackState"]["Resource"])
    assert not any("staging" in arn or "pr-" in arn for arn in prod["StackState"]["Resource"])
    assert prod["SecretsKey"]["Resource"].startswith("arn:aws:kms:")
    assert set(prod["SecretsKey"]["Action"]) == {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
    preview = {s["Sid"]: s for s in _policy(result, "Github-state_policy-preview")}
    assert any(arn.endswith("/.pulumi/stacks/harbor/pr-*.json*") for arn in preview["StackState"]["Resource"])
    # The staging preview posted to pull requests reads staging's state but cannot write it.
    assert preview["ReadStackState"]["Action"] == "s3:GetObject"
    assert not any("staging" in arn for arn in preview["StackState"]["Resource"])


def test_iam_rights_cover_only_the_stacks_own_role_names():
    result = plan()
    for env, pattern in (("staging", "role/harbor-staging-*"), ("preview", "role/harbor-pr-*")):
        statements = {s["Sid"]: s for s in _policy(result, f"Github-iam_policy-{env}")}
        assert statements["PassAppRoles"]["Resource"] == [f"arn:aws:iam::123456789012:{pattern}"]
        assert statements["AppRoles"]["Resource"] == [f"arn:aws:iam::123456789012:{pattern}"]
        for statement in statements.values():
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            assert all(not a.endswith(":*") for a in actions)
            assert "*" not in statement["Resource"]


def test_application_services_come_from_the_documented_managed_policy():
    attachments = plan().of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert len(attachments) == len(ENVIRONMENTS)
    assert {a.inputs["policyArn"] for a in attachments} == {POWER_USER}


def test_environments_can_scope_policies_and_session_length_per_environment():
    result = plan(
        environments={"prod": {"policyArns": ["arn:aws:iam::123456789012:policy/harbor-deploy"],
                               "maxSessionDuration": 1800}},
        maxSessionDuration=7200,
    )
    (role,) = result.of_type("aws:iam/role:Role")
    assert role.inputs["name"] == "harbor-bootstrap-shared-deploy-prod"
    assert role.inputs["maxSessionDuration"] == 1800
    (attachment,) = result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::123456789012:policy/harbor-deploy"


def test_without_ids_only_the_owner_repo_subject_is_trusted():
    role = plan().named("Github-role-dev")
    sub = trust(role.inputs)["Condition"]["StringEquals"][f"{GITHUB_ISSUER}:sub"]
    assert sub == "repo:getreggie/harbor:environment:dev"


def test_an_existing_oidc_provider_is_reused_not_created():
    arn = f"arn:aws:iam::123456789012:oidc-provider/{GITHUB_ISSUER}"
    result = plan(oidcProviderArn=arn)
    assert not result.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert trust(result.named("Github-role-prod").inputs)["Principal"]["Federated"] == arn


def test_a_chosen_state_bucket_name_is_used():
    result = plan(stateBucketName="getreggie-pulumi-state")
    assert result.one("aws:s3/bucket:Bucket").inputs["bucket"] == "getreggie-pulumi-state"
    assert result.outputs["PULUMI_BACKEND_URL"] == "s3://getreggie-pulumi-state?region=us-east-1"


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("owner", "*", "wildcard"),
        ("owner", "getreggie*", "wildcard"),
        ("owner", "get?eggie", "wildcard"),
        ("owner", "", "empty"),
        ("repository", "*", "wildcard"),
        ("repository", "harbor-*", "wildcard"),
        ("repository", "", "empty"),
        ("repository", "getreggie/harbor", "only the repository's name"),
    ],
)
def test_wildcard_or_empty_owner_or_repository_is_refused(key, value, message):
    settings = {"owner": "getreggie", "repository": "harbor", key: value}
    with pytest.raises(BootstrapConfigError, match=message) as refused:
        load_settings("shared", config(**settings))
    assert f"harbor-bootstrap:{key}" in str(refused.value)
    assert "bootstrap/Pulumi.shared.yaml" in str(refused.value)


def test_wildcard_owner_stops_the_program_before_any_resource(capsys):
    with pytest.raises(BootstrapConfigError, match="wildcard"):
        plan(owner="*")


def test_infra_plan_reports_a_refused_repository_as_one_clear_error(tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text((PROGRAM / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((PROGRAM / "__main__.py").read_text())
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  harbor-bootstrap:owner: getreggie\n  harbor-bootstrap:repository: '*'\n"
    )
    assert main(["plan", "--program", str(tmp_path), "--stage", "bad"]) == 2
    err = capsys.readouterr().err
    assert "harbor-bootstrap:repository" in err and "wildcard" in err and "Traceback" not in err


def test_wildcard_in_the_component_arguments_is_refused_too(build):
    from components.base import ComponentError

    with pytest.raises(ComponentError, match="wildcard"):
        build(lambda: GithubOidc("Github", owner="getreggie", repository="*"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ownerId": 1234567}, "go together"),
        ({"environments": ["prod*"]}, "no wildcard"),
        ({"environments": []}, "at least one"),
        ({"maxSessionDuration": 86400}, "less than or equal to 43200"),
        ({"stateBucketName": "Bad_Bucket"}, "not an S3 bucket name"),
        ({"ownre": "x"}, "not a bootstrap setting"),
    ],
)
def test_other_wrong_settings_are_refused_with_the_fix(settings, message):
    with pytest.raises(BootstrapConfigError, match=message):
        plan(**settings)


def test_missing_owner_names_the_key():
    with pytest.raises(BootstrapConfigError, match=r"harbor-bootstrap:owner is required"):
        load_settings("shared", config(repository="harbor"))


def test_the_example_stack_file_is_valid():
    settings = load_settings("example", read_stage_file(PROGRAM, "example"))
    assert (settings.owner, settings.repository) == ("getreggie", "harbor")
    assert list(settings.environments) == list(ENVIRONMENTS)
