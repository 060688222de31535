"""AssetSync against moto S3: uploads, headers, one-object redeploys, late deletion."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.aws.asset_sync import (
    IMMUTABLE,
    REVALIDATE,
    AssetSyncProvider,
    AwsAccess,
    InvalidationProvider,
    SyncSource,
    cache_control,
    content_type,
    files_hash,
)

BUCKET = "harbor-dev-web-assets"
REGION = "us-east-1"


@pytest.fixture
def s3() -> Iterator[Any]:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with mock_aws():
            client = boto3.client("s3", region_name=REGION)
            client.create_bucket(Bucket=BUCKET)
            yield client
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write(root: Path, files: dict[str, bytes | str]) -> None:
    for relative, body in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A build shaped like OpenNext's: assets (with hashed _next/static) and the ISR cache."""
    write(tmp_path / ".open-next/assets", {
        "_next/static/chunks/main-3f2a1b.js": "console.log('main')",
        "_next/static/css/app-9c8d7e.css": "body{margin:0}",
        "_next/static/abcBUILD/_buildManifest.js": "self.__BUILD_MANIFEST={}",
        "harbor.png": b"\x89PNG\r\n\x1a\nfake",
        "favicon.ico": b"\x00\x00\x01\x00",
        "BUILD_ID": "abcBUILD",
    })
    write(tmp_path / ".open-next/cache", {"abcBUILD/index.cache": '{"type":"app"}'})
    return tmp_path


def props(base: Path) -> dict[str, Any]:
    sources = [
        {"directory": ".open-next/assets", "prefix": "_assets", "versioned_subdir": "_next"},
        {"directory": ".open-next/cache", "prefix": "_cache", "cached": False},
    ]
    parsed = [SyncSource.model_validate(s) for s in sources]
    return {
        "bucket": BUCKET,
        "region": REGION,
        "access": AwsAccess(region=REGION).model_dump(),
        "base": str(base),
        "sources": [s.model_dump() for s in parsed],
        "files_hash": files_hash(parsed, base),
    }


