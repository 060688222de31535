"""Nextjs: a Next.js app on S3, Lambda and CloudFront, built with OpenNext.

Example (seed 000's site and seed 002's admin)::

    web = Nextjs(
        "Web",
        path="app/web",
        link=[table],                                  # `import { Resource } from "sst"` works
        environment={
            "API_URL": api.url,                        # server only: known after deploy
            "NEXT_PUBLIC_HARBOR_SITE": "harbor-dev",   # plain strings reach the build too
        },
        domain={"name": "getreggie.io", "redirects": ["www.getreggie.io"]},
    )
    Nextjs("Admin", path="app/admin", domain=app.stage.domain_for("admin"))

What it builds, from ``.open-next/open-next.output.json`` (see ``components.aws.opennext``):

* the build itself, with every plain-string ``environment`` value (``NEXT_PUBLIC_*``
  reach the browser bundle this way) and ``build_command``/``opennext_version`` in its
  source hash: change one and the site rebuilds. Each hash keeps its own build, so two
  sites (or stages) of one app folder with different public values never rebuild each
  other's. The build id follows that hash, so an unchanged app rebuilt on a clean
  machine gives byte-identical archives and assets.
  A ``NEXT_PUBLIC_*`` value only known after a deploy (an Output) stops the plan.
* a private assets bucket (all public access blocked, encrypted, TLS only) that only
  this distribution can read, through an S3 origin access control; the build's files
  synced by one :class:`~components.aws.asset_sync.AssetSync` resource (changed or missing
  files only, hashed ``_next/static`` immutable for a year, stale files deleted one
  deploy late);
* the server function (``server``: memory, timeout, architecture, layers; Node.js 22,
  response streaming when the output says so) and the image optimisation function
  (``image``; arm64, as sharp's binary comes from the OpenNext build), both behind
  function URLs;
* ``protection`` of those URLs, as SST names it: ``"oac-with-edge-signing"`` (default)
  requires ``AWS_IAM`` and lets only this distribution call them, through a Lambda origin
  access control, and a Lambda@Edge function on the server behaviours signs each request
  body's SHA-256 into ``x-amz-content-sha256``, which an IAM function URL demands of any
  request with a body (server actions, route handlers taking a POST); bodies are
  limited to Lambda@Edge's 1 MB. ``"oac"`` leaves the hashing to the browser; ``"none"``
  makes the URLs public (still only advertised through CloudFront);
* the revalidation FIFO queue and its consumer, the tag-cache DynamoDB table and its
  seed (the build's initialisation function, invoked again whenever the build id
  changes), and an optional warmer that pings the server function every 5 minutes;
* a CloudFront distribution whose ordered behaviours are the output's (refused at plan
  time beyond CloudFront's 25 cache behaviours), a server cache policy keyed on
  ``x-open-next-cache-key`` (set by a viewer-request CloudFront Function), compression,
  HTTP/2 and HTTP/3, TLS 1.2 (2021 ciphers) minimum, security response headers (HSTS
  ``preload`` only where the stage's ``hstsPreload`` says so), access logs to CloudWatch
  Logs (on in prod), an optional WAF web ACL, and an invalidation of ``/*`` after the
  new functions and files are live, whenever files, server code or server
  configuration changed;
* the cache and response-headers policies are shared by every site of the stage
  (CloudFront allows 20 of each per account); ``cache_policy_id`` and
  ``response_headers_policy_id`` reuse existing ones instead;
* with ``domain``: an ACM certificate in us-east-1 covering the name, its aliases and
  redirects, and the records through the stage's DNS adapter; redirect hosts answer
  308 to the same path on the main name.

Outputs: ``url`` (the custom domain when set, else the CloudFront domain), ``bucket``,
``distribution_id``. Linking a site gives handlers its ``url``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.aws.asset_sync import AssetSync, AwsAccess, Invalidation, SyncSource
from components.aws.bucket import tls_only_policy
from components.aws.dns import DNS_ROLES, dns_for_stage, validated_certificate
from components.aws.dynamo import Dynamo
from components.aws.function import Function, allow_invoke
from components.aws.opennext import (
    OPENNEXT_VERSION,
    BuildMode,
    BuildSettings,
    OpenNextBuild,
    OpenNextError,
    prepare_build,
)
from components.aws.queue import Queue
from components.core.base import Component, ComponentArgs, ComponentError, validation_message
from components.core.context import App, current_app, forget_at_reset
from components.core.linking import Permission
from components.core.naming import stable_hash

CLOUDFRONT_REGION = "us-east-1"  # CloudFront takes certificates, edge functions and WAF from here
SERVER_RUNTIME = "nodejs22.x"
EDGE_RUNTIME = "nodejs22.x"
# AWS managed policies (fixed ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
READ_METHODS = ["GET", "HEAD", "OPTIONS"]
CACHE_KEY_HEADER = "x-open-next-cache-key"
MAX_CACHE_BEHAVIORS = 25  # per distribution, the default behaviour included (CloudFront quota)
HSTS_MAX_AGE = 63072000  # two years, what the preload list asks for
Protection = Literal["none", "oac", "oac-with-edge-signing"]
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")

# Viewer-request function. Function URLs see their own host, so OpenNext learns the
# site's host from x-forwarded-host; the cache key folds in the headers Next.js varies
# on (RSC payload vs HTML, prefetches) and, for images, the formats the browser takes.
# Hosts in REDIRECTS (e.g. www.) answer a permanent redirect to the main name.
VIEWER_REQUEST_TEMPLATE = """\
import crypto from "crypto";

