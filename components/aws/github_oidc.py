"""GithubOidc: GitHub Actions deploys into AWS with short-lived OIDC credentials, never stored keys.

Example (what the bootstrap program builds)::

    oidc = GithubOidc(
        "Github",
        owner="getreggie",
        repository="harbor",
        owner_id=1234567,           # optional: also accept GitHub's immutable subjects
        repository_id=89012345,
        environments={"dev": {}, "staging": {}, "prod": {}, "preview": {"stacks": ["pr-*"]}},
    )
    oidc.grant_state(backend.bucket_arn, backend.key_alias_pattern)
    oidc.role_arns["staging"]       # paste into the repository variable AWS_ROLE_ARN_STAGING

One IAM role per GitHub environment. Its trust policy accepts a web identity token
only from GitHub's issuer, for audience ``sts.amazonaws.com`` and for the subject
``repo:OWNER/REPO:environment:NAME`` exactly (plus the immutable
``repo:OWNER@<id>/REPO@<id>:environment:NAME`` when the ids are given). There is no
``StringLike`` and no wildcard: a fork, another repository of the same owner, a branch
without the environment or another environment's job cannot assume the role.

What a deploy role may do (the trade-off, in the order it is granted):

* the Pulumi state of its own stacks only (``.pulumi/*/<app>/<stack>…`` and the lock
  under ``.pulumi/locks/organization/<app>/<stack>/``), with explicit denies on every other
  environment's stacks here and on everything else in the state bucket's policy, so no
  managed policy can reopen them; ``read_stacks`` (staging, for the preview role) only
  readable. The secrets keys are granted by their own key policies (bootstrap/backend.py);
* IAM roles, policies and instance profiles whose names start with ``<app>-<stack>-``,
  and a role can be created or given policies only while it carries the permissions
  boundary ``<app>-permissions-boundary``; attachable managed policies are the stacks' own
  and the few AWS ones the components use; the boundary and the deploy roles themselves
  cannot be changed. So no deploy role can make itself or anything else an administrator;
* ``policy_arns`` for everything else the application deploys. The default,
  ``PowerUserAccess``, covers every service the components use but not IAM. It is broad:
  anyone who can run a job in the environment can change any non-IAM resource in the
  account, including other stages' resources there. Put prod in its own AWS account,
  protect the ``prod`` environment with required reviewers, or replace it with a policy
  listing only the services you deploy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from components.core.base import Component, ComponentArgs

GITHUB_ISSUER = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_ISSUER}"
STS_AUDIENCE = "sts.amazonaws.com"
POWER_USER = "arn:aws:iam::aws:policy/PowerUserAccess"
DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod", "preview")

# GitHub's own rules: owners are 1-39 letters, digits and single inner hyphens;
# repositories are up to 100 letters, digits, '.', '_' and '-'.
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_STACK_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,23}\*?$")
_APP = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_WILDCARDS = ("*", "?")

STATE_READ_ACTIONS = ("s3:GetObject",)
STATE_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject")
STATE_OBJECT_ACTIONS = STATE_READ_ACTIONS + STATE_WRITE_ACTIONS
STATE_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning")
SECRETS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# The AWS managed policies the components attach to the roles they create (Lambda logging
# and VPC access, SSM for NAT instances and the bastion); a deploy role may attach these
# and its stacks' own policies, nothing else (AdministratorAccess is out of reach).
ATTACHABLE_AWS_POLICIES = (
    "service-role/AWSLambdaBasicExecutionRole",
    "service-role/AWSLambdaVPCAccessExecutionRole",
    "AmazonSSMManagedInstanceCore",
)
# Actions on a role that change what it may do: allowed only while the role carries the
# permissions boundary (AWS checks the condition key iam:PermissionsBoundary on each).
BOUNDED_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
)
# What a stack needs to create, change and delete the roles of its Lambda functions,
# tasks and instances; nothing that touches other roles or users.
APP_ROLE_ACTIONS = (
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
)
APP_POLICY_ACTIONS = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicyVersions",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
APP_INSTANCE_PROFILE_ACTIONS = (
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:GetInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
)


def check_owner(owner: str) -> str:
    """A GitHub owner exactly as GitHub spells it; wildcards and empty names are refused."""
    return _check_name("owner", owner, _OWNER, "1-39 letters, digits or inner hyphens, e.g. getreggie")


def check_repository(repository: str) -> str:
    """A repository name without its owner; wildcards and empty names are refused."""
    if "/" in repository:
        raise ValueError(
            f"repository {repository!r} holds a '/': give only the repository's name "
            "(e.g. harbor) and its owner in owner"
        )
    if repository in {".", ".."}:
        raise ValueError(f"repository {repository!r} is not a repository name")
    return _check_name("repository", repository, _REPOSITORY, "letters, digits, '.', '_' or '-', e.g. harbor")


GithubOwner = Annotated[str, AfterValidator(check_owner)]
"""A GitHub user or organization, exact: no wildcard can reach a trust policy."""
GithubRepository = Annotated[str, AfterValidator(check_repository)]
"""A repository name without its owner, exact."""


def _check_name(what: str, value: str, pattern: re.Pattern[str], allowed: str) -> str:
    if not value or not value.strip():
        raise ValueError(
            f"{what} is empty: the deploy roles must trust exactly one repository; "
            f"set it to the {what} as GitHub shows it"
        )
    if any(mark in value for mark in _WILDCARDS):
        raise ValueError(
            f"{what} {value!r} holds a wildcard: a deploy role trusts exactly one repository, "
            f"never a pattern (a wildcard would let other repositories deploy); "
            f"write the {what} as GitHub shows it"
        )
    if not pattern.match(value):
        raise ValueError(f"{what} {value!r} is not a GitHub {what} name ({allowed})")
    return value


def check_environments(names: list[str]) -> list[str]:
    """GitHub environment names for the deploy roles: at least one, none a pattern."""
    if not names:
        raise ValueError("environments is empty: name at least one GitHub environment")
    for name in names:
        if any(mark in name for mark in _WILDCARDS) or not _ENVIRONMENT.match(name):
            raise ValueError(
                f"environment {name!r} must be a GitHub environment name of lowercase letters, "
                "digits, '-' or '_' (no wildcard), as in the workflows' 'environment:'"
            )
    return names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeployEnvironment(_Strict):
    """One GitHub environment and what its deploy role may do."""

    stacks: list[str] | None = Field(
        None,
        description="stacks the role deploys (state access and IAM names); default: the "
        "environment's name, 'pr-*' for preview. A trailing '*' matches a prefix.",
    )
    read_stacks: list[str] | None = Field(
        None,
        description="stacks whose state the role may read but not change, for `pulumi preview`; "
        "default: none, ['staging'] for preview (the staging preview posted to pull requests)",
    )
    policy_arns: list[str] = Field(
        default_factory=lambda: [POWER_USER],
        description="managed policies for the application's services (see the module notes)",
    )
    max_session_duration: int | None = Field(
        None, ge=900, le=43200, description="seconds a deploy session may last; default: the component's"
    )

    @field_validator("stacks", "read_stacks")
    @classmethod
    def _stack_patterns(cls, stacks: list[str] | None) -> list[str] | None:
        for stack in stacks or []:
            if not _STACK_PATTERN.match(stack):
                raise ValueError(
                    f"stack {stack!r} must be a stack name (lowercase letters, digits, hyphens), "
                    "optionally ending in '*' to match a prefix such as 'pr-*'"
                )
        return stacks

    @field_validator("policy_arns")
    @classmethod
    def _policy_arns(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not re.match(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+$", arn):
                raise ValueError(f"policy ARN {arn!r} is not an IAM managed policy ARN")
        return arns


class GithubOidcArgs(ComponentArgs):
    """Arguments of :class:`GithubOidc`."""

    owner: GithubOwner = Field(description="GitHub user or organization, exactly as GitHub spells it")
    repository: GithubRepository = Field(description="repository name without the owner")
    owner_id: int | None = Field(None, gt=0, description="numeric owner id, for immutable subjects")
    repository_id: int | None = Field(None, gt=0, description="numeric repository id, for immutable subjects")
    environments: dict[str, DeployEnvironment] = Field(
        default_factory=lambda: {name: DeployEnvironment() for name in DEFAULT_ENVIRONMENTS},
        description="GitHub environment name -> its deploy role",
    )
    max_session_duration: int = Field(3600, ge=900, le=43200, description="seconds a deploy session may last")
    app: str = Field("harbor", description="the Pulumi project the roles deploy (state paths, IAM names)")
    provider_arn: str | None = Field(
        None,
        description="an existing GitHub OIDC provider of the account (AWS allows one per URL); "
        "default: create it",
    )
    state_bucket_arn: Any = Field(
        None, description="the Pulumi state bucket's ARN (str or Output); or call grant_state() later"
    )

    @field_validator("environments", mode="before")
    @classmethod
    def _environment_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {name: {} for name in value}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GithubOidcArgs:
        check_environments(list(self.environments))
        if (self.owner_id is None) != (self.repository_id is None):
            raise ValueError(
                "owner_id and repository_id go together: the immutable subject names both "
                "(see the repository's settings or GET /repos/OWNER/REPO: owner.id and id)"
            )
        if not _APP.match(self.app):
            raise ValueError(f"app {self.app!r} must be a Pulumi project name like harbor")
        if self.provider_arn is not None and not self.provider_arn.endswith(f":oidc-provider/{GITHUB_ISSUER}"):
            raise ValueError(
                f"provider_arn {self.provider_arn!r} is not GitHub's OIDC provider "
                f"(arn:aws:iam::<account>:oidc-provider/{GITHUB_ISSUER})"
            )
        return self

    def subjects(self, environment: str) -> list[str]:
        """The token subjects a job in ``environment`` of this repository presents."""
        names = [f"repo:{self.owner}/{self.repository}:environment:{environment}"]
        if self.owner_id is not None:
            names.append(
                f"repo:{self.owner}@{self.owner_id}/{self.repository}@{self.repository_id}"
                f":environment:{environment}"
            )
        return names

    def stacks_of(self, environment: str) -> list[str]:
        """The stacks a deploy role of ``environment`` manages."""
        stacks = self.environments[environment].stacks
        if stacks is not None:
            return stacks
        return ["pr-*"] if environment == "preview" else [environment]

    def read_stacks_of(self, environment: str) -> list[str]:
        """The stacks whose state a deploy role of ``environment`` may only read."""
        stacks = self.environments[environment].read_stacks
        if stacks is not None:
            return stacks
        return ["staging"] if environment == "preview" else []


def trust_policy(provider_arn: str, subjects: list[str]) -> str:
    """The role trust policy: GitHub's tokens, for STS, for exactly these subjects."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "GithubActionsEnvironment",
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{GITHUB_ISSUER}:aud": STS_AUDIENCE,
                            f"{GITHUB_ISSUER}:sub": subjects if len(subjects) > 1 else subjects[0],
                        }
                    },
                }
            ],
        }
    )


