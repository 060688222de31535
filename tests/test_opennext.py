"""OpenNext builds: reuse by source hash, rebuilds, clear failures, and the real build's output."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opennext_fixture import REAL_OUTPUT, output, write_app, write_build, write_sources

from components.aws.opennext import (
    BUILD_ID_VARIABLE,
    BUILD_SECRET_VARIABLE,
    HASH_FILE,
    KEPT_BUILDS,
    OPENNEXT_VERSION,
    PRELOAD_FILE,
    PRELOAD_SCRIPT,
    PREVIEW_KEYS_VARIABLE,
    SKIPPED_DIRS,
    STABLE_IDS_VARIABLE,
    WRAPPER_CONFIG,
    BuildSettings,
    OpenNextBuild,
    OpenNextError,
    build_command,
    build_folder,
    build_id_for,
    normalise,
    prepare_build,
    read_output,
    source_hash,
)

ROOT = Path(__file__).resolve().parent.parent
REAL_APP = ROOT / "app/web"


class FakeBuild:
    """Stands in for `npx @opennextjs/aws build`: records calls, writes an output or fails."""

    def __init__(self, returncode: int = 0, data: dict[str, Any] | None = None, log: str = "") -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode
        self.data = data
        self.log = log

    def __call__(self, command: list[str], cwd: Path, **_: Any) -> subprocess.CompletedProcess:
        self.calls.append(command)
        if self.returncode == 0 and self.data is not None:
            write_build(Path(cwd), self.data)
        return subprocess.CompletedProcess(command, self.returncode, stdout=self.log, stderr="")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "web"
    write_sources(app)
    (app / "node_modules").mkdir()
    return app


def test_the_build_command_pins_the_opennext_version() -> None:
    assert build_command() == ["npx", "--yes", f"@opennextjs/aws@{OPENNEXT_VERSION}", "build"]


def test_build_is_reused_while_sources_and_lockfile_are_unchanged(app: Path) -> None:
    runner = FakeBuild(data=REAL_OUTPUT)
    first = prepare_build(app, runner=runner)
    second = prepare_build(app, runner=runner)
    assert first is not None and second is not None
    assert len(runner.calls) == 1
    assert first.built_now and not second.built_now
    assert second.root == build_folder(app, second.source_hash) == app / ".harbor/opennext" / second.source_hash[:16]
    assert (second.root / ".open-next" / HASH_FILE).read_text().strip() == second.source_hash
    assert second.path(".open-next/assets") == second.root / ".open-next/assets"
    assert not (app / ".open-next").exists()  # OpenNext's own output folder was moved away


def test_each_build_setting_keeps_its_own_build_so_switching_back_does_not_rebuild(app: Path) -> None:
    runner = FakeBuild(data=REAL_OUTPUT)
    dev = BuildSettings(environment={"NEXT_PUBLIC_SITE": "dev"})
    prod = BuildSettings(environment={"NEXT_PUBLIC_SITE": "prod"})
    first = prepare_build(app, runner=runner, settings=dev)
    second = prepare_build(app, runner=runner, settings=prod)
    again = prepare_build(app, runner=runner, settings=dev)
    assert len(runner.calls) == 2
    assert first is not None and second is not None and again is not None
    assert again.root == first.root != second.root and not again.built_now
    assert BuildSettings.of_build(first.root) == dev and BuildSettings.of_build(second.root) == prod


def test_only_the_most_recently_used_builds_are_kept(app: Path) -> None:
    runner = FakeBuild(data=REAL_OUTPUT)
    builds = [prepare_build(app, runner=runner, settings=BuildSettings(environment={"NEXT_PUBLIC_N": str(n)}))
              for n in range(KEPT_BUILDS + 1)]
    roots = [b.root for b in builds if b is not None]
    assert [r.is_dir() for r in roots] == [False] + [True] * KEPT_BUILDS


def test_a_changed_page_rebuilds(app: Path) -> None:
    runner = FakeBuild(data=REAL_OUTPUT)
    prepare_build(app, runner=runner)
    (app / "app/page.js").write_text("export default function Home() { return 'changed'; }\n")
    rebuilt = prepare_build(app, runner=runner)
    assert len(runner.calls) == 2
    assert rebuilt is not None and rebuilt.built_now


def test_a_changed_lockfile_rebuilds_but_dependencies_and_output_do_not_count(app: Path) -> None:
    before = source_hash(app)
    (app / "node_modules/some.js").write_text("x")
    write_build(app)
    assert source_hash(app) == before
    (app / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}')
    assert source_hash(app) != before


def test_always_mode_builds_every_time(app: Path) -> None:
    runner = FakeBuild(data=REAL_OUTPUT)
    prepare_build(app, "always", runner=runner)
    prepare_build(app, "always", runner=runner)
    assert len(runner.calls) == 2


def test_failed_build_stops_with_the_log_tail_and_leaves_no_current_stamp(app: Path) -> None:
    good = prepare_build(app, runner=FakeBuild(data=REAL_OUTPUT))
    (app / "app/page.js").write_text("syntax error here (\n")
    failing = FakeBuild(returncode=1, log="Creating an optimized production build\nSyntaxError: Unexpected token")
    with pytest.raises(OpenNextError, match=r"failed \(exit 1\)[\s\S]*SyntaxError: Unexpected token"):
        prepare_build(app, runner=failing)
    assert not build_folder(app, source_hash(app)).exists()
    with pytest.raises(OpenNextError, match="has no build of its current sources"):
        prepare_build(app, "never", runner=failing)
    # The sources restored are the sources of the earlier build: it is used again as it is.
    runner = FakeBuild(data=REAL_OUTPUT)
    (app / "app/page.js").write_text("export default function Home() { return 'hi'; }\n")
    restored = prepare_build(app, runner=runner)
    assert not runner.calls and good is not None and restored is not None and restored.root == good.root


def test_missing_output_file_after_a_build_is_a_clear_error(app: Path) -> None:
    with pytest.raises(OpenNextError, match=r"open-next.output.json is missing"):
        prepare_build(app, runner=FakeBuild(data=None))


def test_output_routing_to_an_unknown_origin_names_the_behaviour(app: Path) -> None:
    bad = output(behaviors=[{"pattern": "api/*", "origin": "api"}])
    with pytest.raises(OpenNextError, match=r"behavior 'api/\*' routes to origin 'api'"):
        prepare_build(app, runner=FakeBuild(data=bad))


def test_output_without_a_server_origin_is_refused(app: Path) -> None:
    data = output()
    del data["origins"]["default"]
    data["behaviors"] = [{"pattern": "*", "origin": "s3"}]
    with pytest.raises(OpenNextError, match=r"origins\.default"):
        prepare_build(app, runner=FakeBuild(data=data))


def test_malformed_output_json_is_a_clear_error(app: Path) -> None:
    write_build(app)
    (app / ".open-next/open-next.output.json").write_text("{not json")
    with pytest.raises(OpenNextError, match="not a usable OpenNext output"):
        read_output(app)


def test_never_mode_uses_the_existing_build_without_running_anything(app: Path) -> None:
    write_build(app)
    runner = FakeBuild()
    build = prepare_build(app, "never", runner=runner)
    assert build is not None and not runner.calls
    assert [b.pattern for b in build.output.behaviors][:2] == ["_next/image*", "_next/data/*"]


def test_never_mode_does_not_take_an_old_stamped_build_of_other_sources(app: Path) -> None:
    write_build(app)
    (app / ".open-next" / HASH_FILE).write_text("0" * 64 + "\n")
    with pytest.raises(OpenNextError, match="has no build of its current sources"):
        prepare_build(app, "never", runner=FakeBuild())


def test_never_mode_without_a_build_is_a_clear_error(app: Path) -> None:
    with pytest.raises(OpenNextError, match=r"has no build of its current sources [\s\S]* `infra build-site"):
        prepare_build(app, "never", runner=FakeBuild())


def test_missing_app_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OpenNextError, match=r"app folder .*nope does not exist"):
        prepare_build(tmp_path / "nope")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda app: (app / "package.json").unlink(), "has no package.json"),
        (lambda app: (app / "package.json").write_text("{oops"), "is not valid JSON"),
        (lambda app: (app / "package.json").write_text(json.dumps({"name": "x"})), "does not depend on 'next'"),
        (lambda app: (app / "package-lock.json").unlink(), "has no package-lock.json"),
    ],
)
def test_broken_app_folder_is_a_clear_error(app: Path, breakage: Any, message: str) -> None:
    breakage(app)
    with pytest.raises(OpenNextError, match=message):
        prepare_build(app, runner=FakeBuild(data=REAL_OUTPUT))


def test_without_node_modules_a_deploy_asks_for_npm_ci_and_an_offline_plan_gets_none(tmp_path: Path) -> None:
    app = write_app(tmp_path, built=False)
    with pytest.raises(OpenNextError, match="run `npm ci`"):
        prepare_build(app, runner=FakeBuild(data=REAL_OUTPUT))
    assert prepare_build(app, offline=True, runner=FakeBuild(data=REAL_OUTPUT)) is None


# -- same sources, same build -------------------------------------------------------------
class RecordingBuild(FakeBuild):
    """A stand-in build that also keeps the environment it was given."""

    def __init__(self) -> None:
        super().__init__(data=REAL_OUTPUT)
        self.env: dict[str, str] = {}

    def __call__(self, command: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess:
        self.env = dict(kwargs["env"])
        return super().__call__(command, cwd)


def test_build_settings_are_part_of_the_source_hash(app: Path) -> None:
    plain = source_hash(app)
    assert source_hash(app, BuildSettings()) == plain
    public = BuildSettings(environment={"NEXT_PUBLIC_SITE": "a"})
    assert source_hash(app, public) != plain
    assert source_hash(app, public) != source_hash(app, BuildSettings(environment={"NEXT_PUBLIC_SITE": "b"}))
    assert source_hash(app, BuildSettings(command="npm run build:web")) != plain
    assert source_hash(app, BuildSettings(opennext_version="4.1.13")) != plain


def test_a_changed_public_value_rebuilds(app: Path) -> None:
    runner = FakeBuild(data=REAL_OUTPUT)
    prepare_build(app, runner=runner, settings=BuildSettings(environment={"NEXT_PUBLIC_SITE": "a"}))
    prepare_build(app, runner=runner, settings=BuildSettings(environment={"NEXT_PUBLIC_SITE": "a"}))
    assert len(runner.calls) == 1
    rebuilt = prepare_build(app, runner=runner, settings=BuildSettings(environment={"NEXT_PUBLIC_SITE": "b"}))
    assert len(runner.calls) == 2 and rebuilt is not None and rebuilt.built_now


def test_the_build_gets_its_id_keys_and_public_values_from_the_sources(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BUILD_SECRET_VARIABLE, raising=False)
    settings = BuildSettings(environment={"NEXT_PUBLIC_SITE": "harbor"})
    runner = RecordingBuild()
    build = prepare_build(app, "always", runner=runner, settings=settings)
    assert build is not None
    env = runner.env
    assert env["NEXT_PUBLIC_SITE"] == "harbor"
    assert env[BUILD_ID_VARIABLE] == build.build_id == build_id_for(source_hash(app, settings))
    assert len(build.build_id) == 20 and "ad" not in build.build_id
    assert len(base64.b64decode(env["NEXT_SERVER_ACTIONS_ENCRYPTION_KEY"])) == 32  # AES-256
    assert env[STABLE_IDS_VARIABLE] == "1"  # module ids from module names (the preload's plugin)
    assert set(json.loads(env[PREVIEW_KEYS_VARIABLE])) == {
        "previewModeId", "previewModeSigningKey", "previewModeEncryptionKey"}
    preload = app / "node_modules" / PRELOAD_FILE
    assert f"--require {preload}" in env["NODE_OPTIONS"] and preload.read_text() == PRELOAD_SCRIPT
    # The same sources give the same environment, on any machine and any run.
    again = RecordingBuild()
    prepare_build(app, "always", runner=again, settings=settings)
    assert again.env[BUILD_ID_VARIABLE] == env[BUILD_ID_VARIABLE]
    assert again.env["NEXT_SERVER_ACTIONS_ENCRYPTION_KEY"] == env["NEXT_SERVER_ACTIONS_ENCRYPTION_KEY"]
    # A build secret changes the keys but not the id (which is public anyway).
    monkeypatch.setenv(BUILD_SECRET_VARIABLE, "s3cret")
    secret = RecordingBuild()
    prepare_build(app, "always", runner=secret, settings=settings)
    assert secret.env[BUILD_ID_VARIABLE] == env[BUILD_ID_VARIABLE]
    assert secret.env["NEXT_SERVER_ACTIONS_ENCRYPTION_KEY"] != env["NEXT_SERVER_ACTIONS_ENCRYPTION_KEY"]
    assert secret.env[PREVIEW_KEYS_VARIABLE] != env[PREVIEW_KEYS_VARIABLE]


def test_a_build_command_reaches_opennext_through_a_wrapper_config(app: Path) -> None:
    (app / "open-next.config.ts").write_text("export default { default: {} };\n")
    runner = FakeBuild(data=REAL_OUTPUT)
    prepare_build(app, runner=runner, settings=BuildSettings(command="npm run build:web"))
    assert runner.calls[0][-2:] == ["--config-path", f"node_modules/{WRAPPER_CONFIG}"]
    wrapper = (app / "node_modules" / WRAPPER_CONFIG).read_text()
    assert 'import own from "../open-next.config.ts";' in wrapper
    assert 'buildCommand: "npm run build:web"' in wrapper


def test_normalise_sorts_route_manifests_and_drops_npm_install_records(tmp_path: Path) -> None:
    out = tmp_path / ".open-next"
    manifest = out / "server-functions/default/.next/app-path-routes-manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"/status/page": "/status", "/page": "/"}))
    record = out / "image-optimization-function/node_modules/.package-lock.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"name": "open-next-install-image-optimization-functionjrw0oz"}')
    normalise(out)
    assert list(json.loads(manifest.read_text())) == ["/page", "/status/page"]
    assert not record.exists()


@pytest.mark.skipif(not (REAL_APP / "node_modules/next").is_dir(), reason="needs `npm ci` in app/web")
def test_the_preload_gives_next_the_build_id_unless_the_app_sets_its_own(tmp_path: Path) -> None:
    preload = tmp_path / PRELOAD_FILE
    preload.write_text(PRELOAD_SCRIPT)
    script = (
        "const g = require('next/dist/build/generate-build-id');"
        "Promise.all([g.generateBuildId(() => null, () => 'random'),"
        " g.generateBuildId(() => ' own ', () => 'random')]).then((ids) => console.log(JSON.stringify(ids)));"
    )
    env = {**os.environ, BUILD_ID_VARIABLE: "fixedid123", "NODE_OPTIONS": f"--require {preload}"}
    result = subprocess.run(["node", "-e", script], cwd=REAL_APP, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["fixedid123", "own"]


def _tree(root: Path) -> dict[str, str]:
    """Every file of a build: content hash and mode, or a symlink's target."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[path.relative_to(root).as_posix()] = f"-> {os.readlink(path)}"
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[path.relative_to(root).as_posix()] = f"{digest} {oct(path.stat().st_mode)}"
    return found


