"""ApiGatewayV2: stage, logs, throttling, CORS per stage, routes, auth, errors and custom domains."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components import ComponentError
from components.aws.api import ApiGatewayV2, parse_route_key, route_source_arn
from components.aws.function import Function

API = "aws:apigatewayv2/api:Api"
STAGE = "aws:apigatewayv2/stage:Stage"
ROUTE = "aws:apigatewayv2/route:Route"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
PERMISSION = "aws:lambda/permission:Permission"
HANDLER = "app/functions/items.create"
CLERK = {"issuer": "https://clerk.getreggie.io", "audiences": ["reggie"]}
EXEC = "arn:aws:execute-api:us-east-1:123456789012:"


def api_with(*routes: tuple[str, Any, Any], **kwargs: Any):
    def body() -> None:
        api = ApiGatewayV2("Api", **kwargs)
        for key, handler, auth in routes:
            api.route(key, handler, auth=auth)
        pulumi.export("url", api.url)

    return body


def test_dev_cors_allows_any_origin(build):
    cors = build(api_with()).one(API).inputs["corsConfiguration"]
    assert cors["allowOrigins"] == ["*"] and cors["allowCredentials"] is False


def test_prod_cors_allows_only_the_stages_own_sites(build):
    cors = build(api_with(), stage="prod", domain="getreggie.io").one(API).inputs["corsConfiguration"]
    assert cors["allowOrigins"] == ["https://getreggie.io", "https://admin.getreggie.io"]


def test_cors_can_be_turned_off_or_given_origins(build):
    assert "corsConfiguration" not in build(api_with(cors=False)).one(API).inputs
    explicit = build(api_with(cors={"allow_origins": ["https://x.io"], "allow_credentials": True}))
    assert explicit.one(API).inputs["corsConfiguration"]["allowOrigins"] == ["https://x.io"]


def test_credentials_with_any_origin_are_refused(build):
    with pytest.raises(ComponentError, match="allow_credentials needs explicit origins"):
        build(api_with(cors={"allow_origins": ["*"], "allow_credentials": True}))


@pytest.mark.parametrize(("stage", "days"), [("dev", 7), ("prod", 30)])
def test_default_stage_auto_deploys_with_json_access_logs_kept_for_the_stages_retention(build, stage, days):
    plan = build(api_with(), stage=stage, logRetentionDays=days)
    api = plan.one(API)
    assert api.inputs["protocolType"] == "HTTP" and api.inputs["name"] == f"harbor-{stage}-Api"
    group = plan.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == days
    settings = plan.one(STAGE).inputs
    assert settings["name"] == "$default" and settings["autoDeploy"] is True
    assert settings["accessLogSettings"]["destinationArn"].endswith(f":log-group:{group.inputs['name']}")
    log_format = json.loads(settings["accessLogSettings"]["format"])
    assert log_format["requestId"] == "$context.requestId" and "status" in log_format


def test_throttling_follows_the_stage_unless_given(build):
    staged = build(api_with(), apiThrottle={"rateLimit": 50, "burstLimit": 100}).one(STAGE).inputs
    assert staged["defaultRouteSettings"] == {"throttlingRateLimit": 50, "throttlingBurstLimit": 100}
    given = build(api_with(throttle={"rate_limit": 5, "burst_limit": 10})).one(STAGE).inputs
    assert given["defaultRouteSettings"] == {"throttlingRateLimit": 5, "throttlingBurstLimit": 10}


def test_route_gets_a_proxy_integration_with_payload_2_and_a_permission_for_that_route_only(build):
    plan = build(api_with(("GET /items/{id}", HANDLER, None), ("POST /items", HANDLER, None)))
    integrations = {i.name: i.inputs for i in plan.of_type(INTEGRATION)}
    get = integrations["Api-integration-GET-items-id"]
    assert get["integrationType"] == "AWS_PROXY" and get["payloadFormatVersion"] == "2.0"
    assert get["integrationUri"] == "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-ApiGetItemsId"
    route = plan.one(ROUTE, "Api-route-GET-items-id").inputs
    assert route["routeKey"] == "GET /items/{id}" and route["authorizationType"] == "NONE"
    assert route["target"].startswith("integrations/Api-integration-GET-items-id")
    permissions = {p.name: p.inputs for p in plan.of_type(PERMISSION)}
    get_permission = permissions["Api-permission-GET-items-id"]
    assert get_permission["principal"] == "apigateway.amazonaws.com"
    assert get_permission["function"] == "harbor-dev-ApiGetItemsId"
    assert get_permission["sourceArn"].startswith(EXEC) and get_permission["sourceArn"].endswith("/*/GET/items/*")
    assert permissions["Api-permission-POST-items"]["sourceArn"].endswith("/*/POST/items")


@pytest.mark.parametrize(
    ("key", "suffix"),
    [("GET /items", "/*/GET/items"), ("ANY /items/{proxy+}", "/*/*/items/*"), ("$default", "/*/$default"),
     ("DELETE /a/{b}/c", "/*/DELETE/a/*/c"), ("GET /", "/*/GET/")],
)
def test_source_arn_matches_only_the_route(key, suffix):
    assert route_source_arn("arn:x:abc", key) == f"arn:x:abc{suffix}"


def test_default_route_is_allowed(build):
    plan = build(api_with(("$default", HANDLER, None)))
    assert plan.one(ROUTE).inputs["routeKey"] == "$default"


@pytest.mark.parametrize(
    "key",
    ["GET items", "get /items", "FETCH /items", "GET /items/", "GET /items/{id", "GET /{proxy+}/x",
     "GET  /items", "/items", "$other", "GET /items/{1d}"],
)
def test_malformed_route_keys_are_refused_with_an_example(build, key):
    with pytest.raises(ComponentError, match=r"'<METHOD> /path'.*e\.g\. 'GET /items/\{id\}'"):
        build(api_with((key, HANDLER, None)))


def test_well_formed_route_keys_parse():
    assert parse_route_key("GET /items/{id}") == ("GET", "/items/{id}")
    assert parse_route_key("ANY /{proxy+}") == ("ANY", "/{proxy+}")
    assert parse_route_key("$default") == ("$default", "")


def test_a_route_key_used_twice_is_refused(build):
    with pytest.raises(ComponentError, match="defined twice"):
        build(api_with(("GET /items", HANDLER, None), ("GET /items", HANDLER, None)))


def test_jwt_authorizer_is_shared_by_routes_with_the_same_issuer_and_audiences(build):
    other = {"issuer": "https://cognito-idp.us-east-1.amazonaws.com/pool", "audiences": ["client"]}
    plan = build(api_with(("GET /a", HANDLER, {"jwt": CLERK}), ("GET /b", HANDLER, {"jwt": dict(CLERK)}),
                          ("GET /c", HANDLER, {"jwt": other})))
    authorizers = plan.of_type(AUTHORIZER)
    assert len(authorizers) == 2
    (clerk,) = [a.inputs for a in authorizers if a.inputs["jwtConfiguration"]["issuer"] == CLERK["issuer"]]
    assert clerk["authorizerType"] == "JWT"
    assert clerk["jwtConfiguration"] == {"issuer": CLERK["issuer"], "audiences": ["reggie"]}
    assert clerk["identitySources"] == ["$request.header.Authorization"]
    routes = {r.inputs["routeKey"]: r.inputs for r in plan.of_type(ROUTE)}
    assert routes["GET /a"]["authorizationType"] == "JWT"
    assert routes["GET /a"]["authorizerId"] == routes["GET /b"]["authorizerId"] != routes["GET /c"]["authorizerId"]


def test_one_issuer_with_different_audiences_gets_one_authorizer_per_audience_set(build):
    # A token minted for the admin app must not open the shop's routes, and the reverse:
    # API Gateway checks `aud` against the authorizer's audiences only.
    issuer = "https://clerk.getreggie.io"
    plan = build(api_with(
        ("GET /shop", HANDLER, {"jwt": {"issuer": issuer, "audiences": ["shop"]}}),
        ("GET /admin", HANDLER, {"jwt": {"issuer": issuer, "audiences": ["admin"]}}),
        ("GET /both", HANDLER, {"jwt": {"issuer": issuer, "audiences": ["admin", "shop"]}}),
    ))
    authorizers = {a.name: a.inputs["jwtConfiguration"] for a in plan.of_type(AUTHORIZER)}
    assert sorted(c["audiences"] for c in authorizers.values()) == [["admin"], ["admin", "shop"], ["shop"]]
    assert all(c["issuer"] == issuer for c in authorizers.values())
    routes = {r.inputs["routeKey"]: r.inputs["authorizerId"] for r in plan.of_type(ROUTE)}
    for key, audiences in (("GET /shop", ["shop"]), ("GET /admin", ["admin"]), ("GET /both", ["admin", "shop"])):
        (name,) = [n for n, c in authorizers.items() if c["audiences"] == audiences]
        assert routes[key].startswith(f"{name}-"), (key, routes[key], name)


def test_jwt_scopes_go_on_the_route(build):
    plan = build(api_with(("GET /a", HANDLER, {"jwt": {**CLERK, "scopes": ["items:read"]}})))
    assert plan.one(ROUTE).inputs["authorizationScopes"] == ["items:read"]


def test_iam_auth_needs_signed_requests(build):
    route = build(api_with(("GET /admin", HANDLER, "iam"))).one(ROUTE).inputs
    assert route["authorizationType"] == "AWS_IAM" and "authorizerId" not in route


@pytest.mark.parametrize(
    ("auth", "message"),
    [({"jwt": {"issuer": "http://insecure", "audiences": ["a"]}}, "https://"),
     ({"jwt": {"issuer": "https://x", "audiences": []}}, "audiences"),
     ({"cognito": {}}, "cognito"),
     ("token", "auth must be None, 'iam'")],
)
def test_bad_auth_is_refused(build, auth, message):
    with pytest.raises(ComponentError, match=message):
        build(api_with(("GET /a", HANDLER, auth)))


def test_an_existing_function_can_serve_routes_and_long_timeouts_are_capped(build):
    def body():
        function = Function("Slow", handler=HANDLER, timeout=120)
        api = ApiGatewayV2("Api")
        api.route("GET /a", function)
        api.route("GET /b", function)

    plan = build(body)
    assert len(plan.of_type("aws:lambda/function:Function")) == 1
    assert {i.inputs["timeoutMilliseconds"] for i in plan.of_type(INTEGRATION)} == {30000}
    assert len(plan.of_type(PERMISSION)) == 2


def test_url_is_the_execute_api_endpoint_without_a_domain(build):
    url = build(api_with()).outputs["url"]
    assert url.startswith("https://") and url.endswith(".execute-api.us-east-1.amazonaws.com")


def test_custom_domain_on_route53_gets_a_regional_certificate_mapping_and_alias(build):
    plan = build(api_with(domain="api.getreggie.io"), stage="prod", domain="getreggie.io")
    assert plan.outputs["url"] == "https://api.getreggie.io"
    certificate = plan.one("aws:acm/certificate:Certificate").inputs
    assert certificate["domainName"] == "api.getreggie.io" and certificate["validationMethod"] == "DNS"
    domain = plan.one("aws:apigatewayv2/domainName:DomainName").inputs
    assert domain["domainName"] == "api.getreggie.io"
    assert domain["domainNameConfiguration"]["endpointType"] == "REGIONAL"
    assert domain["domainNameConfiguration"]["securityPolicy"] == "TLS_1_2"
    assert domain["domainNameConfiguration"]["certificateArn"].startswith("arn:aws:acm:us-east-1:")
    mapping = plan.one("aws:apigatewayv2/apiMapping:ApiMapping").inputs
    assert mapping["domainName"] == "api.getreggie.io" and mapping["stage"] == "$default"
    aliases = [r.inputs for r in plan.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    assert {a["type"] for a in aliases} == {"A", "AAAA"}
    assert all(a["name"] == "api.getreggie.io" for a in aliases)
    assert aliases[0]["aliases"][0]["name"].endswith(".execute-api.us-east-1.amazonaws.com")


def test_the_aaaa_alias_points_at_a_dual_stack_domain(build):
    plan = build(api_with(domain="api.getreggie.io"), stage="prod", domain="getreggie.io")
    aliases = {r.inputs["type"] for r in plan.of_type("aws:route53/record:Record") if r.inputs.get("aliases")}
    assert "AAAA" in aliases
    # An AAAA alias on an ipv4-only regional domain resolves to nothing for IPv6 clients.
    domain = plan.one("aws:apigatewayv2/domainName:DomainName").inputs
    assert domain["domainNameConfiguration"]["ipAddressType"] == "dualstack"
    assert plan.one("aws:apigatewayv2/api:Api").inputs["ipAddressType"] == "dualstack"


def test_staging_domain_follows_the_seed_002_pattern_on_cloudflare(build):
    from stages import StageConfig

    domain = StageConfig(name="staging", app="harbor", domain="getreggie.io").domain_for("api")
    plan = build(api_with(domain=domain), stage="staging", domain="getreggie.io", dns="cloudflare")
    assert plan.outputs["url"] == "https://staging-api.getreggie.io"
    cname = [r.inputs for r in plan.of_type("cloudflare:index/dnsRecord:DnsRecord") if r.inputs["type"] == "CNAME"
             and r.inputs["name"] == "staging-api.getreggie.io"]
    assert len(cname) == 1 and cname[0]["content"].endswith(".execute-api.us-east-1.amazonaws.com")


def test_custom_domain_without_a_stage_zone_names_the_setting(build):
    with pytest.raises(ComponentError, match="harbor:domain"):
        build(api_with(domain="api.example.com"))


def test_domain_outside_the_stage_zone_is_refused(build):
    with pytest.raises(ComponentError, match="not inside the zone"):
        build(api_with(domain="api.example.com"), stage="prod", domain="getreggie.io")


def test_transform_reaches_routes_and_the_stage(build):
    plan = build(api_with(("GET /a", HANDLER, None),
                          transform={"route": {"operation_name": "ListA"},
                                     "stage": {"description": "edited"}}))
    assert plan.one(ROUTE).inputs["operationName"] == "ListA"
    assert plan.one(STAGE).inputs["description"] == "edited"


@pytest.mark.parametrize(("stage", "host"), [("dev", "dev-api.getreggie.io"), ("prod", "api.getreggie.io")])
def test_the_application_serves_its_item_routes_on_the_stage_api_domain(plan_stage, stage, host):
    plan = plan_stage(stage)
    assert plan.outputs["apiUrl"] == f"https://{host}"
    routes = {r.inputs["routeKey"]: r.inputs for r in plan.of_type(ROUTE)}
    # The public liveness check links nothing and stays out of the VPC.
    assert routes.pop("GET /health")["authorizationType"] == "NONE"
    health = next(f for f in plan.of_type("aws:lambda/function:Function") if f.name == "ApiGetHealth-function")
    assert health.inputs.get("vpcConfig") is None
    assert set(routes) == {"GET /items", "POST /items", "GET /items/{id}", "DELETE /items/{id}"}
    assert {r["authorizationType"] for r in routes.values()} == {"JWT"}
    functions = [f for f in plan.of_type("aws:lambda/function:Function")
                 if f.name.startswith("Api") and f is not health]
    assert len(functions) == 4
    # The handlers use the table, the cursor key and the task topic; nothing puts them in the VPC.
    assert all(f.inputs["architectures"] == ["arm64"] and not f.inputs.get("vpcConfig") for f in functions)
    attachments = [a for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                   if a.name.startswith("Api")]
    assert {a.inputs["policyArn"].rsplit("/", 1)[-1] for a in attachments} == {"AWSLambdaBasicExecutionRole"}
    granted = {
        service
        for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy") if policy.name.startswith("Api")
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        for service in {action.split(":")[0] for action in statement["Action"]}
    }
    assert granted == {"dynamodb", "sns"}
    groups = {g.inputs["name"] for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert {f.inputs["loggingConfig"]["logGroup"] for f in functions} <= groups
    for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.name.startswith("Api"):
            for statement in json.loads(policy.inputs["policy"])["Statement"]:
                assert "*" not in statement["Resource"]
                assert not any(a == "*" or a.endswith(":*") for a in statement["Action"])
    assert plan.one("aws:apigatewayv2/domainName:DomainName").inputs["domainName"] == host


def test_the_api_is_linkable_by_its_url_and_grants_nothing(build):
    from components.core.linking import link_data, link_statements

    def body() -> None:
        api = ApiGatewayV2("Api")
        pulumi.export("link", link_data([api]))
        pulumi.export("statements", link_statements([api]))

    plan = build(body)
    api_id = plan.outputs["link"]["Api"]["url"].split("//")[1].split(".")[0]
    assert plan.outputs["link"] == {
        "Api": {"url": f"https://{api_id}.execute-api.us-east-1.amazonaws.com", "type": "sst.aws.ApiGatewayV2"}
    }
    assert plan.outputs["statements"] == []


def test_a_linked_api_with_a_domain_gives_its_custom_url(build):
    from components.core.linking import link_data

    def body() -> None:
        pulumi.export("link", link_data([ApiGatewayV2("Api", domain="api.getreggie.io")]))

    plan = build(body, stage="prod", domain="getreggie.io")
    assert plan.outputs["link"]["Api"]["url"] == "https://api.getreggie.io"