# -- the Pulumi state bucket ------------------------------------------------------------------
# The S3 (DIY) backend's project-scoped layout (pulumi/pulumi pkg/backend/diy): the stack file
# .pulumi/stacks/<project>/<stack>.json (also .json.gz, .json.bak), its history and backups
# under .pulumi/history|backups/<project>/<stack>/, and the lock that `up`, `destroy`,
# `refresh` and `stack rm` take at .pulumi/locks/organization/<project>/<stack>/<id>.json.
# `preview` takes no lock. .pulumi/meta.yaml (the layout version) is written by the bootstrap.
META_KEY = ".pulumi/meta.yaml"


def stack_state_keys(app: str, stack: str) -> list[str]:
    """The object keys (S3 patterns) that hold one stack's state, history, backups and locks."""
    return [
        f".pulumi/stacks/{app}/{stack}.json*",
        f".pulumi/history/{app}/{stack}/*",
        f".pulumi/backups/{app}/{stack}/*",
        f".pulumi/locks/organization/{app}/{stack}/*",
    ]


def stack_file_keys(app: str, stack: str) -> list[str]:
    """The object keys of one stack's current state file, all a `pulumi preview` reads."""
    return [f".pulumi/stacks/{app}/{stack}.json*"]


def _objects(bucket_arn: str, keys: list[str]) -> list[str]:
    return [f"{bucket_arn}/{key}" for key in keys]


