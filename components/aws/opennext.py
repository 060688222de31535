"""OpenNext: build a Next.js app for AWS and read what the build produced.

``prepare_build(app_dir, mode, settings)`` (on the command line: ``infra build-site
app/web``) returns a validated :class:`OpenNextBuild`, running
``npx --yes @opennextjs/aws@<version> build`` in the app folder when needed.

Example::

    build = prepare_build(Path("app/web"))            # mode "auto"
    build.output.behaviors[0].pattern                 # "_next/image*"
    build.path(build.output.origins["default"].bundle)
    # app/web/.harbor/opennext/<hash>/.open-next/server-functions/default

Where do builds go? Each build is kept by its *source hash* (every app file except
``node_modules``/``.next``/``.open-next``/``.harbor``, the lockfile included, plus the
:class:`BuildSettings`: OpenNext version, build command, build-time environment such as
``NEXT_PUBLIC_*``) in ``<app>/.harbor/opennext/<first 16 hex digits>/.open-next``,
stamped with the full hash and the settings. Two stages (or two programs) building
one app folder with different public values each keep their own build, so switching
between them never rebuilds; the :data:`KEPT_BUILDS` most recently used stay.

When does it build? (``mode``)

* ``"auto"`` (default): reuse the build of the current source hash when there is one;
  otherwise build. A changed page, lockfile or public value builds, an unchanged app
  plans in milliseconds.
* ``"always"``: build every time. ``"never"``: use the build of the current source hash,
  else one made elsewhere in the app's own ``.open-next`` (OpenNext run by hand); with
  neither it is an error.

An app whose dependencies are not installed (no ``node_modules``) cannot be built.
A deploy stops with a message to run ``npm ci``; an offline plan (``infra plan`` on a
fresh clone, which the README promises works without Node) gets ``None`` and the
Nextjs component skips the site with a visible warning instead of inventing a
build. Every failure (missing or broken app folder, failed build, missing or
malformed output) raises :class:`OpenNextError` before any resource is registered.

Same sources, same build. Next.js normally picks a random build id, random draft-mode
keys and a random server-action key on every clean build, so every CI run would ship
new archives, new asset paths and an emptied ISR cache. Here all three follow the
source hash, without touching the app's ``next.config``:

* the build id: Next.js takes it from ``generateBuildId`` in the config, whose default
  (in ``next/dist/server/config-shared``) returns null for "random". A preload script
  (``NODE_OPTIONS=--require``) makes that default return ``HARBOR_NEXT_BUILD_ID``; an
  app that sets its own ``generateBuildId`` keeps it.
* the server-action key: Next.js reads ``NEXT_SERVER_ACTIONS_ENCRYPTION_KEY``.
* the draft-mode keys: drawn by ``next/dist/build/preview-key-utils``, which the same
  preload replaces with keys from ``HARBOR_NEXT_PREVIEW_KEYS``.
* the folder: webpack's module ids and Next.js's server-action ids hash absolute paths,
  so the build runs in a fixed folder, ``/tmp/harbor-opennext/<app folder name>`` (the
  sources copied, ``node_modules`` hard-linked), and its ``.open-next`` is moved back.
* the module ids: webpack's "deterministic" ids hash each module's name, but settle two
  names hashing alike in module-graph order, which follows the order Next.js's parallel
  entry additions finish; now and then two ids in a server chunk came out swapped. The
  preload wraps ``next/dist/build/webpack-config`` so every compilation (client, server,
  edge) assigns ids with a plugin that sorts modules by name first.

The two keys protect draft-mode cookies and values closed over by server actions, so
they are derived (HMAC-SHA256) from ``HARBOR_NEXT_BUILD_SECRET`` when the environment
sets it (CI sets it from a secret; the same secret on every machine keeps builds
identical); without it they follow the source hash alone, which anyone holding the
sources can recompute.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.core.base import ComponentError

OPENNEXT_VERSION = "4.1.12"
OUTPUT_DIR = ".open-next"
OUTPUT_FILE = "open-next.output.json"
HASH_FILE = ".harbor-source-hash"
SETTINGS_FILE = ".harbor-build-settings.json"
BUILDS_DIR = Path(".harbor") / "opennext"  # inside the app folder, one build per source hash
KEPT_BUILDS = 4  # per app folder, least recently used removed first
BUILD_TIMEOUT = 900  # seconds; a cold Next.js build with sharp's install is well under this
SKIPPED_DIRS = frozenset({"node_modules", ".next", OUTPUT_DIR, ".harbor", ".git", ".turbo", ".vercel", ".sst"})

BuildMode = Literal["auto", "always", "never"]
Runner = Callable[..., subprocess.CompletedProcess]
BUILD_SECRET_VARIABLE = "HARBOR_NEXT_BUILD_SECRET"
BUILD_ID_VARIABLE = "HARBOR_NEXT_BUILD_ID"
PRELOAD_FILE = ".harbor-build-id.cjs"  # written into node_modules, which only builds have
WRAPPER_CONFIG = ".harbor-open-next.config.ts"
PREVIEW_KEYS_VARIABLE = "HARBOR_NEXT_PREVIEW_KEYS"
STABLE_IDS_VARIABLE = "HARBOR_NEXT_STABLE_MODULE_IDS"
STAGING_ROOT = Path("/tmp/harbor-opennext")  # fixed: absolute paths end up in the build
# Letters that cannot spell "ad": Next.js avoids build ids ad blockers would match.
_BUILD_ID_ALPHABET = "0123456789bcefghijkmnpqrstuvwxyz"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Runs in every Node.js process of the build (NODE_OPTIONS=--require). Next.js asks
# next/dist/build/generate-build-id for the id, passing the config's generateBuildId (null
# by default, meaning "random"). The module's own export cannot be reassigned and the
# default config is frozen, so the preload puts a wrapper in its place in the module
# cache before Next.js loads it: the app's own generateBuildId still wins, and the id
# harbor derived from the sources replaces only the random fallback. The draft-mode keys
# are drawn by next/dist/build/preview-key-utils, which reuses .next/cache/.previewinfo
# except inside a container (where CI runs), so that module is replaced the same way.
PRELOAD_SCRIPT = """\
const id = process.env.HARBOR_NEXT_BUILD_ID;
if (id) {
  let path;
  try {
    path = require.resolve("next/dist/build/generate-build-id", { paths: [process.cwd()] });
  } catch {
    path = undefined; // not a Next.js app's process (npm, npx): nothing to set
  }
  if (path) {
    require(path);
    require.cache[path].exports = {
      generateBuildId: async (generate) => {
        const own = await generate();
        return typeof own === "string" ? own.trim() : id;
      },
    };
  }
}
const previewKeys = process.env.HARBOR_NEXT_PREVIEW_KEYS;
if (previewKeys) {
  let path;
  try {
    path = require.resolve("next/dist/build/preview-key-utils", { paths: [process.cwd()] });
  } catch {
    path = undefined;
  }
  if (path) {
    require(path);
    require.cache[path].exports = { generatePreviewKeys: async () => JSON.parse(previewKeys) };
  }
}
if (process.env.HARBOR_NEXT_STABLE_MODULE_IDS) {
  let configPath;
  try {
    configPath = require.resolve("next/dist/build/webpack-config", { paths: [process.cwd()] });
  } catch {
    configPath = undefined;
  }
  if (configPath) {
    const crypto = require("crypto");
    const Module = require("module");
    // Module ids from the module's name alone: sorted by name, hashed, a collision moved
    // to the next salt. Webpack's own deterministic ids settle collisions in module graph
    // order, which varies with the order of Next.js's parallel entry additions.
    class StableModuleIds {
      apply(compiler) {
        compiler.hooks.compilation.tap("HarborStableModuleIds", (compilation) => {
          compilation.hooks.moduleIds.tap("HarborStableModuleIds", () => {
            const graph = compilation.chunkGraph;
            const used = new Set();
            const pending = [];
            for (const module of compilation.modules) {
              if (!module.needId || graph.getNumberOfModuleChunks(module) === 0) continue;
              const id = graph.getModuleId(module);
              if (id !== null && id !== undefined) used.add(String(id));
              else pending.push([module.identifier().split(compiler.context).join("."), module]);
            }
            pending.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
            let range = 1000;
            while (range < pending.length * 20 + used.size) range *= 10;
            for (const [name, module] of pending) {
              for (let salt = 0; ; salt++) {
                const digest = crypto.createHash("sha256").update(`${name}\0${salt}`).digest();
                const id = Number(digest.readBigUInt64BE(0) % BigInt(range));
                if (!used.has(String(id))) {
                  used.add(String(id));
                  graph.setModuleId(module, id);
                  break;
                }
              }
            }
          });
        });
      }
    }
    const wrappers = new WeakMap();
    const load = Module._load;
    Module._load = function (request, ...rest) {
      const exported = load.call(this, request, ...rest);
      const cached = require.cache[configPath];
      if (!cached || exported !== cached.exports) return exported;
      if (!wrappers.has(exported)) {
        // A proxy, not a copy: the module may still be loading (a require cycle).
        const configure = async (...args) => {
          const config = await exported.default(...args);
          config.optimization = { ...config.optimization, moduleIds: false };
          config.plugins = [...(config.plugins || []), new StableModuleIds()];
          return config;
        };
        wrappers.set(exported, new Proxy(exported, {
          get: (target, key, receiver) => (key === "default" ? configure : Reflect.get(target, key, receiver)),
        }));
      }
      return wrappers.get(exported);
    };
  }
}
"""


class OpenNextError(ComponentError):
    """The app could not be built, or its build output cannot be used."""


class _Output(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CopySpec(_Output):
    """One folder OpenNext wants copied to the assets bucket."""

    source: str = Field(alias="from")
    to: str
    cached: bool
    versioned_subdir: str | None = Field(None, alias="versionedSubDir")


class S3Origin(_Output):
    type: Literal["s3"]
    origin_path: str = Field(alias="originPath")
    copy_: list[CopySpec] = Field(alias="copy", min_length=1)


class FunctionOrigin(_Output):
    type: Literal["function"]
    handler: str
    bundle: str
    streaming: bool = False
    wrapper: str | None = None
    converter: str | None = None
    queue: str | None = None
    incremental_cache: str | None = Field(None, alias="incrementalCache")
    tag_cache: str | None = Field(None, alias="tagCache")
    image_loader: str | None = Field(None, alias="imageLoader")


class Behavior(_Output):
    pattern: str = Field(min_length=1)
    origin: str
    edge_function: str | None = Field(None, alias="edgeFunction")


class BundleSpec(_Output):
    handler: str
    bundle: str


class AdditionalProps(_Output):
    warmer: BundleSpec | None = None
    initialization_function: BundleSpec | None = Field(None, alias="initializationFunction")
    revalidation_function: BundleSpec | None = Field(None, alias="revalidationFunction")


class OpenNextOutput(_Output):
    """``open-next.output.json``: origins, the behaviours routing to them, extra functions."""

    edge_functions: dict[str, Any] = Field(default_factory=dict, alias="edgeFunctions")
    origins: dict[str, S3Origin | FunctionOrigin]
    behaviors: list[Behavior] = Field(min_length=1)
    additional_props: AdditionalProps = Field(default_factory=AdditionalProps, alias="additionalProps")

    @model_validator(mode="after")
    def _consistent(self) -> OpenNextOutput:
        if not isinstance(self.origins.get("s3"), S3Origin):
            raise ValueError("origins.s3 (the static assets) is missing")
        if not isinstance(self.origins.get("default"), FunctionOrigin):
            raise ValueError("origins.default (the server function) is missing")
        for behavior in self.behaviors:
            if behavior.origin not in self.origins:
                raise ValueError(
                    f"behavior {behavior.pattern!r} routes to origin {behavior.origin!r}, "
                    f"which is not among the origins ({', '.join(self.origins)})"
                )
        if self.edge_functions:
            raise ValueError(
                "edge functions (middleware split to the edge) are not supported; keep "
                "middleware in the server function (OpenNext's default)"
            )
        return self

    @property
    def s3(self) -> S3Origin:
        origin = self.origins["s3"]
        assert isinstance(origin, S3Origin)
        return origin

    @property
    def server(self) -> FunctionOrigin:
        origin = self.origins["default"]
        assert isinstance(origin, FunctionOrigin)
        return origin

    @property
    def function_origins(self) -> dict[str, FunctionOrigin]:
        return {k: v for k, v in self.origins.items() if isinstance(v, FunctionOrigin)}


class BuildSettings(BaseModel):
    """What goes into a build besides the app's files; part of the source hash.

    Example::

        BuildSettings(environment={"NEXT_PUBLIC_STAGE": "dev"}, command="npm run build:web")
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: dict[str, str] = Field(
        default_factory=dict, description="variables the build sees (NEXT_PUBLIC_* reach the browser)"
    )
    command: str | None = Field(
        None, description="the app's build command OpenNext runs instead of `npm run build`"
    )
    opennext_version: str = Field(
        OPENNEXT_VERSION, pattern=r"^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$",
        description="exact @opennextjs/aws version",
    )

    @field_validator("environment")
    @classmethod
    def _names(cls, environment: dict[str, str]) -> dict[str, str]:
        for name in environment:
            if not _ENV_NAME.match(name):
                raise ValueError(f"build environment name {name!r} is not a valid variable name")
        return dict(sorted(environment.items()))

    def fingerprint(self) -> str:
        """The settings as one stable line for the source hash."""
        return json.dumps(self.model_dump(), sort_keys=True)

    @classmethod
    def of_build(cls, root: Path) -> BuildSettings:
        """The settings a build in ``root`` (see :func:`build_folder`) was made with."""
        return cls.model_validate_json((root / OUTPUT_DIR / SETTINGS_FILE).read_text())


