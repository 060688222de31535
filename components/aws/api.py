"""ApiGatewayV2: an HTTP API whose routes are Lambda functions; linkable (``Resource.Api.url``).

Example (seeds 001/002/003)::

    api = ApiGatewayV2("Api", domain=app.stage.domain_for("api"))
    api.route("GET /items", "app/functions/items.list_items", auth={"jwt": clerk})
    api.route("POST /items", {"handler": "app/functions/items.create", "link": [table]})
    api.route("GET /admin/{id}", admin_function, auth="iam")
    api.route("$default", "app/functions/fallback.main")
    pulumi.export("apiUrl", api.url)

One ``$default`` stage deploys every change automatically, writes JSON access logs
to a log group with the stage's retention and throttles by the stage's
``apiThrottle``. CORS allows any origin outside prod and only the stage's own sites
in prod (``StageConfig.allowed_origins``). Each route gets a Lambda proxy integration
(payload 2.0) and a permission that lets API Gateway invoke the function for that
route only. JWT authorizers (Cognito, Clerk, any OIDC issuer) are shared by routes
with the same issuer and audiences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.aws.dns import DNS_ROLES, dns_for_stage, validated_certificate
from components.aws.function import Function, allow_invoke, resolve_function
from components.core.base import Component, ComponentArgs, validation_message
from components.core.naming import stable_hash
from stages.model import DOMAIN_NAME

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
_SEGMENT = r"(?:[A-Za-z0-9._~\-]+|\{[A-Za-z_][A-Za-z0-9_]*\})"
_ROUTE_KEY = re.compile(
    rf"^(?P<method>{'|'.join(METHODS)}) (?P<path>/(?:{_SEGMENT}(?:/{_SEGMENT})*(?:/\{{[A-Za-z_][A-Za-z0-9_]*\+\}})?"
    rf"|\{{[A-Za-z_][A-Za-z0-9_]*\+\}})?)$"
)
# API Gateway stops waiting for an HTTP API integration after 30 seconds.
MAX_INTEGRATION_MS = 30_000

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "userAgent": "$context.identity.userAgent",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class CorsArgs(_Strict):
    """Browser access. ``allow_origins`` None means the stage's ``allowed_origins()``."""

    allow_origins: list[str] | None = None
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    allow_headers: list[str] = Field(default_factory=lambda: ["content-type", "authorization"])
    expose_headers: list[str] = Field(default_factory=list)
    max_age: int = Field(600, ge=0, le=86400, description="seconds browsers cache a preflight")
    allow_credentials: bool = False


class ThrottleArgs(_Strict):
    """Steady requests per second and burst size for every route."""

    rate_limit: float = Field(gt=0)
    burst_limit: int = Field(gt=0)


class JwtAuth(_Strict):
    """A JWT authorizer: tokens from ``issuer`` whose ``aud`` is one of ``audiences``."""

    issuer: Any = Field(description="https URL of the issuer (or an Output of one)")
    audiences: list[Any] = Field(min_length=1)
    scopes: list[str] = Field(default_factory=list, description="scopes this route requires")
    identity_source: str = "$request.header.Authorization"

    @model_validator(mode="after")
    def _https_issuer(self) -> JwtAuth:
        if isinstance(self.issuer, str) and not self.issuer.startswith("https://"):
            raise ValueError(f"jwt issuer {self.issuer!r} must be an https:// URL")
        return self


class RouteAuth(_Strict):
    jwt: JwtAuth


Auth = Literal["iam"] | Mapping[str, Any] | Any | None
"""None, "iam", ``{"jwt": {...}}``, a CognitoUserPoolClient, or ``(pool, client)``."""


class ApiGatewayV2Args(ComponentArgs):
    """Arguments of :class:`ApiGatewayV2`."""

    domain: str | None = Field(
        None, description="custom domain, e.g. app.stage.domain_for('api'); None for the AWS URL"
    )
    cors: bool | CorsArgs = Field(True, description="False to turn CORS off")
    throttle: ThrottleArgs | None = Field(None, description="default: the stage's apiThrottle")
    access_log: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ApiGatewayV2Args:
        if isinstance(self.cors, CorsArgs) and self.cors.allow_credentials and "*" in (
            self.cors.allow_origins or []
        ):
            raise ValueError("cors: allow_credentials needs explicit origins, not '*'")
        return self


