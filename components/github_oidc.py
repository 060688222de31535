"""GithubOidc: GitHub Actions deploys into AWS with short-lived OIDC credentials, never stored keys.

Example (what the bootstrap program builds)::

    oidc = GithubOidc(
        "Github",
        owner="getreggie",
        repository="harbor",
        owner_id=1234567,           # optional: also accept GitHub's immutable subjects
        repository_id=89012345,
        environments={"dev": {}, "staging": {}, "prod": {}, "preview": {"stacks": ["pr-*"]}},
        state_bucket_arn=backend.bucket_arn,
        secrets_key_arn=backend.key_arn,
    )
    oidc.role_arns["staging"]       # paste into the repository variable AWS_ROLE_ARN_STAGING

One IAM role per GitHub environment. Its trust policy accepts a web identity token
only from GitHub's issuer, for audience ``sts.amazonaws.com`` and for the subject
``repo:OWNER/REPO:environment:NAME`` exactly (plus the immutable
``repo:OWNER@<id>/REPO@<id>:environment:NAME`` when the ids are given). There is no
``StringLike`` and no wildcard: a fork, another repository of the same owner, a branch
without the environment or another environment's job cannot assume the role.

What a deploy role may do (the trade-off, in the order it is granted):

* the Pulumi state of its own stacks only (``.pulumi/*/<app>/<stack>…`` in the state
  bucket) and encrypt/decrypt with the secrets key, so the preview role cannot rewrite
  prod's state; ``read_stacks`` (staging, for the preview role) are readable, not writable;
* IAM roles and policies whose names start with ``<app>-<stack>-`` (the names the
  components give the roles they create), and passing only those roles to services;
* ``policy_arns`` for everything else the application deploys. The default,
  ``PowerUserAccess``, covers every service the components use but not IAM. It is broad:
  anyone who can run a job in the environment can change any non-IAM resource in the
  account. Protect the ``prod`` environment with required reviewers, prefer one AWS
  account per stage, or replace it with a policy listing only the services you deploy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from components.base import Component, ComponentArgs

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

STATE_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
STATE_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning")
SECRETS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# What a stack needs to create, change and delete the roles of its Lambda functions,
# tasks and instances; nothing that touches other roles or users.
APP_ROLE_ACTIONS = (
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:PutRolePolicy",
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
    state_bucket_arn: Any = Field(None, description="the Pulumi state bucket's ARN (str or Output)")
    secrets_key_arn: Any = Field(None, description="the KMS key for awskms:// secrets (str or Output)")

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


def state_policy(
    bucket_arn: str | None, key_arn: str | None, app: str, stacks: list[str], read_stacks: list[str] = ()
) -> str:
    """Access to the Pulumi state of ``stacks`` and to the secrets key, nothing else.

    ``read_stacks`` may be read and locked (a preview takes the stack's lock) but their
    state and history cannot be changed.
    """
    statements: list[dict[str, Any]] = []
    if bucket_arn:
        objects = [f"{bucket_arn}/.pulumi/meta.yaml"]
        for stack in stacks:
            objects += [
                f"{bucket_arn}/.pulumi/stacks/{app}/{stack}.json*",
                f"{bucket_arn}/.pulumi/history/{app}/{stack}/*",
                f"{bucket_arn}/.pulumi/backups/{app}/{stack}/*",
                f"{bucket_arn}/.pulumi/locks/{app}/{stack}/*",
            ]
        statements += [
            {"Sid": "StateBucket", "Effect": "Allow", "Action": list(STATE_BUCKET_ACTIONS), "Resource": bucket_arn},
            {"Sid": "StackState", "Effect": "Allow", "Action": list(STATE_OBJECT_ACTIONS), "Resource": objects},
        ]
        if read_stacks:
            statements += [
                {"Sid": "ReadStackState", "Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": [f"{bucket_arn}/.pulumi/stacks/{app}/{stack}.json*" for stack in read_stacks]},
                {"Sid": "LockReadStacks", "Effect": "Allow", "Action": list(STATE_OBJECT_ACTIONS),
                 "Resource": [f"{bucket_arn}/.pulumi/locks/{app}/{stack}/*" for stack in read_stacks]},
            ]
    if key_arn:
        statements.append(
            {"Sid": "SecretsKey", "Effect": "Allow", "Action": list(SECRETS_KEY_ACTIONS), "Resource": key_arn}
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def app_iam_policy(partition: str, account: str, app: str, stacks: list[str]) -> str:
    """IAM on the stacks' own roles, policies and instance profiles, by name prefix."""

    def arns(kind: str) -> list[str]:
        # "pr-*" already ends in a wildcard; "staging" must not also match "staging2-…".
        return [
            f"arn:{partition}:iam::{account}:{kind}/{app}-{stack if stack.endswith('*') else stack + '-*'}"
            for stack in stacks
        ]

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AppRoles", "Effect": "Allow", "Action": list(APP_ROLE_ACTIONS), "Resource": arns("role")},
                {"Sid": "PassAppRoles", "Effect": "Allow", "Action": "iam:PassRole", "Resource": arns("role")},
                {"Sid": "AppPolicies", "Effect": "Allow", "Action": list(APP_POLICY_ACTIONS),
                 "Resource": arns("policy")},
                {"Sid": "AppInstanceProfiles", "Effect": "Allow", "Action": list(APP_INSTANCE_PROFILE_ACTIONS),
                 "Resource": arns("instance-profile")},
            ],
        }
    )


