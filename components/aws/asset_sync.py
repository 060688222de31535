"""AssetSync: one resource that syncs build folders to S3, plus a CloudFront invalidation.

Both are Pulumi dynamic resources whose work is done with boto3 when Pulumi creates
or updates them; under ``infra plan`` (mocks) only their inputs are recorded.

They act on the same account as the stage's AWS provider: ``access``
(:class:`AwsAccess`) carries the provider's region, profile and assumed role, and
boto3 gets a session built from them rather than its default credential chain. The
provider classes stay at ``components.aws.asset_sync.AssetSyncProvider`` and
``InvalidationProvider``: Pulumi stores a dynamic provider in the state by reference
to its module and class, so moving them would break every existing stack.

Example::

    sync = AssetSync(
        "Web-assets",
        bucket=assets_bucket.bucket,
        access=AwsAccess.for_stage(stage),
        sources=[
            {"directory": ".open-next/assets", "prefix": "_assets", "versioned_subdir": "_next"},
            {"directory": ".open-next/cache", "prefix": "_cache", "cached": False},
        ],
        opts=pulumi.ResourceOptions(parent=site),
    )
    Invalidation("Web-invalidation", distribution_id=dist.id, version=sync.files_hash, ...)

What a deploy does:

* every file is hashed (SHA-256); a file is uploaded only when its key is new, its hash
  differs from the manifest kept in the resource's state, or the object is gone from
  the bucket, so a deploy that changes one file uploads one object. Nothing is done per
  file in Pulumi itself: one resource, however many files.
* objects deleted by hand are noticed: every preview and deploy lists the bucket's
  prefixes (one ListObjectsV2 call per 1,000 keys) and reports a change when a key of
  the manifest is missing; the update puts it back.
* ``Content-Type`` comes from the extension (UTF-8 for text). ``Cache-Control``: files
  under ``<prefix>/<versioned_subdir>/static/`` carry a content hash in their names, so
  they are ``public,max-age=31536000,immutable``; every other served file is
  ``public,max-age=0,s-maxage=31536000,must-revalidate`` (browsers revalidate, CloudFront
  keeps it until the deploy's invalidation). Sources with ``cached=False`` (OpenNext's
  ISR cache, read by the server, never by browsers) get no Cache-Control.
* stale files are removed one deploy late. A file the new build no longer has is
  recorded as *retired* and deleted on the **next** deploy, not this one: during this
  deploy the distribution and server function switch over only after the upload, and
  browsers holding the previous HTML still ask for the previous hashed chunks for a
  while after that. Deleting one deploy later means the version that referenced a file
  has been replaced and live for a full deploy cycle before the file goes. A file that
  comes back in a later build is simply un-retired. The cleanup rides on the next sync
  that happens anyway (a changed or missing file): retired files alone never make a
  deploy report a change.

Each invalidation carries a caller reference unique to that request: CloudFront
silently ignores a reference it has seen, so a version-derived one would leave a
rolled-back site cached.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult
from pydantic import BaseModel, ConfigDict, Field, field_validator

IMMUTABLE = "public,max-age=31536000,immutable"
REVALIDATE = "public,max-age=0,s-maxage=31536000,must-revalidate"
HASH_METADATA = "sha256"  # stored on each object too, so the bucket itself shows what a key holds
UPLOAD_THREADS = 16

# Types mimetypes gets wrong or does not know on a bare container image.
_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".webmanifest": "application/manifest+json",
    ".rsc": "text/x-component",
    ".wasm": "application/wasm",
}
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
               "image/svg+xml", "application/manifest+json")


class SyncSource(BaseModel):
    """One local folder copied under one key prefix of the bucket."""

    model_config = ConfigDict(extra="forbid")

    directory: str = Field(description="local folder, relative to the program folder or absolute")
    prefix: str = Field("", description="key prefix in the bucket, without slashes at the ends")
    cached: bool = Field(True, description="served to browsers through CloudFront (sets Cache-Control)")
    versioned_subdir: str | None = Field(
        None, description="sub-folder whose static/ files have hashed names (immutable caching)"
    )

    @field_validator("prefix", "versioned_subdir")
    @classmethod
    def _strip_slashes(cls, value: str | None) -> str | None:
        return value.strip("/") if value is not None else None


class AwsAccess(BaseModel):
    """Where and as whom boto3 acts: the stage provider's region, profile and assumed role.

    Example::

        AwsAccess(region="eu-west-1", profile="harbor-prod",
                  role_arn="arn:aws:iam::123456789012:role/deploy")
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(description="the AWS region")
    profile: str | None = Field(None, description="a profile of the shared AWS config files")
    role_arn: str | None = Field(None, description="a role to assume first")
    external_id: str | None = Field(None, description="the external id the role's trust asks for")
    session_name: str = Field("harbor-deploy", description="the assumed role's session name")

    @classmethod
    def for_stage(cls, stage: Any, region: str | None = None) -> AwsAccess:
        """The access of the stage's provider (see ``components.core.context``) in ``region``."""
        role = getattr(stage, "aws_assume_role", None)
        return cls(
            region=region or stage.region,
            profile=getattr(stage, "aws_profile", None),
            role_arn=getattr(role, "role_arn", None),
            external_id=getattr(role, "external_id", None),
            session_name=getattr(role, "session_name", None) or "harbor-deploy",
        )

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> AwsAccess:
        """The access recorded in a resource's state; older states only hold ``region``."""
        recorded = props.get("access")
        return cls.model_validate(recorded) if recorded else cls(region=props["region"])

    def session(self) -> Any:
        """A boto3 session with exactly this access (never boto3's default region)."""
        import boto3  # only deploys need boto3; plans never reach this

        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        if not self.role_arn:
            return session
        request: dict[str, Any] = {"RoleArn": self.role_arn, "RoleSessionName": self.session_name}
        if self.external_id:
            request["ExternalId"] = self.external_id
        credentials = session.client("sts", region_name=self.region).assume_role(**request)["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.region,
        )


