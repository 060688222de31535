"""Nextjs through Pulumi mocks, from a synthetic OpenNext build shaped like app/web's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opennext_fixture import REAL_OUTPUT, output, write_app

from components.base import ComponentError
from components.dynamo import Dynamo
from components.nextjs import CACHE_KEY_HEADER, CACHING_OPTIMIZED, VIEWER_REQUEST_CODE, Nextjs
from infra.harness import Plan, PlannedResource

Build = Callable[..., Plan]
DOMAIN = "getreggie.io"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding a built app at app/web, as the program's working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARBOR_CACHE_DIR", str(tmp_path / ".build"))
    return write_app(tmp_path)


def web(**kwargs: Any) -> Callable[[], None]:
    def body() -> None:
        Nextjs("Web", path="app/web", build="never", **kwargs)

    return body


def prod(build: Build, body: Callable[[], None], **settings: Any) -> Plan:
    return build(body, stage="prod", domain=DOMAIN, protect=True, removal="retain", **settings)


def one(plan: Plan, type_: str, name: str) -> PlannedResource:
    return next(r for r in plan.resources if r.type == type_ and r.name == name)


def distribution(plan: Plan) -> dict[str, Any]:
    return one(plan, "aws:cloudfront/distribution:Distribution", "Web-distribution").inputs


def test_prod_distribution_behaviours_follow_the_build_output(build: Build, site: Path) -> None:
    dist = distribution(prod(build, web(domain=DOMAIN)))

    expected = [(b["pattern"], b["origin"]) for b in REAL_OUTPUT["behaviors"] if b["pattern"] != "*"]
    assert [(b["pathPattern"], b["targetOriginId"]) for b in dist["orderedCacheBehaviors"]] == expected
    assert dist["defaultCacheBehavior"]["targetOriginId"] == "default"
    assert {o["originId"] for o in dist["origins"]} == {"s3", "default", "imageOptimizer"}
    s3 = next(o for o in dist["origins"] if o["originId"] == "s3")
    assert s3["originPath"] == "/_assets"
    assert s3["originAccessControlId"]
    assert dist["httpVersion"] == "http2and3"
    assert dist["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert dist["viewerCertificate"]["sslSupportMethod"] == "sni-only"
    assert dist["aliases"] == [DOMAIN]
    for behavior in [dist["defaultCacheBehavior"], *dist["orderedCacheBehaviors"]]:
        assert behavior["compress"] is True
        assert behavior["viewerProtocolPolicy"] == "redirect-to-https"
        assert behavior["responseHeadersPolicyId"]


def test_static_behaviours_use_the_managed_cache_policy_and_server_ones_the_cache_key_policy(
    build: Build, site: Path
) -> None:
    plan = prod(build, web(domain=DOMAIN))
    dist = distribution(plan)
    by_pattern = {b["pathPattern"]: b for b in dist["orderedCacheBehaviors"]}
    assert by_pattern["_next/*"]["cachePolicyId"] == CACHING_OPTIMIZED
    assert by_pattern["_next/*"]["allowedMethods"] == ["GET", "HEAD", "OPTIONS"]
    policy = one(plan, "aws:cloudfront/cachePolicy:CachePolicy", "Web-cache_policy")
    server_policy_id = dist["defaultCacheBehavior"]["cachePolicyId"]
    assert server_policy_id != CACHING_OPTIMIZED
    assert by_pattern["_next/data/*"]["cachePolicyId"] == server_policy_id
    key = policy.inputs["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["headersConfig"]["headers"]["items"] == [CACHE_KEY_HEADER]
    assert key["enableAcceptEncodingBrotli"] and key["enableAcceptEncodingGzip"]
    viewer = one(plan, "aws:cloudfront/function:Function", "Web-viewer_function")
    assert viewer.inputs["runtime"] == "cloudfront-js-2.0"
    assert f'headers["{CACHE_KEY_HEADER}"]' in VIEWER_REQUEST_CODE
    assert "x-forwarded-host" in viewer.inputs["code"]
    associations = dist["defaultCacheBehavior"]["functionAssociations"]
    assert associations[0]["eventType"] == "viewer-request"


def test_security_headers_policy_sets_hsts_nosniff_frame_options_and_referrer_policy(
    build: Build, site: Path
) -> None:
    plan = prod(build, web())
    headers = one(plan, "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy", "Web-headers_policy")
    security = headers.inputs["securityHeadersConfig"]
    assert security["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31536000
    assert security["strictTransportSecurity"]["includeSubdomains"] is True
    assert security["contentTypeOptions"]["override"] is True
    assert security["frameOptions"]["frameOption"] == "SAMEORIGIN"
    assert security["referrerPolicy"]["referrerPolicy"] == "strict-origin-when-cross-origin"


def test_assets_bucket_is_private_and_only_this_distribution_reads_it_through_oac(
    build: Build, site: Path
) -> None:
    plan = prod(build, web(domain=DOMAIN))
    block = one(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "Web-assets_public_access")
    assert all(block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                         "restrictPublicBuckets"))
    oac = one(plan, "aws:cloudfront/originAccessControl:OriginAccessControl", "Web-s3_access_control")
    assert oac.inputs["originAccessControlOriginType"] == "s3"
    assert oac.inputs["signingBehavior"] == "always"
    policy = json.loads(one(plan, "aws:s3/bucketPolicy:BucketPolicy", "Web-assets_policy").inputs["policy"])
    allow = next(s for s in policy["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"].endswith("/_assets/*")
    assert allow["Condition"]["StringEquals"]["AWS:SourceArn"].startswith("arn:aws:cloudfront::")
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
               for s in policy["Statement"])
    bucket = one(plan, "aws:s3/bucket:Bucket", "Web-assets_bucket")
    assert bucket.protect and bucket.retain_on_delete  # prod's policy, like every bucket


def test_one_asset_sync_resource_uploads_the_build_not_one_resource_per_file(build: Build, site: Path) -> None:
    plan = prod(build, web())
    syncs = [r for r in plan.resources if r.type == "pulumi-python:dynamic:Resource" and r.name == "Web-assets"]
    assert len(syncs) == 1
    inputs = syncs[0].inputs
    assert [(s["directory"], s["prefix"], s["cached"]) for s in inputs["sources"]] == [
        ("app/web/.open-next/assets", "_assets", True),
        ("app/web/.open-next/cache", "_cache", False),
    ]
    assert len(inputs["files_hash"]) == 64
    assert not plan.of_type("aws:s3/bucketObject:BucketObject")
    assert not plan.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    invalidation = next(r for r in plan.resources if r.name == "Web-invalidation")
    assert invalidation.inputs["paths"] == ["/*"]
    assert invalidation.inputs["version"]


def test_a_changed_asset_changes_the_sync_and_the_invalidation(build: Build, site: Path) -> None:
    def inputs(plan: Plan, name: str) -> dict[str, Any]:
        return next(r for r in plan.resources if r.name == name).inputs

    first = prod(build, web())
    (site / ".open-next/assets/harbor.png").write_bytes(b"\x89PNG\r\n\x1a\nchanged")
    second = prod(build, web())
    assert inputs(first, "Web-assets")["files_hash"] != inputs(second, "Web-assets")["files_hash"]
    assert inputs(first, "Web-invalidation")["version"] != inputs(second, "Web-invalidation")["version"]


def test_server_and_image_functions_are_arm64_behind_iam_urls_that_only_cloudfront_may_call(
    build: Build, site: Path
) -> None:
    plan = prod(build, web())
    for function, origin in (("WebServer", "default"), ("WebImageOptimizer", "imageOptimizer")):
        fn = one(plan, "aws:lambda/function:Function", f"{function}-function")
        assert fn.inputs["architectures"] == ["arm64"]
        assert fn.inputs["runtime"].startswith("nodejs")
        assert fn.inputs["handler"] == "index.handler"
        url = one(plan, "aws:lambda/functionUrl:FunctionUrl", f"{function}-url")
        assert url.inputs["authorizationType"] == "AWS_IAM"
        for action in ("InvokeFunctionUrl", "InvokeFunction"):
            grant = one(plan, "aws:lambda/permission:Permission", f"Web-url_permission-{origin}-{action}")
            assert grant.inputs["principal"] == "cloudfront.amazonaws.com"
            assert grant.inputs["sourceArn"].startswith("arn:aws:cloudfront::")
    oac = one(plan, "aws:cloudfront/originAccessControl:OriginAccessControl", "Web-lambda_access_control")
    assert oac.inputs["originAccessControlOriginType"] == "lambda"
    dist = distribution(plan)
    for origin in dist["origins"]:
        if origin["originId"] != "s3":
            assert origin["originAccessControlId"]
            assert origin["domainName"].endswith(".lambda-url.us-east-1.on.aws")
            assert origin["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    image_policy = json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy", "WebImageOptimizer-policy").inputs["policy"])
    bucket = one(plan, "aws:s3/bucket:Bucket", "Web-assets_bucket").inputs["bucket"]
    assert image_policy["Statement"] == [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/_assets/*"]}
    ]


def test_streaming_output_gives_the_server_a_response_stream_url(build: Build, site: Path) -> None:
    assert REAL_OUTPUT["origins"]["default"]["streaming"] is True
    plan = prod(build, web())
    assert one(plan, "aws:lambda/functionUrl:FunctionUrl", "WebServer-url").inputs["invokeMode"] == "RESPONSE_STREAM"
    assert "invokeMode" not in one(plan, "aws:lambda/functionUrl:FunctionUrl", "WebImageOptimizer-url").inputs


def test_buffered_output_keeps_the_default_invoke_mode(build: Build, site: Path) -> None:
    data = output()
    data["origins"]["default"]["streaming"] = False
    write_app(site.parent.parent, data)
    plan = prod(build, web())
    assert "invokeMode" not in one(plan, "aws:lambda/functionUrl:FunctionUrl", "WebServer-url").inputs


def test_revalidation_fifo_queue_with_consumer_and_tag_cache_table_with_its_seed(build: Build, site: Path) -> None:
    plan = prod(build, web())
    queue = one(plan, "aws:sqs/queue:Queue", "WebRevalidationQueue-queue")
    assert queue.inputs["fifoQueue"] is True
    assert queue.inputs["name"] == "harbor-prod-WebRevalidationQueue.fifo"
    mapping = one(plan, "aws:lambda/eventSourceMapping:EventSourceMapping",
                  "WebRevalidationQueue-event_source_mapping")
    assert mapping.inputs["functionName"].endswith(":function:harbor-prod-WebRevalidation")
    assert mapping.inputs["eventSourceArn"].endswith(":harbor-prod-WebRevalidationQueue.fifo")
    table = one(plan, "aws:dynamodb/table:Table", "WebTagCache-table")
    assert (table.inputs["hashKey"], table.inputs["rangeKey"]) == ("tag", "path")
    assert table.inputs["globalSecondaryIndexes"][0]["name"] == "revalidate"
    seed = one(plan, "aws:lambda/invocation:Invocation", "Web-initializer_invocation")
    assert seed.inputs["functionName"] == "harbor-prod-WebInitializer"
    assert json.loads(seed.inputs["input"]) == {"requestType": "create"}
    assert len(seed.inputs["triggers"]["build"]) == 64
    server = one(plan, "aws:lambda/function:Function", "WebServer-function").inputs["environment"]["variables"]
    assert server["CACHE_DYNAMO_TABLE"] == "harbor-prod-WebTagCache"
    assert server["REVALIDATION_QUEUE_URL"].endswith("/harbor-prod-WebRevalidationQueue.fifo")
    assert server["CACHE_BUCKET_KEY_PREFIX"] == "_cache"
    sync = next(r for r in plan.resources if r.name == "Web-assets")
    assert server["HARBOR_ASSETS_VERSION"] == sync.inputs["files_hash"][:16]
    grants = json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy", "WebServer-policy").inputs["policy"])
    for statement in grants["Statement"]:
        assert "*" not in statement["Resource"]
        assert not any(action.endswith(":*") for action in statement["Action"])


def test_warmer_runs_on_a_schedule_only_when_asked(build: Build, site: Path) -> None:
    assert not prod(build, web()).of_type("aws:cloudwatch/eventRule:EventRule")
    plan = prod(build, web(warm=3))
    rule = one(plan, "aws:cloudwatch/eventRule:EventRule", "Web-warmer_rule")
    assert rule.inputs["scheduleExpression"] == "rate(5 minutes)"
    warmer = one(plan, "aws:lambda/function:Function", "WebWarmer-function").inputs["environment"]["variables"]
    assert json.loads(warmer["WARM_PARAMS"]) == [{"concurrency": 3, "function": "harbor-prod-WebServer"}]


def test_prod_certificate_is_in_us_east_1_and_the_apex_gets_alias_records(build: Build, site: Path) -> None:
    # A stage outside us-east-1 proves the certificate goes through CloudFront's region.
    plan = prod(build, web(domain=DOMAIN), region="eu-west-1")
    cert = one(plan, "aws:acm/certificate:Certificate", "Web-certificate-site")
    assert cert.inputs["domainName"] == DOMAIN
    assert cert.provider is not None and "aws-us-east-1" in cert.provider
    records = [r for r in plan.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    assert sorted(r.inputs["type"] for r in records) == ["A", "AAAA"]
    for record in records:
        assert record.inputs["name"] == DOMAIN
        assert record.inputs["aliases"][0]["zoneId"] == "Z2FDTNDATAQYW2"  # CloudFront's zone
        assert record.inputs["aliases"][0]["name"].endswith(".cloudfront.net")


def test_dev_serves_the_site_at_the_dev_subdomain(build: Build, site: Path) -> None:
    from components.context import current_app

    def body() -> None:
        Nextjs("Web", path="app/web", build="never", domain=current_app().stage.domain_for())

    plan = build(body, stage="dev", domain=DOMAIN)
    assert distribution(plan)["aliases"] == [f"dev.{DOMAIN}"]
    cert = one(plan, "aws:acm/certificate:Certificate", "Web-certificate-site")
    assert cert.inputs["domainName"] == f"dev.{DOMAIN}"


def test_without_a_domain_the_site_uses_cloudfronts_certificate(build: Build, site: Path) -> None:
    plan = build(web(), stage="alice")
    dist = distribution(plan)
    assert dist["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in dist or not dist["aliases"]
    assert not plan.of_type("aws:acm/certificate:Certificate")


def test_links_and_environment_reach_the_server_the_way_sst_resource_reads_them(
    build: Build, site: Path
) -> None:
    def body() -> None:
        table = Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        Nextjs("Web", path="app/web", build="never", link=[table],
               environment={"API_URL": "https://api.example.com"})

    plan = build(body, stage="dev")
    variables = one(plan, "aws:lambda/function:Function", "WebServer-function").inputs["environment"]["variables"]
    assert variables["API_URL"] == "https://api.example.com"
    assert variables["SST_KEY_FILE"] == "/var/task/resource.enc"
    assert len(variables["SST_KEY"]) == 44  # base64 of a 256-bit key
    assert json.loads(variables["SST_RESOURCE_App"]) == {"name": "harbor", "stage": "dev"}
    grants = json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy", "WebServer-policy").inputs["policy"])
    resources = [arn for s in grants["Statement"] for arn in s["Resource"]]
    assert "arn:aws:dynamodb:us-east-1:123456789012:table/harbor-dev-Table" in resources


def registrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the components that got as far as registering themselves."""
    from components.base import Component

    started: list[str] = []
    original = Component.__init__

    def spy(self: Component, name: str, *args: Any, **kwargs: Any) -> None:
        started.append(name)
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(Component, "__init__", spy)
    return started


