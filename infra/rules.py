"""The guardrail rules: pure functions over a stack's resources, shared by ``infra check`` and
the CrossGuard policy pack in ``policy/``.

Each :class:`Rule` has an id, a severity, the reason it exists and the fix. Its check takes
the stack's resources (anything with ``type``, ``name``, ``urn``, ``parent``, ``inputs``,
``protect``, ``retain_on_delete``, ``delete_before_replace`` and ``dependencies``, such as
:class:`infra.harness.PlannedResource`) and a
:class:`Context`, and yields ``(resource, message)`` for every violation. Inputs are read
as Pulumi sends them: camelCase keys, JSON policy documents as strings.

Example::

    plan = run_program(ROOT, "prod")
    findings = evaluate(plan.resources, Context(stage="prod", protecting=True))
    assert not [f for f in findings if f.severity == "high"]

This module imports nothing from Pulumi, so the policy pack stays light and fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Severity = Literal["high", "medium", "low"]
UNKNOWN_MARKERS = frozenset({"[unknown]", "[secret]"})

# A resource (or its component) carrying this tag documents why it accepts traffic from
# anywhere; the tag's value is the reason and must not be empty.
PUBLIC_INGRESS_TAG = "harbor:public-ingress"

# Components whose job is to accept traffic from the internet, with the reason.
PUBLIC_INGRESS_COMPONENTS: Mapping[str, str] = {
    "harbor:aws:LoadBalancer": "a public load balancer exists to accept traffic from anywhere",
}

# A data-store type that holds only what a deploy rebuilds is not data to protect. A resource
# says so with this tag (the value is the reason), or its component is listed below.
DERIVED_DATA_TAG = "harbor:derived-data"
DERIVED_DATA_COMPONENTS: Mapping[tuple[str, str], str] = {
    ("harbor:aws:Nextjs", "aws:s3/bucket:Bucket"): (
        "the site's assets bucket holds the build output, re-uploaded on every deploy; "
        "a destroy must be able to empty it"
    ),
}

# IAM actions AWS cannot scope to a resource ARN, so ``Resource: "*"`` is the only choice.
UNSCOPABLE_ACTIONS: Mapping[str, str] = {
    "ec2:CreateNetworkInterface": "Lambda in a VPC creates its ENIs before they have ARNs",
    "ec2:DescribeNetworkInterfaces": "EC2 Describe* calls support no resource-level permissions",
    "ec2:DeleteNetworkInterface": "Lambda in a VPC deletes ENIs it made; AWS's own VPC role uses *",
    "ec2:AssignPrivateIpAddresses": "part of Lambda's VPC networking; AWS's own VPC role uses *",
    "ec2:UnassignPrivateIpAddresses": "part of Lambda's VPC networking; AWS's own VPC role uses *",
    "ec2:DescribeSubnets": "EC2 Describe* calls support no resource-level permissions",
    "ec2:DescribeSecurityGroups": "EC2 Describe* calls support no resource-level permissions",
    "ec2:DescribeVpcs": "EC2 Describe* calls support no resource-level permissions",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "cloudwatch:PutMetricData": "CloudWatch metrics have no ARNs (scope with a namespace condition)",
    "ssm:DescribeParameters": "listing parameters supports no resource-level permissions",
    "secretsmanager:GetRandomPassword": "generating a password touches no resource",
    "secretsmanager:ListSecrets": "listing secrets supports no resource-level permissions",
    "ecr:GetAuthorizationToken": "the registry login token is account-wide",
    "sts:GetCallerIdentity": "identity lookup touches no resource",
}

# AWS managed policies too broad to attach to an application role.
BROAD_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")

IAM_POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
POLICY_ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
)
# Data stores a stage must keep (and Pulumi must refuse to delete) when it protects data.
PROTECTED_TYPES = frozenset(
    {
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
        "aws:rds/cluster:Cluster",
        "aws:rds/instance:Instance",
        "aws:secretsmanager/secret:Secret",
        "aws:kms/key:Key",
        "aws:efs/fileSystem:FileSystem",
        "aws:cognito/userPool:UserPool",
    }
)
CLOUDFRONT_TLS = frozenset({"TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"})
API_TLS = frozenset({"TLS_1_2", "SecurityPolicy_TLS13_1_3_2025_09", "SecurityPolicy_TLS13_1_2_2021_06"})
WORLD = frozenset({"0.0.0.0/0", "::/0"})


class ResourceLike(Protocol):
    """What a rule reads from a resource; :class:`infra.harness.PlannedResource` fits."""

    type: str
    name: str
    urn: str
    parent: str | None
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool | None
    delete_before_replace: bool
    dependencies: list[str]


@dataclass
class Resource:
    """A plain resource for callers without a plan (the policy pack, tests).

    ``retain_on_delete`` is ``None`` when the caller cannot know it (CrossGuard does not
    report it), and the retain half of the protection rule is then skipped.
    """

    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    urn: str = ""
    parent: str | None = None
    protect: bool = False
    retain_on_delete: bool | None = False
    delete_before_replace: bool = False
    dependencies: list[str] = field(default_factory=list)
    """URNs the resource waits for (depends_on, parent, and the sources of its inputs)."""

    def __post_init__(self) -> None:
        if not self.urn:
            self.urn = f"urn:pulumi:test::harbor::{self.type}::{self.name}"


@dataclass(frozen=True)
class Context:
    """The stage a check runs for; ``protecting`` turns on the production-data rules."""

    stage: str
    protecting: bool
    production: bool = False


@dataclass(frozen=True)
class Finding:
    """One violation of one rule by one resource."""

    rule: str
    severity: Severity
    urn: str
    type: str
    name: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "rule": self.rule, "severity": self.severity, "urn": self.urn, "type": self.type,
            "name": self.name, "message": self.message, "fix": self.fix,
        }


Violations = Iterator[tuple[ResourceLike, str]]
CheckFn = Callable[[Sequence[ResourceLike], Context], Iterable[tuple[ResourceLike, str]]]


@dataclass(frozen=True)
class Rule:
    """A guardrail: what it demands (``title``), why, and how to fix a violation."""

    id: str
    severity: Severity
    title: str
    reason: str
    fix: str
    check: CheckFn
    protecting_only: bool = False

    def run(self, resources: Sequence[ResourceLike], context: Context) -> list[Finding]:
        if self.protecting_only and not context.protecting:
            return []
        return [
            Finding(self.id, self.severity, r.urn, r.type, r.name, message, self.fix)
            for r, message in self.check(resources, context)
        ]


RULES: list[Rule] = []


def rule(
    rule_id: str, severity: Severity, title: str, reason: str, fix: str, *, protecting_only: bool = False
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function as a rule."""

    def register(check: CheckFn) -> CheckFn:
        RULES.append(Rule(rule_id, severity, title, reason, fix, check, protecting_only))
        return check

    return register


