"""Pulumi mocks that answer like AWS: ids, ARNs in each service's format, names, invokes.

The mocks echo a resource's inputs back as its state and add what AWS would compute
(``arn``, ``id``, endpoints, physical names for auto-named resources). Ids are derived
from the resource's name, so the same program always produces the same plan.

To teach the mocks a new resource type, add its ARN pattern to ``ARNS`` and, if AWS
computes more attributes, a function to ``EXTRA_STATE``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"

# Zones a new account sees per region; regions not listed get three (a, b, c).
AVAILABILITY_ZONES: dict[str, list[str]] = {
    "us-east-1": ["a", "b", "c", "d", "e", "f"],
    "us-west-1": ["a", "c"],
    "us-west-2": ["a", "b", "c", "d"],
    "ap-northeast-2": ["a", "b", "c", "d"],
}

# Resource type -> ARN pattern. Placeholders: partition, region, account, name, id, and any
# top-level input in camelCase.
ARNS: dict[str, str] = {
    "aws:dynamodb/table:Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{bucket}",
    "aws:lambda/function:Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/policy:Policy": "arn:aws:iam::{account}:policy/{name}",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": (
        "arn:aws:iam::{account}:oidc-provider/{url_host}"
    ),
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:sns/topicSubscription:TopicSubscription": "arn:aws:sns:{region}:{account}:{name}:{id}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:ec2/vpc:Vpc": "arn:aws:ec2:{region}:{account}:vpc/{id}",
    "aws:ec2/subnet:Subnet": "arn:aws:ec2:{region}:{account}:subnet/{id}",
    "aws:ec2/securityGroup:SecurityGroup": "arn:aws:ec2:{region}:{account}:security-group/{id}",
    "aws:ec2/instance:Instance": "arn:aws:ec2:{region}:{account}:instance/{id}",
    "aws:ec2/internetGateway:InternetGateway": "arn:aws:ec2:{region}:{account}:internet-gateway/{id}",
    "aws:ec2/natGateway:NatGateway": "arn:aws:ec2:{region}:{account}:natgateway/{id}",
    "aws:ec2/routeTable:RouteTable": "arn:aws:ec2:{region}:{account}:route-table/{id}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "arn:aws:ec2:{region}:{account}:vpc-endpoint/{id}",
    "aws:ec2/eip:Eip": "arn:aws:ec2:{region}:{account}:elastic-ip/{id}",
    "aws:ec2/flowLog:FlowLog": "arn:aws:ec2:{region}:{account}:vpc-flow-log/{id}",
    "aws:rds/cluster:Cluster": "arn:aws:rds:{region}:{account}:cluster:{clusterIdentifier}",
    "aws:rds/clusterInstance:ClusterInstance": "arn:aws:rds:{region}:{account}:db:{identifier}",
    "aws:rds/subnetGroup:SubnetGroup": "arn:aws:rds:{region}:{account}:subgrp:{name}",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": (
        "arn:aws:rds:{region}:{account}:cluster-pg:{name}"
    ),
    "aws:rds/proxy:Proxy": "arn:aws:rds:{region}:{account}:db-proxy:prx-{id}",
    "aws:iam/instanceProfile:InstanceProfile": "arn:aws:iam::{account}:instance-profile/{name}",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "aws:ssm/parameter:Parameter": "arn:aws:ssm:{region}:{account}:parameter/{name_no_slash}",
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{id}",
    "aws:kms/alias:Alias": "arn:aws:kms:{region}:{account}:{name}",
    "aws:acm/certificate:Certificate": "arn:aws:acm:{region}:{account}:certificate/{id}",
    "aws:apigatewayv2/api:Api": "arn:aws:apigateway:{region}::/apis/{id}",
    "aws:apigatewayv2/stage:Stage": "arn:aws:apigateway:{region}::/apis/{apiId}/stages/{name}",
    "aws:apigatewayv2/domainName:DomainName": "arn:aws:apigateway:{region}::/domainnames/{domainName}",
    "aws:cloudfront/distribution:Distribution": "arn:aws:cloudfront::{account}:distribution/{id}",
    "aws:cloudfront/function:Function": "arn:aws:cloudfront::{account}:function/{name}",
    "aws:wafv2/webAcl:WebAcl": "arn:aws:wafv2:{region}:{account}:global/webacl/{name}/{id}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:scheduler/schedule:Schedule": "arn:aws:scheduler:{region}:{account}:schedule/default/{name}",
    "aws:lambda/eventSourceMapping:EventSourceMapping": (
        "arn:aws:lambda:{region}:{account}:event-source-mapping:{id}"
    ),
    "aws:route53/zone:Zone": "arn:aws:route53:::hostedzone/{id}",
    "aws:cognito/userPool:UserPool": "arn:aws:cognito-idp:{region}:{account}:userpool/{id}",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
}

# Inputs that hold a resource's physical name; auto-named when the program leaves them out.
NAME_INPUTS: dict[str, str] = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:rds/cluster:Cluster": "clusterIdentifier",
    "aws:rds/clusterInstance:ClusterInstance": "identifier",
}


def short_id(*parts: str, length: int = 17) -> str:
    """A hex id derived from the parts: stable across runs, distinct across resources."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class MockZone:
    """One zone as EC2's DescribeAvailabilityZones reports it."""

    name: str
    zone_id: str
    zone_type: str = "availability-zone"
    """``availability-zone``, ``local-zone`` or ``wavelength-zone``."""
    state: str = "available"
    """``available``, ``information``, ``impaired`` or ``unavailable``."""
    opt_in_status: str = "opt-in-not-required"
    """``opt-in-not-required`` for standard zones; ``opted-in``/``not-opted-in`` otherwise."""


