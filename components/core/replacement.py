"""Replacement with fixed names: how each resource type can be replaced, decided once.

Pulumi replaces a resource by creating the new one before deleting the old. When the
physical name (or another value AWS keeps unique, such as a subnet's CIDR in its VPC)
stays the same, the create fails with "already exists", and the change cannot be
deployed. Per resource type this module knows which input holds that identity and which
other inputs force a replacement, and picks one of two ways out:

* ``prefix``: the type is not looked up by name from outside the stack, so it gets a
  name AWS completes (``name_prefix``): ``harbor-dev-Vpc-`` plus a unique suffix. Two
  generations coexist, and resources still attached to the old one (a security group
  on a database, a parameter group on a cluster) move over before it is deleted.
* ``delete-first``: the name is part of the contract (a function's log group is
  ``/aws/lambda/<function>``, a table's name is linked into handlers, a subnet's CIDR is
  fixed by the layout), so the old one is deleted before the new one is created
  (``delete_before_replace``). Data stores of a retaining stage are left alone: they are
  protected there, and the engine refuses to replace a protected resource before it
  touches anything.

The stack transformation applies this to every resource, components' children and
resources made directly from ``pulumi_aws`` alike; an explicit ``delete_before_replace``
(True or False) opts a resource out. ``infra check`` (rule ``REPLACE-NAME``) flags a
name-pinned resource that can do neither, from the same table.

Example::

    identity_of("aws:ec2/securityGroup:SecurityGroup").strategy   # "prefix"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Strategy = Literal["prefix", "delete-first"]

# A unique suffix AWS (the provider's name_prefix) appends: 26 characters.
PREFIX_SUFFIX_LENGTH = 26


@dataclass(frozen=True)
class Identity:
    """What makes a resource of one type unique in AWS, and what replaces it."""

    name: str
    """The input (snake_case) AWS keeps unique: ``name``, ``bucket``, ``cidr_block``."""
    forcing: tuple[str, ...]
    """Other inputs whose change replaces the resource while ``name`` stays the same
    (the provider's "forces new resource"). Only those a resource sets can change."""
    strategy: Strategy
    prefix: str | None = None
    """The input that asks AWS to complete a name from a prefix (``prefix`` strategy)."""


# Sources: the pulumi-aws resource docs (www.pulumi.com/registry/packages/aws/api-docs/),
# generated from terraform-provider-aws, whose schemas mark these inputs ForceNew.
IDENTITIES: Mapping[str, Identity] = {
    "aws:ec2/securityGroup:SecurityGroup": Identity(
        "name", ("description", "vpc_id"), "prefix", prefix="name_prefix"
    ),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": Identity(
        "name", ("family", "description"), "prefix", prefix="name_prefix"
    ),
    "aws:rds/parameterGroup:ParameterGroup": Identity(
        "name", ("family", "description"), "prefix", prefix="name_prefix"
    ),
    "aws:ec2/subnet:Subnet": Identity(
        "cidr_block", ("availability_zone", "availability_zone_id", "vpc_id"), "delete-first"
    ),
    "aws:dynamodb/table:Table": Identity(
        "name", ("hash_key", "range_key", "local_secondary_indexes"), "delete-first"
    ),
    "aws:rds/cluster:Cluster": Identity(
        "cluster_identifier",
        ("engine", "engine_mode", "database_name", "master_username", "storage_encrypted",
         "kms_key_id", "db_subnet_group_name", "availability_zones"),
        "delete-first",
    ),
    "aws:rds/clusterInstance:ClusterInstance": Identity(
        "identifier", ("cluster_identifier", "engine", "db_subnet_group_name"), "delete-first"
    ),
    "aws:rds/proxy:Proxy": Identity("name", ("engine_family",), "delete-first"),
    "aws:cloudwatch/logGroup:LogGroup": Identity("name", ("log_group_class",), "delete-first"),
    "aws:lambda/function:Function": Identity("name", ("package_type",), "delete-first"),
    "aws:iam/role:Role": Identity("name", ("path",), "delete-first"),
    "aws:iam/policy:Policy": Identity("name", ("path", "description"), "delete-first"),
    "aws:s3/bucket:Bucket": Identity("bucket", ("object_lock_enabled",), "delete-first"),
    "aws:cloudwatch/eventRule:EventRule": Identity("name", ("event_bus_name",), "delete-first"),
}


def identity_of(resource_type: str) -> Identity | None:
    """How a type is kept unique and replaced; None for types without a fixed identity."""
    return IDENTITIES.get(resource_type)


def camel(name: str) -> str:
    """``vpc_id`` -> ``vpcId``, the form Pulumi sends inputs in (and plans record)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _set(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def pinned(identity: Identity, inputs: Mapping[str, Any], *, camel_case: bool = False) -> bool:
    """True when the inputs fix the identity and set an input that forces a replacement."""
    key = (lambda name: camel(name)) if camel_case else (lambda name: name)
    if identity.prefix and _set(inputs.get(key(identity.prefix))):
        return False  # AWS completed the name (state reports it beside the prefix)
    return _set(inputs.get(key(identity.name))) and any(_set(inputs.get(key(f))) for f in identity.forcing)


def with_prefix(identity: Identity, props: dict[str, Any]) -> dict[str, Any]:
    """The arguments with the fixed name turned into a prefix AWS completes uniquely."""
    assert identity.prefix is not None
    edited = dict(props)
    name = edited[identity.name]
    # Kept as a key (None): the SDK creates a resource's outputs from its argument keys, so
    # the completed name stays readable as ``.name``.
    edited[identity.name] = None
    edited[identity.prefix] = _as_prefix(name)
    return edited


def _as_prefix(name: Any) -> Any:
    if isinstance(name, str):
        return name if name.endswith("-") else f"{name}-"
    # An Output (a name computed at deploy time) gets the same treatment once known.
    return name.apply(_as_prefix)


def replacement_transformation(retained: Any) -> Any:
    """A stack transformation giving every name-pinned resource a way to be replaced.

    ``retained(resource_type)`` says whether the stage keeps resources of that type on
    delete (those are left to protection).
    """
    import pulumi

    def apply(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        identity = identity_of(args.type_)
        if identity is None or args.opts.delete_before_replace is not None:
            return None
        props = dict(args.props)
        if not pinned(identity, props):
            return None
        if identity.strategy == "prefix" and identity.prefix and not _set(props.get(identity.prefix)):
            return pulumi.ResourceTransformationResult(with_prefix(identity, props), args.opts)
        keeps = args.opts.retain_on_delete if args.opts.retain_on_delete is not None else retained(args.type_)
        if keeps:
            return None
        return pulumi.ResourceTransformationResult(
            props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(delete_before_replace=True))
        )

    return apply
