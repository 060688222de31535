"""Run on deploy: invoke a function once after each deploy that changed it (database migrations).

Example (seed 002's Alembic migrator)::

    Function(
        "DbMigrator",
        handler="services/migrator/migrate.handler",
        link=[database],
        vpc=vpc,
        run_on_deploy={"after": [database], "input": {"command": "upgrade", "revision": "head"}},
    )

How it behaves, through ``aws.lambda_.Invocation`` (pulumi-aws, the Terraform provider's
``aws_lambda_invocation`` with ``lifecycle_scope`` ``CREATE_ONLY``):

* The function is invoked synchronously (``RequestResponse``) when the invocation is
  created or replaced. Its ``triggers`` hold the function's code identity (the zip's
  SHA-256 or the image digest), a hash of its configuration (environment, which carries
  the link key, memory, timeout, architecture) and the payload; any change replaces the
  invocation, which invokes the new code once. A deploy with no change invokes nothing.
* A function error (the handler raised, timed out or ran out of memory) fails the
  resource with the function's own error payload, so ``pulumi up`` fails and shows it;
  the failed invocation is not recorded, so the next deploy runs it again.
* It waits for the function (and its role's grants), for everything in ``after``, such
  as the database it migrates, and for the function's ``Vpc`` component when it has one:
  a handler in private subnets reaches AWS APIs (Secrets Manager for the database
  password) only once the NAT routes exist. Destroying the stack invokes nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from components.aws.function import Function


class RunOnDeploy(BaseModel):
    """When and with what a function runs on deploy.

    Example::

        run_on_deploy={"after": [database], "input": {"command": "upgrade"}}
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    after: list[Any] = Field(
        default_factory=list, description="resources or components to wait for (the database it migrates)"
    )
    input: dict[str, Any] = Field(default_factory=dict, description="the JSON event the function receives")

    @field_validator("after")
    @classmethod
    def _resources(cls, after: list[Any]) -> list[Any]:
        for item in after:
            if not isinstance(item, pulumi.Resource):
                raise ValueError(f"run_on_deploy.after holds {item!r}; list resources or components to wait for")
        return after

    @field_validator("input")
    @classmethod
    def _json(cls, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as error:
            raise ValueError(f"run_on_deploy.input must be plain JSON data: {error}") from None
        return payload


def configuration_hash(variables: dict[str, str], memory: int, timeout: int, architecture: str) -> str:
    """A digest of what, besides the code, changes how the function behaves."""
    text = json.dumps(
        {"environment": variables, "memory": memory, "timeout": timeout, "architecture": architecture},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def run_on_deploy(
    function: Function, settings: bool | RunOnDeploy, variables: pulumi.Output[dict[str, str]]
) -> aws.lambda_.Invocation:
    """The invocation that runs ``function`` once after each deploy that changes it."""
    config = settings if isinstance(settings, RunOnDeploy) else RunOnDeploy()
    a = function.args
    payload = json.dumps(config.input, sort_keys=True)
    configuration = variables.apply(
        lambda env: configuration_hash(env, a.memory, a.timeout, a.architecture)
    )
    network = [a.vpc] if isinstance(a.vpc, pulumi.Resource) else []
    return function.child(
        "run_on_deploy",
        aws.lambda_.Invocation,
        {
            "function_name": function.function.name,
            "input": payload,
            "triggers": {
                "code": function.code_identity,
                "configuration": configuration,
                "input": hashlib.sha256(payload.encode()).hexdigest(),
            },
        },
        opts=pulumi.ResourceOptions(depends_on=[function.function, *network, *config.after]),
    )