def default_zones(region: str) -> list[MockZone]:
    """The standard zones a new account sees in a region (no Local Zones opted in)."""
    letters = AVAILABILITY_ZONES.get(region, ["a", "b", "c"])
    return [MockZone(f"{region}{letter}", f"{region[:2]}{region.split('-')[1][:1]}{region[-1]}-az{i + 1}")
            for i, letter in enumerate(letters)]


def _zone_field(zone: MockZone, name: str) -> str | None:
    return {
        "zone-name": zone.name, "zone-id": zone.zone_id, "zone-type": zone.zone_type,
        "state": zone.state, "opt-in-status": zone.opt_in_status,
        "region-name": zone.name.rstrip("abcdefghijklmnopqrstuvwxyz") if zone.zone_type == "availability-zone"
        else None,
    }.get(name)


@dataclass
class MockContext:
    """What the mocks need to know about the account they pretend to be."""

    region: str = "us-east-1"
    account: str = ACCOUNT_ID
    provider_regions: dict[str, str] = field(default_factory=dict)
    """Explicit provider URN -> its region, so invokes through a provider answer for it."""
    known_zones: set[str] | None = None
    """DNS zones (Route 53 and Cloudflare) the account holds; None: the running stage's
    ``zone`` setting, else its ``domain``. Looking up any other zone fails, as it would."""
    zones: list[MockZone] | None = None
    """The region's zones with their type, state and opt-in status; None: ``default_zones``."""
    parameters: dict[str, str] | None = None
    """SSM Parameter Store: full name (``/harbor/dev/StripeSecretKey``) -> SecureString value.
    None: an account where every secret the program declares is set, with a stand-in value
    (offline plans). A dict is the whole store: anything else is ParameterNotFound."""

    def knows_zone(self, zone: str) -> bool:
        """Whether a zone lookup by this name finds a zone."""
        known = self.known_zones
        if known is None:
            project = pulumi.get_project()
            config = pulumi.runtime.get_config
            known = {z for z in (config(f"{project}:zone") or config(f"{project}:domain"),) if z}
        return zone.rstrip(".").lower() in {z.rstrip(".").lower() for z in known}