def test_a_domain_without_a_stage_zone_is_refused_before_the_site_registers(
    build: Build, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = registrations(monkeypatch)
    with pytest.raises(ComponentError, match="needs the stage's DNS zone"):
        build(web(domain="www.example.com"), stage="alice")
    assert "Web" not in started


def test_missing_app_folder_stops_before_any_site_resource_exists(
    build: Build, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = registrations(monkeypatch)
    with pytest.raises(ComponentError, match=r"Nextjs 'Web': Next.js app folder .*app/nope does not exist"):
        build(lambda: Nextjs("Web", path="app/nope", build="never"))
    assert "Web" not in started


def test_the_spy_sees_a_site_that_does_register(build: Build, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = registrations(monkeypatch)
    build(web())
    assert "Web" in started


def test_broken_app_folder_is_a_clear_error(build: Build, site: Path) -> None:
    (site / "package.json").write_text("{broken")
    with pytest.raises(ComponentError, match=r"package\.json is not valid JSON"):
        build(web())


def test_missing_output_file_is_a_clear_error(build: Build, site: Path) -> None:
    (site / ".open-next/open-next.output.json").unlink()
    with pytest.raises(ComponentError, match=r"open-next\.output\.json is missing"):
        build(web())


def test_failed_build_stops_the_program_with_the_build_log(
    build: Build, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from components import opennext

    (site / "node_modules").mkdir()
    monkeypatch.setattr(opennext.shutil, "which", lambda _: "/usr/bin/npx")

    def failing(command: list[str], **_: Any) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(command, 1, stdout="Type error: boom", stderr="")

    monkeypatch.setattr(opennext.subprocess, "run", failing)
    with pytest.raises(ComponentError, match=r"failed \(exit 1\)[\s\S]*Type error: boom"):
        build(lambda: Nextjs("Web", path="app/web", build="always"))


def test_offline_plan_without_dependencies_skips_the_site_with_a_visible_note(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, built=False)
    plan = build(lambda: Nextjs("Web", path="app/web"))
    site = [r for r in plan.resources if r.name.startswith("Web")]
    assert [r.type for r in site] == ["harbor:aws:Nextjs"]


def test_paths_outside_the_project_are_refused(build: Build, site: Path) -> None:
    with pytest.raises(ComponentError, match="must be a folder inside the project"):
        build(lambda: Nextjs("Web", path="../elsewhere"))