var VARY = ["rsc", "next-router-prefetch", "next-router-state-tree", "next-url"];
var REDIRECTS = __REDIRECTS__;
var MAIN_HOST = __MAIN_HOST__;

function query(querystring) {
  var parts = [];
  for (var key in querystring) {
    var entry = querystring[key];
    var values = entry.multiValue ? entry.multiValue : [entry];
    for (var i = 0; i < values.length; i++) {
      parts.push(values[i].value === "" ? key : key + "=" + values[i].value);
    }
  }
  return parts.length ? "?" + parts.join("&") : "";
}

function handler(event) {
  var request = event.request;
  var headers = request.headers;
  var host = headers.host ? headers.host.value : "";
  if (REDIRECTS.indexOf(host) >= 0) {
    return {
      statusCode: 308,
      statusDescription: "Permanent Redirect",
      headers: { location: { value: "https://" + MAIN_HOST + request.uri + query(request.querystring) } },
    };
  }
  headers["x-forwarded-host"] = { value: host };
  var parts = [host];
  for (var i = 0; i < VARY.length; i++) {
    parts.push(headers[VARY[i]] ? headers[VARY[i]].value : "");
  }
  if (request.uri.indexOf("/_next/image") === 0) {
    var accept = headers.accept ? headers.accept.value : "";
    parts.push(accept.indexOf("image/avif") >= 0 ? "avif" : accept.indexOf("image/webp") >= 0 ? "webp" : "");
  }
  headers["x-open-next-cache-key"] = { value: crypto.createHash("sha256").update(parts.join("|")).digest("hex") };
  return request;
}
"""

# Lambda@Edge origin-request function. A function URL with AWS_IAM auth behind an origin
# access control accepts a request with a body only when x-amz-content-sha256 carries
# the body's SHA-256 (CloudFront signs the header but does not compute it), so this
# computes it at the edge. CloudFront passes at most 1 MB of body to Lambda@Edge: a
# truncated body cannot be hashed correctly, and is refused with 413 instead of a
# confusing 403 from the origin.
EDGE_SIGNER_CODE = """\
import { createHash } from "node:crypto";

const HEADER = "x-amz-content-sha256";

export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  const body = request.body;
  if (body && body.inputTruncated) {
    return {
      status: "413",
      statusDescription: "Payload Too Large",
      headers: { "content-type": [{ key: "Content-Type", value: "text/plain" }] },
      body: "Request bodies are limited to 1 MB on this site.",
    };
  }
  const encoding = body && body.encoding === "base64" ? "base64" : "utf8";
  const data = body && body.data ? Buffer.from(body.data, encoding) : Buffer.alloc(0);
  request.headers[HEADER] = [{ key: HEADER, value: createHash("sha256").update(data).digest("hex") }];
  return request;
};
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerOptions(_Strict):
    """The server function. Example: ``{"memory": 2048, "architecture": "x86_64"}``."""

    memory: int = Field(1024, ge=128, le=10240, description="MB")
    timeout: int = Field(20, ge=1, le=60, description="seconds; CloudFront waits at most 60")
    architecture: Literal["arm64", "x86_64"] = Field("arm64", description="Lambda architecture")
    layers: list[str] = Field(
        default_factory=list, max_length=5, description="Lambda layer version ARNs (at most 5)"
    )

    @field_validator("layers")
    @classmethod
    def _layer_arns(cls, layers: list[str]) -> list[str]:
        for arn in layers:
            if not _LAYER_ARN.match(arn):
                raise ValueError(
                    f"{arn!r} is not a layer version ARN like "
                    "arn:aws:lambda:eu-west-1:123456789012:layer:name:3"
                )
        return layers


class ImageOptions(_Strict):
    """The image optimisation function. Example: ``{"memory": 2048}``."""

    memory: int = Field(1536, ge=128, le=10240, description="MB")
    timeout: int = Field(25, ge=1, le=60, description="seconds")


class DomainOptions(_Strict):
    """A custom domain. Example: ``{"name": "getreggie.io", "redirects": ["www.getreggie.io"]}``."""

    name: str = Field(description="the site's main host name")
    aliases: list[str] = Field(default_factory=list, description="more names serving the same site")
    redirects: list[str] = Field(
        default_factory=list, description="names answering a permanent redirect to the main name"
    )

    @model_validator(mode="after")
    def _hosts(self) -> DomainOptions:
        hosts = [self.name, *self.aliases, *self.redirects]
        for host in hosts:
            if not _HOST.match(host):
                raise ValueError(f"domain {host!r} must be a lowercase host name like example.com")
        repeated = sorted({h for h in hosts if hosts.count(h) > 1})
        if repeated:
            raise ValueError(f"domain names {', '.join(repeated)} appear more than once")
        return self

    @property
    def hosts(self) -> list[str]:
        """Every name the distribution and its certificate serve."""
        return [self.name, *self.aliases, *self.redirects]


class WafOptions(_Strict):
    """A WAF web ACL in front of the site. Example: ``{"rate_limit": 1000}``."""

    rate_limit: int | None = Field(
        2000, ge=100, le=2_000_000_000, description="requests per IP per 5 minutes; None: no limit"
    )
    managed_rules: list[str] = Field(
        default_factory=lambda: ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"],
        description="AWS managed rule groups (vendor AWS) applied in order",
    )

    @field_validator("managed_rules")
    @classmethod
    def _rule_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.match(r"^AWSManagedRules[A-Za-z0-9]+$", name):
                raise ValueError(f"{name!r} is not an AWS managed rule group name (AWSManagedRules...)")
        return names