@dataclass(frozen=True)
class OpenNextBuild:
    """A usable build: the app folder, its parsed output and the source hash it came from.

    ``root`` holds the build's ``.open-next`` folder: ``<app>/.harbor/opennext/<hash>`` for
    a build made here, the app folder itself for one made elsewhere (``build="never"``).
    """

    app_dir: Path
    output: OpenNextOutput
    source_hash: str
    built_now: bool
    root: Path

    @property
    def build_id(self) -> str:
        """Next.js's build id for these sources and settings (see the module docs)."""
        return build_id_for(self.source_hash)

    def path(self, relative: str) -> Path:
        """A path from the output file (relative to the app folder) made absolute."""
        # Normalised, not resolved: an app folder reached through a symlink (an example
        # project linking a shared app) stays inside the project that links it.
        return Path(os.path.normpath(self.root / relative))


def build_folder(app_dir: Path, source: str) -> Path:
    """Where the build of these sources and settings is kept (its ``.open-next`` inside)."""
    return app_dir / BUILDS_DIR / source[:16]


def build_id_for(source: str) -> str:
    """A 20-character build id that follows the source hash (no "ad" anywhere)."""
    digest = hashlib.sha256(f"build-id\0{source}".encode()).digest()
    return "".join(_BUILD_ID_ALPHABET[b % 32] for b in digest[:20])