# -- the program's build of app/web (planned as `infra build-site --stage dev` builds it) ----
@dataclass(frozen=True)
class ProgramBuild:
    """The dev plan's server environment and the folder of the build it planned from."""

    server_env: dict[str, Any]
    root: Path


@pytest.fixture(scope="module")
def program_build() -> ProgramBuild:
    """Plan the real program for dev (building app/web if its build is stale)."""
    from infra.harness import run_program

    plan = run_program(ROOT, "dev")
    server = next(r for r in plan.resources if r.name == "WebServer-function")
    sync = next(r for r in plan.resources if r.name == "Web-assets")
    assets = Path(sync.inputs["sources"][0]["directory"])  # <build>/.open-next/assets
    return ProgramBuild(server.inputs["environment"]["variables"], ROOT / assets.parent.parent)


needs_program_build = pytest.mark.skipif(
    not (REAL_APP / "node_modules/next").is_dir() or shutil.which("node") is None,
    reason="needs Node.js and `npm ci` in app/web",
)


@pytest.mark.opennext
@needs_program_build
def test_real_build_of_the_sample_site_matches_what_the_component_expects(program_build: ProgramBuild) -> None:
    root = program_build.root
    assert root.parent == REAL_APP / ".harbor/opennext"
    out = read_output(root)
    patterns = {b.pattern: b.origin for b in out.behaviors}
    assert patterns["_next/image*"] == "imageOptimizer"
    assert patterns["*"] == "default"
    assert patterns["_next/*"] == "s3"
    assert patterns["harbor.png"] == "s3"  # the image in public/
    assert out.s3.origin_path == "_assets"
    assert {c.to for c in out.s3.copy_} == {"_assets", "_cache"}
    assert out.server.tag_cache == "dynamodb" and out.server.queue == "sqs"
    assert out.server.streaming is True  # open-next.config.ts: the streaming wrapper
    # sharp for the Lambda architecture, not the build machine's.
    sharp = root / out.origins["imageOptimizer"].bundle / "node_modules/@img"
    assert (sharp / "sharp-linux-arm64").is_dir()
    assert not (sharp / "sharp-linux-x64").exists()
    # Prerendered pages went to the ISR cache that AssetSync uploads under _cache/.
    assert list((root / ".open-next/cache").rglob("*.cache"))
    # The committed structure of the synthetic fixture still matches the real build.
    real = json.loads((root / ".open-next/open-next.output.json").read_text())
    assert real["behaviors"] == REAL_OUTPUT["behaviors"]
    assert real["origins"] == REAL_OUTPUT["origins"]
    assert real["additionalProps"].keys() == REAL_OUTPUT["additionalProps"].keys()


