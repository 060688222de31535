"""Bucket: a private, encrypted, TLS-only S3 bucket with lifecycle rules and CORS.

Example (seed 004's two buckets)::

    artifacts = Bucket("Artifacts", lifecycle=[{"id": "expire", "expiration_days": 90}])
    logs = Bucket(
        "Logs",
        lifecycle=[{
            "id": "archive",
            "transitions": [
                {"days": 30, "storage_class": "GLACIER"},
                {"days": 365, "storage_class": "DEEP_ARCHIVE"},
            ],
        }],
    )

Every bucket blocks all public access, enforces bucket-owner object ownership,
encrypts at rest, denies any request not made over TLS, and aborts incomplete
multipart uploads after 7 days unless a rule says otherwise. Versioning follows the
stage's protection. Linking grants object read/write/delete and list on this bucket only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.base import Component, ComponentArgs
from components.linking import Permission
from components.naming import stable_hash
from components.policies import deny_insecure_transport, policy_json

StorageClass = Literal[
    "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"
]
# Days an object must stay in a class before it may move on (S3's minimums).
_MIN_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}

OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectAttributes")
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Transition(_Strict):
    """Move objects to ``storage_class`` ``days`` after creation."""

    days: int = Field(ge=0)
    storage_class: StorageClass


class LifecycleRule(_Strict):
    """One lifecycle rule, optionally limited to a key prefix."""

    id: str = Field(min_length=1, max_length=255)
    prefix: str | None = None
    enabled: bool = True
    expiration_days: int | None = Field(None, ge=1, description="delete objects after N days")
    transitions: list[Transition] = Field(default_factory=list)
    noncurrent_expiration_days: int | None = Field(
        None, ge=1, description="with versioning: delete old versions after N days"
    )
    abort_incomplete_upload_days: int | None = Field(
        7, ge=1, description="abort unfinished multipart uploads after N days"
    )

    @model_validator(mode="after")
    def _sensible(self) -> LifecycleRule:
        if not (self.expiration_days or self.transitions or self.noncurrent_expiration_days
                or self.abort_incomplete_upload_days):
            raise ValueError(f"lifecycle rule {self.id!r} does nothing; give it an action")
        for transition in self.transitions:
            minimum = _MIN_DAYS.get(transition.storage_class, 0)
            if transition.days < minimum:
                raise ValueError(
                    f"lifecycle rule {self.id!r}: S3 moves objects to {transition.storage_class} "
                    f"after {minimum} days at the earliest (got {transition.days})"
                )
            if self.expiration_days is not None and transition.days >= self.expiration_days:
                raise ValueError(
                    f"lifecycle rule {self.id!r}: transition to {transition.storage_class} at day "
                    f"{transition.days} comes after expiry at day {self.expiration_days}"
                )
        days = [t.days for t in self.transitions]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError(f"lifecycle rule {self.id!r}: transitions must have increasing days")
        return self


class CorsRule(_Strict):
    """Browser access to objects from other origins."""

    allowed_origins: list[str] = Field(min_length=1)
    allowed_methods: list[Literal["GET", "PUT", "POST", "DELETE", "HEAD"]] = Field(
        default_factory=lambda: ["GET"]
    )
    allowed_headers: list[str] = Field(default_factory=lambda: ["*"])
    expose_headers: list[str] = Field(default_factory=list)
    max_age_seconds: int = Field(3000, ge=0)


class BucketArgs(ComponentArgs):
    """Arguments of :class:`Bucket`."""

    versioning: bool | None = Field(None, description="keep old versions; default: stage protect")
    lifecycle: list[LifecycleRule] = Field(default_factory=list)
    cors: list[CorsRule] = Field(default_factory=list)
    kms_key_arn: str | None = Field(None, description="SSE-KMS with this key; default SSE-S3")
    force_destroy: bool | None = Field(
        None,
        description="let `pulumi destroy` empty the bucket; default: only on stages that "
        "remove their data",
    )

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> BucketArgs:
        ids = [rule.id for rule in self.lifecycle]
        if len(ids) != len(set(ids)):
            raise ValueError("lifecycle rule ids must be unique")
        return self


class Bucket(Component):
    """A private S3 bucket.

    The bucket name is ``{app}-{stage}-{name}-{hash}``: S3 names are global, so a short
    hash of the account and region keeps two accounts' stages from colliding.
    Outputs: ``name``, ``arn``, ``domain_name``.
    Transformable children: ``bucket``, ``public_access_block``, ``ownership``,
    ``encryption``, ``versioning``, ``lifecycle``, ``cors``, ``policy``.
    """

    type_token: ClassVar[str] = "harbor:aws:Bucket"
    sst_type: ClassVar[str] = "sst.aws.Bucket"
    Args: ClassVar[type[ComponentArgs]] = BucketArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "bucket", "public_access_block", "ownership", "encryption",
        "versioning", "lifecycle", "cors", "policy",
    )

    args: BucketArgs

    def __init__(
        self,
        name: str,
        args: BucketArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        stage = self.stage
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.bucket = self.child(
            "bucket",
            aws.s3.Bucket,
            {
                "bucket": account.account_id.apply(
                    lambda acct: self.physical_name(
                        "s3.bucket", suffix="-" + stable_hash(f"{acct}/{stage.region}")
                    )
                ),
                "force_destroy": (
                    stage.removal == "remove" if a.force_destroy is None else a.force_destroy
                ),
            },
        )
        bucket_id = self.bucket.id
        self.child(
            "public_access_block",
            aws.s3.BucketPublicAccessBlock,
            {
                "bucket": bucket_id,
                "block_public_acls": True,
                "block_public_policy": True,
                "ignore_public_acls": True,
                "restrict_public_buckets": True,
            },
        )
        self.child(
            "ownership",
            aws.s3.BucketOwnershipControls,
            {"bucket": bucket_id, "rule": {"object_ownership": "BucketOwnerEnforced"}},
        )
        self.child(
            "encryption",
            aws.s3.BucketServerSideEncryptionConfiguration,
            {
                "bucket": bucket_id,
                "rules": [
                    {
                        "apply_server_side_encryption_by_default": (
                            {"sse_algorithm": "aws:kms", "kms_master_key_id": a.kms_key_arn}
                            if a.kms_key_arn
                            else {"sse_algorithm": "AES256"}
                        ),
                        "bucket_key_enabled": a.kms_key_arn is not None,
                    }
                ],
            },
        )
        versioned = stage.protect if a.versioning is None else a.versioning
        if versioned:
            self.child(
                "versioning",
                aws.s3.BucketVersioning,
                {"bucket": bucket_id, "versioning_configuration": {"status": "Enabled"}},
            )
        if a.lifecycle:
            self.child(
                "lifecycle",
                aws.s3.BucketLifecycleConfiguration,
                {"bucket": bucket_id, "rules": [_lifecycle_rule(rule) for rule in a.lifecycle]},
            )
        if a.cors:
            self.child(
                "cors",
                aws.s3.BucketCorsConfiguration,
                {"bucket": bucket_id, "cors_rules": [rule.model_dump() for rule in a.cors]},
            )
        self.child(
            "policy",
            aws.s3.BucketPolicy,
            {"bucket": bucket_id, "policy": self.bucket.arn.apply(tls_only_policy)},
        )
        self.name: pulumi.Output[str] = self.bucket.bucket
        self.arn: pulumi.Output[str] = self.bucket.arn
        self.domain_name: pulumi.Output[str] = self.bucket.bucket_regional_domain_name
        self.register_outputs({"name": self.name, "arn": self.arn})

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"name": self.name}

    def link_permissions(self) -> Sequence[Permission]:
        return [
            Permission(OBJECT_ACTIONS, [self.arn.apply(lambda arn: f"{arn}/*")]),
            Permission(BUCKET_ACTIONS, [self.arn]),
        ]


def tls_only_policy(bucket_arn: str) -> str:
    """A bucket policy that refuses every request not made over TLS."""
    return policy_json(deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"]))


def _lifecycle_rule(rule: LifecycleRule) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": rule.id,
        "status": "Enabled" if rule.enabled else "Disabled",
        "filter": {"prefix": rule.prefix or ""},
    }
    if rule.expiration_days:
        spec["expiration"] = {"days": rule.expiration_days}
    if rule.transitions:
        spec["transitions"] = [
            {"days": t.days, "storage_class": t.storage_class} for t in rule.transitions
        ]
    if rule.noncurrent_expiration_days:
        spec["noncurrent_version_expiration"] = {"noncurrent_days": rule.noncurrent_expiration_days}
    if rule.abort_incomplete_upload_days:
        spec["abort_incomplete_multipart_upload"] = {
            "days_after_initiation": rule.abort_incomplete_upload_days
        }
    return spec
