"""StateBackend: the S3 bucket that holds Pulumi state and the KMS keys behind ``awskms://`` secrets.

Example::

    github = GithubOidc("Github", owner="getreggie", repository="harbor")
    backend = StateBackend("Pulumi", bucket_name="getreggie-pulumi-state", deploy_access=github.deploy_access())
    backend.backend_url                 # s3://getreggie-pulumi-state?region=us-east-1
    backend.secrets_providers["prod"]   # awskms://alias/harbor-bootstrap-shared-pulumi-secrets-prod?region=us-east-1

* The state bucket is a harbor ``Bucket`` (public access blocked, TLS only, owner-enforced),
  always versioned, encrypted with the state key, keeps old state versions for 90 days and
  writes S3 server access logs to a second bucket (SSE-S3, which is all S3 logging accepts).
  Its policy confines each deploy role to its own stacks (``state_bucket_denies``).
* Each GitHub environment gets its own secrets key, so a role that can decrypt pull-request
  stacks cannot decrypt prod's stack key, wherever that key's ciphertext is (it is committed
  in ``Pulumi.prod.yaml``). The key policies are explicit: the account (its IAM
  administrators) administers every key but uses none; the environment's deploy role and
  ``key_users`` use its key; a role that only reads a stack (preview reading staging) may
  decrypt, not encrypt; every other deploy role is denied outright, and no deploy role may
  administer a key.
* Bucket, keys and log bucket are protected and retained by the bootstrap's stage policy:
  losing them loses every stack's state or secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components.aws.bucket import Bucket
from components.aws.github_oidc import SECRETS_KEY_ACTIONS, state_bucket_denies
from components.core.base import Component, ComponentArgs

STATE_VERSION_DAYS = 90
ACCESS_LOG_DAYS = 365
LOG_PREFIX = "state-bucket/"
# What the account's administrators may do with the keys: everything but use them.
KEY_ADMIN_ACTIONS = (
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
    "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
)
KEY_READ_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
# The layout version the S3 backend writes into an empty bucket (project-scoped stacks).
PULUMI_META = "version: 1\n"


class StateBackendArgs(ComponentArgs):
    """Arguments of :class:`StateBackend`."""

    bucket_name: str | None = Field(None, description="the state bucket's name; default {app}-{stage}-state-{hash}")
    key_deletion_window_days: int = Field(
        30, ge=7, le=30, description="days a scheduled key deletion can still be cancelled"
    )
    app: str = Field("harbor", description="the Pulumi project whose stacks the bucket holds")
    deploy_access: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="environment -> {role_arn, stacks, read_stacks} (GithubOidc.deploy_access())",
    )
    key_users: list[str] = Field(
        default_factory=list,
        description="IAM role or user ARNs (people running pulumi by hand) that may use every key",
    )


def key_policy(
    partition: str, account: str, users: list[str], readers: list[str], deploy_roles: list[str],
    via_service: str | None = None,
) -> str:
    """An explicit key policy: who administers the key, who uses it, and who never may."""
    root = f"arn:{partition}:iam::{account}:root"
    use: dict[str, Any] = {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": sorted(users)},
                           "Action": list(SECRETS_KEY_ACTIONS), "Resource": "*"}
    if via_service:
        use["Condition"] = {"StringEquals": {"kms:ViaService": via_service}}
    statements: list[dict[str, Any]] = [
        {"Sid": "AdministerNotUse", "Effect": "Allow", "Principal": {"AWS": root},
         "Action": list(KEY_ADMIN_ACTIONS), "Resource": "*"},
    ]
    if users:
        statements.append(use)
    if readers:
        statements.append({"Sid": "DecryptOnly", "Effect": "Allow", "Principal": {"AWS": sorted(readers)},
                           "Action": list(KEY_READ_ACTIONS), "Resource": "*"})
    if deploy_roles:
        statements.append({"Sid": "DeployRolesNeverAdminister", "Effect": "Deny",
                           "Principal": {"AWS": sorted(deploy_roles)},
                           "NotAction": list(SECRETS_KEY_ACTIONS), "Resource": "*"})
        others = sorted(set(deploy_roles) - set(users) - set(readers))
        if others:
            statements.append({"Sid": "OtherDeployRolesNever", "Effect": "Deny", "Principal": {"AWS": others},
                               "Action": "kms:*", "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class StateBackend(Component):
    """The Pulumi state bucket, its access logs and the secrets keys of an AWS account.

    Outputs: ``bucket_name``, ``bucket_arn``, ``log_bucket_name``, ``key_arn`` (the state
    key), ``key_arns`` and ``secrets_providers`` (environment -> ...), ``backend_url``,
    ``key_alias_pattern``. Transformable children: ``key``, ``alias``, ``secrets_key``,
    ``secrets_alias``, ``bucket``, ``log_bucket`` (arguments of the nested Bucket components),
    ``logging``, ``meta``.
    """

    type_token: ClassVar[str] = "harbor:bootstrap:StateBackend"
    Args: ClassVar[type[ComponentArgs]] = StateBackendArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "key", "alias", "secrets_key", "secrets_alias", "bucket", "log_bucket", "logging", "meta",
    )

    args: StateBackendArgs

    def __init__(
        self,
        name: str,
        args: StateBackendArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        region = self.stage.region
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        account = pulumi.Output.all(partition.partition, identity.account_id)
        access = a.deploy_access
        roles = {env: pulumi.Output.from_input(spec["role_arn"]) for env, spec in access.items()}
        all_roles = pulumi.Output.all(*roles.values())
        key_users = list(a.key_users)

        # The state key encrypts the bucket's objects; roles use it only through S3.
        key = self.child(
            "key",
            aws.kms.Key,
            {
                "description": f"Pulumi state encryption ({self.app.name} {self.stage.name})",
                "key_usage": "ENCRYPT_DECRYPT",
                "enable_key_rotation": True,
                "deletion_window_in_days": a.key_deletion_window_days,
                "policy": pulumi.Output.all(account, all_roles).apply(
                    lambda v: key_policy(v[0][0], v[0][1], list(v[1]) + key_users, [], list(v[1]),
                                         via_service=f"s3.{region}.amazonaws.com")
                ),
            },
        )
        self.alias_name = "alias/" + self.physical_name("kms.alias", name="pulumi-state")
        self.child("alias", aws.kms.Alias, {"name": self.alias_name, "target_key_id": key.key_id})

        # One secrets key per environment.
        self.key_alias_pattern = f"alias/{self.app.name}-{self.stage.name}-pulumi-*"
        self.key_arns: dict[str, pulumi.Output[str]] = {}
        self.secrets_providers: dict[str, str] = {}
        for env, spec in access.items():
            readers = [other for other, o in access.items()
                       if other != env and set(o.get("read_stacks") or []) & set(spec["stacks"])]
            secrets_key = self.child(
                "secrets_key",
                aws.kms.Key,
                {
                    "description": f"Pulumi secrets of the {env} stacks ({', '.join(spec['stacks'])})",
                    "key_usage": "ENCRYPT_DECRYPT",
                    "enable_key_rotation": True,
                    "deletion_window_in_days": a.key_deletion_window_days,
                    "policy": pulumi.Output.all(account, roles[env], pulumi.Output.all(
                        *(roles[r] for r in readers)), all_roles).apply(
                        lambda v: key_policy(v[0][0], v[0][1], [v[1], *key_users], list(v[2]), list(v[3]))
                    ),
                },
                key=env,
            )
            alias = "alias/" + self.physical_name("kms.alias", name=f"pulumi-secrets-{env}")
            self.child("secrets_alias", aws.kms.Alias, {"name": alias, "target_key_id": secrets_key.key_id}, key=env)
            self.key_arns[env] = secrets_key.arn
            self.secrets_providers[env] = f"awskms://{alias}?region={region}"

        bucket_transform: dict[str, Any] = {
            # The state is encrypted with the state key.
            "encryption": {
                "rules": [
                    {
                        "apply_server_side_encryption_by_default": {
                            "sse_algorithm": "aws:kms",
                            "kms_master_key_id": key.arn,
                        },
                        "bucket_key_enabled": True,
                    }
                ]
            },
        }
        if a.bucket_name:
            bucket_transform["bucket"] = {"bucket": a.bucket_name}
        if access:
            bucket_transform["policy"] = _with_statements(
                roles, lambda arn, arns: [
                    statement
                    for env, spec in access.items()
                    for statement in state_bucket_denies(
                        arn, arns[env], a.app, spec["stacks"], spec.get("read_stacks") or [],
                        sid="".join(part.title() for part in env.replace("_", "-").split("-")),
                    )
                ],
            )
        bucket = Bucket(
            f"{self.component_name}State",
            {
                "versioning": True,
                "force_destroy": False,
                "lifecycle": [{"id": "expire-old-state", "noncurrent_expiration_days": STATE_VERSION_DAYS}],
                "transform": bucket_transform,
                **_user_bucket_args(a.transform.get("bucket")),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

        # Server access logs: who read or wrote which stack's state, kept for a year.
        log_bucket = Bucket(
            f"{self.component_name}StateLogs",
            {
                "versioning": False,
                "force_destroy": False,
                "lifecycle": [{"id": "expire-access-logs", "expiration_days": ACCESS_LOG_DAYS}],
                "transform": {
                    "policy": _with_statements(
                        {"state": bucket.arn, "account": identity.account_id},
                        lambda arn, v: [log_delivery_statement(arn, v["state"], v["account"])],
                    )
                },
                **_user_bucket_args(a.transform.get("log_bucket")),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.child(
            "logging",
            aws.s3.BucketLogging,
            {"bucket": bucket.name, "target_bucket": log_bucket.name, "target_prefix": LOG_PREFIX},
        )
        # Written here, so no deploy role ever needs to write the layout file. SSE-S3: whoever
        # runs the bootstrap administers the state key but may not encrypt with it.
        self.child(
            "meta",
            aws.s3.BucketObjectv2,
            {"bucket": bucket.name, "key": ".pulumi/meta.yaml", "content": PULUMI_META,
             "content_type": "application/yaml", "server_side_encryption": "AES256"},
            opts=pulumi.ResourceOptions(depends_on=[bucket]),
        )

        self.bucket_name: pulumi.Output[str] = bucket.name
        self.bucket_arn: pulumi.Output[str] = bucket.arn
        self.log_bucket_name: pulumi.Output[str] = log_bucket.name
        self.key_arn: pulumi.Output[str] = key.arn
        self.backend_url: pulumi.Output[str] = bucket.name.apply(lambda n: f"s3://{n}?region={region}")
        self.register_outputs({"backendUrl": self.backend_url, "secretsProviders": self.secrets_providers})


def log_delivery_statement(log_bucket_arn: str, state_bucket_arn: str, account: str) -> dict[str, Any]:
    """S3's logging service may write the state bucket's access logs, and nothing else."""
    return {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/{LOG_PREFIX}*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": state_bucket_arn},
            "StringEquals": {"aws:SourceAccount": account},
        },
    }


def _with_statements(values: Mapping[str, Any], build: Any) -> Any:
    """A Bucket ``policy`` transform that appends ``build(bucket_arn, resolved_values)`` to its statements."""

    def transform(args: dict[str, Any]) -> dict[str, Any]:
        def extend(parts: list[Any]) -> str:
            document = json.loads(parts[0])
            # The Bucket's own TLS-only statement names the bucket first: [arn, arn/*].
            tls = next(s for s in document["Statement"] if s.get("Sid") == "DenyInsecureTransport")
            bucket_arn = tls["Resource"][0]
            document["Statement"].extend(build(bucket_arn, dict(zip(values, parts[1:], strict=True))))
            return json.dumps(document, sort_keys=True)

        args["policy"] = pulumi.Output.all(args["policy"], *values.values()).apply(extend)
        return args

    return transform


def _user_bucket_args(user: Any) -> dict[str, Any]:
    return dict(user) if isinstance(user, Mapping) else {}
