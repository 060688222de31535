"""OpenNext builds: reuse by source hash, rebuilds, clear failures, and the real build's output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from opennext_fixture import REAL_OUTPUT, output, write_app, write_build, write_sources

from components.opennext import (
    HASH_FILE,
    OPENNEXT_VERSION,
    OpenNextError,
    build_command,
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
    assert (app / ".open-next" / HASH_FILE).read_text().strip() == second.source_hash


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
    prepare_build(app, runner=FakeBuild(data=REAL_OUTPUT))
    (app / "app/page.js").write_text("syntax error here (\n")
    failing = FakeBuild(returncode=1, log="Creating an optimized production build\nSyntaxError: Unexpected token")
    with pytest.raises(OpenNextError, match=r"failed \(exit 1\)[\s\S]*SyntaxError: Unexpected token"):
        prepare_build(app, runner=failing)
    assert not (app / ".open-next" / HASH_FILE).exists()
    # Even after the source is restored, the stale build is not trusted without a rebuild.
    runner = FakeBuild(data=REAL_OUTPUT)
    (app / "app/page.js").write_text("export default function Home() { return 'hi'; }\n")
    prepare_build(app, runner=runner)
    assert len(runner.calls) == 1


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


def test_never_mode_without_a_build_is_a_clear_error(app: Path) -> None:
    with pytest.raises(OpenNextError, match=r"open-next\.output\.json is missing"):
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


@pytest.mark.opennext
@pytest.mark.skipif(
    not (REAL_APP / ".open-next/open-next.output.json").is_file(),
    reason="needs the real OpenNext build of app/web (.ci/run builds it first)",
)
def test_real_build_of_the_sample_site_matches_what_the_component_expects() -> None:
    build = prepare_build(REAL_APP, "never")
    assert build is not None
    out = build.output
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
    sharp = build.path(out.origins["imageOptimizer"].bundle) / "node_modules/@img"
    assert (sharp / "sharp-linux-arm64").is_dir()
    assert not (sharp / "sharp-linux-x64").exists()
    # Prerendered pages went to the ISR cache that AssetSync uploads under _cache/.
    assert list(build.path(".open-next/cache").rglob("*.cache"))
    # The committed structure of the synthetic fixture still matches the real build.
    real = json.loads((REAL_APP / ".open-next/open-next.output.json").read_text())
    assert real["behaviors"] == REAL_OUTPUT["behaviors"]
    assert real["origins"] == REAL_OUTPUT["origins"]
    assert real["additionalProps"].keys() == REAL_OUTPUT["additionalProps"].keys()
