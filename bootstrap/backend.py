"""StateBackend: the S3 bucket that holds Pulumi state and the KMS key behind ``awskms://`` secrets.

Example::

    backend = StateBackend("Pulumi", bucket_name="getreggie-pulumi-state")
    backend.backend_url       # s3://getreggie-pulumi-state?region=us-east-1
    backend.secrets_provider  # awskms://alias/harbor-bootstrap-shared-pulumi-secrets?region=us-east-1

The bucket is a harbor ``Bucket`` (public access blocked, TLS only, owner-enforced),
always versioned, encrypted with the key, and keeps old state versions for 90 days.
Both the bucket and the key are protected and retained by the bootstrap's stage policy:
losing either loses every stack's state or every stack's secrets. The key keeps AWS's
default key policy, which leaves the decision to IAM: the deploy roles may use it
because GithubOidc grants them encrypt/decrypt on this key's ARN, and nobody else
without an administrator's IAM rights can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components.base import Component, ComponentArgs
from components.bucket import Bucket

STATE_VERSION_DAYS = 90


class StateBackendArgs(ComponentArgs):
    """Arguments of :class:`StateBackend`."""

    bucket_name: str | None = Field(None, description="the state bucket's name; default {app}-{stage}-state-{hash}")
    key_deletion_window_days: int = Field(
        30, ge=7, le=30, description="days a scheduled key deletion can still be cancelled"
    )


class StateBackend(Component):
    """The Pulumi state bucket and secrets key of an AWS account.

    Outputs: ``bucket_name``, ``bucket_arn``, ``key_arn``, ``alias_name``, ``backend_url``,
    ``secrets_provider``. Transformable children: ``key``, ``alias``, ``bucket`` (the
    arguments of the nested Bucket component, e.g. ``{"lifecycle": [...]}``).
    """

    type_token: ClassVar[str] = "harbor:bootstrap:StateBackend"
    Args: ClassVar[type[ComponentArgs]] = StateBackendArgs
    transformable: ClassVar[tuple[str, ...]] = ("key", "alias", "bucket")

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
        key = self.child(
            "key",
            aws.kms.Key,
            {
                "description": f"Pulumi secrets and state encryption ({self.app.name} {self.stage.name})",
                "key_usage": "ENCRYPT_DECRYPT",
                "enable_key_rotation": True,
                "deletion_window_in_days": a.key_deletion_window_days,
            },
        )
        alias_name = "alias/" + self.physical_name("kms.alias", name="pulumi-secrets")
        self.child("alias", aws.kms.Alias, {"name": alias_name, "target_key_id": key.key_id})

        bucket_transform: dict[str, Any] = {
            # The state is encrypted with the same key as the secrets in it.
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
            }
        }
        if a.bucket_name:
            bucket_transform["bucket"] = {"bucket": a.bucket_name}
        bucket_args: dict[str, Any] = {
            "versioning": True,
            "force_destroy": False,
            "lifecycle": [{"id": "expire-old-state", "noncurrent_expiration_days": STATE_VERSION_DAYS}],
            "transform": bucket_transform,
        }
        user = a.transform.get("bucket")
        if isinstance(user, Mapping):
            bucket_args.update(user)
        bucket = Bucket(f"{self.component_name}State", bucket_args, opts=pulumi.ResourceOptions(parent=self))

        self.bucket_name: pulumi.Output[str] = bucket.name
        self.bucket_arn: pulumi.Output[str] = bucket.arn
        self.key_arn: pulumi.Output[str] = key.arn
        self.alias_name = alias_name
        self.backend_url: pulumi.Output[str] = bucket.name.apply(lambda n: f"s3://{n}?region={region}")
        self.secrets_provider = f"awskms://{alias_name}?region={region}"
        self.register_outputs({"backendUrl": self.backend_url, "secretsProvider": self.secrets_provider})
