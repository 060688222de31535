"""Dynamo: a DynamoDB table for single-table designs, with indexes, streams and TTL.

Example (seed 000's single-table design)::

    table = Dynamo(
        "Table",
        fields={"pk": "string", "sk": "string", "gsi1pk": "string", "gsi1sk": "string"},
        primary_index={"hash_key": "pk", "range_key": "sk"},
        global_indexes={"gsi1": {"hash_key": "gsi1pk", "range_key": "gsi1sk"}},
        ttl="expiresAt",
    )

Secure defaults: on-demand billing, encryption at rest, point-in-time recovery on every
stage (it is cheap; ``point_in_time_recovery=False`` opts out) and deletion protection
whenever the stage protects its data. Linking grants item-level actions on this table
and its indexes only, never ``dynamodb:*``.

``subscribe`` sends the table's changes to a function (seed 003-style fan-out)::

    table.subscribe("Audit", "app/functions/audit.handler",
                    filters=[{"eventName": ["INSERT", "MODIFY"]}])

It turns the stream on (new and old images) when ``stream`` was not set, lets the
function read this table's stream only, splits a failing batch to find the bad record,
retries it a few times and then parks it in an encrypted queue (``failures``), so one
poison record never blocks its shard until it expires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.aws.queue import Settling
from components.core.base import Component, ComponentArgs
from components.core.linking import Permission

if TYPE_CHECKING:
    from components.aws.function import Function

FieldType = Literal["string", "number", "binary"]
Projection = Literal["all", "keys-only"] | list[str]
StreamView = Literal["keys-only", "new-image", "old-image", "new-and-old-images"]

_ATTRIBUTE_TYPES = {"string": "S", "number": "N", "binary": "B"}
_INDEX_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")

# Item-level access for application code: no table management, no dynamodb:*.
ITEM_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)
INDEX_ACTIONS = ("dynamodb:Query", "dynamodb:Scan")
STREAM_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)


MAX_FILTERS = 5  # Lambda's default quota of filters per event source mapping
COMPONENT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
# Top-level fields of a DynamoDB stream record, the ones a filter pattern can match.
STREAM_RECORD_KEYS = frozenset(
    {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "userIdentity"}
)


def _stream_view(view: str) -> str:
    return view.upper().replace("-", "_")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrimaryIndex(_Strict):
    """The table's key: a hash (partition) key and an optional range (sort) key."""

    hash_key: str
    range_key: str | None = None


class GlobalIndex(_Strict):
    """A global secondary index. ``projection``: "all", "keys-only" or a list of attributes."""

    hash_key: str
    range_key: str | None = None
    projection: Projection = "all"


class LocalIndex(_Strict):
    """A local secondary index: same hash key as the table, another range key."""

    range_key: str
    projection: Projection = "all"


class DynamoArgs(ComponentArgs):
    """Arguments of :class:`Dynamo`."""

    fields: dict[str, FieldType] = Field(
        description="attributes used as keys of the table or an index, with their types"
    )
    primary_index: PrimaryIndex = Field(description="the table's hash and range key")
    global_indexes: dict[str, GlobalIndex] = Field(default_factory=dict, max_length=20)
    local_indexes: dict[str, LocalIndex] = Field(default_factory=dict, max_length=5)
    stream: StreamView | None = Field(None, description="emit a change stream with this view")
    ttl: str | None = Field(None, description="attribute holding each item's expiry (epoch seconds)")
    point_in_time_recovery: bool = Field(
        True, description="continuous backups for 35 days, on every stage; False opts out"
    )
    deletion_protection: bool | None = Field(
        None, description="AWS-side deletion protection; default: the stage's protect"
    )
    kms_key_arn: str | None = Field(
        None, description="customer managed KMS key; default: the AWS managed key for DynamoDB"
    )

    @model_validator(mode="after")
    def _keys_are_declared_fields(self) -> DynamoArgs:
        used: dict[str, str] = {}

        def use(key: str | None, where: str) -> None:
            if key is None:
                return
            if key not in self.fields:
                raise ValueError(
                    f"{where} uses {key!r}, which is not in fields; add "
                    f"fields={{{key!r}: 'string'}} (or 'number'/'binary')"
                )
            used.setdefault(key, where)

        use(self.primary_index.hash_key, "primary_index.hash_key")
        use(self.primary_index.range_key, "primary_index.range_key")
        for name, index in self.global_indexes.items():
            _check_index_name(name)
            use(index.hash_key, f"global_indexes[{name!r}].hash_key")
            use(index.range_key, f"global_indexes[{name!r}].range_key")
        for name, local in self.local_indexes.items():
            _check_index_name(name)
            if self.primary_index.range_key is None:
                raise ValueError(
                    f"local_indexes[{name!r}] needs a table with a range key; add "
                    "primary_index.range_key or make it a global index"
                )
            use(local.range_key, f"local_indexes[{name!r}].range_key")
        unused = [name for name in self.fields if name not in used]
        if unused:
            raise ValueError(
                f"fields {', '.join(map(repr, unused))} are not used by the primary index or any "
                "index; DynamoDB only accepts key attributes here, so remove them (items can "
                "still hold any attribute)"
            )
        return self


