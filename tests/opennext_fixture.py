"""A small synthetic OpenNext build, shaped like the real one of app/web (OpenNext 4.1.12).

Tests of the Nextjs component use it instead of running Next.js: the output file has
the real build's structure (origins s3/default/imageOptimizer, the same behaviours,
the additional functions), and each bundle folder holds a handler file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

# open-next.output.json of app/web, as OpenNext 4.1.12 wrote it.
REAL_OUTPUT: dict[str, Any] = {
    "edgeFunctions": {},
    "origins": {
        "s3": {
            "type": "s3",
            "originPath": "_assets",
            "copy": [
                {"from": ".open-next/assets", "to": "_assets", "cached": True, "versionedSubDir": "_next"},
                {"from": ".open-next/cache", "to": "_cache", "cached": False},
            ],
        },
        "imageOptimizer": {
            "type": "function",
            "handler": "index.handler",
            "bundle": ".open-next/image-optimization-function",
            "streaming": False,
            "imageLoader": "s3",
            "wrapper": "aws-lambda",
            "converter": "aws-apigw-v2",
        },
        "default": {
            "type": "function",
            "handler": "index.handler",
            "bundle": ".open-next/server-functions/default",
            "streaming": True,  # app/web's open-next.config.ts asks for the streaming wrapper
            "wrapper": "aws-lambda-streaming",
            "converter": "aws-apigw-v2",
            "queue": "sqs",
            "incrementalCache": "s3",
            "tagCache": "dynamodb",
        },
    },
    "behaviors": [
        {"pattern": "_next/image*", "origin": "imageOptimizer"},
        {"pattern": "_next/data/*", "origin": "default"},
        {"pattern": "*", "origin": "default"},
        {"pattern": "BUILD_ID", "origin": "s3"},
        {"pattern": "_next/*", "origin": "s3"},
        {"pattern": "harbor.png", "origin": "s3"},
    ],
    "additionalProps": {
        "warmer": {"handler": "index.handler", "bundle": ".open-next/warmer-function"},
        "initializationFunction": {"handler": "index.handler", "bundle": ".open-next/dynamodb-provider"},
        "revalidationFunction": {"handler": "index.handler", "bundle": ".open-next/revalidation-function"},
    },
}

PACKAGE_JSON = {
    "name": "fixture-web",
    "private": True,
    "dependencies": {"next": "15.5.28", "react": "19.3.1", "react-dom": "19.3.1"},
}


def output(**changes: Any) -> dict[str, Any]:
    """A copy of the real output with top-level keys replaced."""
    data = copy.deepcopy(REAL_OUTPUT)
    data.update(changes)
    return data


def write_sources(app: Path) -> None:
    """package.json, lockfile and pages: a folder ``check_app`` accepts."""
    (app / "app").mkdir(parents=True, exist_ok=True)
    (app / "package.json").write_text(json.dumps(PACKAGE_JSON))
    (app / "package-lock.json").write_text('{"lockfileVersion": 3}')
    (app / "app/page.js").write_text("export default function Home() { return 'hi'; }\n")


def write_build(app: Path, data: dict[str, Any] | None = None) -> None:
    """The .open-next folder: output file, bundles with handlers, assets and cache."""
    data = REAL_OUTPUT if data is None else data
    out = app / ".open-next"
    out.mkdir(parents=True, exist_ok=True)
    (out / "open-next.output.json").write_text(json.dumps(data))
    bundles = [o["bundle"] for o in data["origins"].values() if o.get("type") == "function"]
    bundles += [p["bundle"] for p in (data.get("additionalProps") or {}).values() if p]
    for bundle in bundles:
        (app / bundle).mkdir(parents=True, exist_ok=True)
        (app / bundle / "index.mjs").write_text("export const handler = async () => ({});\n")
    (out / "dynamodb-provider/dynamodb-cache.json").write_text("[]")
    static = out / "assets/_next/static/chunks"
    static.mkdir(parents=True, exist_ok=True)
    (static / "main-3f2a1b.js").write_text("console.log('main')")
    (out / "assets/BUILD_ID").write_text("fixture")
    (out / "assets/harbor.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (out / "cache/fixture").mkdir(parents=True, exist_ok=True)
    (out / "cache/fixture/index.cache").write_text("{}")


def write_app(root: Path, data: dict[str, Any] | None = None, *, built: bool = True) -> Path:
    """``root/app/web`` with sources and (unless ``built=False``) a build."""
    app = root / "app/web"
    write_sources(app)
    if built:
        write_build(app, data)
    return app
