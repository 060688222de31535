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

``subscribe`` sends S3 event notifications to a function, a :class:`Queue` or an
:class:`SnsTopic`::

    uploads.subscribe("Thumbnails", "app/functions/thumbs.handler", filter_suffix=".jpg")
    uploads.subscribe("Audit", audit_queue, events=["s3:ObjectRemoved:*"])

A bucket has one notification configuration, so every subscription joins it. Each
destination first lets this bucket (and only it) deliver to it: a Lambda permission
for ``s3.amazonaws.com`` with this bucket's ARN and account, a statement in the
queue's or topic's own policy. The configuration waits for those grants, since S3
checks them when it is written. AWS refusals caught at plan time: FIFO queues and
topics, a topic on the AWS managed key (its key policy cannot let S3 in), and two
subscriptions whose events and prefix/suffix overlap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.aws.queue import Queue, Settling
from components.core.base import Component, ComponentArgs
from components.core.linking import Permission
from components.core.naming import stable_hash
from components.core.policies import deny_insecure_transport, policy_json

if TYPE_CHECKING:
    from components.aws.function import Function
    from components.aws.topic import SnsTopic

# The event types S3 notifies about (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html).
S3_EVENTS = frozenset(
    {
        "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated",
        "s3:ObjectRestore:*", "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete",
        "s3:ReducedRedundancyLostObject",
        "s3:Replication:*", "s3:Replication:OperationFailedReplication",
        "s3:Replication:OperationMissedThreshold", "s3:Replication:OperationReplicatedAfterThreshold",
        "s3:Replication:OperationNotTracked",
        "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete",
        "s3:LifecycleExpiration:DeleteMarkerCreated", "s3:LifecycleTransition",
        "s3:IntelligentTiering", "s3:ObjectTagging:*", "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete",
        "s3:ObjectAcl:Put",
    }
)
_SUBSCRIPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")