@pytest.mark.opennext
@needs_program_build
def test_a_public_value_from_the_program_is_compiled_into_the_browser_bundle(program_build: ProgramBuild) -> None:
    value = program_build.server_env["NEXT_PUBLIC_HARBOR_SITE"]
    chunks = program_build.root / ".open-next/assets/_next/static/chunks"
    badge = [p for p in chunks.rglob("*.js") if "harbor-site-badge" in p.read_text()]
    assert len(badge) == 1
    code = badge[0].read_text()
    assert json.dumps(value) in code
    assert "NEXT_PUBLIC_HARBOR_SITE" not in code and '"unnamed"' not in code  # inlined, not read at run time


@pytest.mark.opennext
@needs_program_build
def test_the_sample_server_action_answers_through_the_built_server_handler(program_build: ProgramBuild) -> None:
    bundle = program_build.root / ".open-next/server-functions/default"
    manifest = json.loads((bundle / ".next/server/server-reference-manifest.json").read_text())
    action = next(i for i, a in manifest["node"].items() if "app/hello/page" in a["workers"])
    env = {
        **os.environ, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "CACHE_BUCKET_NAME": "unused", "CACHE_BUCKET_REGION": "us-east-1", "CACHE_DYNAMO_TABLE": "unused",
        "REVALIDATION_QUEUE_URL": "http://127.0.0.1:9/unused", "REVALIDATION_QUEUE_REGION": "us-east-1",
    }

    def post(action_id: str) -> dict[str, Any]:
        result = subprocess.run(
            ["node", str(ROOT / "tests/js/invoke_server_action.mjs"), str(bundle), action_id],
            cwd=bundle, env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    answer = post(action)
    assert (answer["statusCode"], answer["location"]) == (303, "/hello?name=Ada")
    assert post("00" + action[2:])["location"] is None  # an unknown action runs nothing


def _fingerprint(build: OpenNextBuild) -> tuple[str, dict[str, str], dict[str, str], dict[str, str]]:
    """What a deploy compares: build id, function archives, the asset manifest, every file."""
    from components.aws.asset_sync import SyncSource, scan
    from components.aws.packaging import PackageSpec, collect, zip_bytes

    out = build.output
    archives = {
        origin: hashlib.sha256(zip_bytes(collect(PackageSpec(build.path(o.bundle), runtime="nodejs22.x"))[1]))
        .hexdigest()
        for origin, o in out.function_origins.items()
    }
    assets = {
        key: local.sha256
        for key, local in scan([SyncSource(directory=str(build.path(c.source)), prefix=c.to)
                                for c in out.s3.copy_]).items()
    }
    return build.build_id, archives, assets, _tree(build.root / ".open-next")


@pytest.mark.opennext
@needs_program_build
@pytest.mark.skipif(
    os.environ.get("HARBOR_TWO_BUILDS") != "1",
    reason="one more full OpenNext build (about a minute): run with HARBOR_TWO_BUILDS=1 (.ci/run does)",
)
def test_two_clean_builds_of_unchanged_sources_give_identical_archives_and_assets(
    program_build: ProgramBuild, tmp_path: Path
) -> None:
    """The program's build (CI's, from `infra build-site --stage dev`) against a clean build
    of a fresh copy elsewhere, with the same settings: no .next cache, no earlier output."""
    settings = BuildSettings.of_build(program_build.root)
    first = prepare_build(REAL_APP, "never", settings=settings)
    assert first is not None and first.root == program_build.root
    copy = tmp_path / "elsewhere" / "web"  # the same folder name: builds run in /tmp/harbor-opennext/web
    shutil.copytree(REAL_APP, copy, ignore=shutil.ignore_patterns(*SKIPPED_DIRS))
    (copy / "node_modules").symlink_to(REAL_APP / "node_modules")  # the build copies it anyway
    second = prepare_build(copy, "always", settings=settings)
    assert second is not None and second.built_now and second.source_hash == first.source_hash
    (first_id, first_archives, first_assets, first_tree), (second_id, *rest) = map(_fingerprint, (first, second))
    assert second_id == first_id
    differing = sorted(k for k in first_tree.keys() | rest[2].keys() if first_tree.get(k) != rest[2].get(k))
    assert differing == []           # every file of .open-next, named when one differs
    assert rest[0] == first_archives  # server and image archives, byte for byte
    assert rest[1] == first_assets    # the asset manifest the sync uploads
