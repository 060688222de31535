"""Nextjs: a Next.js app on S3, Lambda and CloudFront, built with OpenNext.

Example (seed 000's site and seed 002's admin)::

    web = Nextjs(
        "Web",
        path="app/web",
        link=[table],                                  # `import { Resource } from "sst"` works
        environment={"API_URL": api.url},
        domain=app.stage.domain_for(),                 # getreggie.io in prod, dev.getreggie.io
    )
    Nextjs("Admin", path="app/admin", domain=app.stage.domain_for("admin"))

What it builds, from ``.open-next/open-next.output.json`` (see ``components.opennext``):

* a private assets bucket (all public access blocked, encrypted, TLS only) that only
  this distribution can read, through an S3 origin access control; the build's files
  synced by one :class:`~components.asset_sync.AssetSync` resource (changed files only,
  hashed ``_next/static`` immutable for a year, the rest revalidated, stale files
  deleted one deploy late);
* the server function (arm64, Node.js 22, response streaming when the output says so)
  and the image optimisation function (sharp's linux-arm64 build comes from the
  OpenNext build, installed from npm), both behind function URLs with ``AWS_IAM`` auth
  that CloudFront signs through a Lambda origin access control: nobody else can call them;
* the revalidation FIFO queue and its consumer, the tag-cache DynamoDB table and its
  initial data (the build's initialisation function, invoked once per build), and an
  optional warmer that pings the server function every 5 minutes;
* a CloudFront distribution whose ordered behaviours are the output's behaviours,
  a server cache policy keyed on ``x-open-next-cache-key`` (set by a viewer-request
  CloudFront Function), compression, HTTP/2 and HTTP/3, TLS 1.2 (2021 ciphers) minimum,
  security response headers, and an invalidation whenever the build changed;
* with ``domain``: an ACM certificate in us-east-1 and the records through the stage's
  DNS adapter.

Limitation, by design: CloudFront signs requests to a Lambda function URL but cannot
hash a request body for the viewer, so POST/PUT bodies (server actions, route handlers
taking a body) need the browser to send ``x-amz-content-sha256``. Sites that rely on
them set ``protect_functions=False`` (public function URLs, still only advertised
through CloudFront).

Outputs: ``url`` (the custom domain when set, else the CloudFront domain), ``bucket``,
``distribution_id``. Linking a site gives handlers its ``url``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.asset_sync import AssetSync, Invalidation, SyncSource
from components.base import Component, ComponentArgs, ComponentError
from components.bucket import tls_only_policy
from components.context import current_app
from components.dns import DNS_ROLES, dns_for_stage, validated_certificate
from components.dynamo import Dynamo
from components.function import Function
from components.linking import Permission
from components.naming import stable_hash
from components.opennext import BuildMode, OpenNextBuild, OpenNextError, prepare_build
from components.queue import Queue

CLOUDFRONT_REGION = "us-east-1"  # CloudFront only takes certificates from here
SERVER_RUNTIME = "nodejs22.x"
# AWS managed policies (fixed ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
READ_METHODS = ["GET", "HEAD", "OPTIONS"]
CACHE_KEY_HEADER = "x-open-next-cache-key"

# Viewer-request function. Function URLs see their own host, so OpenNext learns the
# site's host from x-forwarded-host; the cache key folds in the headers Next.js varies
# on (RSC payload vs HTML, prefetches) and, for images, the formats the browser takes.
VIEWER_REQUEST_CODE = """\
import crypto from "crypto";

var VARY = ["rsc", "next-router-prefetch", "next-router-state-tree", "next-url"];