def state_policy(
    bucket_arn: str, app: str, stacks: list[str], read_stacks: list[str] = (), other_stacks: list[str] = ()
) -> str:
    """The deploy role's own grant on the state bucket, with explicit denies for the rest.

    ``stacks`` are read and written (state, history, backups, locks); ``read_stacks`` only
    their current state file is readable (a preview takes no lock); ``other_stacks`` (every
    other environment's) are denied outright, so no managed policy such as PowerUserAccess
    can reopen them. The state bucket's own policy denies everything else
    (:func:`state_bucket_denies`).
    """
    own = [key for stack in stacks for key in stack_state_keys(app, stack)]
    read = [key for stack in read_stacks for key in stack_file_keys(app, stack)]
    statements: list[dict[str, Any]] = [
        {"Sid": "StateBucket", "Effect": "Allow", "Action": list(STATE_BUCKET_ACTIONS), "Resource": bucket_arn},
        {"Sid": "StackState", "Effect": "Allow", "Action": list(STATE_OBJECT_ACTIONS),
         "Resource": _objects(bucket_arn, own)},
        {"Sid": "StateLayout", "Effect": "Allow", "Action": list(STATE_READ_ACTIONS),
         "Resource": _objects(bucket_arn, [META_KEY])},
    ]
    if read:
        statements.append({"Sid": "ReadStackState", "Effect": "Allow", "Action": list(STATE_READ_ACTIONS),
                           "Resource": _objects(bucket_arn, read)})
        statements.append({"Sid": "NeverWriteReadStacks", "Effect": "Deny", "Action": list(STATE_WRITE_ACTIONS),
                           "Resource": _objects(bucket_arn, read + [
                               key for stack in read_stacks for key in stack_state_keys(app, stack)])})
    others = [key for stack in other_stacks if stack not in read_stacks for key in stack_state_keys(app, stack)]
    if others:
        statements.append({"Sid": "OtherStacksState", "Effect": "Deny", "Action": "s3:*",
                           "Resource": _objects(bucket_arn, others)})
    statements.append({"Sid": "StateLayoutReadOnly", "Effect": "Deny", "Action": list(STATE_WRITE_ACTIONS),
                       "Resource": _objects(bucket_arn, [META_KEY])})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def state_bucket_denies(
    bucket_arn: str, role_arn: str, app: str, stacks: list[str], read_stacks: list[str] = (), sid: str = "Deploy"
) -> list[dict[str, Any]]:
    """Bucket-policy statements that confine one deploy role to its own stacks' state.

    An explicit deny in the bucket's policy beats any allow in the role's policies, and
    ``NotResource`` reaches every key the role was not given, including stacks created later.
    """
    own = _objects(bucket_arn, [key for stack in stacks for key in stack_state_keys(app, stack)])
    readable = own + _objects(bucket_arn, [META_KEY] + [
        key for stack in read_stacks for key in stack_file_keys(app, stack)])
    principal = {"AWS": role_arn}
    return [
        {"Sid": f"{sid}OnlyStateActions", "Effect": "Deny", "Principal": principal,
         "NotAction": list(STATE_BUCKET_ACTIONS + STATE_OBJECT_ACTIONS),
         "Resource": [bucket_arn, f"{bucket_arn}/*"]},
        {"Sid": f"{sid}WritesOnlyOwnStacks", "Effect": "Deny", "Principal": principal,
         "Action": list(STATE_WRITE_ACTIONS), "NotResource": own},
        {"Sid": f"{sid}ReadsOnlyOwnStacks", "Effect": "Deny", "Principal": principal,
         "Action": list(STATE_READ_ACTIONS), "NotResource": readable},
    ]


