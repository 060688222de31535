"""The stage's removal policy and protection, applied to every resource in one place.

* ``remove``: ``pulumi destroy`` deletes everything.
* ``retain``: data stores (tables, buckets, database clusters and instances, secrets,
  KMS keys) are left in the account when deleted from the stack, with what a kept
  database sits in (its subnet and parameter groups, security groups, the VPC and subnets).
* ``retain-all``: every resource is left in the account.
* ``protect``: Pulumi refuses to delete data stores at all, and :func:`destroy_guard`
  (the last line of ``__main__.py``) adds one protected resource that depends on every
  other one. The engine deletes dependents first, so the guard is the first delete of a
  ``pulumi destroy``; it fails, and the engine then skips everything the guard depends
  on: ``pulumi destroy --skip-preview`` of a protected stage deletes nothing at all
  (pulumi/pulumi pkg/resource/deploy/deployment_executor.go skips the dependencies of an
  errored delete). Resources can still be replaced and removed by ``pulumi up``.
* ``permissionsBoundary``: every IAM role gets the stage's permissions boundary, which the
  deploy roles of bootstrap/ require before they create a role or give it policies.

The policy runs as a stack transformation, so it also covers resources that the
application creates directly from ``pulumi_aws`` rather than through a component.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from stages import StageConfig

IAM_ROLE = "aws:iam/role:Role"

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


# What a retained database needs to stay usable, and what a retained resource still points at:
# a stack removed later (after protection is lifted) must not fail deleting a subnet, group or
# VPC the kept cluster still sits in. SST's `retain` keeps the same network and RDS types
# (platform/src/auto/run.ts); security groups are kept too because the cluster and the rules
# that admit its clients reference them.
KEPT_WITH_DATA: frozenset[str] = frozenset(
    {
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
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
    return stage.removal == "retain" and (is_stateful(resource_type) or resource_type in KEPT_WITH_DATA)


def protects(stage: StageConfig, resource_type: str) -> bool:
    """Whether Pulumi must refuse to delete a resource of this type on this stage."""
    return stage.protect and is_stateful(resource_type)


def removal_transformation(stage: StageConfig) -> pulumi.ResourceTransformation:
    """A stack transformation that applies the stage's policy to each resource as it is created.

    An explicit ``protect`` or ``retain_on_delete`` given by the program is kept: the policy
    only fills in what was left unset, so one resource can opt out deliberately.
    """

    guarded: list[pulumi.Resource] = []
    _guards.clear()  # one program runs at a time; forget the previous run's resources
    _guards[id(stage)] = guarded

    def apply(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        custom = isinstance(args.resource, pulumi.CustomResource)
        if custom and stage.protect and not args.type_.startswith("pulumi:providers:"):
            guarded.append(args.resource)
        opts = args.opts
        props = args.props
        changes: dict[str, bool] = {}
        if opts.retain_on_delete is None and retains(stage, args.type_, custom):
            changes["retain_on_delete"] = True
        if opts.protect is None and custom and protects(stage, args.type_):
            changes["protect"] = True
        if args.type_ == IAM_ROLE and stage.permissions_boundary and not props.get("permissions_boundary"):
            props = {**props, "permissions_boundary": boundary_arn(stage.permissions_boundary)}
        if not changes and props is args.props:
            return None  # type: ignore[return-value]
        return pulumi.ResourceTransformationResult(
            props, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(**changes))
        )

    return apply


# Resources each protecting stage has registered so far, for its destroy guard.
_guards: dict[int, list[pulumi.Resource]] = {}


def boundary_arn(boundary: str) -> pulumi.Input[str]:
    """The ARN of a permissions boundary given as an ARN or as a policy name in this account."""
    if boundary.startswith("arn:"):
        return boundary
    import pulumi_aws as aws

    from components.core.context import current_app

    app = current_app()
    cached = _boundary_arn.get("value")
    if cached is None or cached[0] is not app or cached[1] != boundary:
        # One account lookup per program run, however many roles it creates.
        invoke = pulumi.InvokeOutputOptions(provider=app.provider)
        identity = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        arn = pulumi.Output.all(partition.partition, identity.account_id).apply(
            lambda values: f"arn:{values[0]}:iam::{values[1]}:policy/{boundary}"
        )
        cached = _boundary_arn["value"] = (app, boundary, arn)
    return cached[2]


_boundary_arn: dict[str, tuple[Any, str, pulumi.Output[str]]] = {}


def forget_run() -> None:
    """Drop what the last program run left here (its app, resources and their outputs)."""
    _guards.clear()
    _boundary_arn.clear()


def destroy_guard() -> Any:
    """On a protecting stage, a protected resource group that depends on every resource so far.

    Call it last in ``__main__.py``. The group lists the stage's resources in the AWS console
    (by the app and stage tags); its real job is to be the first delete of any destroy and
    to fail it, so nothing else is deleted, with or without ``--skip-preview``. To really
    destroy such a stage, first ``pulumi state unprotect`` the guard (data stores stay
    protected and retained). Returns None on other stages.
    """
    import pulumi_aws as aws

    from components.core.context import current_app

    app = current_app()
    if not app.stage.protect:
        return None
    query = {
        "ResourceTypeFilters": ["AWS::AllSupported"],
        "TagFilters": [{"Key": "app", "Values": [app.name]}, {"Key": "stage", "Values": [app.stage.name]}],
    }
    return aws.resourcegroups.Group(
        "DestroyGuard",
        name=f"{app.name}-{app.stage.name}",
        description=f"Every resource of {app.name} {app.stage.name}; protected: it stops pulumi destroy",
        resource_query={"query": json.dumps(query, sort_keys=True)},
        opts=pulumi.ResourceOptions(
            provider=app.provider, protect=True, depends_on=list(_guards.get(id(app.stage), []))
        ),
    )