def _derived_key(source: str, label: str, size: int) -> bytes:
    secret = os.environ.get(BUILD_SECRET_VARIABLE, "").encode() or b"harbor-public"
    return hmac.new(secret, f"{label}\0{source}".encode(), hashlib.sha256).digest()[:size]


def build_environment(source: str, settings: BuildSettings) -> dict[str, str]:
    """The variables harbor adds to the build's environment (see the module docs)."""
    key = base64.b64encode(_derived_key(source, "server-actions", 32)).decode()
    return {
        **settings.environment,
        "NEXT_TELEMETRY_DISABLED": "1",
        BUILD_ID_VARIABLE: build_id_for(source),
        STABLE_IDS_VARIABLE: "1",
        "NEXT_SERVER_ACTIONS_ENCRYPTION_KEY": key,
        PREVIEW_KEYS_VARIABLE: json.dumps({
            "previewModeId": _derived_key(source, "preview-id", 16).hex(),
            "previewModeSigningKey": _derived_key(source, "preview-signing", 32).hex(),
            "previewModeEncryptionKey": _derived_key(source, "preview-encryption", 32).hex(),
        }),
    }


@contextlib.contextmanager
def staged(app_dir: Path, root: Path | None = None) -> Iterator[Path]:
    """A copy of the app at ``root/<name>`` (default :data:`STAGING_ROOT`, the same path on
    every machine), for one build.

    Sources are copied, ``node_modules`` hard-linked (copied across file systems); the
    copy is removed afterwards. A lock keeps two builds of same-named apps apart.
    """
    root = root or STAGING_ROOT
    root.mkdir(parents=True, exist_ok=True)
    target = root / app_dir.name
    with (root / f"{app_dir.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(
                app_dir, target, symlinks=True,
                ignore=lambda folder, names: [n for n in names if n in SKIPPED_DIRS]
                if Path(folder) == app_dir else [],
            )
            modules = app_dir / "node_modules"
            if modules.is_dir():
                shutil.copytree(modules, target / "node_modules", symlinks=True, copy_function=_link_or_copy)
            yield target
        finally:
            shutil.rmtree(target, ignore_errors=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def source_hash(app_dir: Path, settings: BuildSettings | None = None) -> str:
    """Hash of the app's sources, lockfile and build settings (not dependencies or output),
    and of the preload harbor builds with."""
    settings = settings or BuildSettings()
    # The preload is how harbor builds: a new one is a new build of the same sources.
    builder = hashlib.sha256(PRELOAD_SCRIPT.encode()).hexdigest()
    digest = hashlib.sha256(f"opennext\n{settings.fingerprint()}\n{builder}\n".encode())
    for root, dirs, files in os.walk(app_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            relative = path.relative_to(app_dir).as_posix()
            digest.update(relative.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def check_app(app_dir: Path) -> None:
    """Refuse a folder that is not a Next.js app, naming what is wrong."""
    if not app_dir.is_dir():
        raise OpenNextError(
            f"Next.js app folder {app_dir} does not exist; pass path= the folder holding the "
            "app's package.json (relative to the project)"
        )
    package = app_dir / "package.json"
    if not package.is_file():
        raise OpenNextError(f"{app_dir} has no package.json; it is not a Next.js app folder")
    try:
        manifest = json.loads(package.read_text())
    except ValueError as error:
        raise OpenNextError(f"{package} is not valid JSON ({error}); fix the file") from None
    deps = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    if "next" not in deps:
        raise OpenNextError(f"{package} does not depend on 'next'; add it (npm install next)")
    if not (app_dir / "package-lock.json").is_file():
        raise OpenNextError(
            f"{app_dir} has no package-lock.json; run `npm install` there and commit the lockfile "
            "so builds are reproducible"
        )


def read_output(app_dir: Path) -> OpenNextOutput:
    """Parse and validate ``.open-next/open-next.output.json``."""
    path = app_dir / OUTPUT_DIR / OUTPUT_FILE
    if not path.is_file():
        raise OpenNextError(
            f"{path} is missing: the OpenNext build did not produce its output file; run "
            f"`npx --yes @opennextjs/aws@{OPENNEXT_VERSION} build` in {app_dir} and read its log"
        )
    try:
        output = OpenNextOutput.model_validate_json(path.read_text())
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors(include_url=False)
        )
        raise OpenNextError(f"{path} is not a usable OpenNext output: {problems}") from None
    for name, origin in output.function_origins.items():
        if not (app_dir / origin.bundle).is_dir():
            raise OpenNextError(f"{path}: origin {name!r} bundle {origin.bundle} is missing; rebuild")
    return output


def build_command(settings: BuildSettings | None = None) -> list[str]:
    """The OpenNext build, pinned so every machine builds the same way."""
    settings = settings or BuildSettings()
    command = ["npx", "--yes", f"@opennextjs/aws@{settings.opennext_version}", "build"]
    if settings.command:
        # OpenNext takes the build command only from its config: a wrapper config adds it.
        command += ["--config-path", f"node_modules/{WRAPPER_CONFIG}"]
    return command


def write_wrapper_config(app_dir: Path, settings: BuildSettings) -> None:
    """``node_modules/.harbor-open-next.config.ts``: the app's config plus ``buildCommand``."""
    own = app_dir / "open-next.config.ts"
    base = 'import own from "../open-next.config.ts";\n' if own.is_file() else "const own = {};\n"
    (app_dir / "node_modules" / WRAPPER_CONFIG).write_text(
        base + f"export default {{ ...own, buildCommand: {json.dumps(settings.command)} }};\n"
    )


def run_build(
    app_dir: Path,
    runner: Runner | None = None,
    settings: BuildSettings | None = None,
    source: str | None = None,
) -> Path:
    """Run the OpenNext build of ``app_dir``; returns its folder (see :func:`build_folder`).

    A failure raises with the log's tail."""
    if runner is None and shutil.which("npx") is None:
        raise OpenNextError(
            f"building {app_dir} needs Node.js 20+ with npx on PATH; install Node.js, or build "
            "elsewhere and deploy with build='never'"
        )
    settings = settings or BuildSettings()
    source = source or source_hash(app_dir, settings)
    if runner is not None:  # a stand-in build (tests): runs in place
        shutil.rmtree(app_dir / OUTPUT_DIR, ignore_errors=True)
        _build_in(app_dir, app_dir, runner, settings, source)
        return _install(app_dir, app_dir / OUTPUT_DIR, settings, source)
    with staged(app_dir) as folder:
        _build_in(app_dir, folder, subprocess.run, settings, source)
        return _install(app_dir, folder / OUTPUT_DIR, settings, source)


def _install(app_dir: Path, built: Path, settings: BuildSettings, source: str) -> Path:
    """Move a finished build to its folder (see :func:`build_folder`), stamped; returns it.

    The folder appears whole or not at all: a failed or interrupted build leaves none.
    """
    if not (built / OUTPUT_FILE).is_file():
        raise OpenNextError(
            f"{OUTPUT_FILE} is missing after the OpenNext build of {app_dir}; run `npx --yes "
            f"@opennextjs/aws@{settings.opennext_version} build` in {app_dir} and read its log"
        )
    normalise(built)
    (built / HASH_FILE).write_text(source + "\n")
    (built / SETTINGS_FILE).write_text(json.dumps(settings.model_dump(), indent=2, sort_keys=True) + "\n")
    target = build_folder(app_dir, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.parent / f".incoming-{target.name}-{os.getpid()}"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir()
    shutil.move(str(built), str(incoming / OUTPUT_DIR))
    shutil.rmtree(target, ignore_errors=True)
    incoming.rename(target)
    _prune_builds(target.parent, keep=target)
    return target


def _prune_builds(store: Path, keep: Path) -> None:
    """Keep the :data:`KEPT_BUILDS` most recently used builds of an app folder."""
    builds = sorted(
        (p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    for old in [p for p in builds if p != keep][KEPT_BUILDS - 1:]:
        shutil.rmtree(old, ignore_errors=True)


# Route manifests Next.js writes in the order its build workers finish; only lookups read them.
ORDER_FREE_MANIFESTS = ("app-build-manifest.json", "app-path-routes-manifest.json", "app-paths-manifest.json")


def normalise(output_dir: Path) -> None:
    """Take out what differs between two builds of the same sources.

    * npm's ``node_modules/.package-lock.json`` records: OpenNext installs packages
      (sharp) in a randomly named temporary folder whose name npm writes there; nothing
      reads the file at run time.
    * the key order of :data:`ORDER_FREE_MANIFESTS`, rewritten sorted.
    """
    for record in output_dir.rglob("node_modules/.package-lock.json"):
        record.unlink()
    for name in ORDER_FREE_MANIFESTS:
        for manifest in output_dir.rglob(name):
            if "node_modules" in manifest.parts:
                continue
            data = json.loads(manifest.read_text())
            manifest.write_text(json.dumps(data, indent=2, sort_keys=True))


def _build_in(app_dir: Path, folder: Path, runner: Runner, settings: BuildSettings, source: str) -> None:
    """Run OpenNext in ``folder`` (the app or its staged copy); a failure shows the log's tail."""
    env = {**os.environ, **build_environment(source, settings)}
    modules = folder / "node_modules"
    if modules.is_dir():
        preload = modules / PRELOAD_FILE
        preload.write_text(PRELOAD_SCRIPT)
        env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} --require {preload}".strip()
        if settings.command:
            write_wrapper_config(folder, settings)
    try:
        result = runner(
            build_command(settings),
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise OpenNextError(f"the OpenNext build of {app_dir} ran over {BUILD_TIMEOUT} s") from None
    if result.returncode != 0:
        log = (result.stdout or "") + (result.stderr or "")
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise OpenNextError(
            f"the OpenNext build of {app_dir} failed (exit {result.returncode}); "
            f"command: {' '.join(build_command(settings))}\n{tail}"
        )


def prepare_build(
    app_dir: Path,
    mode: BuildMode = "auto",
    *,
    offline: bool = False,
    runner: Runner | None = None,
    settings: BuildSettings | None = None,
) -> OpenNextBuild | None:
    """A usable build of ``app_dir``, built first if ``mode`` says so (see module docs).

    Returns None only when ``offline`` (a mocked plan) and the app cannot be built here
    because its dependencies are not installed.
    """
    app_dir = Path(os.path.abspath(app_dir))  # keeps symlinks, as OpenNextBuild.path does
    check_app(app_dir)
    with _build_lock(app_dir):
        return _prepare_locked(app_dir, mode, offline=offline, runner=runner, settings=settings or BuildSettings())


@contextlib.contextmanager
def _build_lock(app_dir: Path) -> Iterator[None]:
    """One build of an app folder at a time, across processes (parallel plans, test runs).

    The lock lives in node_modules, which only exists where a build can run; without it
    nothing here writes to the folder, so there is nothing to serialise.
    """
    modules = app_dir / "node_modules"
    if not modules.is_dir():
        yield
        return
    with (modules / ".harbor-opennext.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_locked(
    app_dir: Path, mode: BuildMode, *, offline: bool, runner: Runner | None, settings: BuildSettings
) -> OpenNextBuild | None:
    current = source_hash(app_dir, settings)
    folder = build_folder(app_dir, current)
    stamp = folder / OUTPUT_DIR / HASH_FILE
    fresh = stamp.is_file() and stamp.read_text().strip() == current
    if mode != "always" and fresh:
        with contextlib.suppress(OSError):
            os.utime(folder)  # recently used: pruned last
        return OpenNextBuild(app_dir, read_output(folder), current, built_now=False, root=folder)
    if mode == "never":  # a build made elsewhere, in the app's own .open-next
        # One harbor stamped there (before builds were kept per hash) is of other sources.
        old_stamp = app_dir / OUTPUT_DIR / HASH_FILE
        stale = old_stamp.is_file() and old_stamp.read_text().strip() != current
        if stale or not (app_dir / OUTPUT_DIR / OUTPUT_FILE).is_file():
            raise OpenNextError(
                f"build='never', but {app_dir} has no build of its current sources and settings "
                f"(source hash {current[:16]}) and no {OUTPUT_DIR}/{OUTPUT_FILE} of its own; run "
                "`infra build-site --stage STAGE` first, or let the deploy build (build='auto')"
            )
        return OpenNextBuild(app_dir, read_output(app_dir), current, built_now=False, root=app_dir)
    if not (app_dir / "node_modules").is_dir():
        if offline:
            return None
        raise OpenNextError(
            f"{app_dir} has no node_modules: run `npm ci` in {app_dir} before deploying "
            "(the build needs the app's dependencies)"
        )
    folder = run_build(app_dir, runner, settings, current)
    return OpenNextBuild(app_dir, read_output(folder), current, built_now=True, root=folder)