def evaluate(
    resources: Sequence[ResourceLike], context: Context, rules: Sequence[Rule] | None = None
) -> list[Finding]:
    """Every finding of every rule, high severity first."""
    order = {"high": 0, "medium": 1, "low": 2}
    findings = [f for r in (RULES if rules is None else rules) for f in r.run(resources, context)]
    return sorted(findings, key=lambda f: (order[f.severity], f.rule, f.urn))


def rule_by_id(rule_id: str) -> Rule:
    for candidate in RULES:
        if candidate.id == rule_id:
            return candidate
    raise KeyError(rule_id)


# -- helpers -------------------------------------------------------------------------------


def of_type(resources: Sequence[ResourceLike], *types: str) -> list[ResourceLike]:
    return [r for r in resources if r.type in types]


def get(inputs: Any, *path: str | int) -> Any:
    """A nested input, or None when any step is missing."""
    value = inputs
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or len(value) <= step:
                return None
            value = value[step]
        elif isinstance(value, Mapping):
            value = value.get(step)
        else:
            return None
    return value


def unknown(value: Any) -> bool:
    """True for values the plan could not know (in a real preview) or masks."""
    return isinstance(value, str) and value in UNKNOWN_MARKERS


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def policy_document(value: Any) -> dict[str, Any] | None:
    """A policy document from a JSON string or dict input; None when unknown or unparsable."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and not unknown(value):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not document:
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def urn_types(urn: str) -> list[str]:
    """The type chain in a URN: parent component types, then the resource's own type."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


def ancestors(resource: ResourceLike, by_urn: Mapping[str, ResourceLike]) -> Iterator[ResourceLike]:
    parent = by_urn.get(resource.parent or "")
    seen: set[str] = set()
    while parent is not None and parent.urn not in seen:
        seen.add(parent.urn)
        yield parent
        parent = by_urn.get(parent.parent or "")


def derived_data(resource: ResourceLike) -> bool:
    """True when a data-store resource documents that it holds only rebuildable content."""
    reason = get(resource.inputs, "tags", DERIVED_DATA_TAG)
    if isinstance(reason, str) and reason.strip():
        return True
    chain = urn_types(resource.urn)
    return any((owner, resource.type) in DERIVED_DATA_COMPONENTS for owner in chain[:-1])


def bucket_name(resource: ResourceLike) -> Any:
    return resource.inputs.get("bucket")


def for_bucket(resources: Sequence[ResourceLike], resource_type: str) -> dict[Any, list[ResourceLike]]:
    """Bucket settings resources (access block, policy, ...) keyed by the bucket they name."""
    found: dict[Any, list[ResourceLike]] = {}
    for r in of_type(resources, resource_type):
        found.setdefault(bucket_name(r), []).append(r)
    return found


# -- encryption at rest --------------------------------------------------------------------