def keys(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def deploy(site: Path, olds: dict[str, Any] | None = None) -> dict[str, Any]:
    provider = AssetSyncProvider()
    if olds is None:
        return provider.create(props(site)).outs
    news = props(site)
    assert provider.diff("id", olds, news).changes
    return provider.update("id", olds, news).outs


def test_first_deploy_uploads_every_file_with_content_type_and_cache_headers(s3: Any, site: Path) -> None:
    outs = deploy(site)

    assert outs["uploaded_count"] == 7
    assert keys(s3) == {
        "_assets/_next/static/chunks/main-3f2a1b.js",
        "_assets/_next/static/css/app-9c8d7e.css",
        "_assets/_next/static/abcBUILD/_buildManifest.js",
        "_assets/harbor.png",
        "_assets/favicon.ico",
        "_assets/BUILD_ID",
        "_cache/abcBUILD/index.cache",
    }
    js = s3.head_object(Bucket=BUCKET, Key="_assets/_next/static/chunks/main-3f2a1b.js")
    assert js["ContentType"] == "text/javascript; charset=utf-8"
    assert js["CacheControl"] == "public,max-age=31536000,immutable"
    assert len(js["Metadata"]["sha256"]) == 64
    css = s3.head_object(Bucket=BUCKET, Key="_assets/_next/static/css/app-9c8d7e.css")
    assert css["ContentType"] == "text/css; charset=utf-8"
    assert css["CacheControl"] == IMMUTABLE
    png = s3.head_object(Bucket=BUCKET, Key="_assets/harbor.png")
    assert png["ContentType"] == "image/png"
    assert png["CacheControl"] == "public,max-age=0,s-maxage=31536000,must-revalidate"
    assert s3.head_object(Bucket=BUCKET, Key="_assets/BUILD_ID")["CacheControl"] == REVALIDATE
    # The ISR cache is read by the server function, never served to browsers.
    assert "CacheControl" not in s3.head_object(Bucket=BUCKET, Key="_cache/abcBUILD/index.cache")


def test_second_deploy_with_one_changed_file_uploads_exactly_one_object(s3: Any, site: Path) -> None:
    first = deploy(site)
    before = s3.head_object(Bucket=BUCKET, Key="_assets/harbor.png")["LastModified"]
    write(site / ".open-next/assets", {"_next/static/css/app-9c8d7e.css": "body{margin:1px}"})

    second = deploy(site, first)

    assert second["uploaded_count"] == 1
    assert second["files_hash"] != first["files_hash"]
    body = s3.get_object(Bucket=BUCKET, Key="_assets/_next/static/css/app-9c8d7e.css")["Body"].read()
    assert body == b"body{margin:1px}"
    assert s3.head_object(Bucket=BUCKET, Key="_assets/harbor.png")["LastModified"] == before


def test_unchanged_build_has_no_diff_and_nothing_to_upload(s3: Any, site: Path) -> None:
    first = deploy(site)
    assert not AssetSyncProvider().diff("id", first, props(site)).changes


def test_deleted_files_stay_until_the_next_sync_after_the_new_version_is_live(s3: Any, site: Path) -> None:
    first = deploy(site)
    old_chunk = "_assets/_next/static/chunks/main-3f2a1b.js"
    (site / ".open-next/assets/_next/static/chunks/main-3f2a1b.js").unlink()
    write(site / ".open-next/assets", {"_next/static/chunks/main-77aa00.js": "console.log('v2')"})

    second = deploy(site, first)
    # The deploy that drops the file leaves it for browsers still on the previous HTML.
    assert old_chunk in keys(s3)
    assert second["retired"] == [old_chunk]
    assert second["deleted_count"] == 0
    # A retired file alone is no change: the next deploy of the same build shows no diff.
    assert not AssetSyncProvider().diff("id", second, props(site)).changes

    # The next sync that happens anyway (here a new page) removes it.
    write(site / ".open-next/assets", {"about.html": "<p>about</p>"})
    third = deploy(site, second)
    assert old_chunk not in keys(s3)
    assert third["deleted_count"] == 1
    assert third["uploaded_count"] == 1
    assert third["retired"] == []
    assert "_assets/_next/static/chunks/main-77aa00.js" in keys(s3)
    assert not AssetSyncProvider().diff("id", third, props(site)).changes


def test_objects_deleted_by_hand_are_noticed_and_put_back(s3: Any, site: Path) -> None:
    first = deploy(site)
    s3.delete_object(Bucket=BUCKET, Key="_assets/harbor.png")
    s3.delete_object(Bucket=BUCKET, Key="_cache/abcBUILD/index.cache")
    news = props(site)
    assert AssetSyncProvider().diff("id", first, news).changes  # the preview shows it
    second = AssetSyncProvider().update("id", first, news).outs
    assert second["uploaded_count"] == 2
    assert {"_assets/harbor.png", "_cache/abcBUILD/index.cache"} <= keys(s3)
    assert not AssetSyncProvider().diff("id", second, props(site)).changes


def test_an_unreadable_bucket_does_not_fail_the_preview(s3: Any, site: Path) -> None:
    first = deploy(site)
    gone = {**first, "bucket": "no-such-bucket-harbor"}
    assert not AssetSyncProvider().diff("id", gone, {**props(site), "bucket": "no-such-bucket-harbor"}).changes


def test_a_retired_file_that_comes_back_is_kept(s3: Any, site: Path) -> None:
    first = deploy(site)
    icon = site / ".open-next/assets/favicon.ico"
    saved = icon.read_bytes()
    icon.unlink()
    second = deploy(site, first)
    icon.write_bytes(saved)
    third = deploy(site, second)
    assert "_assets/favicon.ico" in keys(s3)
    assert third["deleted_count"] == 0


def test_delete_removes_every_synced_file(s3: Any, site: Path) -> None:
    outs = deploy(site)
    AssetSyncProvider().delete("id", outs)
    assert keys(s3) == set()


def test_missing_build_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist; build the site first"):
        files_hash([{"directory": "nope"}], tmp_path)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a/page.html", "text/html; charset=utf-8"),
        ("a/data.json", "application/json; charset=utf-8"),
        ("font.woff2", "font/woff2"),
        ("logo.svg", "image/svg+xml; charset=utf-8"),
        ("BUILD_ID", "application/octet-stream"),
    ],
)
def test_content_types_follow_the_extension(key: str, expected: str) -> None:
    assert content_type(key) == expected


def test_only_static_files_under_the_versioned_folder_are_immutable() -> None:
    source = SyncSource(directory="x", prefix="_assets", versioned_subdir="_next")
    assert cache_control("_assets/_next/static/x.js", source) == IMMUTABLE
    assert cache_control("_assets/_next/image.png", source) == REVALIDATE
    assert cache_control("_assets/static/x.js", source) == REVALIDATE


