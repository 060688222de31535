"""Nextjs through Pulumi mocks, from a synthetic OpenNext build shaped like app/web's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opennext_fixture import REAL_OUTPUT, output, write_app, write_build

from components.aws.dynamo import Dynamo
from components.aws.nextjs import CACHE_KEY_HEADER, CACHING_OPTIMIZED, Nextjs, viewer_request_code
from components.aws.opennext import BuildSettings, build_id_for, source_hash
from components.core.base import ComponentError
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
    policy = one(plan, "aws:cloudfront/cachePolicy:CachePolicy", "NextjsShared-cache_policy")
    server_policy_id = dist["defaultCacheBehavior"]["cachePolicyId"]
    assert server_policy_id != CACHING_OPTIMIZED
    assert by_pattern["_next/data/*"]["cachePolicyId"] == server_policy_id
    key = policy.inputs["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["headersConfig"]["headers"]["items"] == [CACHE_KEY_HEADER]
    assert key["enableAcceptEncodingBrotli"] and key["enableAcceptEncodingGzip"]
    viewer = one(plan, "aws:cloudfront/function:Function", "Web-viewer_function")
    assert viewer.inputs["runtime"] == "cloudfront-js-2.0"
    assert f'headers["{CACHE_KEY_HEADER}"]' in viewer_request_code(None)
    assert "x-forwarded-host" in viewer.inputs["code"]
    associations = dist["defaultCacheBehavior"]["functionAssociations"]
    assert associations[0]["eventType"] == "viewer-request"


def test_security_headers_policy_sets_hsts_nosniff_frame_options_and_referrer_policy(
    build: Build, site: Path
) -> None:
    plan = prod(build, web())
    headers = one(plan, "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy", "NextjsShared-headers_policy")
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
    assert seed.inputs["triggers"] == {
        "buildId": build_id_for(source_hash(site, BuildSettings())),
        "table": "harbor-prod-WebTagCache",
    }
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
    from components.core.context import current_app

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
    from components.core.base import Component

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
    with pytest.raises(ComponentError, match=r"has no build of its current sources and settings"):
        build(web())


def _stand_in_npx(site: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The OpenNext module with npx "installed" for ``site``, staging in the test's own folder."""
    from components.aws import opennext

    (site / "node_modules").mkdir()
    monkeypatch.setattr(opennext.shutil, "which", lambda _: "/usr/bin/npx")
    monkeypatch.setattr(opennext, "STAGING_ROOT", site.parent.parent / "staging")  # not real builds' folder
    return opennext