function handler(event) {
  var request = event.request;
  var headers = request.headers;
  var host = headers.host ? headers.host.value : "";
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerOptions(_Strict):
    """Sizing of the server function."""

    memory: int = Field(1024, ge=128, le=10240, description="MB")
    timeout: int = Field(20, ge=1, le=60, description="seconds; CloudFront waits at most 60")


class NextjsArgs(ComponentArgs):
    """Arguments of :class:`Nextjs`."""

    path: str = Field(description="the app folder (holding package.json), relative to the project")
    link: list[Any] = Field(default_factory=list, description="linkable components for the server")
    environment: dict[str, Any] = Field(
        default_factory=dict, description="server environment variables (strings or Outputs)"
    )
    domain: str | None = Field(None, description="custom domain, e.g. stage.domain_for()")
    build: BuildMode = Field(
        "auto", description="auto: build when sources changed; always; never: use the existing build"
    )
    server: ServerOptions = Field(default_factory=ServerOptions)
    image_memory: int = Field(1536, ge=128, le=10240, description="MB for image optimisation")
    warm: int = Field(0, ge=0, le=50, description="server instances kept warm; 0 disables the warmer")
    price_class: str = Field("PriceClass_100", pattern=r"^PriceClass_(100|200|All)$")
    protect_functions: bool = Field(
        True, description="function URLs accept only CloudFront's signed requests (AWS_IAM + OAC)"
    )
    wait_for_invalidation: bool = Field(False, description="deploys wait until the cache is cleared")

    @field_validator("domain")
    @classmethod
    def _domain(cls, domain: str | None) -> str | None:
        if domain is not None and (domain != domain.lower() or "." not in domain or domain.endswith(".")):
            raise ValueError(f"domain {domain!r} must be a lowercase host name like example.com")
        return domain

    @field_validator("path")
    @classmethod
    def _inside_project(cls, path: str) -> str:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"path {path!r} must be a folder inside the project, e.g. 'app/web'")
        return path.rstrip("/")


def _offline() -> bool:
    """True under Pulumi mocks (``infra plan``, tests): nothing will be deployed."""
    from pulumi.runtime import mocks, settings

    return isinstance(settings.SETTINGS.monitor, mocks.MockMonitor)


