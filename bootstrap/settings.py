"""The bootstrap stack's config, validated by one pydantic model before any resource exists.

Example ``bootstrap/Pulumi.shared.yaml``::

    config:
      aws:region: us-east-1
      harbor-bootstrap:owner: getreggie
      harbor-bootstrap:repository: harbor
      harbor-bootstrap:ownerId: 1234567           # optional, with repositoryId
      harbor-bootstrap:repositoryId: 890123456
      harbor-bootstrap:environments: [dev, staging, prod, preview]
      harbor-bootstrap:maxSessionDuration: 3600
      harbor-bootstrap:stateBucketName: getreggie-pulumi-state   # optional
      harbor-bootstrap:keyUsers: [arn:aws:iam::111122223333:role/Admin]  # optional
      harbor-bootstrap:previewNetwork: true       # optional: one VPC all preview stages share
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.aws.github_oidc import (
    DEFAULT_ENVIRONMENTS,
    DeployEnvironment,
    GithubOwner,
    GithubRepository,
    check_environments,
)
from stages import StageConfig
from stages.loader import parse_config_value

PROJECT = "harbor-bootstrap"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class BootstrapConfigError(pulumi.RunError):
    """The bootstrap stack file holds a wrong key or value; shown without a traceback."""


class BootstrapSettings(BaseModel):
    """Everything the bootstrap needs to know about the repository and the account."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    owner: GithubOwner = Field(description="GitHub user or organization, exactly as GitHub spells it")
    repository: GithubRepository = Field(description="repository name without the owner")
    owner_id: int | None = Field(None, gt=0, description="numeric owner id (immutable OIDC subjects)")
    repository_id: int | None = Field(None, gt=0, description="numeric repository id (immutable OIDC subjects)")
    environments: dict[str, DeployEnvironment] = Field(
        default_factory=lambda: {name: DeployEnvironment() for name in DEFAULT_ENVIRONMENTS},
        description="GitHub environments that get a deploy role: a list of names, or "
        "name -> {stacks, policyArns, maxSessionDuration}",
    )
    max_session_duration: int = Field(3600, ge=900, le=43200, description="seconds a deploy session may last")
    state_bucket_name: str | None = Field(None, description="the state bucket's name; default: generated")
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    app: str = Field("harbor", description="the application project the roles deploy")
    oidc_provider_arn: str | None = Field(
        None, description="the account's existing GitHub OIDC provider; default: create one"
    )
    preview_network: bool = Field(
        False,
        description="a VPC (two zones, one NAT instance) that every preview stage joins instead of "
        "creating its own; its ids are the PREVIEW_SHARED_VPC output",
    )
    key_users: list[str] = Field(
        default_factory=list,
        description="IAM role or user ARNs that may use the state and secrets keys besides the deploy "
        "roles: whoever runs pulumi by hand against these stacks",
    )

    @field_validator("key_users")
    @classmethod
    def _principal_arns(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$", arn):
                raise ValueError(
                    f"key user {arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>); "
                    "for an SSO session use its role's ARN, not the assumed-role session"
                )
        return arns

    @field_validator("environments", mode="before")
    @classmethod
    def _environment_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {name: {} for name in value}
        if isinstance(value, Mapping):
            # Stack files are camelCase; the component's model is snake_case.
            return {
                name: {re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): item for key, item in (spec or {}).items()}
                for name, spec in value.items()
            }
        return value

    @field_validator("state_bucket_name")
    @classmethod
    def _bucket_name(cls, name: str | None) -> str | None:
        if name is not None and (not _BUCKET_NAME.match(name) or ".." in name):
            raise ValueError(f"{name!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
        return name

    @model_validator(mode="after")
    def _ids_together(self) -> BootstrapSettings:
        check_environments(list(self.environments))
        if (self.owner_id is None) != (self.repository_id is None):
            raise ValueError(
                "ownerId and repositoryId go together (gh api repos/OWNER/REPO --jq '.owner.id, .id')"
            )
        return self

    def oidc_args(self) -> dict[str, Any]:
        """The arguments of the GithubOidc component."""
        return {
            "owner": self.owner,
            "repository": self.repository,
            "owner_id": self.owner_id,
            "repository_id": self.repository_id,
            "environments": self.environments,
            "max_session_duration": self.max_session_duration,
            "app": self.app,
            "provider_arn": self.oidc_provider_arn,
        }

    def stage(self, stack: str) -> StageConfig:
        """The stage the component core runs this stack as: everything kept and protected."""
        try:
            return StageConfig(name=stack, app=PROJECT, region=self.region, removal="retain", protect=True, nat="none")
        except ValidationError as error:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors(include_url=False))
            raise BootstrapConfigError(f"bootstrap stack {stack!r}: {problems}") from None


def load_settings(stack: str, config: Mapping[str, Any]) -> BootstrapSettings:
    """Validate the stack's config (``{"harbor-bootstrap:owner": ..., "aws:region": ...}``).

    Raises one ``BootstrapConfigError`` naming every wrong key, the stack file and the fix.
    """
    file = f"bootstrap/Pulumi.{stack}.yaml"
    prefix = f"{PROJECT}:"
    given = {key[len(prefix):]: parse_config_value(value) for key, value in config.items() if key.startswith(prefix)}
    if "region" not in given and config.get("aws:region"):
        given["region"] = config["aws:region"]
    try:
        return BootstrapSettings.model_validate(given)
    except ValidationError as error:
        lines = []
        for problem in error.errors(include_url=False):
            key = prefix + ".".join(str(part) for part in problem["loc"]) if problem["loc"] else "config"
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(f.alias or n for n, f in BootstrapSettings.model_fields.items()))
                message = f"is not a bootstrap setting (allowed: {allowed})"
            elif problem["type"] == "missing":
                message = "is required: set it with `pulumi config set` or in the stack file"
            lines.append(f"{file}: {key} {message}")
        raise BootstrapConfigError("\n".join(lines)) from None


def load_current_settings() -> BootstrapSettings:
    """Validate the config of the stack Pulumi is running now."""
    from pulumi.runtime import config as runtime_config

    config: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return load_settings(pulumi.get_stack(), config)