# -- IAM for the application's own roles --------------------------------------------------------
def boundary_name(app: str) -> str:
    """The permissions boundary every role an application stack creates must carry."""
    return f"{app}-permissions-boundary"


def app_iam_policy(
    partition: str, account: str, app: str, stacks: list[str], boundary_arn: str, protected_arns: list[str] = ()
) -> str:
    """IAM on the stacks' own roles, policies and instance profiles, never beyond the boundary.

    A role can be created, or given policies, only while it carries ``boundary_arn``; only
    the stacks' own policies and :data:`ATTACHABLE_AWS_POLICIES` can be attached; the
    boundary can be neither removed nor edited, and ``protected_arns`` (the deploy roles
    themselves) not touched at all. That closes the usual ways from "may create roles"
    to "account administrator".
    """

    def arns(kind: str) -> list[str]:
        # "pr-*" already ends in a wildcard; "staging" must not also match "staging2-…".
        return [
            f"arn:{partition}:iam::{account}:{kind}/{app}-{stack if stack.endswith('*') else stack + '-*'}"
            for stack in stacks
        ]

    attachable = arns("policy") + [f"arn:{partition}:iam::aws:policy/{name}" for name in ATTACHABLE_AWS_POLICIES]
    bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}
    statements: list[dict[str, Any]] = [
        {"Sid": "AppRoles", "Effect": "Allow", "Action": list(APP_ROLE_ACTIONS), "Resource": arns("role")},
        {"Sid": "AppRolesWithBoundary", "Effect": "Allow", "Action": list(BOUNDED_ROLE_ACTIONS),
         "Resource": arns("role"), "Condition": bounded},
        {"Sid": "AttachKnownPolicies", "Effect": "Allow", "Action": "iam:AttachRolePolicy",
         "Resource": arns("role"), "Condition": {**bounded, "ArnLike": {"iam:PolicyARN": attachable}}},
        {"Sid": "PassAppRoles", "Effect": "Allow", "Action": "iam:PassRole", "Resource": arns("role")},
        {"Sid": "AppPolicies", "Effect": "Allow", "Action": list(APP_POLICY_ACTIONS), "Resource": arns("policy")},
        {"Sid": "AppInstanceProfiles", "Effect": "Allow", "Action": list(APP_INSTANCE_PROFILE_ACTIONS),
         "Resource": arns("instance-profile")},
        {"Sid": "KeepTheBoundary", "Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary",
         "Resource": "*"},
        {"Sid": "NeverEditTheBoundary", "Effect": "Deny",
         "Action": ["iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                    "iam:SetDefaultPolicyVersion", "iam:TagPolicy", "iam:UntagPolicy"],
         "Resource": boundary_arn},
    ]
    if protected_arns:
        statements.append({"Sid": "NeverTouchDeployRoles", "Effect": "Deny", "Action": "iam:*",
                           "Resource": list(protected_arns)})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def boundary_policy(state_bucket_arn: str | None, key_alias_pattern: str | None) -> str:
    """The most any role an application stack creates may ever do.

    Everything outside IAM, Organizations and account settings (what PowerUserAccess
    allows), minus the delivery's own stores: the Pulumi state bucket and the secrets keys.
    A Lambda function's role can therefore never create roles or read another stage's state.
    """
    statements: list[dict[str, Any]] = [
        {"Sid": "ServicesNotIam", "Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"],
         "Resource": "*"},
    ]
    if state_bucket_arn:
        statements.append({"Sid": "NoPulumiState", "Effect": "Deny", "Action": "s3:*",
                           "Resource": [state_bucket_arn, f"{state_bucket_arn}/*"]})
    if key_alias_pattern:
        statements.append({"Sid": "NoPulumiKeys", "Effect": "Deny", "Action": "kms:*", "Resource": "*",
                           "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": key_alias_pattern}}})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class GithubOidc(Component):
    """The GitHub OIDC identity provider and one deploy role per GitHub environment.

    Outputs: ``provider_arn``, ``role_arns`` (environment -> role ARN), ``boundary_arn``.
    Transformable children: ``provider``, ``role``, ``state_policy``, ``iam_policy``,
    ``policy_attachment``, ``boundary``.

    The state grants come after the state bucket exists, because the bucket's policy and
    the keys' policies name these roles: ``oidc.grant_state(bucket_arn, key_alias_pattern)``.
    """

    type_token: ClassVar[str] = "harbor:aws:GithubOidc"
    Args: ClassVar[type[ComponentArgs]] = GithubOidcArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "provider", "role", "state_policy", "iam_policy", "policy_attachment", "boundary",
    )

    args: GithubOidcArgs

    def __init__(
        self,
        name: str,
        args: GithubOidcArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        if a.provider_arn is None:
            provider = self.child(
                "provider",
                aws.iam.OpenIdConnectProvider,
                # AWS validates GitHub's certificate through its own trust store, so no
                # thumbprint is pinned (a pinned one breaks when GitHub rotates it).
                {"url": GITHUB_OIDC_URL, "client_id_lists": [STS_AUDIENCE]},
            )
            self.provider_arn: pulumi.Output[str] = provider.arn
        else:
            self.provider_arn = pulumi.Output.from_input(a.provider_arn)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self._account = pulumi.Output.all(partition.partition, identity.account_id)
        self.boundary_arn: pulumi.Output[str] = self._account.apply(
            lambda values: f"arn:{values[0]}:iam::{values[1]}:policy/{boundary_name(a.app)}"
        )
        role_names = {env: self.physical_name("iam.role", name=f"deploy-{env}") for env in a.environments}

        self.roles: dict[str, aws.iam.Role] = {}
        self.role_arns: dict[str, pulumi.Output[str]] = {}
        for environment, settings in a.environments.items():
            stacks = a.stacks_of(environment)
            subjects = a.subjects(environment)
            role = self.child(
                "role",
                aws.iam.Role,
                {
                    "name": role_names[environment],
                    "description": f"GitHub Actions deploys of {a.owner}/{a.repository}, "
                    f"environment {environment} (stacks {', '.join(stacks)})",
                    "assume_role_policy": self.provider_arn.apply(
                        lambda arn, subjects=subjects: trust_policy(arn, subjects)
                    ),
                    "max_session_duration": settings.max_session_duration or a.max_session_duration,
                },
                key=environment,
            )
            self.child(
                "iam_policy",
                aws.iam.RolePolicy,
                {
                    "role": role.name,
                    "policy": self._account.apply(
                        lambda values, stacks=stacks: app_iam_policy(
                            values[0], values[1], a.app, stacks,
                            f"arn:{values[0]}:iam::{values[1]}:policy/{boundary_name(a.app)}",
                            [f"arn:{values[0]}:iam::{values[1]}:role/{n}" for n in role_names.values()],
                        )
                    ),
                },
                key=environment,
            )
            for policy_arn in settings.policy_arns:
                self.child(
                    "policy_attachment",
                    aws.iam.RolePolicyAttachment,
                    {"role": role.name, "policy_arn": policy_arn},
                    key=f"{environment}-{policy_arn.rsplit('/', 1)[-1]}",
                )
            self.roles[environment] = role
            self.role_arns[environment] = role.arn
        if a.state_bucket_arn is not None:
            self.grant_state(a.state_bucket_arn, None)
        self.register_outputs(
            {"providerArn": self.provider_arn, "roleArns": self.role_arns, "boundaryArn": self.boundary_arn}
        )

    def grant_state(self, bucket_arn: pulumi.Input[str], key_alias_pattern: str | None) -> None:
        """Give each role its own stacks' state, and create the boundary that fences app roles."""
        a = self.args
        environments = list(a.environments)
        for environment in environments:
            stacks = a.stacks_of(environment)
            read_stacks = a.read_stacks_of(environment)
            others = [s for other in environments if other != environment for s in a.stacks_of(other)]
            others = [s for s in others if s not in stacks]
            self.child(
                "state_policy",
                aws.iam.RolePolicy,
                {
                    "role": self.roles[environment].name,
                    "policy": pulumi.Output.from_input(bucket_arn).apply(
                        lambda arn, stacks=stacks, read_stacks=read_stacks, others=others: state_policy(
                            arn, a.app, stacks, read_stacks, others
                        )
                    ),
                },
                key=environment,
            )
        self.child(
            "boundary",
            aws.iam.Policy,
            {
                "name": boundary_name(a.app),
                "description": f"The most a role created by a {a.app} stack may do (deploy roles require it)",
                "policy": pulumi.Output.from_input(bucket_arn).apply(
                    lambda arn: boundary_policy(arn, key_alias_pattern)
                ),
            },
        )

    def deploy_access(self) -> dict[str, dict[str, Any]]:
        """Environment -> the role's ARN, the stacks it deploys and the stacks it only reads."""
        a = self.args
        return {
            env: {"role_arn": self.role_arns[env], "stacks": a.stacks_of(env), "read_stacks": a.read_stacks_of(env)}
            for env in a.environments
        }