@rule(
    "ENC-DYNAMO", "high", "DynamoDB tables encrypt at rest with server-side encryption enabled",
    "Seed 003: always enable server-side encryption; an explicit setting keeps a KMS key choice "
    "reviewable.",
    "Set serverSideEncryption.enabled: true (the Dynamo component does).",
)
def _dynamo_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for table in of_type(resources, "aws:dynamodb/table:Table"):
        if not truthy(get(table.inputs, "serverSideEncryption", "enabled")):
            yield table, "serverSideEncryption.enabled is not true"


@rule(
    "ENC-S3", "high", "Every S3 bucket has a default encryption configuration",
    "Objects must be encrypted at rest with a key choice that is visible in the code.",
    "Use the Bucket component, or add a BucketServerSideEncryptionConfiguration with AES256 or aws:kms.",
)
def _bucket_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    configs = for_bucket(resources, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                    "BucketServerSideEncryptionConfiguration")
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        matching = configs.get(bucket_name(bucket), [])
        algorithms = [
            get(rule_, "applyServerSideEncryptionByDefault", "sseAlgorithm")
            for config in matching for rule_ in as_list(config.inputs.get("rules"))
        ]
        if not any(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in algorithms):
            yield bucket, f"bucket {bucket_name(bucket)!r} has no default encryption configuration"


@rule(
    "ENC-RDS", "high", "RDS clusters and instances encrypt their storage",
    "A database holds the application's data; unencrypted storage cannot be encrypted later "
    "without a snapshot-restore migration.",
    "Set storageEncrypted: true (the Postgres component does).",
)
def _rds_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for db in of_type(resources, "aws:rds/cluster:Cluster", "aws:rds/instance:Instance"):
        if not truthy(db.inputs.get("storageEncrypted")):
            yield db, "storageEncrypted is not true"


@rule(
    "ENC-SQS", "high", "SQS queues encrypt messages at rest",
    "Messages carry application data; encryption must be explicit, not an account default.",
    "Set sqsManagedSseEnabled: true, or kmsMasterKeyId to a KMS key.",
)
def _sqs_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for queue in of_type(resources, "aws:sqs/queue:Queue"):
        if not (truthy(queue.inputs.get("sqsManagedSseEnabled")) or queue.inputs.get("kmsMasterKeyId")):
            yield queue, "neither sqsManagedSseEnabled nor kmsMasterKeyId is set"


@rule(
    "ENC-SNS", "high", "SNS topics encrypt messages at rest",
    "SNS stores messages unencrypted unless the topic names a KMS key.",
    "Set kmsMasterKeyId (alias/aws/sns or a customer key).",
)
def _sns_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for topic in of_type(resources, "aws:sns/topic:Topic"):
        if not topic.inputs.get("kmsMasterKeyId"):
            yield topic, "kmsMasterKeyId is not set"


@rule(
    "ENC-EFS", "high", "EFS file systems encrypt at rest",
    "A file system holds data and cannot be encrypted after creation.",
    "Set encrypted: true.",
)
def _efs_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for fs in of_type(resources, "aws:efs/fileSystem:FileSystem"):
        if not truthy(fs.inputs.get("encrypted")):
            yield fs, "encrypted is not true"