@dataclass(frozen=True)
class ApiRoute:
    """What one ``route()`` call created."""

    key: str
    function: Function
    integration: aws.apigatewayv2.Integration
    route: aws.apigatewayv2.Route
    permission: aws.lambda_.Permission


def parse_route_key(key: str) -> tuple[str, str]:
    """``("GET", "/items/{id}")`` for ``"GET /items/{id}"``; ``("$default", "")`` for ``$default``."""
    if key == "$default":
        return key, ""
    match = _ROUTE_KEY.match(key)
    if not match:
        raise ValueError(
            f"route key {key!r} must be '$default' or '<METHOD> /path' with METHOD one of "
            f"{', '.join(METHODS)} and path segments like items, {{id}} or a last {{proxy+}}; "
            "e.g. 'GET /items/{id}'"
        )
    return match["method"], match["path"]


def route_source_arn(execution_arn: str, key: str) -> str:
    """The ARN pattern API Gateway invokes a route's function with, for that route only."""
    method, path = parse_route_key(key)
    if method == "$default":
        return f"{execution_arn}/*/$default"
    # Path parameters arrive as their values, so each one becomes a wildcard segment.
    pattern = re.sub(r"\{[^}]+\}", "*", path)
    return f"{execution_arn}/*/{'*' if method == 'ANY' else method}{pattern}"