class GithubOidc(Component):
    """The GitHub OIDC identity provider and one deploy role per GitHub environment.

    Outputs: ``provider_arn``, ``role_arns`` (environment -> role ARN).
    Transformable children: ``provider``, ``role``, ``state_policy``, ``iam_policy``,
    ``policy_attachment``.
    """

    type_token: ClassVar[str] = "harbor:aws:GithubOidc"
    Args: ClassVar[type[ComponentArgs]] = GithubOidcArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "provider", "role", "state_policy", "iam_policy", "policy_attachment",
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

        self.role_arns: dict[str, pulumi.Output[str]] = {}
        for environment, settings in a.environments.items():
            stacks = a.stacks_of(environment)
            read_stacks = a.read_stacks_of(environment)
            subjects = a.subjects(environment)
            role = self.child(
                "role",
                aws.iam.Role,
                {
                    "name": self.physical_name("iam.role", name=f"deploy-{environment}"),
                    "description": f"GitHub Actions deploys of {a.owner}/{a.repository}, "
                    f"environment {environment} (stacks {', '.join(stacks)})",
                    "assume_role_policy": self.provider_arn.apply(
                        lambda arn, subjects=subjects: trust_policy(arn, subjects)
                    ),
                    "max_session_duration": settings.max_session_duration or a.max_session_duration,
                },
                key=environment,
            )
            if a.state_bucket_arn is not None or a.secrets_key_arn is not None:
                self.child(
                    "state_policy",
                    aws.iam.RolePolicy,
                    {
                        "role": role.name,
                        "policy": pulumi.Output.all(
                            pulumi.Output.from_input(a.state_bucket_arn),
                            pulumi.Output.from_input(a.secrets_key_arn),
                        ).apply(
                            lambda arns, stacks=stacks, read_stacks=read_stacks: state_policy(
                                arns[0], arns[1], a.app, stacks, read_stacks
                            )
                        ),
                    },
                    key=environment,
                )
            self.child(
                "iam_policy",
                aws.iam.RolePolicy,
                {
                    "role": role.name,
                    "policy": pulumi.Output.all(partition.partition, identity.account_id).apply(
                        lambda values, stacks=stacks: app_iam_policy(values[0], values[1], a.app, stacks)
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
            self.role_arns[environment] = role.arn
        self.register_outputs({"providerArn": self.provider_arn, "roleArns": self.role_arns})
