"""Dynamo: a DynamoDB table for single-table designs, with indexes, streams and TTL.

Example (seed 000's single-table design)::

    table = Dynamo(
        "Table",
        fields={"pk": "string", "sk": "string", "gsi1pk": "string", "gsi1sk": "string"},
        primary_index={"hash_key": "pk", "range_key": "sk"},
        global_indexes={"gsi1": {"hash_key": "gsi1pk", "range_key": "gsi1sk"}},
        ttl="expiresAt",
    )

Secure defaults: on-demand billing, encryption at rest, point-in-time recovery and
deletion protection whenever the stage protects its data. Linking grants item-level
actions on this table and its indexes only, never ``dynamodb:*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.base import Component, ComponentArgs
from components.linking import Permission

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
    point_in_time_recovery: bool | None = Field(
        None, description="continuous backups; default: on when the stage protects its data"
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

    Outputs: ``name``, ``arn``, ``stream_arn`` (when ``stream`` is set).
    Transformable children: ``table``.
    """

    type_token: ClassVar[str] = "harbor:aws:Dynamo"
    sst_type: ClassVar[str] = "sst.aws.Dynamo"
    Args: ClassVar[type[ComponentArgs]] = DynamoArgs
    transformable: ClassVar[tuple[str, ...]] = ("table",)

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
                "stream_enabled": a.stream is not None,
                "stream_view_type": a.stream.upper().replace("-", "_") if a.stream else None,
                "ttl": {"attribute_name": a.ttl, "enabled": True} if a.ttl else None,
                "point_in_time_recovery": {
                    "enabled": protect if a.point_in_time_recovery is None else a.point_in_time_recovery
                },
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
