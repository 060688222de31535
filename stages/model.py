"""The stage model: everything that differs between dev, staging, prod and personal stages.

A stage is a Pulumi stack. Its settings live in ``Pulumi.<stage>.yaml`` under the
project's namespace (``harbor:nat: ec2``) and are validated here, by one pydantic
model, before the program registers a single resource.

Example ``Pulumi.prod.yaml``::

    config:
      harbor:removal: retain
      harbor:protect: true
      harbor:nat: ec2
      harbor:natCount: 2
      harbor:domain: getreggie.io
      harbor:dns: cloudflare

A production stage with another name says so, and takes prod's defaults::

    # Pulumi.production.yaml
    config:
      reggie:defaults: prod       # start from prod's defaults (retain, protect, 14-day backups)
      reggie:apex: true           # serve at getreggie.io, api.getreggie.io
      reggie:tags: {Environment: production, Owner: platform}
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

Removal = Literal["remove", "retain", "retain-all"]
NatType = Literal["none", "ec2", "managed"]
DnsProvider = Literal["route53", "cloudflare"]

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)

DefaultsName = Literal["dev", "staging", "prod"]

STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# AWS tag rules shared by every service: keys up to 128, values up to 256 characters of
# letters, digits, spaces and + - = . _ : / @; the aws: prefix is AWS's own.
TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")
# Tags harbor sets itself on every resource (see components.core.context.stage_tags).
RESERVED_TAGS = frozenset({"app", "stage", "managed-by"})
MAX_CUSTOM_TAGS = 40  # AWS allows 50 per resource; leave room for the components' own


@functools.cache
def known_regions() -> dict[str, str]:
    """Every AWS region botocore knows, with its partition (``{"us-east-1": "aws", ...}``).

    Read from botocore's own partitions data (botocore/data/partitions.json), so a new
    region arrives with a boto3 upgrade. The file is read directly: importing botocore's
    loader would add a tenth of a second to every plan.
    """
    import importlib.util
    import json

    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("botocore is needed to check AWS region names")
    data = Path(spec.submodule_search_locations[0]) / "data" / "partitions.json"
    partitions = json.loads(data.read_text())["partitions"]
    return {
        region: partition["id"]
        for partition in partitions
        for region in partition["regions"]
        if not region.endswith("-global")
    }


def check_region(region: str) -> str:
    """``region`` if AWS has it; else a ValueError suggesting the closest real one."""
    regions = known_regions()
    if region in regions:
        return region
    distance, closest = min((_edits(region, known), known) for known in regions)
    hint = f"did you mean {closest}?" if distance <= 2 else "see `aws ec2 describe-regions`"
    raise ValueError(f"{region!r} is not an AWS region; {hint}")


def _edits(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) turning ``a`` into ``b``.

    Swaps count once, so the typo ``us-esat-1`` is nearest to ``us-east-1``.
    """
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