ExtraState = Callable[[dict[str, Any], str, str, MockContext], dict[str, Any]]


def _ec2_id(prefix: str) -> ExtraState:
    return lambda inputs, name, region, ctx: {"id": f"{prefix}-{short_id(prefix, name)}"}


def _table(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    arn = f"arn:aws:dynamodb:{region}:{ctx.account}:table/{inputs['name']}"
    extra: dict[str, Any] = {"id": inputs["name"]}
    if inputs.get("streamEnabled"):
        extra["streamArn"] = f"{arn}/stream/2026-01-01T00:00:00.000"
        extra["streamLabel"] = "2026-01-01T00:00:00.000"
    return extra


def _bucket(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    bucket = inputs["bucket"]
    return {
        "id": bucket,
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
        "region": region,
        "hostedZoneId": "Z3AQBSTGFYJSTF",
    }


def _function(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    arn = f"arn:aws:lambda:{region}:{ctx.account}:function:{inputs['name']}"
    return {
        "id": inputs["name"],
        "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
        "qualifiedArn": f"{arn}:$LATEST",
        "version": "$LATEST",
    }


def _queue(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    url = f"https://sqs.{region}.amazonaws.com/{ctx.account}/{inputs['name']}"
    return {"id": url, "url": url}


def _topic(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    return {"id": f"arn:aws:sns:{region}:{ctx.account}:{inputs['name']}"}


def _rds_cluster(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    ident = inputs["clusterIdentifier"]
    host = f"{ident}.cluster-c0abcdefghij.{region}.rds.amazonaws.com"
    extra: dict[str, Any] = {
        "id": ident,
        "endpoint": host,
        "readerEndpoint": host.replace(".cluster-", ".cluster-ro-"),
        "port": inputs.get("port") or 5432,
        "clusterResourceId": f"cluster-{short_id(ident, length=26).upper()}",
    }
    if inputs.get("manageMasterUserPassword"):
        secret = f"arn:aws:secretsmanager:{region}:{ctx.account}:secret:rds!cluster-{short_id(ident, length=8)}-AbCdEf"
        extra["masterUserSecrets"] = [
            {"secretArn": secret, "secretStatus": "active", "kmsKeyId": inputs.get("kmsKeyId", "")}
        ]
    return extra


def _api(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    api_id = short_id("api", name, length=10)
    return {
        "id": api_id,
        "apiEndpoint": f"https://{api_id}.execute-api.{region}.amazonaws.com",
        "executionArn": f"arn:aws:execute-api:{region}:{ctx.account}:{api_id}",
    }


def _api_domain(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    config = dict(inputs.get("domainNameConfiguration") or {})
    config.setdefault("targetDomainName", f"d-{short_id(name, length=10)}.execute-api.{region}.amazonaws.com")
    config.setdefault("hostedZoneId", "Z1UJRXOUMOOFQ8")
    return {"id": inputs["domainName"], "domainNameConfiguration": config}


def _certificate(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    domains = [inputs["domainName"], *(inputs.get("subjectAlternativeNames") or [])]
    options = [
        {
            "domainName": domain,
            "resourceRecordName": f"_{short_id(domain, length=32)}.{domain.lstrip('*.')}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{short_id('v', domain, length=32)}.acm-validations.aws.",
        }
        for domain in dict.fromkeys(domains)
    ]
    return {"domainValidationOptions": options, "status": "ISSUED"}


def _distribution(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    dist_id = "E" + short_id("cf", name, length=13).upper()
    return {
        "id": dist_id,
        "domainName": f"d{short_id('cfd', name, length=13)}.cloudfront.net",
        "hostedZoneId": "Z2FDTNDATAQYW2",
        "status": "Deployed",
        "etag": "E" + short_id("etag", name, length=12).upper(),
    }


def _kms_key(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    raw = short_id("kms", name, length=32)
    key_id = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return {"id": key_id, "keyId": key_id}


def _function_url(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    url_id = short_id("url", name, length=32)
    return {"functionUrl": f"https://{url_id}.lambda-url.{region}.on.aws/", "urlId": url_id}


def _nat_gateway(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    return {"id": f"nat-{short_id('nat', name)}", "publicIp": "203.0.113.10"}


def _eip(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    allocation = f"eipalloc-{short_id('eip', name)}"
    return {"id": allocation, "allocationId": allocation, "publicIp": "203.0.113.20"}


def _instance(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    return {
        "id": f"i-{short_id('i', name)}",
        "primaryNetworkInterfaceId": f"eni-{short_id('eni', name)}",
        "privateIp": "10.0.0.10",
    }


def _rds_proxy(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    proxy = inputs["name"]
    return {"id": proxy, "endpoint": f"{proxy}.proxy-c0abcdefghij.{region}.rds.amazonaws.com"}


def _hosted_zone(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    zone_id = "Z" + short_id("zone", name, length=20).upper()
    return {"id": zone_id, "zoneId": zone_id, "nameServers": ["ns-1.awsdns-01.org"]}


def _route53_record(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    fqdn = str(inputs.get("name", "")).rstrip(".")
    return {"id": f"{inputs.get('zoneId')}_{fqdn}_{inputs.get('type')}", "fqdn": fqdn}


def _cloudfront_id(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    """Origin access controls: ids like E2QWRUHAPOMQZL, plus the ETag CloudFront versions them by."""
    etag = "E" + short_id("etag", name, length=12).upper()
    return {"id": "E" + short_id("oac", name, length=13).upper(), "etag": etag}


def _cloudfront_policy(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    """Cache and response headers policies: UUID ids, versioned by ETag."""
    raw = short_id("cfp", name, length=32)
    policy_id = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return {"id": policy_id, "etag": "E" + short_id("etag", name, length=12).upper()}


def _cloudfront_function(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    etag = "E" + short_id("etag", name, length=12).upper()
    published = inputs.get("publish", True)
    return {"id": inputs["name"], "etag": etag, "liveStageEtag": etag if published else "",
            "status": "UNASSOCIATED"}


def _lambda_invocation(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    """The function's answer; the mocks run nothing, so an empty JSON object."""
    return {"result": "{}"}


def _user_pool(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    """Pool ids start with their region, as Cognito's do (``us-east-1_AbC123xyz``)."""
    pool_id = f"{region}_{short_id('pool', name, length=9)}"
    return {"id": pool_id, "endpoint": f"cognito-idp.{region}.amazonaws.com/{pool_id}"}


def _user_pool_client(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    extra: dict[str, Any] = {"id": short_id("client", name, length=26)}
    if inputs.get("generateSecret"):
        extra["clientSecret"] = short_id("secret", name, length=51)
    return extra


def _ecr_repository(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    return {"repositoryUrl": f"{ctx.account}.dkr.ecr.{region}.amazonaws.com/{inputs['name']}",
            "registryId": ctx.account}


def _docker_image(inputs: dict[str, Any], name: str, region: str, ctx: MockContext) -> dict[str, Any]:
    """A pushed image: its digest follows the build's inputs, as a real rebuild's would."""
    digest = "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    tags = inputs.get("tags") or []
    return {"digest": digest, "ref": f"{tags[0]}@{digest}" if tags else "", "contextHash": digest[7:]}


EXTRA_STATE: dict[str, ExtraState] = {
    "aws:dynamodb/table:Table": _table,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:lambda/function:Function": _function,
    "aws:lambda/functionUrl:FunctionUrl": _function_url,
    "aws:sqs/queue:Queue": _queue,
    "aws:sns/topic:Topic": _topic,
    "aws:rds/cluster:Cluster": _rds_cluster,
    "aws:apigatewayv2/api:Api": _api,
    "aws:apigatewayv2/domainName:DomainName": _api_domain,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:cloudfront/distribution:Distribution": _distribution,
    "aws:cloudfront/originAccessControl:OriginAccessControl": _cloudfront_id,
    "aws:cloudfront/cachePolicy:CachePolicy": _cloudfront_policy,
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": _cloudfront_policy,
    "aws:cloudfront/function:Function": _cloudfront_function,
    "aws:lambda/invocation:Invocation": _lambda_invocation,
    "aws:ecr/repository:Repository": _ecr_repository,
    "docker-build:index:Image": _docker_image,
    "aws:kms/key:Key": _kms_key,
    "aws:ec2/vpc:Vpc": _ec2_id("vpc"),
    "aws:ec2/subnet:Subnet": _ec2_id("subnet"),
    "aws:ec2/securityGroup:SecurityGroup": _ec2_id("sg"),
    "aws:ec2/internetGateway:InternetGateway": _ec2_id("igw"),
    "aws:ec2/routeTable:RouteTable": _ec2_id("rtb"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _ec2_id("vpce"),
    "aws:ec2/flowLog:FlowLog": _ec2_id("fl"),
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/instance:Instance": _instance,
    "aws:rds/proxy:Proxy": _rds_proxy,
    "aws:route53/zone:Zone": _hosted_zone,
    "aws:route53/record:Record": _route53_record,
    "aws:cognito/userPool:UserPool": _user_pool,
    "aws:cognito/userPoolClient:UserPoolClient": _user_pool_client,
}

# Types whose ``name`` input AWS fills in when left out (Pulumi auto-naming).
AUTO_NAMED = {
    "aws:dynamodb/table:Table",
    "aws:lambda/function:Function",
    "aws:iam/role:Role",
    "aws:iam/policy:Policy",
    "aws:sqs/queue:Queue",
    "aws:sns/topic:Topic",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup",
    "aws:secretsmanager/secret:Secret",
    "aws:ssm/parameter:Parameter",
    "aws:apigatewayv2/api:Api",
    "aws:cloudwatch/eventRule:EventRule",
}


class UnknownInvokeError(NotImplementedError):
    """The program called a data source the mocks cannot answer."""


class AwsMocks(pulumi.runtime.Mocks):
    """Mocks with AWS's shapes. ``context`` sets the account and default region."""

    def __init__(self, context: MockContext | None = None) -> None:
        self.context = context or MockContext()

    # -- resources -----------------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            region = inputs.get("region") or self.context.region
            self.context.provider_regions[args.name] = region
            return f"{args.name}-provider-id", inputs
        if args.typ == "pulumi-python:dynamic:Resource" and inputs.get("kind") == "harbor:generation-id":
            # components.core.generation.GenerationId draws this at create; here, stable per name.
            generation = short_id("generation", args.name, length=8)
            return generation, {**inputs, "hex": generation}
        region = self._region_for(args.provider)
        state = self._named(args.typ, args.name, inputs)
        if args.typ in EXTRA_STATE:
            state.update(EXTRA_STATE[args.typ](state, args.name, region, self.context))
        resource_id = state.pop("id", None) or f"{args.name}-{short_id(args.typ, args.name, length=8)}"
        if args.typ in ARNS and "arn" not in state:
            state["arn"] = self._format_arn(args.typ, state, resource_id, region)
        state.setdefault("tagsAll", state.get("tags") or {})
        return resource_id, state

    def _named(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        key = NAME_INPUTS.get(typ, "name")
        if (typ in AUTO_NAMED or typ in NAME_INPUTS) and not inputs.get(key):
            prefix = inputs.get(f"{key}Prefix")
            # The provider completes a prefix with a 26-character unique id (time and counter).
            inputs[key] = f"{prefix}{short_id(name, length=26)}" if prefix else f"{name}-{short_id(name, length=7)}"
        return inputs

    def _format_arn(self, typ: str, state: dict[str, Any], resource_id: str, region: str) -> str:
        values = {k: v for k, v in state.items() if isinstance(v, str | int | float)}
        name = str(state.get("name") or resource_id)
        url = str(state.get("url", ""))
        values.update(
            partition="aws",
            region=region,
            account=self.context.account,
            id=resource_id,
            name=name,
            name_no_slash=name.lstrip("/"),
            url_host=url.removeprefix("https://"),
        )
        try:
            return ARNS[typ].format(**values)
        except KeyError as missing:
            raise KeyError(f"mock ARN for {typ} needs input {missing}") from None

    def _region_for(self, provider_ref: str | None) -> str:
        """The region of the explicit provider a resource or invoke goes through."""
        if provider_ref:
            urn = provider_ref.split("::")
            name = urn[-2] if len(urn) >= 2 else ""
            return self.context.provider_regions.get(name.split("::")[0], self.context.region)
        return self.context.region

    # -- invokes -------------------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        region = self._region_for(args.provider)
        inputs = dict(args.args)
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.context.account,
                "arn": f"arn:aws:sts::{self.context.account}:assumed-role/deployer/session",
                "userId": "AROAEXAMPLE:session",
                "id": self.context.account,
            }
        if token == "aws:index/getRegion:getRegion":
            return {
                "region": region,
                "name": region,
                "id": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
                    "reverseDnsPrefix": "com.amazonaws"}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return self._availability_zones(inputs, region)
        if token == "aws:ec2/getAmi:getAmi":
            return self._ami(inputs, region)
        if token == "aws:route53/getZone:getZone":
            zone = str(inputs.get("name", "")).rstrip(".")
            if not self.context.knows_zone(zone):
                return ({}, [("name", "no matching Route 53 Hosted Zone found")])  # type: ignore[return-value]
            zone_id = "Z" + short_id("zone", zone, length=20).upper()
            return {"zoneId": zone_id, "id": zone_id, "name": zone, "arn": f"arn:aws:route53:::hostedzone/{zone_id}"}
        if token == "cloudflare:index/getZone:getZone":
            zone = str((inputs.get("filter") or {}).get("name", ""))
            if not self.context.knows_zone(zone):
                return ({}, [("filter", f"no zone named {zone!r} found")])  # type: ignore[return-value]
            zone_id = short_id("cf-zone", zone, length=32)
            return {"zoneId": zone_id, "id": zone_id, "name": zone, "status": "active"}
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = f"{inputs.get('registryId') or self.context.account}.dkr.ecr.{region}.amazonaws.com"
            return {"id": region, "proxyEndpoint": f"https://{registry}", "userName": "AWS",
                    "password": "mock-ecr-password", "authorizationToken": "QVdTOm1vY2s=",
                    "expiresAt": "2026-11-02T00:00:00Z"}
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(_policy_document(inputs), sort_keys=True), "id": "policy"}
        if token == "aws:ssm/getParametersByPath:getParametersByPath":
            return self._parameters_by_path(inputs, region)
        if token == "aws:ssm/getParameter:getParameter":
            return self._parameter(inputs, region)
        raise UnknownInvokeError(
            f"the AWS mocks cannot answer invoke {token!r}; add it to infra/mocks.py AwsMocks.call"
        )

    # -- SSM Parameter Store (secrets) ----------------------------------------------------
    def _parameter_store(self) -> dict[str, str]:
        if self.context.parameters is not None:
            return self.context.parameters
        from components.aws.secret import declared_secret_names, fallback_path, secret_path

        app, stage = pulumi.get_project(), pulumi.get_stack()
        return {
            path: f"mock-value-of-{name}"
            for name in declared_secret_names()
            for path in (secret_path(app, stage, name), fallback_path(app, name))
        }

    def _parameter_arn(self, name: str, region: str) -> str:
        return f"arn:aws:ssm:{region}:{self.context.account}:parameter/{name.lstrip('/')}"

    @staticmethod
    def _as_read(value: str, decrypt: bool) -> str:
        # Without decryption AWS returns a SecureString's ciphertext, never the value.
        return value if decrypt else f"AQICAHh{short_id('kms', value, length=40)}"

    def _parameters_by_path(self, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        path = str(inputs.get("path") or "/").rstrip("/") + "/"
        recursive = bool(inputs.get("recursive"))
        decrypt = inputs.get("withDecryption", True) is not False
        names = sorted(
            name for name in self._parameter_store()
            if name.startswith(path) and (recursive or "/" not in name[len(path):])
        )
        store = self._parameter_store()
        return {
            "id": path.rstrip("/") or "/",
            "path": inputs.get("path"),
            "arns": [self._parameter_arn(n, region) for n in names],
            "names": names,
            "types": ["SecureString"] * len(names),
            "values": [self._as_read(store[n], decrypt) for n in names],
            "withDecryption": decrypt,
            "recursive": recursive,
            "region": region,
        }

    def _parameter(self, inputs: dict[str, Any], region: str) -> Any:
        name = str(inputs.get("name") or "")
        store = self._parameter_store()
        if name not in store:
            # How the provider reports it: the invoke fails with SSM's error code.
            return {}, [("name", f"reading SSM Parameter ({name}): ParameterNotFound: parameter not found")]
        decrypt = inputs.get("withDecryption", True) is not False
        return {
            "id": name,
            "name": name,
            "arn": self._parameter_arn(name, region),
            "type": "SecureString",
            "value": self._as_read(store[name], decrypt),
            "insecureValue": None,
            "version": 1,
            "withDecryption": decrypt,
            "region": region,
        }

    def _availability_zones(self, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        """DescribeAvailabilityZones as the provider's data source calls it.

        Without ``allAvailabilityZones`` AWS lists only zones the account may use (standard
        ones and opted-in Local/Wavelength Zones), in every state unless ``state`` is given.
        """
        zones = self.context.zones if self.context.zones is not None else default_zones(region)
        if not inputs.get("allAvailabilityZones"):
            zones = [z for z in zones if z.opt_in_status != "not-opted-in"]
        if inputs.get("state"):
            zones = [z for z in zones if z.state == inputs["state"]]
        for condition in inputs.get("filters") or []:
            zones = [z for z in zones if _zone_field(z, condition["name"]) in condition["values"]]
        zones = [z for z in zones if z.name not in (inputs.get("excludeNames") or [])
                 and z.zone_id not in (inputs.get("excludeZoneIds") or [])]
        return {
            "names": [z.name for z in zones],
            "zoneIds": [z.zone_id for z in zones],
            "groupNames": [z.name if z.zone_type != "availability-zone" else region for z in zones],
            "id": region,
            "state": inputs.get("state"),
        }

    def _ami(self, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        filters = {f["name"]: f["values"] for f in inputs.get("filters") or []}
        pattern = (filters.get("name") or ["ami-*"])[0]
        name = pattern.replace("*", "2026.11.01")
        return {
            "id": f"ami-{short_id('ami', region, name)}",
            "imageId": f"ami-{short_id('ami', region, name)}",
            "name": name,
            "architecture": (filters.get("architecture") or ["arm64"])[0],
            "ownerId": (inputs.get("owners") or ["amazon"])[0],
            "creationDate": "2026-11-01T00:00:00.000Z",
        }


def _policy_document(inputs: dict[str, Any]) -> dict[str, Any]:
    statements = []
    for statement in inputs.get("statements") or []:
        entry: dict[str, Any] = {"Effect": statement.get("effect", "Allow")}
        if statement.get("actions"):
            entry["Action"] = statement["actions"]
        if statement.get("resources"):
            entry["Resource"] = statement["resources"]
        if statement.get("principals"):
            entry["Principal"] = {p["type"]: p["identifiers"] for p in statement["principals"]}
        statements.append(entry)
    return {"Version": "2012-10-17", "Statement": statements}