def content_type(key: str) -> str:
    """The Content-Type S3 should serve ``key`` with (UTF-8 for text)."""
    suffix = os.path.splitext(key)[1].lower()
    kind = _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    if kind.startswith(_TEXT_TYPES):
        return f"{kind}; charset=utf-8"
    return kind


def cache_control(key: str, source: SyncSource) -> str | None:
    """Cache-Control for ``key``: immutable for hashed build files, revalidated otherwise."""
    if not source.cached:
        return None
    versioned = "/".join(p for p in (source.prefix, source.versioned_subdir, "static") if p) + "/"
    if source.versioned_subdir and key.startswith(versioned):
        return IMMUTABLE
    return REVALIDATE


@dataclass(frozen=True)
class LocalFile:
    key: str
    path: Path
    sha256: str
    source: SyncSource


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan(sources: Sequence[SyncSource], base: Path | None = None) -> dict[str, LocalFile]:
    """Every file of every source by bucket key, hashed. A later source wins a shared key."""
    found: dict[str, LocalFile] = {}
    for source in sources:
        root = Path(source.directory)
        if not root.is_absolute() and base is not None:
            root = base / root
        if not root.is_dir():
            raise FileNotFoundError(f"asset folder {root} does not exist; build the site first")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            key = f"{source.prefix}/{relative}" if source.prefix else relative
            found[key] = LocalFile(key, path, _file_hash(path), source)
    return found


def files_hash(sources: Sequence[SyncSource | Mapping[str, Any]], base: Path | None = None) -> str:
    """One hash over every key and content hash: changes exactly when an upload is due."""
    parsed = [SyncSource.model_validate(s) if not isinstance(s, SyncSource) else s for s in sources]
    digest = hashlib.sha256()
    for key, local in sorted(scan(parsed, base).items()):
        digest.update(f"{key}\0{local.sha256}\0{cache_control(key, local.source)}\n".encode())
    return digest.hexdigest()


