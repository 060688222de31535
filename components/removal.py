"""The stage's removal policy and protection, applied to every resource in one place.

* ``remove``: ``pulumi destroy`` deletes everything.
* ``retain``: data stores (tables, buckets, database clusters and instances, secrets,
  KMS keys) are left in the account when deleted from the stack.
* ``retain-all``: every resource is left in the account.
* ``protect``: Pulumi refuses to delete data stores at all, so ``pulumi destroy`` of
  a protected stage stops before it touches data.

The policy runs as a stack transformation, so it also covers resources that the
application creates directly from ``pulumi_aws`` rather than through a component.
"""

from __future__ import annotations

import pulumi

from stages import StageConfig

# Resource types that hold data a destroy would lose for good.
STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
        "aws:rds/cluster:Cluster",
        "aws:rds/clusterInstance:ClusterInstance",
        "aws:rds/instance:Instance",
        "aws:secretsmanager/secret:Secret",
        "aws:ssm/parameter:Parameter",
        "aws:kms/key:Key",
        "aws:efs/fileSystem:FileSystem",
        "aws:ecr/repository:Repository",
        "aws:cognito/userPool:UserPool",
    }
)


def is_stateful(resource_type: str) -> bool:
    """True when deleting a resource of this type loses data."""
    return resource_type in STATEFUL_TYPES


def retains(stage: StageConfig, resource_type: str, custom: bool = True) -> bool:
    """Whether a resource of this type stays in the account when the stack deletes it."""
    if not custom or resource_type.startswith("pulumi:providers:"):
        return False
    if stage.removal == "retain-all":
        return True
    return stage.removal == "retain" and is_stateful(resource_type)


def protects(stage: StageConfig, resource_type: str) -> bool:
    """Whether Pulumi must refuse to delete a resource of this type on this stage."""
    return stage.protect and is_stateful(resource_type)


def removal_transformation(stage: StageConfig) -> pulumi.ResourceTransformation:
    """A stack transformation that applies the stage's policy to each resource as it is created.

    An explicit ``protect`` or ``retain_on_delete`` given by the program is kept: the policy
    only fills in what was left unset, so one resource can opt out deliberately.
    """

    def apply(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        custom = isinstance(args.resource, pulumi.CustomResource)
        opts = args.opts
        changes: dict[str, bool] = {}
        if opts.retain_on_delete is None and retains(stage, args.type_, custom):
            changes["retain_on_delete"] = True
        if opts.protect is None and custom and protects(stage, args.type_):
            changes["protect"] = True
        if not changes:
            return None  # type: ignore[return-value]
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(**changes))
        )

    return apply