@rule(
    "ENC-LOGS", "low", "Log groups holding sensitive data use a customer KMS key",
    "CloudWatch Logs encrypts with AWS-owned keys already; a customer key adds key-policy "
    "control and audit, worth it for logs that may carry personal data.",
    "Set kmsKeyId on the LogGroup (optional).",
)
def _log_encryption(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for group in of_type(resources, "aws:cloudwatch/logGroup:LogGroup"):
        if not group.inputs.get("kmsKeyId"):
            yield group, "uses the AWS-owned key"


# -- no public data ------------------------------------------------------------------------


@rule(
    "PUB-S3-BLOCK", "high", "Every S3 bucket blocks all public access",
    "Seed 003: block all public access by default; a single public ACL or policy leaks data.",
    "Use the Bucket component, or add a BucketPublicAccessBlock with all four settings true; "
    "serve public files through CloudFront with origin access control.",
)
def _bucket_public_block(resources: Sequence[ResourceLike], _: Context) -> Violations:
    blocks = for_bucket(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    settings = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        matching = blocks.get(bucket_name(bucket), [])
        if not matching:
            yield bucket, f"bucket {bucket_name(bucket)!r} has no public access block"
            continue
        off = sorted({s for block in matching for s in settings if not truthy(block.inputs.get(s))})
        if off:
            yield bucket, f"bucket {bucket_name(bucket)!r}: public access block leaves {', '.join(off)} off"


@rule(
    "PUB-RDS", "high", "Databases are not publicly accessible",
    "A database endpoint reachable from the internet is one leaked password from a breach.",
    "Set publiclyAccessible: false and reach the database from inside the VPC.",
)
def _rds_public(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for db in of_type(resources, "aws:rds/clusterInstance:ClusterInstance", "aws:rds/instance:Instance"):
        if truthy(db.inputs.get("publiclyAccessible")):
            yield db, "publiclyAccessible is true"


def _documents_public_ingress(resource: ResourceLike, by_urn: Mapping[str, ResourceLike]) -> bool:
    for holder in (resource, *ancestors(resource, by_urn)):
        reason = get(holder.inputs, "tags", PUBLIC_INGRESS_TAG)
        if isinstance(reason, str) and reason.strip():
            return True
    return any(t in PUBLIC_INGRESS_COMPONENTS for t in urn_types(resource.urn)[:-1])


@rule(
    "PUB-INGRESS", "high", "No security group accepts traffic from 0.0.0.0/0 or ::/0",
    "Data stores and functions sit in private subnets; open ingress exposes them to the internet.",
    f"Allow only the VPC CIDR or a source security group; if the resource must be public, tag it "
    f"(or its component) {PUBLIC_INGRESS_TAG}=<reason>.",
)
def _open_ingress(resources: Sequence[ResourceLike], _: Context) -> Violations:
    by_urn = {r.urn: r for r in resources}
    for sg in of_type(resources, "aws:ec2/securityGroup:SecurityGroup"):
        for index, ingress in enumerate(as_list(sg.inputs.get("ingress"))):
            cidrs = as_list(get(ingress, "cidrBlocks")) + as_list(get(ingress, "ipv6CidrBlocks"))
            if WORLD & set(cidrs) and not _documents_public_ingress(sg, by_urn):
                yield sg, f"ingress[{index}] (port {get(ingress, 'fromPort')}) is open to {sorted(WORLD & set(cidrs))}"
    for sg_rule in of_type(resources, "aws:ec2/securityGroupRule:SecurityGroupRule"):
        cidrs = as_list(sg_rule.inputs.get("cidrBlocks")) + as_list(sg_rule.inputs.get("ipv6CidrBlocks"))
        if sg_rule.inputs.get("type") == "ingress" and WORLD & set(cidrs) and not _documents_public_ingress(
            sg_rule, by_urn
        ):
            yield sg_rule, f"ingress rule (port {sg_rule.inputs.get('fromPort')}) is open to the internet"
    for ingress in of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        cidrs = {ingress.inputs.get("cidrIpv4"), ingress.inputs.get("cidrIpv6")}
        if WORLD & cidrs and not _documents_public_ingress(ingress, by_urn):
            yield ingress, f"ingress rule (port {ingress.inputs.get('fromPort')}) is open to the internet"


@rule(
    "PUB-FN-URL", "high", "Function URLs use IAM auth or sit behind CloudFront",
    "A function URL with auth NONE is a public endpoint that bypasses the API's throttling, "
    "authorizers and WAF.",
    "Set authorizationType: AWS_IAM (CloudFront signs with origin access control), or serve the "
    "URL only as the origin of a CloudFront distribution in the same component.",
)
def _function_urls(resources: Sequence[ResourceLike], _: Context) -> Violations:
    by_urn = {r.urn: r for r in resources}
    fronted: set[str] = set()
    for distribution in of_type(resources, "aws:cloudfront/distribution:Distribution"):
        fronted.update(a.urn for a in ancestors(distribution, by_urn) if a.parent is not None)
    for url in of_type(resources, "aws:lambda/functionUrl:FunctionUrl"):
        if url.inputs.get("authorizationType") == "AWS_IAM":
            continue
        owners = {a.urn for a in ancestors(url, by_urn) if a.parent is not None}
        if not owners & fronted:
            yield url, f"authorizationType is {url.inputs.get('authorizationType')!r} and no CloudFront fronts it"


# -- IAM -----------------------------------------------------------------------------------


def _identity_policies(resources: Sequence[ResourceLike]) -> Iterator[tuple[ResourceLike, str, dict[str, Any]]]:
    """(resource, where, document) for each identity policy: standalone and inline in roles."""
    for policy in of_type(resources, *IAM_POLICY_TYPES):
        document = policy_document(policy.inputs.get("policy"))
        if document is not None:
            yield policy, "policy", document
    for role in of_type(resources, "aws:iam/role:Role"):
        for index, inline in enumerate(as_list(role.inputs.get("inlinePolicies"))):
            document = policy_document(get(inline, "policy"))
            if document is not None:
                yield role, f"inlinePolicies[{index}]", document


def _allows(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect", "Allow") == "Allow"


@rule(
    "IAM-ACTION-STAR", "high", "IAM policies allow named actions, never * or service:*",
    "Seed 003: least privilege. A wildcard action grants every present and future API of a "
    "service, including deletes and permission changes.",
    "List the actions the code calls (link a component to get its least-privilege set).",
)
def _iam_action_star(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for resource, where, document in _identity_policies(resources):
        for index, statement in enumerate(statements(document)):
            if not _allows(statement):
                continue
            if "NotAction" in statement:
                yield resource, f"{where} Statement[{index}] allows NotAction (everything but a list)"
            wild = [a for a in as_list(statement.get("Action")) if isinstance(a, str)
                    and (a == "*" or a.endswith(":*"))]
            if wild:
                yield resource, f"{where} Statement[{index}] allows {wild}"


@rule(
    "IAM-RESOURCE-STAR", "high", "IAM policies name resources, never *, except unscopable calls",
    "Seed 003: scope permissions to specific resources (no Resource: \"*\"). Only calls AWS cannot "
    "scope are allowed on * (see UNSCOPABLE_ACTIONS in infra/rules.py, each with its reason).",
    "Use the resource's ARN (and ARN/index/* for DynamoDB indexes); move unscopable calls into a "
    "statement of their own.",
)
def _iam_resource_star(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for resource, where, document in _identity_policies(resources):
        for index, statement in enumerate(statements(document)):
            if not _allows(statement):
                continue
            if "NotResource" in statement:
                yield resource, f"{where} Statement[{index}] allows NotResource"
            if "*" not in as_list(statement.get("Resource")):
                continue
            scopable = [a for a in as_list(statement.get("Action")) if a not in UNSCOPABLE_ACTIONS]
            if scopable:
                yield resource, f"{where} Statement[{index}] allows {scopable} on Resource \"*\""


@rule(
    "IAM-MANAGED-ADMIN", "high", "No administrator-level AWS managed policy on application roles",
    "AdministratorAccess, PowerUserAccess and IAMFullAccess turn any code bug into account takeover.",
    "Attach least-privilege inline policies instead (links generate them).",
)
def _iam_broad_managed(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for attachment in of_type(resources, *POLICY_ATTACHMENT_TYPES):
        arn = attachment.inputs.get("policyArn") or ""
        if isinstance(arn, str) and arn.rsplit("/", 1)[-1] in BROAD_MANAGED_POLICIES:
            yield attachment, f"attaches {arn}"
    for role in of_type(resources, "aws:iam/role:Role"):
        for arn in as_list(role.inputs.get("managedPolicyArns")):
            if isinstance(arn, str) and arn.rsplit("/", 1)[-1] in BROAD_MANAGED_POLICIES:
                yield role, f"managedPolicyArns includes {arn}"


# -- TLS only ------------------------------------------------------------------------------


def _denies_insecure_transport(document: Mapping[str, Any] | None) -> bool:
    for statement in statements(document):
        condition = get(statement, "Condition", "Bool", "aws:SecureTransport")
        if statement.get("Effect") == "Deny" and str(condition).lower() == "false":
            return True
    return False


@rule(
    "TLS-S3", "high", "Every bucket policy denies requests made without TLS",
    "Seed 003: HTTPS/TLS for all endpoints. S3 still answers plain HTTP unless a policy denies "
    "aws:SecureTransport false.",
    "Use the Bucket component, or add a BucketPolicy statement Deny s3:* when "
    "aws:SecureTransport is false.",
)
def _bucket_tls(resources: Sequence[ResourceLike], _: Context) -> Violations:
    policies = for_bucket(resources, "aws:s3/bucketPolicy:BucketPolicy")
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        matching = policies.get(bucket_name(bucket), [])
        if not any(_denies_insecure_transport(policy_document(p.inputs.get("policy"))) for p in matching):
            yield bucket, f"bucket {bucket_name(bucket)!r} has no policy denying aws:SecureTransport false"


@rule(
    "TLS-CLOUDFRONT", "high", "CloudFront serves HTTPS only, with TLSv1.2_2021 or newer",
    "Viewers must not fall back to plain HTTP or TLS 1.0/1.1, and origins must be reached over TLS.",
    "viewerCertificate: an ACM certificate with minimumProtocolVersion TLSv1.2_2021; "
    "viewerProtocolPolicy redirect-to-https on every behaviour; originProtocolPolicy https-only.",
)
def _cloudfront_tls(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for dist in of_type(resources, "aws:cloudfront/distribution:Distribution"):
        cert = dist.inputs.get("viewerCertificate") or {}
        if _default_certificate(cert):
            pass  # TLS-CLOUDFRONT-DEFAULT-CERT: the protocol cannot be chosen there
        elif cert.get("minimumProtocolVersion") not in CLOUDFRONT_TLS:
            yield dist, f"minimumProtocolVersion is {cert.get('minimumProtocolVersion')!r}"
        behaviours = [dist.inputs.get("defaultCacheBehavior") or {}]
        behaviours += as_list(dist.inputs.get("orderedCacheBehaviors"))
        for behaviour in behaviours:
            policy = get(behaviour, "viewerProtocolPolicy")
            if policy not in ("redirect-to-https", "https-only"):
                yield dist, f"behaviour {get(behaviour, 'pathPattern') or 'default'} allows {policy!r}"
        for origin in as_list(dist.inputs.get("origins")):
            protocol = get(origin, "customOriginConfig", "originProtocolPolicy")
            if protocol is not None and protocol != "https-only":
                yield dist, f"origin {get(origin, 'originId')!r} is reached with {protocol!r}"


def _default_certificate(cert: Mapping[str, Any]) -> bool:
    return truthy(cert.get("cloudfrontDefaultCertificate")) or not cert.get("acmCertificateArn")


@rule(
    "TLS-CLOUDFRONT-DEFAULT-CERT", "medium", "CloudFront serves a custom domain, not *.cloudfront.net",
    "On the default certificate CloudFront lets viewers negotiate TLS 1.0; the minimum protocol "
    "can only be raised with a certificate of your own.",
    "Give the site a domain (harbor:domain in the stage file, domain= on the component).",
)
def _cloudfront_default_certificate(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for dist in of_type(resources, "aws:cloudfront/distribution:Distribution"):
        if _default_certificate(dist.inputs.get("viewerCertificate") or {}):
            yield dist, "uses the default *.cloudfront.net certificate, which allows TLS 1.0"


@rule(
    "TLS-API-DOMAIN", "high", "API custom domains accept TLS 1.2 or newer only",
    "An API domain's security policy decides the oldest TLS a client may use.",
    "Set domainNameConfiguration.securityPolicy: TLS_1_2.",
)
def _api_domain_tls(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for domain in of_type(resources, "aws:apigatewayv2/domainName:DomainName", "aws:apigateway/domainName:DomainName"):
        policy = get(domain.inputs, "domainNameConfiguration", "securityPolicy") or domain.inputs.get("securityPolicy")
        if policy not in API_TLS:
            yield domain, f"securityPolicy is {policy!r}"


# -- protecting stages ---------------------------------------------------------------------


@rule(
    "PROT-DYNAMO-PITR", "high", "Tables keep point-in-time recovery in protecting stages",
    "Seed 003: point-in-time recovery in production; it is the only undo for a bad write.",
    "Leave point_in_time_recovery at its default on protecting stages.",
    protecting_only=True,
)
def _dynamo_pitr(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for table in of_type(resources, "aws:dynamodb/table:Table"):
        if not truthy(get(table.inputs, "pointInTimeRecovery", "enabled")):
            yield table, "pointInTimeRecovery.enabled is not true"


@rule(
    "PROT-DELETION", "high", "Databases have deletion protection in protecting stages",
    "Seed 002/003: deletion protection on every deployed database; AWS then refuses the delete "
    "call whatever tool sends it.",
    "Leave deletion protection at its default on protecting stages "
    "(deletionProtectionEnabled for tables, deletionProtection for RDS).",
    protecting_only=True,
)
def _deletion_protection(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for table in of_type(resources, "aws:dynamodb/table:Table"):
        if not truthy(table.inputs.get("deletionProtectionEnabled")):
            yield table, "deletionProtectionEnabled is not true"
    for db in of_type(resources, "aws:rds/cluster:Cluster", "aws:rds/instance:Instance"):
        if not truthy(db.inputs.get("deletionProtection")):
            yield db, "deletionProtection is not true"


MIN_BACKUP_DAYS = 7


@rule(
    "PROT-RDS-BACKUP", "high",
    f"Databases keep {MIN_BACKUP_DAYS}+ days of backups and a final snapshot in protecting stages",
    "Seed 002: 14 days of backups in production; a database deleted without a final snapshot is gone.",
    f"Set backupRetentionPeriod >= {MIN_BACKUP_DAYS} (stage backupDays), skipFinalSnapshot: false "
    "and a finalSnapshotIdentifier.",
    protecting_only=True,
)
def _rds_backups(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for db in of_type(resources, "aws:rds/cluster:Cluster", "aws:rds/instance:Instance"):
        days = db.inputs.get("backupRetentionPeriod")
        if not isinstance(days, int | float) or days < MIN_BACKUP_DAYS:
            yield db, f"backupRetentionPeriod is {days!r}"
        if truthy(db.inputs.get("skipFinalSnapshot")) or not db.inputs.get("finalSnapshotIdentifier"):
            yield db, "no final snapshot on delete"


@rule(
    "PROT-STATEFUL", "high", "Stateful resources are protected and retained in protecting stages",
    "pulumi destroy, or a rename that replaces a resource, must stop before it deletes data.",
    "Let the stage's removal policy apply (components/core/removal.py); do not set protect=False or "
    f"retain_on_delete=False on data stores. Content a deploy rebuilds may say so with the tag "
    f"{DERIVED_DATA_TAG}=<reason> (see DERIVED_DATA_COMPONENTS).",
    protecting_only=True,
)
def _stateful_protected(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for resource in resources:
        if resource.type not in PROTECTED_TYPES or derived_data(resource):
            continue
        if not resource.protect:
            yield resource, "not protected"
        if resource.retain_on_delete is False:
            yield resource, "not retained on delete"


@rule(
    "PROT-S3-VERSIONING", "medium", "Buckets keep object versions in protecting stages",
    "Versioning is the undo for an overwritten or deleted object.",
    "Leave Bucket versioning at its default on protecting stages.",
    protecting_only=True,
)
def _bucket_versioning(resources: Sequence[ResourceLike], _: Context) -> Violations:
    versioning = for_bucket(resources, "aws:s3/bucketVersioning:BucketVersioning")
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        if derived_data(bucket):
            continue
        statuses = [get(v.inputs, "versioningConfiguration", "status") for v in versioning.get(bucket_name(bucket), [])]
        if "Enabled" not in statuses:
            yield bucket, f"bucket {bucket_name(bucket)!r} is not versioned"


@rule(
    "CORS-PROD", "medium", "Production APIs do not accept any browser origin",
    "Seed 003: stricter CORS in production; * lets any site call the API with a user's browser.",
    "List the stage's sites (StageConfig.allowed_origins() does in prod).",
)
def _prod_cors(resources: Sequence[ResourceLike], context: Context) -> Violations:
    if not context.production:
        return
    for api in of_type(resources, "aws:apigatewayv2/api:Api"):
        if "*" in as_list(get(api.inputs, "corsConfiguration", "allowOrigins")):
            yield api, "corsConfiguration.allowOrigins includes *"


# -- logs ------------------------------------------------------------------------------------


@rule(
    "LOG-RETENTION", "high", "Every log group has a retention period",
    "Seed 003: CloudWatch log retention limits; logs kept forever cost forever and keep personal "
    "data past any policy.",
    "Set retentionInDays (the stage's logRetentionDays).",
)
def _log_retention(resources: Sequence[ResourceLike], _: Context) -> Violations:
    for group in of_type(resources, "aws:cloudwatch/logGroup:LogGroup"):
        days = group.inputs.get("retentionInDays")
        if not isinstance(days, int | float) or days <= 0:
            yield group, f"retentionInDays is {days!r} (never expires)"


@rule(
    "LOG-FUNCTION", "high", "Every function logs to a log group the stack manages",
    "Lambda otherwise creates /aws/lambda/<name> itself, with no retention and outside the stack.",
    "Create the log group with the function (the Function component does) and point "
    "loggingConfig.logGroup at it, or name it /aws/lambda/<function name>.",
)
def _function_logs(resources: Sequence[ResourceLike], _: Context) -> Violations:
    groups = {g.inputs.get("name") for g in of_type(resources, "aws:cloudwatch/logGroup:LogGroup")}
    groups.discard(None)
    for function in of_type(resources, "aws:lambda/function:Function"):
        target = get(function.inputs, "loggingConfig", "logGroup")
        if unknown(target):
            continue
        name = function.inputs.get("name")
        if target not in groups and f"/aws/lambda/{name}" not in groups:
            yield function, f"logs to {target or f'/aws/lambda/{name}'!r}, which the stack does not manage"


# -- queues --------------------------------------------------------------------------------


def _queue_name_from_arn(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:") and ":sqs:" in arn:
        return arn.rsplit(":", 1)[-1]
    return None


@rule(
    "DLQ-CONSUMER", "high", "Every queue consumer has a dead-letter queue behind its queue",
    "Without a redrive policy a poison message is retried until it expires, blocking FIFO groups "
    "and burning invocations; with one it lands where a person can inspect it.",
    "Give the queue a redrivePolicy (the Queue component's dlq), and stream consumers a "
    "destinationConfig.onFailure.",
)
def _dead_letters(resources: Sequence[ResourceLike], _: Context) -> Violations:
    queues = {q.inputs.get("name"): q for q in of_type(resources, "aws:sqs/queue:Queue")}
    redrives = {
        get(r.inputs, "queueUrl") for r in of_type(resources, "aws:sqs/redrivePolicy:RedrivePolicy")
    }
    for mapping in of_type(resources, "aws:lambda/eventSourceMapping:EventSourceMapping"):
        source = mapping.inputs.get("eventSourceArn")
        if unknown(source):
            continue
        queue_name = _queue_name_from_arn(source)
        if queue_name is None:
            # Streams (DynamoDB, Kinesis) retry a failing batch until it expires.
            if not get(mapping.inputs, "destinationConfig", "onFailure", "destinationArn"):
                yield mapping, f"stream consumer of {source!r} has no onFailure destination"
            continue
        queue = queues.get(queue_name)
        if queue is None:
            yield mapping, f"consumes queue {queue_name!r}, which is not in this stack"
        elif not queue.inputs.get("redrivePolicy") and not any(
            isinstance(url, str) and url.endswith("/" + queue_name) for url in redrives
        ):
            yield mapping, f"queue {queue_name!r} has no redrivePolicy (dead-letter queue)"


@rule(
    "DLQ-ASYNC", "medium", "Functions invoked asynchronously by SNS keep their failed events",
    "SNS invokes Lambda asynchronously: after two retries a failing event is dropped unless the "
    "function has a dead-letter queue or an on-failure destination.",
    "Give the function deadLetterConfig.targetArn, or a FunctionEventInvokeConfig with "
    "destinationConfig.onFailure (or put a queue with a DLQ between topic and function).",
)
def _async_dead_letters(resources: Sequence[ResourceLike], _: Context) -> Violations:
    functions = {f.inputs.get("name"): f for f in of_type(resources, "aws:lambda/function:Function")}
    on_failure = {
        str(c.inputs.get("functionName")).rsplit(":", 1)[-1]
        for c in of_type(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
        if get(c.inputs, "destinationConfig", "onFailure", "destination")
    }
    for subscription in of_type(resources, "aws:sns/topicSubscription:TopicSubscription"):
        endpoint = subscription.inputs.get("endpoint")
        if subscription.inputs.get("protocol") != "lambda" or unknown(endpoint) or not isinstance(endpoint, str):
            continue
        name = endpoint.split(":function:", 1)[-1].split(":", 1)[0]
        function = functions.get(name)
        if function is not None and get(function.inputs, "deadLetterConfig", "targetArn"):
            continue
        if name not in on_failure:
            yield subscription, f"function {name!r} drops events that fail twice"


# -- the engine's order and replacements -------------------------------------------------

LAMBDA_NETWORK_ACTIONS = frozenset({"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"})


def _grants_network_interfaces(policy: ResourceLike) -> bool:
    if policy.type in POLICY_ATTACHMENT_TYPES:
        arn = policy.inputs.get("policyArn")
        return isinstance(arn, str) and arn.endswith("/AWSLambdaVPCAccessExecutionRole")
    return any(
        LAMBDA_NETWORK_ACTIONS & set(as_list(statement.get("Action")))
        for statement in statements(policy_document(policy.inputs.get("policy")))
        if _allows(statement)
    )


@rule(
    "ORDER-VPC-FUNCTION", "high", "A function in a VPC depends on every policy its role needs",
    "The engine orders only by dependencies. A VPC function created before its role may manage "
    "network interfaces fails, and a destroy that detaches the policy first leaves Lambda unable "
    "to release its interfaces, so the subnet and security-group deletes hang for up to 45 minutes.",
    "Pass the role's policy attachments and inline policies in the function's depends_on (the "
    "Function component does).",
)
def _vpc_function_order(resources: Sequence[ResourceLike], _: Context) -> Violations:
    by_urn = {r.urn: r for r in resources}
    policies = of_type(resources, *IAM_POLICY_TYPES, *POLICY_ATTACHMENT_TYPES)
    for function in of_type(resources, "aws:lambda/function:Function"):
        if not as_list(get(function.inputs, "vpcConfig", "subnetIds")):
            continue
        waits_for = set(getattr(function, "dependencies", None) or [])
        roles = {urn for urn in waits_for if getattr(by_urn.get(urn), "type", None) == "aws:iam/role:Role"}
        if not roles:
            yield function, "does not depend on its role"
            continue
        of_role = [p for p in policies if roles & set(getattr(p, "dependencies", None) or [])]
        if not any(_grants_network_interfaces(p) for p in of_role):
            yield function, "its role has no policy granting ec2:CreateNetworkInterface/DeleteNetworkInterface"
        missing = sorted(
            p.name for p in of_role
            if p.type in POLICY_ATTACHMENT_TYPES or _grants_network_interfaces(p)
            if p.urn not in waits_for
        )
        if missing:
            yield function, f"does not depend on {', '.join(missing)}"


@rule(
    "REPLACE-NAME", "high", "A resource with a fixed name can be replaced",
    "Pulumi creates a replacement before deleting the original. With the same physical name "
    "(or the same CIDR in a VPC) the create fails with 'already exists', so a change such as a "
    "security group's description, a subnet's zone or a table's key cannot be deployed.",
    "Let AWS complete the name (namePrefix), or set deleteBeforeReplace (components do both "
    "through components/core/replacement.py); resources the stage keeps (protect, retainOnDelete) "
    "are exempt.",
)
def _replaceable_names(resources: Sequence[ResourceLike], _: Context) -> Violations:
    from components.core.replacement import camel, identity_of, pinned

    for resource in resources:
        identity = identity_of(resource.type)
        if identity is None or not pinned(identity, resource.inputs, camel_case=True):
            continue
        # A resource the stage keeps (protected, or retained on delete) is never replaced by the
        # engine on its own: protection refuses before anything happens, and replacing a kept
        # resource is a deliberate step that lifts retention first.
        if resource.protect or resource.retain_on_delete or getattr(resource, "delete_before_replace", False):
            continue
        name = resource.inputs.get(camel(identity.name))
        forcing = [camel(f) for f in identity.forcing if resource.inputs.get(camel(f)) is not None]
        yield resource, (
            f"{camel(identity.name)} {name!r} is fixed and {', '.join(forcing)} force a replacement, "
            "but it is neither name-prefixed nor deleteBeforeReplace"
        )