@dataclass
class SyncResult:
    """What one sync did, and the state to keep for the next one."""

    manifest: dict[str, str]
    retired: list[str]
    uploaded: list[str]
    deleted: list[str]


def sync(
    s3: Any,
    bucket: str,
    sources: Sequence[SyncSource],
    *,
    previous: Mapping[str, str] | None = None,
    retired: Iterable[str] = (),
    base: Path | None = None,
    missing: Iterable[str] = (),
) -> SyncResult:
    """Upload what changed since ``previous`` and delete what an earlier deploy retired.

    ``previous`` is the manifest (key -> SHA-256) the last deploy left; ``retired`` the
    keys it stopped using; ``missing`` keys of it the bucket no longer holds. Returns the
    new manifest and the keys this deploy retires.
    """
    previous = dict(previous or {})
    gone = set(missing)
    local = scan(sources, base)
    changed = [
        f for key, f in sorted(local.items()) if previous.get(key) != f.sha256 or key in gone
    ]

    def upload(item: LocalFile) -> str:
        extra: dict[str, Any] = {
            "ContentType": content_type(item.key),
            "Metadata": {HASH_METADATA: item.sha256},
        }
        control = cache_control(item.key, item.source)
        if control:
            extra["CacheControl"] = control
        with item.path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=item.key, Body=body, **extra)
        return item.key

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        uploaded = list(pool.map(upload, changed))

    # Only what the previous deploy retired, and only if this build did not bring it back.
    doomed = sorted(key for key in set(retired) if key not in local)
    for start in range(0, len(doomed), 1000):  # DeleteObjects takes at most 1000 keys
        batch = doomed[start : start + 1000]
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
    newly_retired = sorted(key for key in previous if key not in local)
    return SyncResult(
        manifest={key: f.sha256 for key, f in sorted(local.items())},
        retired=newly_retired,
        uploaded=uploaded,
        deleted=doomed,
    )


def _s3_client(access: AwsAccess) -> Any:
    return access.session().client("s3", region_name=access.region)


def missing_keys(s3: Any, bucket: str, manifest: Mapping[str, str]) -> list[str]:
    """Keys of ``manifest`` the bucket no longer holds (deleted by hand, lifecycle rules)."""
    if not manifest:
        return []
    prefixes = sorted({key.split("/", 1)[0] + "/" if "/" in key else "" for key in manifest})
    present: set[str] = set()
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            present.update(item["Key"] for item in page.get("Contents", []))
    return sorted(key for key in manifest if key not in present)