class NextjsArgs(ComponentArgs):
    """Arguments of :class:`Nextjs`."""

    path: str = Field(description="the app folder (holding package.json), relative to the project")
    link: list[Any] = Field(default_factory=list, description="linkable components for the server")
    environment: dict[str, Any] = Field(
        default_factory=dict,
        description="variables for the server; plain strings reach the build too (NEXT_PUBLIC_*)",
    )
    domain: str | DomainOptions | None = Field(
        None, description="custom domain (stage.domain_for()), or {name, aliases, redirects}"
    )
    build: BuildMode = Field(
        "auto", description="auto: build when sources changed; always; never: use the existing build"
    )
    build_command: str | None = Field(
        None, description="the app's build command, run by OpenNext instead of `npm run build`"
    )
    opennext_version: str = Field(OPENNEXT_VERSION, description="exact @opennextjs/aws version")
    server: ServerOptions = Field(default_factory=ServerOptions)
    image: ImageOptions = Field(default_factory=ImageOptions)
    warm: int = Field(0, ge=0, le=50, description="server instances kept warm; 0 disables the warmer")
    price_class: str = Field("PriceClass_100", pattern=r"^PriceClass_(100|200|All)$")
    protection: Protection = Field(
        "oac-with-edge-signing",
        description="who may call the function URLs: only CloudFront (oac, with or without "
        "the edge body signer) or anyone (none)",
    )
    wait_for_invalidation: bool = Field(False, description="deploys wait until the cache is cleared")
    cache_policy_id: str | None = Field(None, description="reuse this server cache policy")
    response_headers_policy_id: str | None = Field(None, description="reuse this headers policy")
    access_logs: bool | None = Field(None, description="CloudWatch access logs; default: prod only")
    waf: bool | WafOptions = Field(False, description="True or options: a WAF web ACL")

    @field_validator("domain", mode="before")
    @classmethod
    def _domain(cls, domain: Any) -> Any:
        return {"name": domain} if isinstance(domain, str) else domain

    @field_validator("path")
    @classmethod
    def _inside_project(cls, path: str) -> str:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"path {path!r} must be a folder inside the project, e.g. 'app/web'")
        return path.rstrip("/")

    @property
    def domain_options(self) -> DomainOptions | None:
        assert not isinstance(self.domain, str)  # the validator turns names into options
        return self.domain

    @property
    def waf_options(self) -> WafOptions | None:
        if self.waf is True:
            return WafOptions()
        return self.waf or None


def _offline() -> bool:
    """True under Pulumi mocks (``infra plan``, tests): nothing will be deployed."""
    from pulumi.runtime import mocks, settings

    return isinstance(settings.SETTINGS.monitor, mocks.MockMonitor)