class Nextjs(Component):
    """A Next.js site. See the module docs for what it creates.

    Transformable children: ``assets_bucket``, ``assets_public_access``, ``assets_ownership``,
    ``assets_encryption``, ``assets_policy``, ``initializer_invocation``, ``warmer_rule``,
    ``warmer_target``, ``warmer_permission``,
    ``s3_access_control``, ``lambda_access_control``, ``cache_policy``, ``headers_policy``,
    ``viewer_function``, ``distribution``, ``url_permission`` and the DNS roles. The
    functions, the tag-cache table and the revalidation queue are components of their own
    (``<Name>Server``, ``<Name>TagCache``, ``<Name>RevalidationQueue``...), with their transforms.
    """

    type_token: ClassVar[str] = "harbor:aws:Nextjs"
    sst_type: ClassVar[str] = "sst.aws.Nextjs"
    Args: ClassVar[type[ComponentArgs]] = NextjsArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "assets_bucket", "assets_public_access", "assets_ownership", "assets_encryption",
        "assets_policy", "initializer_invocation",
        "warmer_rule", "warmer_target", "warmer_permission", "s3_access_control",
        "lambda_access_control", "cache_policy", "headers_policy", "viewer_function",
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
        stage = current_app().stage
        if parsed.domain and dns_for_stage(stage) is None:
            raise ComponentError(
                f"{owner}: domain {parsed.domain!r} needs the stage's DNS zone to validate its "
                f"certificate; set harbor:domain in Pulumi.{stage.name}.yaml or drop domain="
            )
        try:
            build = prepare_build(Path(parsed.path), parsed.build, offline=_offline())
        except OpenNextError as error:
            raise OpenNextError(f"{owner}: {error}") from None
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

        bucket = self._assets_bucket()
        s3_origin = output.s3
        sync = AssetSync(
            f"{self.component_name}-assets",
            bucket=bucket.bucket,
            region=region,
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
        url_config = {"auth": "iam" if a.protect_functions else "none"}
        server = self._function(
            "Server",
            build,
            server_origin.bundle,
            server_origin.handler,
            memory=a.server.memory,
            timeout=a.server.timeout,
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
                memory=a.image_memory,
                timeout=25,
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
            # Seeds the tag cache with this build's tags; re-run whenever the build changes.
            self.child(
                "initializer_invocation",
                aws.lambda_.Invocation,
                {
                    "function_name": initializer.name,
                    "input": json.dumps({"requestType": "create"}),
                    "triggers": {"build": build.source_hash},
                },
                opts=pulumi.ResourceOptions(depends_on=[table, initializer]),
            )
        if a.warm and extras.warmer is not None:
            self._warmer(build, server, extras.warmer.bundle, extras.warmer.handler)

        distribution = self._distribution(build, bucket, functions)
        self._grant_cloudfront(bucket, functions, distribution)
        Invalidation(
            f"{self.component_name}-invalidation",
            distribution_id=distribution.id,
            # The source hash covers pages rendered by the server as well as the files.
            version=pulumi.Output.all(sync.files_hash, build.source_hash).apply(
                lambda parts: stable_hash("/".join(parts), 32)
            ),
            wait=a.wait_for_invalidation,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sync, distribution]),
        )
        if a.domain:
            dns = dns_for_stage(self.stage)
            assert dns is not None  # checked in __init__
            dns.alias(self, "site", a.domain, distribution.domain_name, distribution.hosted_zone_id)

        self.bucket: pulumi.Output[str] = bucket.bucket
        self.distribution_id: pulumi.Output[str] = distribution.id
        self.server = server
        self.url = (
            pulumi.Output.from_input(f"https://{a.domain}")
            if a.domain
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
            "architecture": "arm64",
            "memory": memory,
            "timeout": timeout,
            "link": list(link),
            "permissions": list(permissions),
            "description": description,
        }
        if environment is not None:
            arguments["environment"] = dict(environment)
        if url is not None:
            arguments["url"] = dict(url)
            if streaming:
                arguments["transform"] = {"url": {"invoke_mode": "RESPONSE_STREAM"}}
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
        self.child(
            "warmer_permission",
            aws.lambda_.Permission,
            {"action": "lambda:InvokeFunction", "function": warmer.name,
             "principal": "events.amazonaws.com", "source_arn": rule.arn},
        )

    def _distribution(
        self, build: OpenNextBuild, bucket: aws.s3.Bucket, functions: Mapping[str, Function]
    ) -> aws.cloudfront.Distribution:
        a = self.args
        output = build.output
        s3_access = self.child(
            "s3_access_control",
            aws.cloudfront.OriginAccessControl,
            {"name": self.physical_name("generic", suffix="-s3"),
             "description": f"{self.component_name} assets bucket",
             "origin_access_control_origin_type": "s3",
             "signing_behavior": "always", "signing_protocol": "sigv4"},
        )
        lambda_access = None
        if a.protect_functions:
            lambda_access = self.child(
                "lambda_access_control",
                aws.cloudfront.OriginAccessControl,
                {"name": self.physical_name("generic", suffix="-lambda"),
                 "description": f"{self.component_name} function URLs",
                 "origin_access_control_origin_type": "lambda",
                 "signing_behavior": "always", "signing_protocol": "sigv4"},
            )
        cache_policy = self.child(
            "cache_policy",
            aws.cloudfront.CachePolicy,
            {
                "name": self.physical_name("cloudfront.policy", suffix="-server"),
                "comment": f"{self.component_name}: OpenNext server responses",
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
        )
        headers_policy = self.child(
            "headers_policy",
            aws.cloudfront.ResponseHeadersPolicy,
            {
                "name": self.physical_name("cloudfront.policy", suffix="-headers"),
                "comment": f"{self.component_name}: security headers",
                "security_headers_config": {
                    "strict_transport_security": {
                        "access_control_max_age_sec": 63072000,
                        "include_subdomains": True,
                        "preload": True,
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
        )
        viewer = self.child(
            "viewer_function",
            aws.cloudfront.Function,
            {
                "name": self.physical_name("generic", suffix="-viewer"),
                "runtime": "cloudfront-js-2.0",
                "comment": "x-forwarded-host and the OpenNext cache key",
                "code": VIEWER_REQUEST_CODE,
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
                "response_headers_policy_id": headers_policy.id,
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
                    cache_policy_id=cache_policy.id,
                    origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST,
                    function_associations=[{"event_type": "viewer-request", "function_arn": viewer.arn}],
                )
            return spec

        default = next((b for b in output.behaviors if b.pattern == "*"), None)
        ordered = [behavior(b.origin, b.pattern) for b in output.behaviors if b.pattern != "*"]
        certificate = None
        if a.domain:
            certificate = validated_certificate(self, "site", a.domain, region=CLOUDFRONT_REGION)
        return self.child(
            "distribution",
            aws.cloudfront.Distribution,
            {
                "enabled": True,
                "comment": f"{self.app.name} {self.stage.name} {self.component_name}",
                "aliases": [a.domain] if a.domain else None,
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
                # The invalidation and the next deploy's stale-file cleanup rely on the
                # new version being served when this resource reports done.
                "wait_for_deployment": True,
            },
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
        if not self.args.protect_functions:
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