class ApiGatewayV2(Component):
    """An HTTP API. Outputs: ``url``, ``id``, ``execution_arn``.

    Transformable children: ``api``, ``log_group``, ``stage``, ``authorizer``,
    ``integration``, ``route``, ``permission``, ``domain_name``, ``api_mapping`` and the
    DNS roles ``dns_record``, ``certificate``, ``certificate_validation``.
    """

    type_token: ClassVar[str] = "harbor:aws:ApiGatewayV2"
    sst_type: ClassVar[str] = "sst.aws.ApiGatewayV2"
    Args: ClassVar[type[ComponentArgs]] = ApiGatewayV2Args
    transformable: ClassVar[tuple[str, ...]] = (
        "api", "log_group", "stage", "authorizer", "integration", "route", "permission",
        "domain_name", "api_mapping", *DNS_ROLES,
    )

    args: ApiGatewayV2Args

    def __init__(
        self,
        name: str,
        args: ApiGatewayV2Args | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        stage = self.stage
        api_name = self.physical_name("apigateway.api")
        self.api = self.child(
            "api",
            aws.apigatewayv2.Api,
            {"name": api_name, "protocol_type": "HTTP", "cors_configuration": self._cors(),
             # The default endpoint answers IPv6 clients too, like the custom domain.
             "ip_address_type": "dualstack"},
        )
        throttle = a.throttle or ThrottleArgs(
            rate_limit=stage.api_throttle.rate_limit, burst_limit=stage.api_throttle.burst_limit
        )
        access_log = None
        if a.access_log:
            self.log_group = self.child(
                "log_group",
                aws.cloudwatch.LogGroup,
                {
                    "name": f"/aws/vendedlogs/apis/{api_name}",
                    "retention_in_days": stage.log_retention_days,
                },
            )
            access_log = {
                "destination_arn": self.log_group.arn,
                "format": json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
            }
        self.stage_resource = self.child(
            "stage",
            aws.apigatewayv2.Stage,
            {
                "api_id": self.api.id,
                "name": "$default",
                "auto_deploy": True,
                "access_log_settings": access_log,
                "default_route_settings": {
                    "throttling_rate_limit": throttle.rate_limit,
                    "throttling_burst_limit": throttle.burst_limit,
                },
            },
        )
        self.id: pulumi.Output[str] = self.api.id
        self.execution_arn: pulumi.Output[str] = self.api.execution_arn
        self.routes: dict[str, ApiRoute] = {}
        self._authorizers: dict[tuple[Any, ...], aws.apigatewayv2.Authorizer] = {}
        self._slugs: set[str] = set()
        self.domain: str | None = a.domain
        if a.domain:
            self._custom_domain(a.domain)
            self.url: pulumi.Output[str] = pulumi.Output.from_input(f"https://{a.domain}")
        else:
            self.url = self.api.api_endpoint
        self.register_outputs({"url": self.url, "id": self.id})

    # -- routes ------------------------------------------------------------------------------
    def route(
        self,
        key: str,
        handler: Function | str | Mapping[str, Any],
        auth: Auth = None,
    ) -> ApiRoute:
        """Send requests matching ``key`` (``"GET /items/{id}"`` or ``"$default"``) to a function.

        ``handler`` is a Function, a handler string or a dict of Function arguments.
        ``auth``: None (public), ``"iam"`` (SigV4), ``{"jwt": {"issuer": ..., "audiences": [...]}}``,
        or a Cognito app client (``pool.add_client(...)``, or ``(pool, client)``) whose tokens it accepts.
        """
        try:
            parse_route_key(key)
        except ValueError as error:
            raise self.fail(str(error)) from None
        if key in self.routes:
            raise self.fail(f"route {key!r} is defined twice; each route key maps to one function")
        authorization = self._authorization(key, auth)
        slug = self._slug(key)
        function = resolve_function(self, slug, handler)
        integration = self.child(
            "integration",
            aws.apigatewayv2.Integration,
            {
                "api_id": self.api.id,
                "integration_type": "AWS_PROXY",
                "integration_uri": function.arn,
                "payload_format_version": "2.0",
                "timeout_milliseconds": min(function.timeout_seconds * 1000, MAX_INTEGRATION_MS),
            },
            key=slug,
        )
        route = self.child(
            "route",
            aws.apigatewayv2.Route,
            {
                "api_id": self.api.id,
                "route_key": key,
                "target": integration.id.apply(lambda integration_id: f"integrations/{integration_id}"),
                **authorization,
            },
            key=slug,
        )
        permission = allow_invoke(
            self, function, "apigateway.amazonaws.com",
            self.api.execution_arn.apply(lambda arn: route_source_arn(arn, key)), key=slug,
        )
        self.routes[key] = ApiRoute(key, function, integration, route, permission)
        return self.routes[key]

    def _slug(self, key: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-") or "default"
        if slug in self._slugs:
            # "GET /a/{b}" and "GET /a/b" read alike once punctuation is gone.
            slug = f"{slug}-{stable_hash(key, 6)}"
        self._slugs.add(slug)
        return slug

    def _authorization(self, key: str, auth: Auth) -> dict[str, Any]:
        if auth is None:
            return {"authorization_type": "NONE"}
        if auth == "iam":
            return {"authorization_type": "AWS_IAM"}
        auth = self._cognito_auth(key, auth)
        if not isinstance(auth, Mapping):
            raise self.fail(
                f"route {key!r}: auth must be None, 'iam' or {{'jwt': {{'issuer': ..., 'audiences': [...]}}}}"
            )
        try:
            jwt = RouteAuth.model_validate(dict(auth)).jwt
        except ValidationError as error:
            raise self.fail(validation_message(f"route {key!r} auth", error)) from None
        authorizer = self._jwt_authorizer(jwt)
        spec: dict[str, Any] = {"authorization_type": "JWT", "authorizer_id": authorizer.id}
        if jwt.scopes:
            spec["authorization_scopes"] = jwt.scopes
        return spec

    def _cognito_auth(self, key: str, auth: Any) -> Any:
        """A Cognito client, or a (pool, client) pair, as the JWT settings that accept its tokens."""
        from components.aws.cognito import CognitoUserPool, CognitoUserPoolClient

        if isinstance(auth, CognitoUserPoolClient):
            return auth.jwt()
        if isinstance(auth, tuple) and len(auth) == 2 and isinstance(auth[0], CognitoUserPool):
            pool, client = auth
            if not isinstance(client, CognitoUserPoolClient) or client.pool is not pool:
                raise self.fail(f"route {key!r}: auth=(pool, client) needs a client made by that pool's add_client")
            return pool.jwt(client)
        if isinstance(auth, CognitoUserPool):
            raise self.fail(
                f"route {key!r}: a user pool alone does not say which app's tokens to accept; "
                "pass a client (pool.add_client(...)) or (pool, client)"
            )
        return auth

    def _jwt_authorizer(self, jwt: JwtAuth) -> aws.apigatewayv2.Authorizer:
        def identity(value: Any) -> Any:
            return value if isinstance(value, str) else id(value)

        cache_key = (identity(jwt.issuer), tuple(sorted(map(str, map(identity, jwt.audiences)))),
                     jwt.identity_source)
        if cache_key not in self._authorizers:
            index = len(self._authorizers) + 1
            self._authorizers[cache_key] = self.child(
                "authorizer",
                aws.apigatewayv2.Authorizer,
                {
                    "api_id": self.api.id,
                    "authorizer_type": "JWT",
                    "name": f"jwt{index}",
                    "identity_sources": [jwt.identity_source],
                    "jwt_configuration": {"issuer": jwt.issuer, "audiences": jwt.audiences},
                },
                key=f"jwt{index}",
            )
        return self._authorizers[cache_key]

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"url": self.url}

    def link_permissions(self) -> list[Any]:
        # Calling a public or JWT route needs no IAM; IAM routes need execute-api:Invoke,
        # which the caller's own Function(permissions=[...]) grants where wanted.
        return []

    # -- CORS and domain -------------------------------------------------------------------
    def _cors(self) -> dict[str, Any] | None:
        cors = self.args.cors
        if cors is False:
            return None
        config = cors if isinstance(cors, CorsArgs) else CorsArgs()
        origins = config.allow_origins or list(self.stage.allowed_origins())
        return {
            "allow_origins": origins,
            "allow_methods": config.allow_methods,
            "allow_headers": config.allow_headers,
            "expose_headers": config.expose_headers or None,
            "max_age": config.max_age,
            "allow_credentials": config.allow_credentials,
        }

    def _custom_domain(self, domain: str) -> None:
        """Serve the API at ``domain``: regional certificate, domain name, mapping, DNS alias."""
        if not DOMAIN_NAME.match(domain):
            raise self.fail(f"domain {domain!r} is not a lowercase host name like api.example.com")
        adapter = dns_for_stage(self.stage)
        if adapter is None:
            raise self.fail(
                f"domain {domain!r} needs the stage's DNS zone to validate its certificate and "
                f"point the name; set harbor:domain (and harbor:dns) in Pulumi.{self.stage.name}.yaml"
            )
        # Regional endpoint: the certificate lives in the API's own region, not us-east-1.
        certificate_arn = validated_certificate(self, "domain", domain, region=self.stage.region)
        self.domain_name = self.child(
            "domain_name",
            aws.apigatewayv2.DomainName,
            {
                "domain_name": domain,
                "domain_name_configuration": {
                    "certificate_arn": certificate_arn,
                    "endpoint_type": "REGIONAL",
                    "security_policy": "TLS_1_2",
                    # Answers on IPv6 as well, so the AAAA alias beside the A alias resolves to
                    # an endpoint that serves it (the default, ipv4, has no IPv6 address).
                    "ip_address_type": "dualstack",
                },
            },
        )
        self.child(
            "api_mapping",
            aws.apigatewayv2.ApiMapping,
            {"api_id": self.api.id, "domain_name": self.domain_name.id, "stage": self.stage_resource.name},
        )
        target = self.domain_name.domain_name_configuration
        adapter.alias(
            self,
            "domain",
            domain,
            target.apply(lambda c: c.target_domain_name),
            target.apply(lambda c: c.hosted_zone_id),
        )