class Nextjs(Component):
    """A Next.js site. See the module docs for what it creates.

    Transformable children: ``assets_bucket``, ``assets_public_access``, ``assets_ownership``,
    ``assets_encryption``, ``assets_policy``, ``initializer_invocation``, ``warmer_rule``,
    ``warmer_target``, ``warmer_permission``, ``s3_access_control``, ``lambda_access_control``,
    ``viewer_function``, ``web_acl``, ``access_log_*``, ``distribution``, ``url_permission``
    and the DNS roles. The functions, the tag-cache table and the revalidation queue are
    components of their own (``<Name>Server``, ``<Name>TagCache``,
    ``<Name>RevalidationQueue``...), with their transforms; the policies and the edge
    signer shared by the stage's sites belong to :class:`SharedSitePolicies`.
    """

    type_token: ClassVar[str] = "harbor:aws:Nextjs"
    sst_type: ClassVar[str] = "sst.aws.Nextjs"
    Args: ClassVar[type[ComponentArgs]] = NextjsArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "assets_bucket", "assets_public_access", "assets_ownership", "assets_encryption",
        "assets_policy", "initializer_invocation",
        "warmer_rule", "warmer_target", "warmer_permission", "s3_access_control",
        "lambda_access_control", "viewer_function", "web_acl", "access_log_group",
        "access_log_source", "access_log_destination", "access_log_delivery",
        "distribution", "url_permission", *DNS_ROLES,
    )

    args: NextjsArgs

    def __init__(
        self,
        name: str,
        args: NextjsArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"Nextjs {name!r}"
        parsed = self.parse_args(owner, args, kwargs)
        # Check the domain and build (or find the build) before registering anything: a
        # broken app stops the program with nothing of this site half-created.
        app = current_app()
        stage = app.stage
        if parsed.domain and dns_for_stage(stage) is None:
            raise ComponentError(
                f"{owner}: domain {parsed.domain_options.name!r} needs the stage's DNS zone to "
                f"validate its certificate; set harbor:domain in Pulumi.{stage.name}.yaml or drop domain="
            )
        settings = _build_settings(owner, parsed)
        try:
            build = prepare_build(Path(parsed.path), parsed.build, offline=_offline(), settings=settings)
        except OpenNextError as error:
            raise OpenNextError(f"{owner}: {error}") from None
        if build is not None:
            behaviours = len(build.output.behaviors)
            if behaviours > MAX_CACHE_BEHAVIORS:
                raise ComponentError(
                    f"{owner}: the build routes {behaviours} paths but a CloudFront distribution "
                    f"takes at most {MAX_CACHE_BEHAVIORS} cache behaviours; move top-level files "
                    f"of {parsed.path}/public into one folder (each top-level entry is a behaviour)"
                )
        super().__init__(name, parsed, opts)
        self.build: OpenNextBuild | None = build
        if build is None:
            note = (
                f"Nextjs {name!r} skipped: {parsed.path} has no node_modules, so the site cannot be "
                f"built here; run `npm ci` in {parsed.path} to plan it (deploys always build)"
            )
            pulumi.log.warn(note, resource=self)
            self.url: pulumi.Output[str] = pulumi.Output.from_input(f"(not built: {note})")
            self.register_outputs({"url": self.url, "skipped": note})
            return
        self._create(build)

    # -- the site ------------------------------------------------------------------------
    def _create(self, build: OpenNextBuild) -> None:
        a = self.args
        output = build.output
        region = self.stage.region
        access = AwsAccess.for_stage(self.stage, region)

        bucket = self._assets_bucket()
        s3_origin = output.s3
        sync = AssetSync(
            f"{self.component_name}-assets",
            bucket=bucket.bucket,
            access=access,
            sources=[
                SyncSource(
                    # Relative to the project, so state is the same on every machine.
                    directory=_relative(build.path(copy.source)),
                    prefix=copy.to,
                    cached=copy.cached,
                    versioned_subdir=copy.versioned_subdir,
                )
                for copy in s3_origin.copy_
            ],
            base=str(Path.cwd()),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket]),
        )

        cache_prefix = next((c.to for c in s3_origin.copy_ if not c.cached), "_cache")
        table = Dynamo(
            f"{self.component_name}TagCache",
            fields={"tag": "string", "path": "string", "revalidatedAt": "number"},
            primary_index={"hash_key": "tag", "range_key": "path"},
            global_indexes={"revalidate": {"hash_key": "path", "range_key": "revalidatedAt"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Next.js asks for a page's regeneration once per path: FIFO deduplicates repeats.
        queue = Queue(
            f"{self.component_name}RevalidationQueue",
            fifo=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

        server_env: dict[str, Any] = {
            **a.environment,
            "CACHE_BUCKET_NAME": bucket.bucket,
            "CACHE_BUCKET_KEY_PREFIX": cache_prefix,
            "CACHE_BUCKET_REGION": region,
            "REVALIDATION_QUEUE_URL": queue.url,
            "REVALIDATION_QUEUE_REGION": region,
            "CACHE_DYNAMO_TABLE": table.name,
            # Ties the server to the upload: a new server (rendering HTML that names the
            # new hashed chunks) goes live only after the sync has put those chunks in S3.
            "HARBOR_ASSETS_VERSION": sync.files_hash.apply(lambda h: h[:16]),
        }
        bucket_arn = bucket.arn
        server_grants = [
            Permission(
                ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
                [bucket_arn.apply(lambda arn: f"{arn}/{cache_prefix}/*")],
            ),
            Permission(("s3:ListBucket",), [bucket_arn]),
            Permission(("sqs:SendMessage", "sqs:GetQueueAttributes"), [queue.arn]),
            Permission(
                ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem",
                 "dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:DescribeTable"),
                [table.arn, table.arn.apply(lambda arn: f"{arn}/index/*")],
            ),
        ]
        server_origin = output.server
        url_config = {"auth": "none" if a.protection == "none" else "iam"}
        server = self._function(
            "Server",
            build,
            server_origin.bundle,
            server_origin.handler,
            memory=a.server.memory,
            timeout=a.server.timeout,
            architecture=a.server.architecture,
            layers=a.server.layers,
            environment=server_env,
            link=a.link,
            permissions=server_grants,
            url=url_config,
            streaming=server_origin.streaming,
            description=f"{self.component_name} Next.js server",
        )
        functions: dict[str, Function] = {"default": server}
        for origin_name, origin in output.function_origins.items():
            if origin_name == "default":
                continue
            if origin_name != "imageOptimizer":
                raise self.fail(
                    f"the build has a function origin {origin_name!r} (split server functions), "
                    "which this component does not deploy yet; keep one server function"
                )
            assets_prefix = s3_origin.origin_path.strip("/")
            functions[origin_name] = self._function(
                "ImageOptimizer",
                build,
                origin.bundle,
                origin.handler,
                memory=a.image.memory,
                timeout=a.image.timeout,
                environment={"BUCKET_NAME": bucket.bucket, "BUCKET_KEY_PREFIX": assets_prefix},
                permissions=[
                    Permission(("s3:GetObject",), [bucket_arn.apply(lambda arn, p=assets_prefix: f"{arn}/{p}/*")])
                ],
                url=url_config,
                streaming=origin.streaming,
                description=f"{self.component_name} image optimisation",
            )

        extras = output.additional_props
        if extras.revalidation_function is not None:
            consumer = self._function(
                "Revalidation",
                build,
                extras.revalidation_function.bundle,
                extras.revalidation_function.handler,
                memory=512,
                timeout=30,
                description=f"{self.component_name} ISR revalidation",
            )
            # The consumer throws on failure rather than reporting single messages.
            queue.subscribe(consumer, batch_size=5, partial_batch_responses=False)
        if extras.initialization_function is not None:
            initializer = self._function(
                "Initializer",
                build,
                extras.initialization_function.bundle,
                extras.initialization_function.handler,
                memory=1536,
                timeout=900,
                environment={"CACHE_DYNAMO_TABLE": table.name},
                permissions=[
                    Permission(
                        ("dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DescribeTable"),
                        [table.arn],
                    )
                ],
                description=f"{self.component_name} tag cache seed",
            )
            # The seed's keys carry the build id (OpenNext writes tags per build), so it runs
            # again whenever the deployed build changes, and for a new table.
            self.child(
                "initializer_invocation",
                aws.lambda_.Invocation,
                {
                    "function_name": initializer.name,
                    "input": json.dumps({"requestType": "create"}),
                    "triggers": {"buildId": build.build_id, "table": table.name},
                },
                opts=pulumi.ResourceOptions(depends_on=[table, initializer]),
            )
        if a.warm and extras.warmer is not None:
            self._warmer(build, server, extras.warmer.bundle, extras.warmer.handler)

        distribution = self._distribution(build, bucket, functions)
        self._grant_cloudfront(bucket, functions, distribution)
        self._access_logs(distribution)
        # After the new files and the new functions are live (an edge must not re-cache the
        # old server's HTML), whenever anything that shapes a response changed: the files,
        # or a function's code or configuration (environment, links, sizing).
        function_resources = [f.function for f in functions.values()]
        Invalidation(
            f"{self.component_name}-invalidation",
            distribution_id=distribution.id,
            access=access,
            version=pulumi.Output.all(
                sync.files_hash, *[_response_fingerprint(f) for f in function_resources]
            ).apply(lambda parts: stable_hash("/".join(parts), 32)),
            wait=a.wait_for_invalidation,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[sync, distribution, *functions.values(), *function_resources],
            ),
        )
        domain = a.domain_options
        if domain:
            dns = dns_for_stage(self.stage)
            assert dns is not None  # checked in __init__
            for index, host in enumerate(domain.hosts):
                key = "site" if index == 0 else f"site-{index}"
                dns.alias(self, key, host, distribution.domain_name, distribution.hosted_zone_id)

        self.bucket: pulumi.Output[str] = bucket.bucket
        self.distribution_id: pulumi.Output[str] = distribution.id
        self.server = server
        self.url = (
            pulumi.Output.from_input(f"https://{domain.name}")
            if domain
            else distribution.domain_name.apply(lambda d: f"https://{d}")
        )
        self.register_outputs({"url": self.url, "bucket": self.bucket, "distributionId": self.distribution_id})

    def _assets_bucket(self) -> aws.s3.Bucket:
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        region = self.stage.region
        # The stage's removal policy applies as to any bucket (prod keeps it); force_destroy
        # lets a removing stage's destroy empty it, since its files are rebuilt from source.
        bucket = self.child(
            "assets_bucket",
            aws.s3.Bucket,
            {
                "bucket": account.account_id.apply(
                    lambda acct: self.physical_name("s3.bucket", suffix="-assets-" + stable_hash(f"{acct}/{region}"))
                ),
                "force_destroy": True,
            },
        )
        self.child(
            "assets_public_access",
            aws.s3.BucketPublicAccessBlock,
            {"bucket": bucket.id, "block_public_acls": True, "block_public_policy": True,
             "ignore_public_acls": True, "restrict_public_buckets": True},
        )
        self.child(
            "assets_ownership",
            aws.s3.BucketOwnershipControls,
            {"bucket": bucket.id, "rule": {"object_ownership": "BucketOwnerEnforced"}},
        )
        self.child(
            "assets_encryption",
            aws.s3.BucketServerSideEncryptionConfiguration,
            {"bucket": bucket.id,
             "rules": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]},
        )
        return bucket

    def _function(
        self,
        role: str,
        build: OpenNextBuild,
        bundle: str,
        handler: str,
        *,
        memory: int,
        timeout: int,
        architecture: str = "arm64",
        layers: Sequence[str] = (),
        environment: Mapping[str, Any] | None = None,
        link: Sequence[Any] = (),
        permissions: Sequence[Permission] = (),
        url: Mapping[str, str] | None = None,
        streaming: bool = False,
        description: str,
    ) -> Function:
        relative = _relative(build.path(bundle))
        if relative.startswith(".."):
            raise self.fail(f"bundle {build.path(bundle)} is outside the project folder {Path.cwd()}")
        module, _, export = handler.rpartition(".")
        arguments: dict[str, Any] = {
            "handler": f"{Path(relative).as_posix()}/{module}.{export}",
            "runtime": SERVER_RUNTIME,
            "architecture": architecture,
            "memory": memory,
            "timeout": timeout,
            "link": list(link),
            "permissions": list(permissions),
            "description": description,
        }
        if environment is not None:
            arguments["environment"] = dict(environment)
        transform: dict[str, Any] = {}
        if layers:
            transform["function"] = {"layers": list(layers)}
        if url is not None:
            arguments["url"] = dict(url)
            if streaming:
                transform["url"] = {"invoke_mode": "RESPONSE_STREAM"}
        if transform:
            arguments["transform"] = transform
        return Function(f"{self.component_name}{role}", arguments, opts=pulumi.ResourceOptions(parent=self))

    def _warmer(self, build: OpenNextBuild, server: Function, bundle: str, handler: str) -> None:
        warmer = self._function(
            "Warmer",
            build,
            bundle,
            handler,
            memory=128,
            timeout=60,
            environment={
                "WARM_PARAMS": server.name.apply(
                    lambda fn: json.dumps([{"concurrency": self.args.warm, "function": fn}])
                )
            },
            permissions=[Permission(("lambda:InvokeFunction",), [server.arn])],
            description=f"{self.component_name} warmer",
        )
        rule = self.child(
            "warmer_rule",
            aws.cloudwatch.EventRule,
            {"name": self.physical_name("events.rule", suffix="-warmer"),
             "schedule_expression": "rate(5 minutes)"},
        )
        self.child("warmer_target", aws.cloudwatch.EventTarget, {"rule": rule.name, "arn": warmer.arn})
        allow_invoke(self, warmer, "events.amazonaws.com", rule.arn, role="warmer_permission")

    def _distribution(
        self, build: OpenNextBuild, bucket: aws.s3.Bucket, functions: Mapping[str, Function]
    ) -> aws.cloudfront.Distribution:
        a = self.args
        output = build.output
        shared = SharedSitePolicies.for_app(self.app)
        s3_access = self.child(
            "s3_access_control",
            aws.cloudfront.OriginAccessControl,
            {"name": self.physical_name("generic", suffix="-s3"),
             "description": f"{self.component_name} assets bucket",
             "origin_access_control_origin_type": "s3",
             "signing_behavior": "always", "signing_protocol": "sigv4"},
        )
        lambda_access = None
        if a.protection != "none":
            lambda_access = self.child(
                "lambda_access_control",
                aws.cloudfront.OriginAccessControl,
                {"name": self.physical_name("generic", suffix="-lambda"),
                 "description": f"{self.component_name} function URLs",
                 "origin_access_control_origin_type": "lambda",
                 "signing_behavior": "always", "signing_protocol": "sigv4"},
            )
        cache_policy_id = a.cache_policy_id or shared.cache_policy().id
        headers_policy_id = a.response_headers_policy_id or shared.headers_policy().id
        edge_signer = shared.edge_signer() if a.protection == "oac-with-edge-signing" else None
        domain = a.domain_options
        viewer = self.child(
            "viewer_function",
            aws.cloudfront.Function,
            {
                "name": self.physical_name("generic", suffix="-viewer"),
                "runtime": "cloudfront-js-2.0",
                "comment": "x-forwarded-host, the OpenNext cache key, redirects",
                "code": viewer_request_code(domain),
                "publish": True,
            },
        )

        origins: list[dict[str, Any]] = [
            {
                "origin_id": "s3",
                "domain_name": bucket.bucket_regional_domain_name,
                "origin_path": "/" + output.s3.origin_path.strip("/"),
                "origin_access_control_id": s3_access.id,
            }
        ]
        for origin_name, function in functions.items():
            assert function.url is not None
            origin: dict[str, Any] = {
                "origin_id": origin_name,
                "domain_name": function.url.apply(lambda u: u.removeprefix("https://").rstrip("/")),
                "custom_origin_config": {
                    "http_port": 80,
                    "https_port": 443,
                    "origin_protocol_policy": "https-only",
                    "origin_ssl_protocols": ["TLSv1.2"],
                    "origin_read_timeout": 60,
                },
            }
            if lambda_access is not None:
                origin["origin_access_control_id"] = lambda_access.id
            origins.append(origin)

        def behavior(target: str, pattern: str | None) -> dict[str, Any]:
            spec: dict[str, Any] = {
                "target_origin_id": target,
                "viewer_protocol_policy": "redirect-to-https",
                "compress": True,
                "response_headers_policy_id": headers_policy_id,
            }
            if pattern is not None:
                spec["path_pattern"] = pattern
            if target == "s3":
                spec.update(allowed_methods=READ_METHODS, cached_methods=["GET", "HEAD"],
                            cache_policy_id=CACHING_OPTIMIZED)
            else:
                spec.update(
                    allowed_methods=ALL_METHODS,
                    cached_methods=["GET", "HEAD"],
                    cache_policy_id=cache_policy_id,
                    origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST,
                    function_associations=[{"event_type": "viewer-request", "function_arn": viewer.arn}],
                )
                if edge_signer is not None:
                    spec["lambda_function_associations"] = [
                        {"event_type": "origin-request", "lambda_arn": edge_signer.qualified_arn,
                         "include_body": True}
                    ]
            return spec

        default = next((b for b in output.behaviors if b.pattern == "*"), None)
        ordered = [behavior(b.origin, b.pattern) for b in output.behaviors if b.pattern != "*"]
        certificate = None
        if domain:
            certificate = validated_certificate(
                self, "site", domain.name, domain.hosts[1:], region=CLOUDFRONT_REGION
            )
        web_acl = self._web_acl()
        return self.child(
            "distribution",
            aws.cloudfront.Distribution,
            {
                "enabled": True,
                "comment": f"{self.app.name} {self.stage.name} {self.component_name}",
                "aliases": domain.hosts if domain else None,
                "http_version": "http2and3",
                "is_ipv6_enabled": True,
                "price_class": a.price_class,
                "origins": origins,
                "default_cache_behavior": behavior(default.origin if default else "default", None),
                "ordered_cache_behaviors": ordered,
                "restrictions": {"geo_restriction": {"restriction_type": "none"}},
                "viewer_certificate": (
                    {"acm_certificate_arn": certificate, "ssl_support_method": "sni-only",
                     "minimum_protocol_version": "TLSv1.2_2021"}
                    if certificate is not None
                    else {"cloudfront_default_certificate": True}
                ),
                "web_acl_id": web_acl.arn if web_acl is not None else None,
                # The invalidation and the next deploy's stale-file cleanup rely on the
                # new version being served when this resource reports done.
                "wait_for_deployment": True,
            },
        )

    def _web_acl(self) -> aws.wafv2.WebAcl | None:
        """A CloudFront-scope web ACL (it lives in us-east-1): managed rules, then a rate limit."""
        options = self.args.waf_options
        if options is None:
            return None

        def visibility(metric: str) -> dict[str, Any]:
            return {"cloudwatch_metrics_enabled": True, "metric_name": metric,
                    "sampled_requests_enabled": True}

        rules: list[dict[str, Any]] = [
            {
                "name": rule,
                "priority": index,
                "override_action": {"none": {}},
                "statement": {"managed_rule_group_statement": {"name": rule, "vendor_name": "AWS"}},
                "visibility_config": visibility(rule),
            }
            for index, rule in enumerate(options.managed_rules)
        ]
        if options.rate_limit is not None:
            rules.append(
                {
                    "name": "RateLimitPerIp",
                    "priority": len(rules),
                    "action": {"block": {}},
                    "statement": {"rate_based_statement": {"limit": options.rate_limit,
                                                           "aggregate_key_type": "IP"}},
                    "visibility_config": visibility("RateLimitPerIp"),
                }
            )
        name = self.physical_name("generic", suffix="-waf")
        return self.child(
            "web_acl",
            aws.wafv2.WebAcl,
            {"name": name, "scope": "CLOUDFRONT", "default_action": {"allow": {}},
             "rules": rules, "visibility_config": visibility(name)},
            opts=pulumi.ResourceOptions(provider=self.app.provider_for(CLOUDFRONT_REGION)),
        )

    def _access_logs(self, distribution: aws.cloudfront.Distribution) -> None:
        """Standard logging (v2) of every request to a CloudWatch log group in us-east-1.

        v2 delivery needs no ACL-enabled bucket (the stage's buckets enforce bucket-owner
        ownership, which the legacy S3 logging cannot write to).
        """
        enabled = self.args.access_logs
        if enabled is None:
            enabled = self.stage.is_production
        if not enabled:
            return
        provider = pulumi.ResourceOptions(provider=self.app.provider_for(CLOUDFRONT_REGION))
        name = self.physical_name("generic", suffix="-access")
        group = self.child(
            "access_log_group",
            aws.cloudwatch.LogGroup,
            {"name": f"/aws/cloudfront/{name}", "retention_in_days": self.stage.log_retention_days},
            opts=provider,
        )
        source = self.child(
            "access_log_source",
            aws.cloudwatch.LogDeliverySource,
            {"name": name, "log_type": "ACCESS_LOGS", "resource_arn": distribution.arn},
            opts=provider,
        )
        destination = self.child(
            "access_log_destination",
            aws.cloudwatch.LogDeliveryDestination,
            {"name": name, "output_format": "json",
             "delivery_destination_configuration": {"destination_resource_arn": group.arn}},
            opts=provider,
        )
        self.child(
            "access_log_delivery",
            aws.cloudwatch.LogDelivery,
            {"delivery_source_name": source.name, "delivery_destination_arn": destination.arn},
            opts=provider,
        )

    def _grant_cloudfront(
        self,
        bucket: aws.s3.Bucket,
        functions: Mapping[str, Function],
        distribution: aws.cloudfront.Distribution,
    ) -> None:
        assets = "/" + (self.build.output.s3.origin_path.strip("/") if self.build else "_assets")
        self.child(
            "assets_policy",
            aws.s3.BucketPolicy,
            {
                "bucket": bucket.id,
                "policy": pulumi.Output.all(bucket.arn, distribution.arn).apply(
                    lambda parts: _assets_policy(parts[0], parts[1], assets)
                ),
            },
        )
        if self.args.protection == "none":
            return
        for origin_name, function in functions.items():
            # Function URLs with AWS_IAM need both grants since AWS's 2025 change.
            for action in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction"):
                self.child(
                    "url_permission",
                    aws.lambda_.Permission,
                    {"action": action, "function": function.name,
                     "principal": "cloudfront.amazonaws.com", "source_arn": distribution.arn},
                    key=f"{origin_name}-{action.split(':')[1]}",
                )

    # -- Linkable ----------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"url": self.url}

    def link_permissions(self) -> Sequence[Permission]:
        return []


class SharedSitePolicies(Component):
    """What every Next.js site of a stage shares, created once, on first use.

    * the server cache policy (keyed on ``x-open-next-cache-key``) and the security
      response-headers policy: CloudFront allows 20 of each per account, so two sites
      in each of a few stages would otherwise run out;
    * the Lambda@Edge body signer for ``protection="oac-with-edge-signing"`` (us-east-1,
      x86_64, 128 MB, 5 s). Lambda@Edge replicas outlive the distribution by up to hours,
      during which Lambda refuses the delete: ``skip_destroy`` leaves the function when
      the stage is removed instead of failing the destroy, and Pulumi's generated name
      lets a later deploy create a new one next to it.

    Example::

        shared = SharedSitePolicies.for_app(current_app())
        shared.cache_policy().id
    """

    type_token: ClassVar[str] = "harbor:aws:NextjsShared"
    transformable: ClassVar[tuple[str, ...]] = (
        "cache_policy", "headers_policy", "edge_signer_role", "edge_signer_log_group", "edge_signer_logs",
        "edge_signer",
    )
    _instances: ClassVar[dict[int, tuple[App, SharedSitePolicies]]] = {}

    def __init__(self, name: str, args: Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        self._made: dict[str, Any] = {}
        self.register_outputs({})

    @classmethod
    def for_app(cls, app: App) -> SharedSitePolicies:
        """The stage's instance, created by the first site that asks."""
        known = cls._instances.get(id(app))
        if known is None or known[0] is not app:
            known = (app, cls("NextjsShared"))
            cls._instances[id(app)] = known
        return known[1]

    @classmethod
    def forget(cls) -> None:
        """Drop every stage's instance: the program run that made them is over."""
        cls._instances.clear()

    def _once(self, role: str, make: Any) -> Any:
        if role not in self._made:
            self._made[role] = make()
        return self._made[role]

    def cache_policy(self) -> aws.cloudfront.CachePolicy:
        """Server responses: cached per OpenNext cache key and query, never by cookie."""
        return self._once("cache_policy", lambda: self.child(
            "cache_policy",
            aws.cloudfront.CachePolicy,
            {
                "name": self.physical_name("cloudfront.policy", suffix="-nextjs-server", name="sites"),
                "comment": "Next.js sites: OpenNext server responses",
                "min_ttl": 0,
                "default_ttl": 0,
                "max_ttl": 31536000,
                "parameters_in_cache_key_and_forwarded_to_origin": {
                    "cookies_config": {"cookie_behavior": "none"},
                    "headers_config": {
                        "header_behavior": "whitelist",
                        "headers": {"items": [CACHE_KEY_HEADER]},
                    },
                    "query_strings_config": {"query_string_behavior": "all"},
                    "enable_accept_encoding_brotli": True,
                    "enable_accept_encoding_gzip": True,
                },
            },
        ))

    def headers_policy(self) -> aws.cloudfront.ResponseHeadersPolicy:
        """Security headers; HSTS ``preload`` only when the stage opts in (``hstsPreload``)."""
        return self._once("headers_policy", lambda: self.child(
            "headers_policy",
            aws.cloudfront.ResponseHeadersPolicy,
            {
                "name": self.physical_name("cloudfront.policy", suffix="-nextjs-headers", name="sites"),
                "comment": "Next.js sites: security headers",
                "security_headers_config": {
                    "strict_transport_security": {
                        "access_control_max_age_sec": HSTS_MAX_AGE,
                        "include_subdomains": True,
                        "preload": bool(getattr(self.stage, "hsts_preload", False)),
                        "override": True,
                    },
                    "content_type_options": {"override": True},
                    "frame_options": {"frame_option": "SAMEORIGIN", "override": True},
                    "referrer_policy": {
                        "referrer_policy": "strict-origin-when-cross-origin",
                        "override": True,
                    },
                    "xss_protection": {"protection": True, "mode_block": True, "override": True},
                },
            },
        ))

    def edge_signer(self) -> aws.lambda_.Function:
        """The Lambda@Edge origin-request function that hashes request bodies."""
        return self._once("edge_signer", self._edge_signer)

    def _edge_signer(self) -> aws.lambda_.Function:
        edge = pulumi.ResourceOptions(provider=self.app.provider_for(CLOUDFRONT_REGION))
        role = self.child(
            "edge_signer_role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role", suffix="-edge-signer", name="sites"),
                "assume_role_policy": json.dumps({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]},
                        "Action": "sts:AssumeRole",
                    }],
                }),
            },
            opts=edge,
        )
        # Replicas log to a group of this name in whichever region served the request; the
        # stack manages (and sets the retention of) the one in us-east-1.
        group = self.child(
            "edge_signer_log_group",
            aws.cloudwatch.LogGroup,
            {"name": "/aws/lambda/" + self.physical_name("lambda.function", suffix="-edge-signer", name="sites"),
             "retention_in_days": self.stage.log_retention_days},
            opts=edge,
        )
        logs = self.child(
            "edge_signer_logs",
            aws.iam.RolePolicyAttachment,
            {"role": role.name,
             "policy_arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
            opts=edge,
        )
        return self.child(
            "edge_signer",
            aws.lambda_.Function,
            {
                "description": f"{self.app.name} {self.stage.name}: x-amz-content-sha256 for function URLs",
                "runtime": EDGE_RUNTIME,
                "architectures": ["x86_64"],  # the only architecture Lambda@Edge runs
                "handler": "index.handler",
                "memory_size": 128,
                "timeout": 5,
                "role": role.arn,
                "code": pulumi.AssetArchive({"index.mjs": pulumi.StringAsset(EDGE_SIGNER_CODE)}),
                "publish": True,  # CloudFront takes a numbered version only
                "skip_destroy": True,
                "logging_config": {"log_format": "Text", "log_group": group.name},
            },
            opts=pulumi.ResourceOptions.merge(edge, pulumi.ResourceOptions(depends_on=[logs, group])),
        )


def viewer_request_code(domain: DomainOptions | None) -> str:
    """The viewer-request CloudFront Function for a site with ``domain``."""
    redirects = domain.redirects if domain else []
    main = domain.name if domain else ""
    return VIEWER_REQUEST_TEMPLATE.replace("__REDIRECTS__", json.dumps(redirects)).replace(
        "__MAIN_HOST__", json.dumps(main)
    )


forget_at_reset(SharedSitePolicies.forget)


def _build_settings(owner: str, args: NextjsArgs) -> BuildSettings:
    """The build's settings; a public value that is not a plain string stops the plan."""
    environment: dict[str, str] = {}
    for name, value in args.environment.items():
        if isinstance(value, str):
            environment[name] = value
        elif name.startswith("NEXT_PUBLIC_"):
            raise ComponentError(
                f"{owner}: environment {name} is not a plain string (an Output known only after "
                "a deploy?), but NEXT_PUBLIC_ values are compiled into the browser bundle at build "
                "time; pass a value known when planning, e.g. the custom domain as a string"
            )
    try:
        return BuildSettings(
            environment=environment, command=args.build_command, opennext_version=args.opennext_version
        )
    except ValidationError as error:
        raise ComponentError(validation_message(owner, error)) from None


def _response_fingerprint(function: aws.lambda_.Function) -> pulumi.Output[str]:
    """A hash of what shapes a function's responses: its code and its configuration."""
    parts = pulumi.Output.all(
        function.source_code_hash, function.environment, function.handler, function.runtime,
        function.memory_size, function.timeout, function.architectures, function.layers,
    )
    return parts.apply(lambda values: stable_hash(json.dumps(values, sort_keys=True, default=_plain), 32))


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else str(value)


def _relative(path: Path) -> str:
    return Path(os.path.relpath(path, Path.cwd())).as_posix()


def _assets_policy(bucket_arn: str, distribution_arn: str, prefix: str) -> str:
    """TLS only, and reads of the served prefix by this distribution alone."""
    policy = json.loads(tls_only_policy(bucket_arn))
    policy["Statement"].append(
        {
            "Sid": "CloudFrontReadsAssets",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}{prefix}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
        }
    )
    return json.dumps(policy)