def test_failed_build_stops_the_program_with_the_build_log(
    build: Build, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    opennext = _stand_in_npx(site, monkeypatch)

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


# -- deploy-true behaviour ------------------------------------------------------------------
def named(plan: Plan, name: str) -> PlannedResource:
    return next(r for r in plan.resources if r.name == name)


def server_behaviours(dist: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in [dist["defaultCacheBehavior"], *dist["orderedCacheBehaviors"]] if b["targetOriginId"] != "s3"]


def test_invalidation_waits_for_both_functions_the_sync_and_the_distribution(build: Build, site: Path) -> None:
    plan = prod(build, web())
    invalidation = named(plan, "Web-invalidation")
    for waited in ("WebServer-function", "WebImageOptimizer-function", "Web-assets", "Web-distribution"):
        assert named(plan, waited).urn in invalidation.dependencies, waited


@pytest.mark.parametrize(
    "change",
    [
        {"environment": {"FEATURE": "on"}},            # server configuration, no file changed
        {"server": {"memory": 2048}},
        {"image": {"memory": 2048}},                   # the image function's configuration
    ],
)
def test_invalidation_fires_when_a_functions_configuration_changes(
    build: Build, site: Path, change: dict[str, Any]
) -> None:
    def version(**kwargs: Any) -> str:
        return named(prod(build, web(**kwargs)), "Web-invalidation").inputs["version"]

    assert version() == version()  # deterministic: no diff without a change
    assert version(**change) != version()


def test_tag_cache_is_seeded_again_when_the_build_id_changes(build: Build, site: Path) -> None:
    def trigger() -> dict[str, Any]:
        return named(prod(build, web()), "Web-initializer_invocation").inputs["triggers"]

    before = trigger()
    (site / "app/page.js").write_text("export default function Home() { return 'changed'; }\n")
    after = trigger()
    assert before["buildId"] != after["buildId"]
    assert after["buildId"] == build_id_for(source_hash(site, BuildSettings()))


def test_edge_signer_signs_bodies_on_every_server_behaviour_by_default(build: Build, site: Path) -> None:
    plan = prod(build, web(), region="eu-west-1")  # the signer still lives in us-east-1
    dist = distribution(plan)
    signer = named(plan, "NextjsShared-edge_signer")
    for behaviour in server_behaviours(dist):
        assert behaviour["lambdaFunctionAssociations"] == [
            {"eventType": "origin-request", "lambdaArn": behaviour["lambdaFunctionAssociations"][0]["lambdaArn"],
             "includeBody": True}
        ]
        # A qualified ARN (CloudFront takes a version only) of the shared signer.
        function, qualifier = behaviour["lambdaFunctionAssociations"][0]["lambdaArn"].split(":function:")[1].split(":")
        assert function.startswith("NextjsShared-edge_signer") and qualifier
    for behaviour in dist["orderedCacheBehaviors"]:
        if behaviour["targetOriginId"] == "s3":
            assert "lambdaFunctionAssociations" not in behaviour
    assert signer.inputs["publish"] is True
    assert signer.inputs["architectures"] == ["x86_64"]
    assert signer.provider is not None and "aws-us-east-1" in signer.provider
    role = named(plan, "NextjsShared-edge_signer_role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert set(trust["Statement"][0]["Principal"]["Service"]) == {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}
    # The URLs still take only CloudFront's signed requests.
    assert one(plan, "aws:lambda/functionUrl:FunctionUrl", "WebServer-url").inputs["authorizationType"] == "AWS_IAM"


@pytest.mark.parametrize(("protection", "auth"), [("oac", "AWS_IAM"), ("none", "NONE")])
def test_plain_protection_options_have_no_edge_signer(
    build: Build, site: Path, protection: str, auth: str
) -> None:
    plan = prod(build, web(protection=protection))
    assert not [r for r in plan.resources if r.name == "NextjsShared-edge_signer"]
    for behaviour in server_behaviours(distribution(plan)):
        assert "lambdaFunctionAssociations" not in behaviour
    assert one(plan, "aws:lambda/functionUrl:FunctionUrl", "WebServer-url").inputs["authorizationType"] == auth
    oacs = [r for r in plan.resources if r.name == "Web-lambda_access_control"]
    assert len(oacs) == (1 if protection == "oac" else 0)


def test_edge_signer_hashes_the_body_the_way_the_function_url_checks_it(tmp_path: Path) -> None:
    """Runs the edge function's code with Node.js on a CloudFront origin-request event."""
    import hashlib
    import shutil
    import subprocess

    from components.aws.nextjs import EDGE_SIGNER_CODE

    if shutil.which("node") is None:
        pytest.skip("needs Node.js")
    (tmp_path / "index.mjs").write_text(EDGE_SIGNER_CODE)
    body = "1_name=Ada&0=%5B%22%24K1%22%5D"
    script = tmp_path / "run.mjs"
    script.write_text(
        'import { handler } from "./index.mjs";\n'
        "const event = (body) => ({ Records: [{ cf: { request: { method: 'POST', uri: '/hello', headers: {},"
        " body } } }] });\n"
        f"const signed = await handler(event({{ data: Buffer.from({json.dumps(body)}).toString('base64'),"
        " encoding: 'base64', inputTruncated: false }));\n"
        "const truncated = await handler(event({ data: '', encoding: 'base64', inputTruncated: true }));\n"
        "console.log(JSON.stringify({ signed: signed.headers['x-amz-content-sha256'][0].value,"
        " truncated: truncated.status }));\n"
    )
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(result.stdout)
    assert answer == {"signed": hashlib.sha256(body.encode()).hexdigest(), "truncated": "413"}


def test_prod_distribution_logs_its_requests_and_dev_does_not(build: Build, site: Path) -> None:
    plan = prod(build, web(), region="eu-west-1")
    source = one(plan, "aws:cloudwatch/logDeliverySource:LogDeliverySource", "Web-access_log_source")
    assert source.inputs["logType"] == "ACCESS_LOGS"
    assert source.inputs["resourceArn"].startswith("arn:aws:cloudfront::")
    assert named(plan, "Web-distribution").urn in source.dependencies
    group = one(plan, "aws:cloudwatch/logGroup:LogGroup", "Web-access_log_group")
    assert group.inputs["retentionInDays"] == 30
    delivery = one(plan, "aws:cloudwatch/logDelivery:LogDelivery", "Web-access_log_delivery")
    assert delivery.inputs["deliverySourceName"] == source.inputs["name"]
    assert "aws-us-east-1" in (source.provider or "")
    dev = build(web())
    assert not dev.of_type("aws:cloudwatch/logDeliverySource:LogDeliverySource")
    assert build(web(access_logs=True)).of_type("aws:cloudwatch/logDeliverySource:LogDeliverySource")


def test_the_sites_of_a_stage_share_one_cache_policy_and_one_headers_policy(build: Build, site: Path) -> None:
    def body() -> None:
        Nextjs("Web", path="app/web", build="never")
        Nextjs("Admin", path="app/web", build="never")

    plan = prod(build, body)
    policies = plan.of_type("aws:cloudfront/cachePolicy:CachePolicy")
    headers = plan.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    assert len(policies) == 1 and len(headers) == 1
    dists = plan.of_type("aws:cloudfront/distribution:Distribution")
    assert len(dists) == 2
    assert len({d.inputs["defaultCacheBehavior"]["cachePolicyId"] for d in dists}) == 1
    assert len({d.inputs["defaultCacheBehavior"]["responseHeadersPolicyId"] for d in dists}) == 1
    assert len(plan.of_type("aws:lambda/function:Function")) == 2 * 4 + 1  # one edge signer


def test_existing_policies_are_reused_by_id(build: Build, site: Path) -> None:
    plan = prod(build, web(cache_policy_id="cp-123", response_headers_policy_id="rh-456"))
    assert not plan.of_type("aws:cloudfront/cachePolicy:CachePolicy")
    assert not plan.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    for behaviour in server_behaviours(distribution(plan)):
        assert behaviour["cachePolicyId"] == "cp-123"
    assert all(b["responseHeadersPolicyId"] == "rh-456" for b in distribution(plan)["orderedCacheBehaviors"])


def test_more_than_25_cache_behaviours_are_refused_before_any_site_resource(
    build: Build, site: Path, tmp_path: Path
) -> None:
    behaviours = [*REAL_OUTPUT["behaviors"], *({"pattern": f"file{i}.png", "origin": "s3"} for i in range(19))]
    write_app(tmp_path, output(behaviors=behaviours))
    assert len(behaviours) == 25
    assert prod(build, web()).of_type("aws:cloudfront/distribution:Distribution")  # 25 is fine
    write_app(tmp_path, output(behaviors=[*behaviours, {"pattern": "one-more.png", "origin": "s3"}]))
    with pytest.raises(ComponentError, match=r"routes 26 paths .* at most 25 cache behaviours"):
        prod(build, web())


@pytest.mark.parametrize(("stage", "settings", "preload"), [
    ("prod", {}, True), ("dev", {}, False), ("staging", {}, False), ("prod", {"hstsPreload": False}, False),
])
def test_hsts_preload_is_a_deliberate_stage_setting(
    build: Build, site: Path, stage: str, settings: dict[str, Any], preload: bool
) -> None:
    plan = build(web(), stage=stage, **settings)
    headers = one(plan, "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy", "NextjsShared-headers_policy")
    hsts = headers.inputs["securityHeadersConfig"]["strictTransportSecurity"]
    assert hsts["preload"] is preload
    assert hsts["accessControlMaxAgeSec"] == 63072000 and hsts["includeSubdomains"] is True


def test_waf_web_acl_with_managed_rules_and_a_rate_limit(build: Build, site: Path) -> None:
    plan = prod(build, web(waf={"rate_limit": 500}), region="eu-west-1")
    acl = one(plan, "aws:wafv2/webAcl:WebAcl", "Web-web_acl")
    assert acl.inputs["scope"] == "CLOUDFRONT"
    assert "aws-us-east-1" in (acl.provider or "")
    rules = {r["name"]: r for r in acl.inputs["rules"]}
    assert set(rules) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "RateLimitPerIp"}
    assert rules["RateLimitPerIp"]["statement"]["rateBasedStatement"] == {"limit": 500, "aggregateKeyType": "IP"}
    assert distribution(plan)["webAclId"].startswith("arn:aws:wafv2:us-east-1:")
    assert acl.urn in named(plan, "Web-distribution").dependencies
    assert not prod(build, web()).of_type("aws:wafv2/webAcl:WebAcl")


def test_domain_aliases_and_redirects_share_the_certificate_and_get_records(build: Build, site: Path) -> None:
    domain = {"name": DOMAIN, "aliases": [f"shop.{DOMAIN}"], "redirects": [f"www.{DOMAIN}"]}
    plan = prod(build, web(domain=domain))
    dist = distribution(plan)
    assert dist["aliases"] == [DOMAIN, f"shop.{DOMAIN}", f"www.{DOMAIN}"]
    cert = one(plan, "aws:acm/certificate:Certificate", "Web-certificate-site")
    assert cert.inputs["domainName"] == DOMAIN
    assert cert.inputs["subjectAlternativeNames"] == [f"shop.{DOMAIN}", f"www.{DOMAIN}"]
    records = {r.inputs["name"] for r in plan.of_type("aws:route53/record:Record") if r.inputs["type"] == "A"}
    assert {DOMAIN, f"shop.{DOMAIN}", f"www.{DOMAIN}"} <= records
    code = one(plan, "aws:cloudfront/function:Function", "Web-viewer_function").inputs["code"]
    assert f'var REDIRECTS = ["www.{DOMAIN}"];' in code and f'var MAIN_HOST = "{DOMAIN}";' in code


def test_redirect_hosts_answer_308_to_the_main_name_with_path_and_query(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from components.aws.nextjs import DomainOptions

    if shutil.which("node") is None:
        pytest.skip("needs Node.js")
    code = viewer_request_code(DomainOptions(name=DOMAIN, redirects=[f"www.{DOMAIN}"]))
    # CloudFront Functions' `crypto` module is Node's; the handler is a plain function.
    (tmp_path / "fn.mjs").write_text(code + "\nexport { handler };\n")
    (tmp_path / "run.mjs").write_text(
        'import { handler } from "./fn.mjs";\n'
        "const request = (host) => ({ request: { uri: '/a/b', headers: { host: { value: host } },"
        " querystring: { q: { value: '1' }, tag: { value: 'x', multiValue: [{ value: 'x' }, { value: 'y' }] } } } });\n"
        f"const www = handler(request('www.{DOMAIN}'));\n"
        f"const apex = handler(request('{DOMAIN}'));\n"
        "console.log(JSON.stringify({ status: www.statusCode, location: www.headers.location.value,"
        " forwarded: apex.headers['x-forwarded-host'].value }));\n"
    )
    result = subprocess.run(["node", str(tmp_path / "run.mjs")], capture_output=True, text=True, timeout=60,
                            check=True)
    assert json.loads(result.stdout) == {
        "status": 308, "location": f"https://{DOMAIN}/a/b?q=1&tag=x&tag=y", "forwarded": DOMAIN,
    }


def test_a_public_value_known_only_after_deploy_stops_the_plan(build: Build, site: Path) -> None:
    def body() -> None:
        table = Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        Nextjs("Web", path="app/web", build="never", environment={"NEXT_PUBLIC_TABLE": table.name})

    with pytest.raises(ComponentError, match=r"NEXT_PUBLIC_TABLE is not a plain string .* build time"):
        build(body)


def test_public_values_are_build_settings_and_server_only_outputs_are_not(build: Build, site: Path) -> None:
    def trigger(**environment: Any) -> str:
        plan = prod(build, web(environment=environment))
        return named(plan, "Web-initializer_invocation").inputs["triggers"]["buildId"]

    plain = trigger()
    assert trigger(NEXT_PUBLIC_SITE="a") != plain
    assert trigger(NEXT_PUBLIC_SITE="a") != trigger(NEXT_PUBLIC_SITE="b")
    expected = BuildSettings(environment={"NEXT_PUBLIC_SITE": "a"})
    assert trigger(NEXT_PUBLIC_SITE="a") == build_id_for(source_hash(site, expected))


def test_two_sites_of_one_folder_with_different_public_values_each_get_their_own_build(
    build: Build, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    opennext = _stand_in_npx(site, monkeypatch)
    built: list[str] = []

    def fake_build(command: list[str], cwd: Path, env: dict[str, str], **_: Any) -> subprocess.CompletedProcess:
        built.append(env["NEXT_PUBLIC_SITE"])
        write_build(Path(cwd))
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(opennext.subprocess, "run", fake_build)

    def body() -> None:
        Nextjs("Web", path="app/web", environment={"NEXT_PUBLIC_SITE": "web"})
        Nextjs("Admin", path="app/web", environment={"NEXT_PUBLIC_SITE": "admin"})

    plan = build(body)
    assert built == ["web", "admin"]
    directories = {r.name: r.inputs["sources"][0]["directory"] for r in plan.resources if r.name.endswith("-assets")}
    settings = {name: BuildSettings(environment={"NEXT_PUBLIC_SITE": value})
                for name, value in (("Web", "web"), ("Admin", "admin"))}
    assert directories == {
        f"{name}-assets": f"app/web/.harbor/opennext/{source_hash(site, s)[:16]}/.open-next/assets"
        for name, s in settings.items()
    }
    build(body)  # planned again (another stage, another run): both builds are reused
    assert built == ["web", "admin"]


def test_server_options_reach_the_server_function(build: Build, site: Path) -> None:
    layer = "arn:aws:lambda:us-east-1:123456789012:layer:otel:3"
    plan = prod(build, web(server={"memory": 2048, "timeout": 30, "architecture": "x86_64", "layers": [layer]},
                           image={"memory": 3008, "timeout": 40}))
    server = one(plan, "aws:lambda/function:Function", "WebServer-function").inputs
    assert (server["memorySize"], server["timeout"], server["architectures"], server["layers"]) == (
        2048, 30, ["x86_64"], [layer])
    image = one(plan, "aws:lambda/function:Function", "WebImageOptimizer-function").inputs
    assert (image["memorySize"], image["timeout"], image["architectures"]) == (3008, 40, ["arm64"])
    with pytest.raises(ComponentError, match=r"server.layers .* is not a layer version ARN"):
        prod(build, web(server={"layers": ["otel"]}))


@pytest.mark.skipif(
    not (Path(__file__).resolve().parent.parent / "app/web/node_modules").is_dir(),
    reason="the program plans its sites only with `npm ci` in app/web",
)
def test_the_programs_prod_sites_as_the_issue_asks(plan_stage: Callable[..., Plan]) -> None:
    plan = plan_stage("prod")
    assert len(plan.of_type("aws:cloudfront/cachePolicy:CachePolicy")) == 1
    assert len(plan.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")) == 1
    for site in ("Web", "Admin"):
        invalidation = named(plan, f"{site}-invalidation")
        for function in (f"{site}Server-function", f"{site}ImageOptimizer-function"):
            assert named(plan, function).urn in invalidation.dependencies
        dist = one(plan, "aws:cloudfront/distribution:Distribution", f"{site}-distribution").inputs
        assert all(b.get("lambdaFunctionAssociations") for b in server_behaviours(dist))
        source = one(plan, "aws:cloudwatch/logDeliverySource:LogDeliverySource", f"{site}-access_log_source")
        assert named(plan, f"{site}-distribution").urn in source.dependencies
    health = next(r for r in plan.of_type("aws:apigatewayv2/route:Route") if r.inputs["routeKey"] == "GET /health")
    assert health.inputs["authorizationType"] == "NONE"
