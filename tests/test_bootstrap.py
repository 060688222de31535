"""The bootstrap program: OIDC provider, exact-subject deploy roles, protected state bucket, rotating key."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from bootstrap.settings import BootstrapConfigError, load_settings
from components.aws.github_oidc import (
    ATTACHABLE_AWS_POLICIES,
    BOUNDED_ROLE_ACTIONS,
    GITHUB_ISSUER,
    POWER_USER,
    GithubOidc,
)
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


def deploy_roles(plan_json: dict) -> list[dict]:
    return [r for r in resources(plan_json, "aws:iam/role:Role") if r["name"].startswith("Github-role-")]


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
    roles = {r["inputs"]["name"]: r["inputs"] for r in deploy_roles(example)}
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
    for role in deploy_roles(example):
        assert role["inputs"]["maxSessionDuration"] == 3600


def test_state_bucket_is_protected_retained_versioned_encrypted_with_the_key_and_private(example):
    by_name = {r["name"]: r for r in example["resources"]}
    bucket = by_name["PulumiState-bucket"]
    assert bucket["protect"] and bucket["retainOnDelete"]
    assert bucket["inputs"]["forceDestroy"] is False
    versioning = by_name["PulumiState-versioning"]
    assert versioning["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = by_name["PulumiState-encryption"]["inputs"]["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"] == example["outputs"]["stateKeyArn"]
    block = by_name["PulumiState-public_access_block"]
    assert all(block["inputs"][flag] for flag in (
        "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    statements = json.loads(by_name["PulumiState-policy"]["inputs"]["policy"])["Statement"]
    tls = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_keys_rotate_are_protected_and_have_aliases(example):
    keys = resources(example, "aws:kms/key:Key")
    assert len(keys) == 1 + len(ENVIRONMENTS)  # the state key and one secrets key per environment
    for key in keys:
        assert key["inputs"]["enableKeyRotation"] is True
        assert key["protect"] and key["retainOnDelete"]
    aliases = {r["inputs"]["name"] for r in resources(example, "aws:kms/alias:Alias")}
    assert aliases == {"alias/harbor-bootstrap-example-pulumi-state"} | {
        f"alias/harbor-bootstrap-example-pulumi-secrets-{env}" for env in ENVIRONMENTS}


def test_outputs_are_the_repository_variables_the_workflows_read(example):
    outputs = example["outputs"]
    assert outputs["PULUMI_BACKEND_URL"].startswith("s3://harbor-bootstrap-example-pulumistate-")
    assert outputs["PULUMI_BACKEND_URL"].endswith("?region=us-east-1")
    assert "PULUMI_SECRETS_PROVIDER" not in outputs  # one per environment, below
    assert outputs["AWS_REGION"] == "us-east-1"
    for env in ENVIRONMENTS:
        assert outputs[f"AWS_ROLE_ARN_{env.upper()}"] == (
            f"arn:aws:iam::123456789012:role/harbor-bootstrap-example-deploy-{env}"
        )


# -- what a deploy role may do ------------------------------------------------------------
def _policy(plan_: Plan, name: str) -> list[dict]:
    return json.loads(plan_.named(name).inputs["policy"])["Statement"]


def test_state_grants_use_the_s3_backends_lock_path():
    result = plan()
    prod = {s["Sid"]: s for s in _policy(result, "Github-state_policy-prod")}
    keys = [arn.split(":::", 1)[1].split("/", 1)[1] for arn in prod["StackState"]["Resource"]]
    assert keys == [
        ".pulumi/stacks/harbor/prod.json*",
        ".pulumi/history/harbor/prod/*",
        ".pulumi/backups/harbor/prod/*",
        ".pulumi/locks/organization/harbor/prod/*",
    ]
    everything = json.dumps([_policy(result, f"Github-state_policy-{env}") for env in ENVIRONMENTS])
    assert ".pulumi/locks/harbor/" not in everything


def test_iam_rights_cover_only_the_stacks_own_role_names():
    result = plan()
    for env, pattern in (("staging", "role/harbor-staging-*"), ("preview", "role/harbor-pr-*")):
        statements = {s["Sid"]: s for s in _policy(result, f"Github-iam_policy-{env}")}
        assert statements["PassAppRoles"]["Resource"] == [f"arn:aws:iam::123456789012:{pattern}"]
        assert statements["AppRoles"]["Resource"] == [f"arn:aws:iam::123456789012:{pattern}"]
        for statement in statements.values():
            if statement["Effect"] == "Deny":
                continue
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            assert all(not a.endswith(":*") for a in actions)
            assert "*" not in statement["Resource"]


def test_no_statement_lets_a_deploy_role_create_or_change_a_role_without_the_boundary():
    boundary = "arn:aws:iam::123456789012:policy/harbor-permissions-boundary"
    result = plan()
    for env in ENVIRONMENTS:
        for statement in _policy(result, f"Github-iam_policy-{env}"):
            if statement["Effect"] != "Allow":
                continue
            actions = {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])
            if actions & {*BOUNDED_ROLE_ACTIONS, "iam:AttachRolePolicy"}:
                assert statement["Condition"]["StringEquals"] == {"iam:PermissionsBoundary": boundary}, statement


# -- a small IAM evaluator: explicit deny wins, then any allow ----------------------------------
POWER_USER_STATEMENTS = [  # PowerUserAccess, as AWS publishes it
    {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                                   "organizations:DescribeOrganization", "account:ListRegions",
                                   "account:GetAccountInformation"], "Resource": "*"},
]


def _list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def _matches(statement: dict, key: str, value: str) -> bool:
    # Action names are case-insensitive, resource ARNs are not; '*' and '?' are wildcards in both.
    def like(pattern: str) -> bool:
        if key == "Action":
            return fnmatch.fnmatchcase(value.lower(), pattern.lower())
        return fnmatch.fnmatchcase(value, pattern)

    if key in statement:
        return any(like(p) for p in _list(statement[key]))
    return not any(like(p) for p in _list(statement["Not" + key]))


def _condition_holds(condition: dict, context: dict) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                return False
            actual_values = _list(actual)
            if operator in ("StringEquals", "ArnEquals", "Bool"):
                ok = any(a in _list(expected) for a in actual_values)
            elif operator in ("StringLike", "ArnLike", "ForAnyValue:StringLike"):
                ok = any(fnmatch.fnmatchcase(a, e) for a in actual_values for e in _list(expected))
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not ok:
                return False
    return True


def _principal_matches(statement: dict, principal: str) -> bool:
    if "Principal" not in statement:
        return True  # an identity policy: it applies to its own principal
    given = statement["Principal"]
    return given == "*" or principal in _list(given.get("AWS", []))


def decide(statements: list[dict], principal: str, action: str, resource: str, context: dict | None = None) -> str:
    """'deny' on an explicit deny, else 'allow' on any allow, else 'implicit'."""
    context = {"aws:SecureTransport": "true", **(context or {})}
    verdict = "implicit"
    for statement in statements:
        if not (_principal_matches(statement, principal) and _matches(statement, "Action", action)
                and _matches(statement, "Resource", resource)
                and _condition_holds(statement.get("Condition", {}), context)):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        verdict = "allow"
    return verdict


@pytest.fixture(scope="module")
def effective(example) -> dict:
    """Every statement that decides what each deploy role may do with the state bucket."""
    by_name = {r["name"]: r for r in example["resources"]}
    bucket_policy = json.loads(by_name["PulumiState-policy"]["inputs"]["policy"])["Statement"]
    roles = {env: example["outputs"][f"AWS_ROLE_ARN_{env.upper()}"] for env in ENVIRONMENTS}
    identity = {
        env: json.loads(by_name[f"Github-state_policy-{env}"]["inputs"]["policy"])["Statement"]
        + json.loads(by_name[f"Github-iam_policy-{env}"]["inputs"]["policy"])["Statement"]
        + POWER_USER_STATEMENTS
        for env in ENVIRONMENTS
    }
    bucket = "arn:aws:s3:::" + example["outputs"]["PULUMI_BACKEND_URL"].removeprefix("s3://").split("?")[0]
    return {"bucket": bucket, "roles": roles, "identity": identity, "bucket_policy": bucket_policy,
            "by_name": by_name}


def can(effective: dict, env: str, action: str, key: str) -> bool:
    """Same-account S3: allowed by the role's policies or the bucket's, and denied by neither."""
    resource = f"{effective['bucket']}/{key}" if key else effective["bucket"]
    role = effective["roles"][env]
    verdicts = {decide(effective["identity"][env], role, action, resource),
                decide(effective["bucket_policy"], role, action, resource)}
    return "deny" not in verdicts and "allow" in verdicts


PROD_KEYS = [
    ".pulumi/stacks/harbor/prod.json", ".pulumi/stacks/harbor/prod.json.gz", ".pulumi/stacks/harbor/prod.json.bak",
    ".pulumi/history/harbor/prod/prod-1700000000.history.json",
    ".pulumi/backups/harbor/prod/prod.1700000000.json",
    ".pulumi/locks/organization/harbor/prod/8f2c.json",
]


def test_the_preview_role_cannot_touch_prods_state_whatever_powerusers_allows(effective):
    for key in PROD_KEYS:
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion",
                       "s3:PutObjectAcl", "s3:RestoreObject"):
            assert not can(effective, "preview", action, key), (action, key)
    # ...nor any stack's state it was not given, including one created later
    for key in (".pulumi/stacks/harbor/qa.json", ".pulumi/stacks/other-app/pr-1.json"):
        assert not can(effective, "preview", "s3:GetObject", key)
    # ...nor the bucket itself
    for action in ("s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutLifecycleConfiguration",
                   "s3:PutBucketVersioning", "s3:DeleteObjectVersion"):
        assert not can(effective, "preview", action, "") and not can(effective, "preview", action, "x")


def test_the_preview_role_deploys_its_own_stacks_and_only_reads_staging(effective):
    for key in (".pulumi/stacks/harbor/pr-12.json", ".pulumi/history/harbor/pr-12/pr-12-1.history.json",
                ".pulumi/backups/harbor/pr-12/pr-12.1.json", ".pulumi/locks/organization/harbor/pr-12/ab.json"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert can(effective, "preview", action, key), (action, key)
    assert can(effective, "preview", "s3:ListBucket", "")
    assert can(effective, "preview", "s3:GetObject", ".pulumi/meta.yaml")
    assert not can(effective, "preview", "s3:PutObject", ".pulumi/meta.yaml")
    assert can(effective, "preview", "s3:GetObject", ".pulumi/stacks/harbor/staging.json")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert not can(effective, "preview", action, ".pulumi/stacks/harbor/staging.json")
        # a preview takes no lock, so the preview role never writes one for staging
        assert not can(effective, "preview", action, ".pulumi/locks/organization/harbor/staging/ab.json")


def test_each_role_reaches_only_its_own_stacks(effective):
    assert can(effective, "prod", "s3:PutObject", ".pulumi/stacks/harbor/prod.json")
    assert can(effective, "prod", "s3:PutObject", ".pulumi/locks/organization/harbor/prod/ab.json")
    for env, foreign in (("prod", "pr-3"), ("prod", "staging"), ("staging", "prod"), ("dev", "prod"),
                         ("staging", "dev")):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert not can(effective, env, action, f".pulumi/stacks/harbor/{foreign}.json"), (env, foreign)


def test_identity_policies_alone_deny_the_other_environments_stacks(effective):
    # Even without the bucket policy, the role's own policy overrides PowerUserAccess.
    role = effective["roles"]["preview"]
    for key in PROD_KEYS:
        resource = f"{effective['bucket']}/{key}"
        assert decide(effective["identity"]["preview"], role, "s3:GetObject", resource) == "deny", key


def test_deploy_roles_cannot_make_an_administrator(effective):
    account = "arn:aws:iam::123456789012"
    boundary = f"{account}:policy/harbor-permissions-boundary"
    app_role = f"{account}:role/harbor-pr-12-Api-role"
    role, statements = effective["roles"]["preview"], effective["identity"]["preview"]

    def verdict(action: str, resource: str, **context: str) -> str:
        return decide(statements, role, action, resource, context)

    assert verdict("iam:CreateRole", app_role, **{"iam:PermissionsBoundary": boundary}) == "allow"
    assert verdict("iam:CreateRole", app_role) != "allow"
    assert verdict("iam:CreateRole", app_role, **{"iam:PermissionsBoundary": f"{account}:policy/Open"}) != "allow"
    assert verdict("iam:PutRolePolicy", app_role) != "allow"
    assert verdict("iam:CreateRole", f"{account}:role/harbor-prod-Api-role",
                   **{"iam:PermissionsBoundary": boundary}) != "allow"
    bounded = {"iam:PermissionsBoundary": boundary}
    assert verdict("iam:AttachRolePolicy", app_role, **bounded,
                   **{"iam:PolicyARN": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}) == "allow"
    for admin in ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/IAMFullAccess",
                  f"{account}:policy/somebody-elses"):
        assert verdict("iam:AttachRolePolicy", app_role, **bounded, **{"iam:PolicyARN": admin}) != "allow", admin
    assert verdict("iam:DeleteRolePermissionsBoundary", app_role) == "deny"
    assert verdict("iam:CreatePolicyVersion", boundary) == "deny"
    for own in effective["roles"].values():
        assert verdict("iam:PutRolePolicy", own, **bounded) == "deny"
        assert verdict("iam:UpdateAssumeRolePolicy", own) == "deny"
    assert verdict("iam:CreateUser", f"{account}:user/mallory") != "allow"


def test_attachable_aws_policies_are_exactly_those_the_components_attach():
    from components.aws import function, vpc

    used = {function.BASIC_EXECUTION_POLICY.split(":policy/")[1], function.VPC_EXECUTION_POLICY.split(":policy/")[1],
            vpc.SSM_POLICY}
    assert set(ATTACHABLE_AWS_POLICIES) == used


def test_the_boundary_keeps_app_roles_out_of_iam_the_state_and_the_keys(effective, example):
    (boundary,) = resources(example, "aws:iam/policy:Policy")
    assert boundary["inputs"]["name"] == "harbor-permissions-boundary"
    assert example["outputs"]["permissionsBoundaryArn"].endswith(":policy/harbor-permissions-boundary")
    statements = json.loads(boundary["inputs"]["policy"])["Statement"]
    app_role = "arn:aws:iam::123456789012:role/harbor-prod-Api-role"
    assert decide(statements, app_role, "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/t") == "allow"
    assert decide(statements, app_role, "iam:CreateRole", "arn:aws:iam::1:role/x") == "implicit"
    prod_state = f"{effective['bucket']}/.pulumi/stacks/harbor/prod.json"
    assert decide(statements, app_role, "s3:GetObject", prod_state) == "deny"
    alias = example["outputs"]["PULUMI_SECRETS_PROVIDER_PROD"].removeprefix("awskms://").split("?")[0]
    assert decide(statements, app_role, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k",
                  {"kms:ResourceAliases": [alias]}) == "deny"


# -- the secrets keys ---------------------------------------------------------------------------
def _key_policy(effective: dict, env: str) -> list[dict]:
    return json.loads(effective["by_name"][f"Pulumi-secrets_key-{env}"]["inputs"]["policy"])["Statement"]


def test_each_environment_has_its_own_key_only_its_role_uses(effective, example):
    roles = effective["roles"]
    for env in ENVIRONMENTS:
        statements = _key_policy(effective, env)
        for other in ENVIRONMENTS:
            for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"):
                expected = other == env or (action == "kms:Decrypt" and (env, other) == ("staging", "preview"))
                assert (decide(statements, roles[other], action, "*") == "allow") == expected, (env, other, action)
        assert example["outputs"][f"PULUMI_SECRETS_PROVIDER_{env.upper()}"] == (
            f"awskms://alias/harbor-bootstrap-example-pulumi-secrets-{env}?region=us-east-1"
        )


def test_key_policies_are_explicit_administrators_do_not_decrypt_and_roles_do_not_administer(effective):
    root = "arn:aws:iam::123456789012:root"
    for name in ["Pulumi-key", *(f"Pulumi-secrets_key-{env}" for env in ENVIRONMENTS)]:
        statements = json.loads(effective["by_name"][name]["inputs"]["policy"])["Statement"]
        assert decide(statements, root, "kms:PutKeyPolicy", "*") == "allow"
        assert decide(statements, root, "kms:Decrypt", "*") == "implicit"
        for role in effective["roles"].values():
            for action in ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant", "kms:DisableKey"):
                assert decide(statements, role, action, "*") == "deny", (name, role, action)


def test_the_state_key_is_used_only_through_s3(effective):
    statements = json.loads(effective["by_name"]["Pulumi-key"]["inputs"]["policy"])["Statement"]
    role = effective["roles"]["prod"]
    assert decide(statements, role, "kms:Decrypt", "*", {"kms:ViaService": "s3.us-east-1.amazonaws.com"}) == "allow"
    assert decide(statements, role, "kms:Decrypt", "*") == "implicit"


def test_key_users_may_use_every_key():
    admin = "arn:aws:iam::123456789012:role/Admin"
    result = plan(keyUsers=[admin])
    for env in ENVIRONMENTS:
        statements = json.loads(result.named(f"Pulumi-secrets_key-{env}").inputs["policy"])["Statement"]
        assert decide(statements, admin, "kms:Decrypt", "*") == "allow"


# -- the state bucket's own protection ------------------------------------------------------------
def test_state_bucket_writes_access_logs_to_a_private_bucket(example, effective):
    (logging,) = resources(example, "aws:s3/bucketLogging:BucketLogging")
    by_name = effective["by_name"]
    state_name = by_name["PulumiState-bucket"]["inputs"]["bucket"]
    log_name = by_name["PulumiStateLogs-bucket"]["inputs"]["bucket"]
    assert logging["inputs"] == {"bucket": state_name, "targetBucket": log_name, "targetPrefix": "state-bucket/"}
    assert example["outputs"]["stateAccessLogBucket"] == log_name
    log_policy = json.loads(by_name["PulumiStateLogs-policy"]["inputs"]["policy"])["Statement"]
    (delivery,) = [s for s in log_policy if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{state_name}"}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    # S3 server access logging cannot write to SSE-KMS buckets
    (rule,) = by_name["PulumiStateLogs-encryption"]["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = by_name["PulumiStateLogs-public_access_block"]["inputs"]
    assert all(block[flag] for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                        "restrictPublicBuckets"))
    assert by_name["PulumiStateLogs-bucket"]["protect"] and by_name["PulumiStateLogs-bucket"]["retainOnDelete"]


def test_the_bootstrap_writes_the_state_layout_so_no_role_has_to(example):
    (meta,) = resources(example, "aws:s3/bucketObjectv2:BucketObjectv2")
    assert meta["inputs"]["key"] == ".pulumi/meta.yaml" and meta["inputs"]["content"] == "version: 1\n"
    # the administrator running the bootstrap may not encrypt with the state key: SSE-S3 here
    assert meta["inputs"]["serverSideEncryption"] == "AES256"


def test_preview_network_is_one_shared_vpc_whose_ids_preview_stages_join(example):
    (vpc,) = resources(example, "aws:ec2/vpc:Vpc")
    assert vpc["name"] == "PreviewNetwork-vpc"
    assert len(resources(example, "aws:ec2/eip:Eip")) == 1 and len(resources(example, "aws:ec2/instance:Instance")) == 1
    shared = json.loads(example["outputs"]["PREVIEW_SHARED_VPC"])
    assert set(shared) == {"id", "privateSubnetIds", "publicSubnetIds"} and len(shared["privateSubnetIds"]) == 2
    from stages.model import SharedVpc

    SharedVpc.model_validate(shared)  # exactly what harbor:sharedVpc accepts
    assert "PREVIEW_SHARED_VPC" not in plan().outputs  # only when previewNetwork is on


def test_destroying_the_bootstrap_deletes_nothing():
    result = plan()
    guard = result.one("aws:resourcegroups/group:Group")
    assert guard.protect
    custom = {r.urn for r in result.resources
              if r.custom and r.urn != guard.urn and not r.type.startswith("pulumi:providers:")}
    assert custom and custom <= set(guard.dependencies)


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
    assert result.named("PulumiState-bucket").inputs["bucket"] == "getreggie-pulumi-state"
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
    from components.core.base import ComponentError

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
