"""Postgres: Aurora Serverless v2 PostgreSQL in a Vpc's private subnets (seed 002).

Example::

    vpc = Vpc("Vpc")
    database = Postgres("Database", vpc=vpc)                    # sizes and backups from the stage
    database = Postgres("Database", vpc=vpc, proxy=True, data_api=True, version="16.8")

What the stage decides: capacity (``database: {minCapacity, maxCapacity, autoPauseSeconds}``;
dev and staging pause at 0 ACU when idle), ``backupDays``, ``protect`` (deletion
protection) and ``removal`` (a retaining stage keeps a final snapshot with a stage-stable
name, and the stack transformation retains and protects the cluster and its instance).

Secure defaults: encrypted storage, TLS enforced by the cluster parameter group
(``rds.force_ssl``), never publicly accessible, port 5432 open only to the Vpc's component
security group, and a master password that RDS generates and keeps in Secrets Manager
(``manage_master_user_password``): it never exists in Pulumi state or in a plan.

Linking gives the handler ``host``, ``port``, ``database``, ``username``, ``secretArn``,
``clusterArn`` and ``url``. There is no ``password`` and the ``url`` carries none: the password
lives only in Secrets Manager, so putting it in link data would mean reading it into
state. Handlers read it at run time (the link grants ``secretsmanager:GetSecretValue`` on
that secret only) and build the URL with :func:`url_with_password`, which URL-encodes it
(generated passwords contain characters such as ``@``, ``/`` and ``%``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components.aws.vpc import Vpc
from components.core.base import Component, ComponentArgs
from components.core.generation import GenerationId
from components.core.linking import Permission
from stages.model import DatabaseSizing

PORT = 5432
ENGINE = "aurora-postgresql"
# A major version follows AWS's minor upgrades: the provider keeps a configured "17" while the
# cluster runs 17.x (terraform-provider-aws internal/service/rds compareActualEngineVersion; the
# running version is `engine_version_actual`), so no deploy tries to go back.
DEFAULT_VERSION = "17"
# Oldest minor of each major that supports min_capacity 0 with auto-pause.
AUTO_PAUSE_MINIMUM = {13: 15, 14: 12, 15: 7, 16: 3, 17: 4}
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?$")
# Aurora PostgreSQL writes these logs; `postgresql` is the server log (errors, slow statements).
LOG_EXPORTS = ("postgresql",)
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_USERNAMES = frozenset({"rdsadmin", "rdsrepladmin", "rds_superuser", "public"})

SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
DATA_API_ACTIONS = (
    "rds-data:BatchExecuteStatement",
    "rds-data:BeginTransaction",
    "rds-data:CommitTransaction",
    "rds-data:ExecuteStatement",
    "rds-data:RollbackTransaction",
)


class PostgresArgs(ComponentArgs):
    """Arguments of :class:`Postgres`."""

    vpc: Vpc = Field(description="the Vpc whose private subnets hold the database")
    version: str = Field(
        DEFAULT_VERSION,
        description="Aurora PostgreSQL major version (e.g. '17': AWS applies minor upgrades, no diff "
        "follows) or a pinned major.minor (e.g. '16.8': minor upgrades off, you move it)",
    )
    database: str | None = Field(
        None, description="database created with the cluster; default: the app name with _ for -"
    )
    username: str = Field("postgres", description="master user name")
    scaling: DatabaseSizing | None = Field(
        None, description="override the stage's capacity: {min_capacity, max_capacity, auto_pause_seconds}"
    )
    backup_days: int | None = Field(None, ge=1, le=35, description="override the stage's backupDays")
    deletion_protection: bool | None = Field(None, description="default: the stage's protect")
    proxy: bool = Field(False, description="put an RDS Proxy in front (TLS required); host points at it")
    data_api: bool = Field(False, description="enable the RDS Data API (HTTP endpoint)")
    kms_key_arn: str | None = Field(
        None, description="customer managed key for storage and the master secret; default: AWS managed"
    )

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: str) -> str:
        match = _VERSION.match(version)
        if not match or int(match.group(1)) < 14:
            raise ValueError(
                f"version {version!r} must be an Aurora PostgreSQL major from 14 on, like "
                f"{DEFAULT_VERSION}, or a pinned major.minor like 16.8 (AWS no longer creates "
                "clusters of older majors)"
            )
        return version

    @field_validator("database", "username")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(
                f"{value!r} must start with a lowercase letter and hold only lowercase letters, "
                "digits or underscores (up to 63)"
            )
        return value

    @field_validator("username")
    @classmethod
    def _not_reserved(cls, username: str) -> str:
        if username in RESERVED_USERNAMES:
            raise ValueError(f"username {username!r} is reserved by RDS; use e.g. 'postgres' or 'app'")
        return username

    @model_validator(mode="after")
    def _pause_supported(self) -> PostgresArgs:
        if self.scaling is not None:
            check_auto_pause(self.version, self.scaling)
        return self


def check_auto_pause(version: str, sizing: DatabaseSizing) -> None:
    """Aurora pauses at 0 ACU only from certain minors on; say which when the version is older."""
    if sizing.min_capacity != 0:
        return
    major, _, pinned = version.partition(".")
    if not pinned:
        return  # a new cluster of a major gets AWS's default minor, past every minimum below
    needed = AUTO_PAUSE_MINIMUM.get(int(major), 0)
    if int(pinned) < needed:
        raise ValueError(
            f"minCapacity 0 (auto-pause) needs Aurora PostgreSQL {major}.{needed} or later, not "
            f"{version}; raise version (or give the major only, {major}) or set minCapacity to 0.5"
        )


def url_with_password(url: str, password: str) -> str:
    """The link's ``url`` with the password put in, URL-encoded.

    Handlers call it with the password read from ``secretArn`` at run time::

        secret = json.loads(secrets.get_secret_value(SecretId=Resource.Database.secretArn)["SecretString"])
        dsn = url_with_password(Resource.Database.url, secret["password"])
    """
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


class Postgres(Component):
    """An Aurora Serverless v2 PostgreSQL cluster with one ``db.serverless`` writer.

    Outputs: ``host`` (the proxy's endpoint when ``proxy``), ``port``, ``database``,
    ``username``, ``secret_arn``, ``cluster_arn``, ``cluster_id``, ``security_group_id``, ``url``.
    Transformable children: ``subnet_group``, ``security_group``, ``parameter_group``,
    ``log_group``, ``cluster``, ``instance``, ``proxy_role``, ``proxy_role_policy``, ``proxy``,
    ``proxy_target_group``, ``proxy_target``.
    """

    type_token: ClassVar[str] = "harbor:aws:Postgres"
    sst_type: ClassVar[str] = "sst.aws.Postgres"
    Args: ClassVar[type[ComponentArgs]] = PostgresArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "subnet_group", "security_group", "parameter_group", "log_group", "cluster", "instance",
        "proxy_role", "proxy_role_policy", "proxy", "proxy_target_group", "proxy_target",
    )

    args: PostgresArgs

    def __init__(
        self,
        name: str,
        args: PostgresArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        stage = self.stage
        vpc = a.vpc
        sizing = a.scaling or stage.database
        try:
            check_auto_pause(a.version, sizing)
        except ValueError as error:
            raise self.fail(str(error)) from None
        if len(vpc.private_subnet_ids) < 2:
            raise self.fail(
                f"Aurora needs subnets in at least two zones and Vpc {vpc.component_name!r} has "
                f"{len(vpc.private_subnet_ids)}; set azCount to 2 or more"
            )
        major, _, pinned_minor = a.version.partition(".")
        database = a.database or re.sub(r"[^a-z0-9_]", "_", stage.app.lower())
        backup_days = a.backup_days or stage.backup_days
        protect = stage.protect if a.deletion_protection is None else a.deletion_protection
        keep_snapshot = stage.removal != "remove"

        subnet_group = self.child(
            "subnet_group",
            aws.rds.SubnetGroup,
            {
                "name": self.physical_name("rds.subnet-group"),
                "description": f"Private subnets of {vpc.component_name}",
                "subnet_ids": vpc.private_subnet_ids,
            },
        )
        self.security_group = self.child(
            "security_group",
            aws.ec2.SecurityGroup,
            {
                "vpc_id": vpc.id,
                "name": self.physical_name("ec2.security-group"),
                "description": f"Postgres: {PORT} from the VPC's component group only",
                "ingress": [
                    {"protocol": "tcp", "from_port": PORT, "to_port": PORT,
                     "security_groups": [vpc.security_group_id],
                     "description": "components inside the VPC"},
                    # The proxy shares this group and must reach the cluster behind it.
                    *([{"protocol": "tcp", "from_port": PORT, "to_port": PORT, "self": True,
                        "description": "RDS Proxy to the cluster"}] if a.proxy else []),
                ],
                # A database starts no connections; an empty list removes AWS's allow-all egress.
                "egress": [],
                "tags": {"Name": self.physical_name("ec2.tag")},
            },
        )
        parameter_group = self.child(
            "parameter_group",
            aws.rds.ClusterParameterGroup,
            {
                # The family is in the name, so a major upgrade creates a new group beside the old.
                "name": self.physical_name("rds.parameter-group", suffix=f"-pg{major}"),
                "family": f"aurora-postgresql{major}",
                "description": "TLS required for every connection",
                "parameters": [{"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"}],
            },
        )
        cluster_identifier = self.physical_name("rds.cluster")
        # RDS exports the server log to this group; made here first, so it has the stage's
        # retention instead of the never-expiring group RDS would create.
        self.log_group = self.child(
            "log_group",
            aws.cloudwatch.LogGroup,
            {"name": f"/aws/rds/cluster/{cluster_identifier}/postgresql",
             "retention_in_days": stage.log_retention_days},
        )
        final_snapshot: pulumi.Input[str] | None = None
        if keep_snapshot:
            # A final snapshot name is taken for good; one per generation of the cluster, so a
            # stage destroyed and created again never meets the previous generation's snapshot.
            generation = GenerationId(
                f"{self.component_name}-generation",
                keepers={"cluster": cluster_identifier},
                opts=pulumi.ResourceOptions(parent=self),
            )
            final_snapshot = generation.hex.apply(
                lambda suffix: self.physical_name("rds.snapshot", suffix=f"-final-{suffix}")
            )
        scaling: dict[str, Any] = {
            "min_capacity": sizing.min_capacity,
            "max_capacity": sizing.max_capacity,
        }
        if sizing.min_capacity == 0:
            scaling["seconds_until_auto_pause"] = sizing.auto_pause_seconds or 300
        self.cluster = self.child(
            "cluster",
            aws.rds.Cluster,
            {
                "cluster_identifier": cluster_identifier,
                "engine": ENGINE,
                "engine_mode": "provisioned",
                "engine_version": a.version,
                # A new version (or major) in code is applied by this deploy, not at some later
                # maintenance window that would leave state and AWS disagreeing until then.
                "apply_immediately": True,
                "allow_major_version_upgrade": True,
                "enabled_cloudwatch_logs_exports": list(LOG_EXPORTS),
                "database_name": database,
                "master_username": a.username,
                "manage_master_user_password": True,
                "master_user_secret_kms_key_id": a.kms_key_arn,
                "port": PORT,
                "serverlessv2_scaling_configuration": scaling,
                "storage_encrypted": True,
                "kms_key_id": a.kms_key_arn,
                "db_subnet_group_name": subnet_group.name,
                "vpc_security_group_ids": [self.security_group.id],
                "db_cluster_parameter_group_name": parameter_group.name,
                "backup_retention_period": backup_days,
                "copy_tags_to_snapshot": True,
                "deletion_protection": protect,
                "skip_final_snapshot": not keep_snapshot,
                # {app}-{stage}-{name}-final-<generation>: findable by prefix for a restore.
                "final_snapshot_identifier": final_snapshot,
                "enable_http_endpoint": a.data_api,
            },
            opts=pulumi.ResourceOptions(depends_on=[self.log_group]),
        )
        self.instance = self.child(
            "instance",
            aws.rds.ClusterInstance,
            {
                "identifier": self.physical_name("rds.instance", suffix="-writer"),
                "cluster_identifier": self.cluster.id,
                "instance_class": "db.serverless",
                "engine": ENGINE,
                # No engine_version: an Aurora instance runs its cluster's version.
                "db_subnet_group_name": subnet_group.name,
                "publicly_accessible": False,
                # With a major version AWS applies minor upgrades (security fixes) in the
                # maintenance window; a pinned minor is the user's to move.
                "auto_minor_version_upgrade": not pinned_minor,
                "apply_immediately": True,
            },
        )

        self.cluster_arn: pulumi.Output[str] = self.cluster.arn
        self.cluster_id: pulumi.Output[str] = self.cluster.id
        self.secret_arn: pulumi.Output[str] = self.cluster.master_user_secrets.apply(_secret_arn)
        self.port: pulumi.Output[int] = self.cluster.port
        self.database: pulumi.Output[str] = self.cluster.database_name
        self.username: pulumi.Output[str] = self.cluster.master_username
        self.security_group_id: pulumi.Output[str] = self.security_group.id
        self.proxy: aws.rds.Proxy | None = self._proxy(subnet_group) if a.proxy else None
        self.host: pulumi.Output[str] = self.proxy.endpoint if self.proxy else self.cluster.endpoint
        self.url: pulumi.Output[str] = pulumi.Output.format(
            "postgresql://{0}@{1}:{2}/{3}?sslmode=require", self.username, self.host, self.port, self.database
        )
        self.register_outputs(
            {"host": self.host, "port": self.port, "database": self.database, "clusterArn": self.cluster_arn}
        )

    def _proxy(self, subnet_group: aws.rds.SubnetGroup) -> aws.rds.Proxy:
        """An RDS Proxy that signs in with the managed secret and requires TLS from clients."""
        role = self.child(
            "proxy_role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role", suffix="-proxy"),
                "assume_role_policy": pulumi.Output.json_dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "sts:AssumeRole",
                             "Principal": {"Service": "rds.amazonaws.com"}}
                        ],
                    }
                ),
            },
        )
        self.child(
            "proxy_role_policy",
            aws.iam.RolePolicy,
            {
                "role": role.id,
                "policy": pulumi.Output.json_dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": list(SECRET_ACTIONS), "Resource": self.secret_arn}
                        ],
                    }
                ),
            },
        )
        proxy = self.child(
            "proxy",
            aws.rds.Proxy,
            {
                "name": self.physical_name("rds.proxy"),
                "engine_family": "POSTGRESQL",
                "auths": [
                    {"auth_scheme": "SECRETS", "secret_arn": self.secret_arn, "iam_auth": "DISABLED",
                     "client_password_auth_type": "POSTGRES_SCRAM_SHA_256"}
                ],
                "role_arn": role.arn,
                "require_tls": True,
                "vpc_subnet_ids": self.args.vpc.private_subnet_ids,
                "vpc_security_group_ids": [self.security_group.id],
            },
        )
        self.child(
            "proxy_target_group",
            aws.rds.ProxyDefaultTargetGroup,
            {"db_proxy_name": proxy.name, "connection_pool_config": {"max_connections_percent": 90}},
        )
        self.child(
            "proxy_target",
            aws.rds.ProxyTarget,
            {
                "db_proxy_name": proxy.name,
                "target_group_name": "default",
                "db_cluster_identifier": self.cluster.id,
            },
            opts=pulumi.ResourceOptions(depends_on=[self.instance]),
        )
        return proxy

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {
            "clusterArn": self.cluster_arn,
            "secretArn": self.secret_arn,
            "database": self.database,
            "username": self.username,
            "host": self.host,
            "port": self.port,
            "url": self.url,
        }

    def link_permissions(self) -> Sequence[Permission]:
        grants = [Permission(SECRET_ACTIONS, [self.secret_arn])]
        if self.args.kms_key_arn:
            # A secret under a customer key cannot be read without decrypting with that key.
            grants.append(Permission(("kms:Decrypt",), [self.args.kms_key_arn]))
        if self.args.data_api:
            grants.append(Permission(DATA_API_ACTIONS, [self.cluster_arn]))
        return grants


def _secret_arn(secrets: Sequence[Any] | None) -> str:
    """The ARN of the master secret RDS created (``master_user_secrets[0]``)."""
    if not secrets:
        raise pulumi.RunError("the cluster reported no master user secret; is manage_master_user_password on?")
    first = secrets[0]
    return first["secret_arn"] if isinstance(first, Mapping) else first.secret_arn