def _check_index_name(name: str) -> None:
    if not _INDEX_NAME.match(name):
        raise ValueError(
            f"index name {name!r} must be 3-255 letters, digits, '_', '-' or '.'"
        )


def _projection(projection: Projection) -> dict[str, Any]:
    if projection == "all":
        return {"projection_type": "ALL"}
    if projection == "keys-only":
        return {"projection_type": "KEYS_ONLY"}
    return {"projection_type": "INCLUDE", "non_key_attributes": list(projection)}


class Dynamo(Component):
    """A DynamoDB table.

    Outputs: ``name``, ``arn``, ``stream_arn`` (when ``stream`` is set or a subscriber turned it on).
    Transformable children: ``table``, ``subscriber_policy``, ``failures``, ``event_source_mapping``.
    """

    type_token: ClassVar[str] = "harbor:aws:Dynamo"
    sst_type: ClassVar[str] = "sst.aws.Dynamo"
    Args: ClassVar[type[ComponentArgs]] = DynamoArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "table", "subscriber_policy", "failures", "event_source_mapping",
    )

    args: DynamoArgs

    def __init__(
        self,
        name: str,
        args: DynamoArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        protect = self.stage.protect
        self._subscribers: dict[str, Function] = {}
        # A subscriber added later in the program turns the stream on (see Settling).
        self._stream_wanted: Settling[str] = Settling()
        stream_view: pulumi.Input[str | None] = (
            _stream_view(a.stream)
            if a.stream
            else self._stream_wanted.output.apply(lambda wanted: _stream_view(wanted[0]) if wanted else None)
        )
        self.table = self.child(
            "table",
            aws.dynamodb.Table,
            {
                "name": self.physical_name("dynamodb.table"),
                "billing_mode": "PAY_PER_REQUEST",
                "hash_key": a.primary_index.hash_key,
                "range_key": a.primary_index.range_key,
                "attributes": [
                    {"name": field, "type": _ATTRIBUTE_TYPES[kind]} for field, kind in a.fields.items()
                ],
                "global_secondary_indexes": [
                    {"name": index_name, "hash_key": index.hash_key, "range_key": index.range_key,
                     **_projection(index.projection)}
                    for index_name, index in a.global_indexes.items()
                ] or None,
                "local_secondary_indexes": [
                    {"name": index_name, "range_key": index.range_key, **_projection(index.projection)}
                    for index_name, index in a.local_indexes.items()
                ] or None,
                "stream_enabled": pulumi.Output.from_input(stream_view).apply(lambda view: view is not None),
                "stream_view_type": stream_view,
                "ttl": {"attribute_name": a.ttl, "enabled": True} if a.ttl else None,
                "point_in_time_recovery": {"enabled": a.point_in_time_recovery},
                "deletion_protection_enabled": (
                    protect if a.deletion_protection is None else a.deletion_protection
                ),
                "server_side_encryption": {"enabled": True, "kms_key_arn": a.kms_key_arn},
            },
        )
        self.name: pulumi.Output[str] = self.table.name
        self.arn: pulumi.Output[str] = self.table.arn
        self.stream_arn: pulumi.Output[str] | None = self.table.stream_arn if a.stream else None
        self.register_outputs({"name": self.name, "arn": self.arn})

    # -- stream subscribers ---------------------------------------------------------------------
    def subscribe(
        self,
        name: str,
        handler_or_function: Function | str | Mapping[str, Any],
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        batch_size: int = 100,
        starting_position: Literal["latest", "trim-horizon"] = "latest",
        retries: int = 3,
        **function_args: Any,
    ) -> Function:
        """Invoke a function with batches of this table's changes; returns the function.

        ``filters`` are Lambda event filter patterns (up to 5; a record matching any is
        delivered), e.g. ``[{"eventName": ["INSERT"]}]``. ``retries`` is how often a failing
        record is retried before it is parked in the ``failures`` queue.
        """
        from components.aws.function import Function, resolve_function

        if not COMPONENT_KEY.match(name):
            raise self.fail(f"subscriber name {name!r} must be letters and digits, starting with a letter")
        if name in self._subscribers:
            raise self.fail(f"already has a subscriber named {name!r}; give each one its own name")
        patterns = self._filter_patterns(filters)
        if not 1 <= batch_size <= 10000:
            raise self.fail(f"batch_size {batch_size} must be between 1 and 10000")
        if starting_position not in ("latest", "trim-horizon"):
            raise self.fail(
                f"starting_position {starting_position!r} must be 'latest' (new changes only) or "
                "'trim-horizon' (everything the stream still holds, up to 24 hours)"
            )
        if not 0 <= retries <= 10000:
            raise self.fail(f"retries {retries} must be between 0 and 10000")
        if function_args and isinstance(handler_or_function, Function):
            raise self.fail(
                f"{sorted(function_args)} configure a new function; pass them to the Function you created"
            )
        if self.args.stream is None and not self._stream_wanted.items:
            if not self._stream_wanted.add("new-and-old-images"):
                raise self.fail(
                    "the table was already handed to the engine when a subscriber was added; set "
                    "stream='new-and-old-images' on the table or subscribe right after creating it"
                )
            self.stream_arn = self.table.stream_arn
        spec: Function | str | Mapping[str, Any] = handler_or_function
        if function_args:
            spec = {"handler": spec, **function_args} if isinstance(spec, str) else {**spec, **function_args}
        function = resolve_function(self, name, spec)
        self._subscribers[name] = function
        stream_arn = self.table.stream_arn

        failures = self.child(
            "failures",
            aws.sqs.Queue,
            {
                "name": self.physical_name("sqs.queue", suffix=f"-{name}-failures"),
                "message_retention_seconds": 1209600,  # 14 days, SQS's longest
                "sqs_managed_sse_enabled": True,
            },
            key=name,
        )
        statements = pulumi.Output.all(
            Permission(STREAM_ACTIONS, [stream_arn]).statement(),
            Permission(("sqs:SendMessage",), [failures.arn]).statement(),
        )
        policy = self.child(
            "subscriber_policy",
            aws.iam.RolePolicy,
            {
                "role": function.role.id,
                "policy": statements.apply(
                    lambda s: json.dumps({"Version": "2012-10-17", "Statement": list(s)}, sort_keys=True)
                ),
            },
            key=name,
        )
        self.child(
            "event_source_mapping",
            aws.lambda_.EventSourceMapping,
            {
                "event_source_arn": stream_arn,
                "function_name": function.arn,
                "starting_position": starting_position.upper().replace("-", "_"),
                "batch_size": batch_size,
                "bisect_batch_on_function_error": True,
                "maximum_retry_attempts": retries,
                "function_response_types": ["ReportBatchItemFailures"],
                "destination_config": {"on_failure": {"destination_arn": failures.arn}},
                "filter_criteria": (
                    {"filters": [{"pattern": pattern} for pattern in patterns]} if patterns else None
                ),
            },
            key=name,
            # Lambda checks the role can read the stream when the mapping is created.
            opts=pulumi.ResourceOptions(depends_on=[policy]),
        )
        return function

    def _filter_patterns(self, filters: Sequence[Mapping[str, Any]] | None) -> list[str]:
        if filters is None:
            return []
        if isinstance(filters, Mapping) or not isinstance(filters, Sequence) or not filters:
            raise self.fail(
                'filters must be a non-empty list of patterns, e.g. [{"eventName": ["INSERT"]}]'
            )
        if len(filters) > MAX_FILTERS:
            raise self.fail(f"{len(filters)} filters; Lambda accepts {MAX_FILTERS} per subscriber")
        patterns = []
        for pattern in filters:
            if not isinstance(pattern, Mapping) or not pattern:
                raise self.fail(f"filter {pattern!r} must be a non-empty dict such as {{\"eventName\": [\"INSERT\"]}}")
            unknown = sorted(set(pattern) - STREAM_RECORD_KEYS)
            if unknown:
                raise self.fail(
                    f"filter key {', '.join(map(repr, unknown))} is not in a stream record; use "
                    f"{', '.join(sorted(STREAM_RECORD_KEYS))}"
                )
            patterns.append(json.dumps(pattern, sort_keys=True, separators=(",", ":")))
        return patterns

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"name": self.name}

    def link_permissions(self) -> Sequence[Permission]:
        grants = [
            Permission(ITEM_ACTIONS, [self.arn]),
            Permission(INDEX_ACTIONS, [self.arn.apply(lambda arn: f"{arn}/index/*")]),
        ]
        if self.stream_arn is not None:
            grants.append(Permission(STREAM_ACTIONS, [self.stream_arn]))
        return grants