class AssetSyncProvider(ResourceProvider):
    """The dynamic provider behind :class:`AssetSync` (see the module docs for the rules)."""

    def _run(self, props: Mapping[str, Any], olds: Mapping[str, Any] | None) -> dict[str, Any]:
        sources = [SyncSource.model_validate(s) for s in props["sources"]]
        base = Path(props.get("base") or os.getcwd())
        s3 = _s3_client(AwsAccess.from_props(props))
        old_manifest: dict[str, str] = {}
        old_retired: list[str] = []
        if olds and olds.get("bucket") == props["bucket"]:
            old_manifest = dict(olds.get("manifest") or {})
            old_retired = list(olds.get("retired") or [])
        result = sync(
            s3, props["bucket"], sources,
            previous=old_manifest, retired=old_retired, base=base,
            missing=missing_keys(s3, props["bucket"], old_manifest),
        )
        return {
            **props,
            "manifest": result.manifest,
            "retired": result.retired,
            "uploaded_count": len(result.uploaded),
            "deleted_count": len(result.deleted),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._run(props, None)
        return CreateResult(id_=f"{props['bucket']}-assets", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("bucket", "sources", "files_hash", "region", "access")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        if not changed and self._objects_missing(olds):
            changed = ["manifest"]
        # Retired files alone are no change: they go with the next sync that happens anyway.
        return DiffResult(
            changes=bool(changed),
            replaces=["bucket"] if "bucket" in changed else [],
            delete_before_replace=False,
        )

    @staticmethod
    def _objects_missing(olds: Mapping[str, Any]) -> bool:
        """True when a synced object is gone from the bucket (checked on every preview)."""
        manifest = olds.get("manifest") or {}
        if not manifest:
            return False
        try:
            s3 = _s3_client(AwsAccess.from_props(olds))
            return bool(missing_keys(s3, olds["bucket"], manifest))
        except Exception as error:  # a preview must not fail because a listing did
            print(f"asset sync: could not list {olds.get('bucket')}: {error}", file=sys.stderr)
            return False

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._run(news, olds))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        keys = sorted(set(props.get("manifest") or {}) | set(props.get("retired") or []))
        s3 = _s3_client(AwsAccess.from_props(props))
        try:
            for start in range(0, len(keys), 1000):
                s3.delete_objects(
                    Bucket=props["bucket"],
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
                )
        except s3.exceptions.NoSuchBucket:
            pass  # the bucket went first: nothing left to clean


class AssetSync(pulumi.dynamic.Resource):
    """Syncs ``sources`` into ``bucket``; see the module docs.

    Outputs: ``files_hash`` (changes when any served file changes: key an invalidation
    on it), ``manifest``, ``retired``.
    """

    files_hash: pulumi.Output[str]
    manifest: pulumi.Output[dict[str, str]]
    retired: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        bucket: pulumi.Input[str],
        access: AwsAccess,
        sources: Sequence[SyncSource | Mapping[str, Any]],
        base: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        parsed = [SyncSource.model_validate(s) if not isinstance(s, SyncSource) else s for s in sources]
        root = Path(base) if base else Path.cwd()
        super().__init__(
            AssetSyncProvider(),
            name,
            {
                "bucket": bucket,
                "region": access.region,
                "access": access.model_dump(),
                "sources": [s.model_dump() for s in parsed],
                # Relative folders resolve against the program folder at deploy time too;
                # kept relative to it, so checkouts in other folders register the same input.
                "base": os.path.relpath(root) if root.resolve().is_relative_to(Path.cwd().resolve()) else str(root),
                "files_hash": files_hash(parsed, root),
                "manifest": None,
                "retired": None,
            },
            opts,
        )


class InvalidationProvider(ResourceProvider):
    """Creates one CloudFront invalidation per change of ``version``."""

    def _invalidate(self, props: Mapping[str, Any]) -> dict[str, Any]:
        access = AwsAccess.from_props(props) if props.get("access") else AwsAccess(region="us-east-1")
        client = access.session().client("cloudfront")
        paths = list(props["paths"])
        answer = client.create_invalidation(
            DistributionId=props["distribution_id"],
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                # Unique per request: CloudFront ignores a reference it has already seen,
                # which a rollback to an earlier version would otherwise repeat.
                "CallerReference": f"harbor-{props['version'][:16]}-{uuid.uuid4().hex}",
            },
        )
        if props.get("wait", False):
            client.get_waiter("invalidation_completed").wait(
                DistributionId=props["distribution_id"], Id=answer["Invalidation"]["Id"]
            )
        return {**props, "invalidation_id": answer["Invalidation"]["Id"]}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._invalidate(props)
        return CreateResult(id_=outs["invalidation_id"], outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = any(olds.get(k) != news.get(k) for k in ("distribution_id", "version", "paths", "access"))
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._invalidate(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """An invalidation cannot be undone and needs no cleanup."""


class Invalidation(pulumi.dynamic.Resource):
    """Invalidates ``paths`` of a distribution whenever ``version`` changes."""

    invalidation_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        distribution_id: pulumi.Input[str],
        version: pulumi.Input[str],
        access: AwsAccess | None = None,
        paths: Sequence[str] = ("/*",),
        wait: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            InvalidationProvider(),
            name,
            {
                "distribution_id": distribution_id,
                "access": access.model_dump() if access else None,
                "version": version,
                "paths": list(paths),
                "wait": wait,
                "invalidation_id": None,
            },
            opts,
        )