StorageClass = Literal[
    "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"
]
# S3's lifecycle rules, from "Transitioning objects using Amazon S3 Lifecycle" (S3 User Guide,
# lifecycle-transition-general-considerations) and the Transition API reference:
# - objects reach STANDARD_IA / ONEZONE_IA no sooner than 30 days after creation;
_MIN_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
# - they then stay there at least 30 days before a later transition (S3 refuses the rule);
_STAY_BEFORE_NEXT = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
# - classes only move down the waterfall, and not every step is supported;
_NEXT_CLASSES: dict[str, frozenset[str]] = {
    "STANDARD_IA": frozenset({"INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}),
    "INTELLIGENT_TIERING": frozenset({"ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}),
    "ONEZONE_IA": frozenset({"GLACIER", "DEEP_ARCHIVE"}),
    "GLACIER_IR": frozenset({"GLACIER", "DEEP_ARCHIVE"}),
    "GLACIER": frozenset({"DEEP_ARCHIVE"}),
    "DEEP_ARCHIVE": frozenset(),
}
# - leaving a class before its minimum storage duration is allowed but billed as if the
#   object had stayed (https://aws.amazon.com/s3/storage-classes/): a warning, not a refusal.
MIN_STORAGE_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30, "GLACIER_IR": 90, "GLACIER": 90, "DEEP_ARCHIVE": 180}

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
        for earlier, later in zip(self.transitions, self.transitions[1:], strict=False):
            if later.storage_class not in _NEXT_CLASSES[earlier.storage_class]:
                allowed = ", ".join(sorted(_NEXT_CLASSES[earlier.storage_class])) or "nothing"
                raise ValueError(
                    f"lifecycle rule {self.id!r}: S3 cannot move objects from "
                    f"{earlier.storage_class} to {later.storage_class}; from "
                    f"{earlier.storage_class} they can move to {allowed}"
                )
            stay = _STAY_BEFORE_NEXT.get(earlier.storage_class, 0)
            if later.days - earlier.days < stay:
                raise ValueError(
                    f"lifecycle rule {self.id!r}: objects stay {stay} days in "
                    f"{earlier.storage_class} before S3 moves them on; move the "
                    f"{later.storage_class} transition to day {earlier.days + stay} or later "
                    f"(got {later.days})"
                )
        return self

    def early_exits(self) -> list[str]:
        """Steps that leave a class before its minimum storage duration (billed in full)."""
        notes = []
        steps = [(t.days, t.storage_class) for t in self.transitions]
        ends = [(t.days, f"the move to {t.storage_class}") for t in self.transitions[1:]]
        if self.expiration_days is not None:
            ends.append((self.expiration_days, "expiry"))
        for (start, storage_class), (end, what) in zip(steps, ends, strict=False):
            minimum = MIN_STORAGE_DAYS.get(storage_class, 0)
            if end - start < minimum:
                notes.append(
                    f"lifecycle rule {self.id!r}: {what} at day {end} leaves {storage_class} after "
                    f"{end - start} days; S3 bills {storage_class} for at least {minimum} days"
                )
        return notes


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
    ``encryption``, ``versioning``, ``lifecycle``, ``cors``, ``policy``, ``notification``,
    ``permission``.
    """

    type_token: ClassVar[str] = "harbor:aws:Bucket"
    sst_type: ClassVar[str] = "sst.aws.Bucket"
    Args: ClassVar[type[ComponentArgs]] = BucketArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "bucket", "public_access_block", "ownership", "encryption",
        "versioning", "lifecycle", "cors", "policy", "notification", "permission",
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
        self._account_id: pulumi.Output[str] = account.account_id
        self._subscriptions: list[_Subscription] = []
        self._destinations: Settling[pulumi.Output[dict[str, Any]]] | None = None
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
                {"bucket": bucket_id,
                 "rules": [_lifecycle_rule(rule, versioned=versioned) for rule in a.lifecycle]},
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

    def validate(self) -> None:
        """Say when a lifecycle rule pays for storage it does not use (S3 accepts the rule)."""
        for rule in self.args.lifecycle:
            for note in rule.early_exits():
                pulumi.log.warn(f"Bucket {self.component_name!r}: {note}")

    # -- event notifications ---------------------------------------------------------------
    def subscribe(
        self,
        name: str,
        target: Function | Queue | SnsTopic | str | Mapping[str, Any],
        *,
        events: Sequence[str] = ("s3:ObjectCreated:*",),
        filter_prefix: str | None = None,
        filter_suffix: str | None = None,
        **function_args: Any,
    ) -> Function | Queue | SnsTopic:
        """Notify ``target`` of ``events`` on keys matching the prefix/suffix; returns the target.

        ``target`` is a Function, a handler string or a dict of Function arguments (with
        ``function_args`` such as ``link=[...]``), a :class:`Queue` or an :class:`SnsTopic`.
        """
        from components.aws.function import Function, allow_invoke, resolve_function
        from components.aws.topic import SnsTopic

        subscription = self._check_subscription(name, events, filter_prefix, filter_suffix)
        if function_args and not isinstance(target, str | Mapping):
            raise self.fail(f"subscribe({name!r}): {sorted(function_args)} configure a new function only")
        if isinstance(target, Queue):
            if target.fifo:
                raise self.fail(f"subscribe({name!r}): S3 cannot notify FIFO queues; use a standard Queue")
            grant: pulumi.Resource = target.allow_send_from("s3.amazonaws.com", self.arn)
            kind, arn = "queues", target.arn
        elif isinstance(target, SnsTopic):
            if target.fifo:
                raise self.fail(f"subscribe({name!r}): S3 cannot notify FIFO topics; use a standard SnsTopic")
            if not target.args.kms_key_arn:
                raise self.fail(
                    f"subscribe({name!r}): topic {target.component_name!r} is encrypted with the AWS managed "
                    "key alias/aws/sns, whose key policy cannot let S3 publish; give the topic kms_key_arn= "
                    "a customer managed key that allows s3.amazonaws.com kms:GenerateDataKey and kms:Decrypt"
                )
            grant = target.allow_publish_from("s3.amazonaws.com", self.arn)
            kind, arn = "topics", target.arn
        else:
            if isinstance(target, str):
                spec: Any = {"handler": target, **function_args}
            elif isinstance(target, Mapping):
                spec = {**target, **function_args}
            elif isinstance(target, Function):
                spec = target
            else:
                raise self.fail(
                    f"subscribe({name!r}) needs a Function, a handler string, a Queue or an SnsTopic, "
                    f"not {type(target).__name__}"
                )
            target = resolve_function(self, name, spec)
            # Bucket ARNs carry no account: source_account keeps a same-named bucket elsewhere out.
            grant = allow_invoke(
                self, target, "s3.amazonaws.com", self.arn, key=name, source_account=self._account_id
            )
            kind, arn = "lambda_functions", target.arn
        self._subscriptions.append(subscription)
        self._add_destination(name, kind, arn, grant, subscription)
        return target

    def _check_subscription(
        self, name: str, events: Sequence[str], prefix: str | None, suffix: str | None
    ) -> _Subscription:
        if not _SUBSCRIPTION.match(name):
            raise self.fail(f"subscription name {name!r} must be letters and digits, starting with a letter")
        if any(existing.name == name for existing in self._subscriptions):
            raise self.fail(f"already has a subscription named {name!r}; give each one its own name")
        if isinstance(events, str) or not events:
            raise self.fail(f"subscribe({name!r}): events must be a non-empty list such as ['s3:ObjectCreated:*']")
        unknown = sorted(set(events) - S3_EVENTS)
        if unknown:
            raise self.fail(
                f"subscribe({name!r}): {', '.join(map(repr, unknown))} is not an S3 event type; use e.g. "
                "'s3:ObjectCreated:*' or 's3:ObjectRemoved:Delete'"
            )
        subscription = _Subscription(name, tuple(events), prefix or "", suffix or "")
        for existing in self._subscriptions:
            if existing.overlaps(subscription):
                raise self.fail(
                    f"subscriptions {existing.name!r} and {name!r} overlap (same events on keys both "
                    "filters match), which S3 refuses; narrow filter_prefix/filter_suffix or the events"
                )
        return subscription

    def _add_destination(
        self, name: str, kind: str, arn: pulumi.Output[str], grant: pulumi.Resource, subscription: _Subscription
    ) -> None:
        if self._destinations is None:
            self._destinations = Settling()
            entries = self._destinations.output.apply(lambda pending: pulumi.Output.all(*pending))

            def of_kind(wanted: str) -> pulumi.Output[list[dict[str, Any]] | None]:
                return entries.apply(
                    lambda all_entries: [
                        {k: v for k, v in entry.items() if k != "kind"}
                        for entry in all_entries if entry["kind"] == wanted
                    ] or None
                )

            self.child(
                "notification",
                aws.s3.BucketNotification,
                {
                    "bucket": self.bucket.id,
                    "lambda_functions": of_kind("lambda_functions"),
                    "queues": of_kind("queues"),
                    "topics": of_kind("topics"),
                },
            )
        arn_key = {"lambda_functions": "lambda_function_arn", "queues": "queue_arn", "topics": "topic_arn"}[kind]
        # The destination's ARN reaches the configuration through its grant, so the grant exists first.
        gated = pulumi.Output.all(arn, grant.urn).apply(lambda parts: parts[0])
        entry = gated.apply(
            lambda resolved: {
                "kind": kind,
                "id": name,
                arn_key: resolved,
                "events": list(subscription.events),
                "filter_prefix": subscription.prefix or None,
                "filter_suffix": subscription.suffix or None,
            }
        )
        if not self._destinations.add(entry):
            raise self.fail(
                f"subscribe({name!r}): the notification configuration was already handed to the engine; "
                "subscribe right after creating the bucket, before any synchronous lookup"
            )

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"name": self.name}

    def link_permissions(self) -> Sequence[Permission]:
        return [
            Permission(OBJECT_ACTIONS, [self.arn.apply(lambda arn: f"{arn}/*")]),
            Permission(BUCKET_ACTIONS, [self.arn]),
        ]


class _Subscription:
    """One notification's filter, to refuse the overlaps S3 refuses."""

    def __init__(self, name: str, events: tuple[str, ...], prefix: str, suffix: str) -> None:
        self.name, self.events, self.prefix, self.suffix = name, events, prefix, suffix

    def overlaps(self, other: _Subscription) -> bool:
        def events_meet(a: str, b: str) -> bool:
            if a == b:
                return True
            family_a, family_b = a.rsplit(":", 1)[0], b.rsplit(":", 1)[0]
            return family_a == family_b and (a.endswith(":*") or b.endswith(":*"))

        if not any(events_meet(a, b) for a in self.events for b in other.events):
            return False
        prefixes_meet = self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        suffixes_meet = self.suffix.endswith(other.suffix) or other.suffix.endswith(self.suffix)
        return prefixes_meet and suffixes_meet


def tls_only_policy(bucket_arn: str) -> str:
    """A bucket policy that refuses every request not made over TLS."""
    return policy_json(deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"]))


def _lifecycle_rule(rule: LifecycleRule, versioned: bool = False) -> dict[str, Any]:
    """One S3 lifecycle rule. On a versioned bucket old versions follow the user's rule too.

    In a versioned bucket an expiry only hides the object behind a delete marker; the data
    stays as a noncurrent version, billed forever. So there old versions expire after the
    rule's ``noncurrent_expiration_days``, else after its ``expiration_days``, and move
    between storage classes as its transitions say (counted from when they became old). Once
    a marker has no versions left behind it, S3 removes it itself for a rule with a
    ``days`` expiry; a rule without one asks for that cleanup (``expired_object_delete_marker``,
    which S3 allows only without ``days``).
    """
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
    noncurrent_days = rule.noncurrent_expiration_days or (rule.expiration_days if versioned else None)
    if noncurrent_days:
        spec["noncurrent_version_expiration"] = {"noncurrent_days": noncurrent_days}
    if versioned and rule.transitions:
        spec["noncurrent_version_transitions"] = [
            {"noncurrent_days": t.days, "storage_class": t.storage_class}
            for t in rule.transitions if noncurrent_days is None or t.days < noncurrent_days
        ]
    if versioned and not rule.expiration_days:
        spec["expiration"] = {"expired_object_delete_marker": True}
    if rule.abort_incomplete_upload_days:
        spec["abort_incomplete_multipart_upload"] = {
            "days_after_initiation": rule.abort_incomplete_upload_days
        }
    return spec