class FakeCloudFront:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create_invalidation(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Invalidation": {"Id": f"I{len(self.calls)}"}}


def fake_cloudfront(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeCloudFront, list[AwsAccess]]:
    cloudfront = FakeCloudFront()
    used: list[AwsAccess] = []

    class Session:
        def __init__(self, access: AwsAccess) -> None:
            used.append(access)

        def client(self, service: str, **_: Any) -> FakeCloudFront:
            assert service == "cloudfront"
            return cloudfront

    monkeypatch.setattr(AwsAccess, "session", lambda self: Session(self))
    return cloudfront, used


def test_invalidation_runs_once_per_version_with_the_stage_access(monkeypatch: pytest.MonkeyPatch) -> None:
    cloudfront, used = fake_cloudfront(monkeypatch)
    access = AwsAccess(region="eu-west-1", profile="harbor-prod")
    provider = InvalidationProvider()
    props_ = {"distribution_id": "E1", "version": "v1" * 20, "paths": ["/*"], "wait": False,
              "access": access.model_dump()}
    outs = provider.create(props_).outs
    assert outs["invalidation_id"] == "I1"
    assert used == [access]
    assert cloudfront.calls[0]["InvalidationBatch"]["Paths"] == {"Quantity": 1, "Items": ["/*"]}
    assert not provider.diff("I1", outs, props_).changes
    assert provider.diff("I1", outs, {**props_, "version": "v2"}).changes


def test_every_invalidation_request_has_its_own_caller_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudFront ignores a caller reference it has seen: a rollback must still invalidate."""
    cloudfront, _ = fake_cloudfront(monkeypatch)
    provider = InvalidationProvider()
    v1 = {"distribution_id": "E1", "version": "a" * 32, "paths": ["/*"], "wait": False, "access": None}
    v2 = {**v1, "version": "b" * 32}
    provider.create(v1)
    provider.update("I1", v1, v2)
    provider.update("I2", v2, v1)  # back to the first version
    references = [c["InvalidationBatch"]["CallerReference"] for c in cloudfront.calls]
    assert len(set(references)) == 3
    assert references[0].startswith("harbor-aaaaaaaaaaaaaaaa-") and references[2].startswith("harbor-aaaa")


@pytest.fixture
def aws_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A shared config/credentials pair with one profile, as `aws configure` writes it."""
    (tmp_path / "credentials").write_text(
        "[harbor-stage]\naws_access_key_id = AKIAPROFILEKEY000000\naws_secret_access_key = secret\n"
    )
    (tmp_path / "config").write_text("[profile harbor-stage]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    return "harbor-stage"


def test_sync_acts_with_the_stage_providers_region_profile_and_role(
    s3: Any, site: Path, aws_profile: str
) -> None:
    access = AwsAccess(region="eu-west-1", profile=aws_profile,
                       role_arn="arn:aws:iam::123456789012:role/deploy", session_name="harbor-dev")
    session = access.session()
    credentials = session.get_credentials()
    assert session.region_name == "eu-west-1"  # not the profile's or the environment's region
    assert credentials.access_key != "AKIAPROFILEKEY000000" and credentials.token  # the assumed role's
    assert AwsAccess(region="eu-west-1", profile=aws_profile).session().get_credentials().access_key == (
        "AKIAPROFILEKEY000000"
    )
    outs = AssetSyncProvider().create({**props(site), "region": "eu-west-1", "access": access.model_dump()}).outs
    assert outs["uploaded_count"] == len(outs["manifest"])
    assert "_assets/BUILD_ID" in keys(s3)


def test_access_follows_the_stage_settings() -> None:
    from stages import StageConfig

    stage = StageConfig(name="prod", app="harbor", region="eu-west-1", aws_profile="harbor-prod",
                        aws_assume_role={"role_arn": "arn:aws:iam::123456789012:role/deploy",
                                         "external_id": "ext-1"})
    assert AwsAccess.for_stage(stage) == AwsAccess(
        region="eu-west-1", profile="harbor-prod", role_arn="arn:aws:iam::123456789012:role/deploy",
        external_id="ext-1",
    )
    assert AwsAccess.for_stage(stage, "us-east-1").region == "us-east-1"
    # States written before access was recorded still load.
    assert AwsAccess.from_props({"region": "us-east-1"}) == AwsAccess(region="us-east-1")


@pytest.mark.parametrize("provider_class", [AssetSyncProvider, InvalidationProvider])
def test_providers_are_stored_by_their_module_path(provider_class: type) -> None:
    """Pulumi keeps a dynamic provider in the state as a pickle naming its module and class."""
    import base64

    import dill
    from pulumi.dynamic.dynamic import serialize_provider

    stored = base64.b64decode(serialize_provider(provider_class()))
    assert b"components.aws.asset_sync" in stored and provider_class.__name__.encode() in stored
    assert b"def _run" not in stored and len(stored) < 1000  # a reference, not a copy of the code
    assert type(dill.loads(stored)) is provider_class
    # Stacks deployed before the components moved under components/aws/ name the old module.
    old_reference = f"ccomponents.asset_sync\n{provider_class.__name__}\n.".encode()  # pickle's GLOBAL opcode
    assert dill.loads(old_reference) is provider_class


def test_the_stage_provider_and_the_asset_sync_share_profile_and_role(build: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from opennext_fixture import write_app

    from components.aws.nextjs import Nextjs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARBOR_CACHE_DIR", str(tmp_path / ".build"))
    write_app(tmp_path)
    role = {"roleArn": "arn:aws:iam::123456789012:role/deploy", "externalId": "ext-1"}
    plan = build(lambda: Nextjs("Web", path="app/web", build="never"), stage="dev", region="eu-west-1",
                 awsProfile="harbor-dev", awsAssumeRole=role)
    providers = {r.name: r.inputs for r in plan.resources if r.type == "pulumi:providers:aws"}
    for name in ("aws", "aws-us-east-1"):
        assert providers[name]["profile"] == "harbor-dev"
        assert json.loads(providers[name]["assumeRoles"])[0]["roleArn"] == role["roleArn"]
    sync = next(r for r in plan.resources if r.name == "Web-assets").inputs
    assert sync["access"] == {"region": "eu-west-1", "profile": "harbor-dev", "role_arn": role["roleArn"],
                              "external_id": "ext-1", "session_name": "harbor-deploy"}
    invalidation = next(r for r in plan.resources if r.name == "Web-invalidation").inputs
    assert invalidation["access"] == sync["access"]