class _Settings(BaseModel):
    """Shared pydantic settings: camelCase keys as Pulumi config uses them, no unknown keys."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class DatabaseSizing(_Settings):
    """Aurora Serverless v2 capacity for the stage, in ACUs.

    ``minCapacity: 0`` with ``autoPauseSeconds`` lets the cluster pause when idle,
    which is where most of a small stage's cost goes.
    """

    min_capacity: float = Field(0.5, ge=0, le=256, description="lowest ACU (0 allows auto-pause)")
    max_capacity: float = Field(4, ge=1, le=256, description="highest ACU")
    auto_pause_seconds: int | None = Field(
        None, ge=300, le=86400, description="idle seconds before pausing; needs minCapacity 0"
    )

    @model_validator(mode="after")
    def _capacity_range(self) -> DatabaseSizing:
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                f"minCapacity {self.min_capacity:g} is above maxCapacity {self.max_capacity:g}; "
                "lower minCapacity or raise maxCapacity"
            )
        if self.min_capacity * 2 != int(self.min_capacity * 2) or (
            self.max_capacity * 2 != int(self.max_capacity * 2)
        ):
            raise ValueError("capacities move in steps of 0.5 ACU (for example 0.5, 1, 1.5)")
        if self.auto_pause_seconds is not None and self.min_capacity != 0:
            raise ValueError("autoPauseSeconds needs minCapacity 0; set minCapacity to 0 or drop it")
        return self


class ApiThrottle(_Settings):
    """Default throttling for HTTP APIs: steady requests per second and burst size."""

    rate_limit: float = Field(1000, gt=0)
    burst_limit: int = Field(2000, gt=0)


class ApiAuth(_Settings):
    """The identity provider whose JWTs the stage's API accepts (Clerk, Cognito, any OIDC issuer).

    Example (a Clerk production instance)::

        harbor:auth:
          issuer: https://clerk.getreggie.io
          audiences: [https://getreggie.io]
    """

    issuer: str = Field(pattern=r"^https://[^\s/]+(/\S*)?$", description="https URL of the token issuer")
    audiences: tuple[str, ...] = Field(min_length=1, description="accepted `aud` values")


class SharedVpc(_Settings):
    """An existing VPC the stage joins instead of creating its own (preview stages).

    The stage creates only its own security group in it. Example (the bootstrap's
    ``PREVIEW_SHARED_VPC`` output, which the pull-request workflow sets for pr-<number>)::

        harbor:sharedVpc:
          id: vpc-0123456789abcdef0
          privateSubnetIds: [subnet-0aaa, subnet-0bbb]
          publicSubnetIds: [subnet-0ccc, subnet-0ddd]
    """

    id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$", description="the VPC's id")
    private_subnet_ids: tuple[str, ...] = Field(min_length=1, description="subnets for functions and databases")
    public_subnet_ids: tuple[str, ...] = Field(default=(), description="public subnets, if any")

    @field_validator("private_subnet_ids", "public_subnet_ids")
    @classmethod
    def _subnet_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for subnet in ids:
            if not re.match(r"^subnet-[0-9a-f]{8,17}$", subnet):
                raise ValueError(f"{subnet!r} is not a subnet id like subnet-0123456789abcdef0")
        return ids


class AlarmSettings(_Settings):
    """Where the stage's alarms go, and whether it has any (see components.aws.alarms).

    Example (production pages the on-call list through an existing topic)::

        harbor:alarms:
          topicArn: arn:aws:sns:us-east-1:123456789012:oncall
          emails: [oncall@getreggie.io]
    """

    enabled: bool = Field(True, description="create the alarms (dev and personal stages: false)")
    topic_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$",
        description="a standard SNS topic to notify; default: one the Alarms component creates",
    )
    emails: tuple[str, ...] = Field((), description="addresses subscribed to the alarm topic")

    @field_validator("emails")
    @classmethod
    def _addresses(cls, emails: tuple[str, ...]) -> tuple[str, ...]:
        for email in emails:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", email):
                raise ValueError(f"{email!r} is not an email address")
        return emails

class AwsAssumeRole(_Settings):
    """A role the stage's AWS provider (and the deploy-time boto3 code) assumes first."""

    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
    external_id: str | None = Field(None, min_length=2, max_length=1224)
    session_name: str | None = Field(None, pattern=r"^[\w+=,.@-]{2,64}$")


class StageConfig(_Settings):
    """The validated settings of one stage.

    Example::

        stage = StageConfig(name="prod", app="harbor", removal="retain", protect=True)
        stage.domain_for("api")  # "api.getreggie.io" once ``domain`` is set
    """

    name: str = Field(description="the stage (stack) name, e.g. dev, prod or alice")
    app: str = Field(description="the application (Pulumi project) name")
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    removal: Removal = Field(
        "remove",
        description="remove: delete everything on destroy; retain: keep data stores; "
        "retain-all: keep every resource",
    )
    protect: bool = Field(False, description="refuse to delete stateful resources")
    nat: NatType = Field("ec2", description="how private subnets reach the internet")
    nat_count: int = Field(1, ge=0, le=6, description="NAT instances/gateways (<= azCount)")
    nat_instance_type: str = Field("t4g.nano", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    az_count: int = Field(2, ge=1, le=6, description="availability zones to spread across")
    availability_zones: tuple[str, ...] | None = Field(
        None, description="explicit zone names instead of the region's first azCount standard zones "
        "by name; write them here to pin a stage's zones for good"
    )
    domain: str | None = Field(None, description="apex domain; prod serves at the apex")
    dns: DnsProvider = Field("route53", description="who hosts the zone")
    zone: str | None = Field(None, description="DNS zone name; defaults to the apex domain")
    dns_proxied: bool = Field(False, description="Cloudflare only: proxy records through Cloudflare")
    log_retention_days: int = Field(
        14, description="CloudWatch log retention for functions, APIs, database logs and flow logs"
    )
    flow_logs: bool = Field(
        False, description="record the Vpc's traffic (accepted and rejected) to CloudWatch Logs"
    )
    backup_days: int = Field(1, ge=1, le=35, description="database backup retention")
    database: DatabaseSizing = Field(default_factory=DatabaseSizing)
    api_throttle: ApiThrottle = Field(default_factory=ApiThrottle)
    auth: ApiAuth | None = Field(
        None, description="JWT issuer the API trusts; without it API routes require IAM-signed requests"
    )
    cors_origins: tuple[str, ...] | None = Field(
        None, description="allowed browser origins; default: any outside prod, stage domains in prod"
    )
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="alarm notifications")
    defaults: DefaultsName | None = Field(
        None,
        description="whose defaults this stage starts from (dev, staging or prod); default: the "
        "stage's own name if it is one of those, else dev's",
    )
    apex: bool | None = Field(
        None,
        description="serve at the apex domain (the production stage); default: true for the stage "
        "named prod, or any stage taking prod's defaults",
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="tags on every AWS resource, besides app/stage/managed-by (e.g. Owner, CostCenter); "
        "'{stage}' and '{app}' in a value become the stage and app names",
    )

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, tags: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # "{stage}" and "{app}" let one project-wide setting name each stage (Environment: "{stage}").
        names = {"{stage}": str(info.data.get("name", "")), "{app}": str(info.data.get("app", ""))}
        resolved = {}
        for key, value in tags.items():
            for token, name in names.items():
                value = value.replace(token, name)
            resolved[key] = value
        tags = resolved
        if len(tags) > MAX_CUSTOM_TAGS:
            raise ValueError(f"{len(tags)} tags is more than the {MAX_CUSTOM_TAGS} allowed; drop some")
        for key, value in tags.items():
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag {key!r}: the aws: prefix is reserved for AWS; rename it")
            if key in RESERVED_TAGS:
                raise ValueError(f"tag {key!r} is set by harbor itself (app, stage, managed-by); rename it")
            if not TAG_KEY.match(key):
                raise ValueError(
                    f"tag key {key!r} must be 1-128 letters, digits, spaces or + - = . _ : / @"
                )
            if not TAG_VALUE.match(value):
                raise ValueError(
                    f"tag {key!r} value {value!r} must be up to 256 letters, digits, spaces or "
                    "+ - = . _ : / @"
                )
        return tags
    shared_vpc: SharedVpc | None = Field(
        None, description="join this existing VPC instead of creating one (no VPC, NAT or EIP of its own)"
    )
    permissions_boundary: str | None = Field(
        None,
        description="IAM policy (name or ARN) every role of the stage carries as its permissions "
        "boundary; the deploy roles of bootstrap/ require harbor-permissions-boundary. '' for none",
    )

    @field_validator("permissions_boundary")
    @classmethod
    def _boundary(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^(arn:aws[a-z-]*:iam::\d{12}:policy/)?[\w+=,.@/-]{1,128}$", value):
            raise ValueError(
                f"permissionsBoundary {value!r} must be an IAM policy name (harbor-permissions-boundary) "
                "or policy ARN (arn:aws:iam::<account>:policy/<name>)"
            )
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        return check_region(region)
    hsts_preload: bool = Field(
        False,
        description="HSTS `preload` on the sites: commits the domain and every subdomain to "
        "HTTPS in browsers for two years (prod's default; off elsewhere)",
    )
    aws_profile: str | None = Field(
        None, description="AWS shared-config profile the stage deploys with (default chain if unset)"
    )
    aws_assume_role: AwsAssumeRole | None = Field(
        None, description="role the stage's AWS provider and deploy-time boto3 code assume"
    )

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
            raise ValueError(f"{days} is not a CloudWatch retention period; use one of {allowed}")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> StageConfig:
        if not STAGE_NAME.match(self.name):
            raise ValueError(
                f"stage name {self.name!r} must be 1-24 lowercase letters, digits or hyphens, "
                "starting with a letter (it becomes part of every resource name)"
            )
        if self.availability_zones is not None and len(self.availability_zones) != self.az_count:
            raise ValueError(
                f"availabilityZones names {len(self.availability_zones)} zones but azCount is "
                f"{self.az_count}; make them agree"
            )
        if self.nat != "none" and not 1 <= self.nat_count <= self.az_count:
            raise ValueError(
                f"natCount {self.nat_count} must be between 1 and azCount ({self.az_count}) "
                f"when nat is {self.nat!r}"
            )
        if self.domain is not None and not DOMAIN_NAME.match(self.domain):
            raise ValueError(f"domain {self.domain!r} is not a lowercase DNS name like example.com")
        if self.dns == "cloudflare" and self.domain is None:
            raise ValueError(
                "dns: cloudflare needs a domain (the Cloudflare zone's apex); set domain or "
                "drop dns"
            )
        if self.dns_proxied and self.dns != "cloudflare":
            raise ValueError("dnsProxied only applies with dns: cloudflare")
        return self

    @property
    def is_production(self) -> bool:
        """True for the stage that serves at the apex domain.

        That is the stage named ``prod``, a stage taking prod's ``defaults``, or one whose
        file says ``apex: true`` (seed 002 calls its production stage ``production``).
        """
        if self.apex is not None:
            return self.apex
        return (self.defaults or self.name) == "prod"

    @property
    def dns_zone(self) -> str | None:
        """The zone that holds this stage's records (the apex unless set)."""
        return self.zone or self.domain

    def domain_for(self, service: str | None = None) -> str | None:
        """The host name a service gets on this stage, or None without a domain.

        prod uses the apex (``getreggie.io``, ``api.getreggie.io``); every other stage
        stays one level below the apex (``staging.getreggie.io``,
        ``staging-api.getreggie.io``), so one wildcard certificate and Cloudflare's
        universal certificate cover every stage.
        """
        if self.domain is None:
            return None
        if self.is_production:
            return f"{service}.{self.domain}" if service else self.domain
        return f"{self.name}-{service}.{self.domain}" if service else f"{self.name}.{self.domain}"

    def allowed_origins(self) -> tuple[str, ...]:
        """Browser origins APIs accept: explicit, else the stage's sites in prod, else any."""
        if self.cors_origins is not None:
            return self.cors_origins
        if self.is_production and self.domain:
            return (f"https://{self.domain_for()}", f"https://{self.domain_for('admin')}")
        return ("*",)


# The boundary bootstrap/ creates; the stages deployed from GitHub must carry it.
DEPLOY_BOUNDARY = "harbor-permissions-boundary"
# Preview stages: one per open pull request, "pr-<number>".
PREVIEW_STAGE = re.compile(r"^pr-\d+$")

# Defaults per stage, keyed as in the stage files. A preview stage (pr-<n>) gets
# PREVIEW_DEFAULTS; any other stage not listed (a personal stage such as "alice") gets dev's.
STAGE_DEFAULTS: dict[str, dict[str, object]] = {
    "dev": {
        "removal": "remove",
        "protect": False,
        "nat": "ec2",
        "natCount": 1,
        "logRetentionDays": 7,
        "backupDays": 1,
        "database": {"minCapacity": 0, "maxCapacity": 2, "autoPauseSeconds": 300},
        "permissionsBoundary": DEPLOY_BOUNDARY,
        "alarms": {"enabled": False},
    },
    "staging": {
        "removal": "remove",
        "protect": False,
        "nat": "ec2",
        "natCount": 1,
        "logRetentionDays": 14,
        "backupDays": 7,
        "database": {"minCapacity": 0, "maxCapacity": 2, "autoPauseSeconds": 900},
        "permissionsBoundary": DEPLOY_BOUNDARY,
    },
    "prod": {
        "removal": "retain",
        "protect": True,
        "nat": "ec2",
        "natCount": 2,
        "logRetentionDays": 30,
        "flowLogs": True,
        "backupDays": 14,
        "database": {"minCapacity": 0.5, "maxCapacity": 4},
        "permissionsBoundary": DEPLOY_BOUNDARY,
        "hstsPreload": True,
    },
}


# Preview stages (pr-<number>), quota-light: no NAT instance, so no Elastic IP (5 per region
# by default) and no instance; the shortest sensible retention; the database pauses after
# 5 minutes. Functions in the VPC reach AWS only through the S3 and DynamoDB endpoints,
# unless the stage joins the bootstrap's shared network (sharedVpc).
PREVIEW_DEFAULTS: dict[str, object] = {
    "removal": "remove",
    "protect": False,
    "nat": "none",
    "logRetentionDays": 3,
    "backupDays": 1,
    "database": {"minCapacity": 0, "maxCapacity": 2, "autoPauseSeconds": 300},
    "permissionsBoundary": DEPLOY_BOUNDARY,
}


def defaults_for(stage: str, defaults: str | None = None) -> dict[str, object]:
    """The default settings of a stage: those it names in ``defaults``, else its own.

    A preview stage (pr-<number>) gets the preview defaults; any other stage that names
    none and is not dev, staging or prod is personal and gets dev's.
    """
    if defaults:
        return dict(STAGE_DEFAULTS.get(defaults, STAGE_DEFAULTS["dev"]))
    if stage in STAGE_DEFAULTS:
        return dict(STAGE_DEFAULTS[stage])
    if PREVIEW_STAGE.match(stage):
        return dict(PREVIEW_DEFAULTS)
    return dict(STAGE_DEFAULTS["dev"])
