"""AssetSync against moto S3: uploads, headers, one-object redeploys, late deletion."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.asset_sync import (
    IMMUTABLE,
    REVALIDATE,
    AssetSyncProvider,
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


def test_deleted_files_stay_until_the_next_deploy_after_the_new_version_is_live(s3: Any, site: Path) -> None:
    first = deploy(site)
    old_chunk = "_assets/_next/static/chunks/main-3f2a1b.js"
    (site / ".open-next/assets/_next/static/chunks/main-3f2a1b.js").unlink()
    write(site / ".open-next/assets", {"_next/static/chunks/main-77aa00.js": "console.log('v2')"})

    second = deploy(site, first)
    # The deploy that drops the file leaves it for browsers still on the previous HTML.
    assert old_chunk in keys(s3)
    assert second["retired"] == [old_chunk]
    assert second["deleted_count"] == 0

    # The next deploy, with the second version live, removes it; nothing else changed.
    third = deploy(site, second)
    assert old_chunk not in keys(s3)
    assert third["deleted_count"] == 1
    assert third["uploaded_count"] == 0
    assert "_assets/_next/static/chunks/main-77aa00.js" in keys(s3)
    assert not AssetSyncProvider().diff("id", third, props(site)).changes


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


def test_invalidation_runs_once_per_version_against_cloudfront(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    class FakeCloudFront:
        def create_invalidation(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs)
            return {"Invalidation": {"Id": "I123"}}

    provider = InvalidationProvider()
    props_ = {"distribution_id": "E1", "version": "v1" * 20, "paths": ["/*"], "wait": False}
    monkeypatch.setattr(boto3, "client", lambda *a, **k: FakeCloudFront())
    outs = provider.create(props_).outs
    assert outs["invalidation_id"] == "I123"
    assert calls[0]["InvalidationBatch"]["Paths"] == {"Quantity": 1, "Items": ["/*"]}
    assert not provider.diff("I123", outs, props_).changes
    assert provider.diff("I123", outs, {**props_, "version": "v2"}).changes
