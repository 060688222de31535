"""``infra build-site PATH``: build a Next.js app with OpenNext the way a deploy would.

Reuses the build while the app's sources and lockfile are unchanged (see
``components.opennext``). CI runs it before the tests so plans use a real build.

    infra build-site app/web              # build if the sources changed
    infra build-site app/web --mode always
"""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.cli import subcommand


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the app folder holding package.json, e.g. app/web")
    parser.add_argument(
        "--mode", choices=("auto", "always", "never"), default="auto",
        help="auto: build when sources changed (default); always; never: only check the build",
    )


def _run(args: argparse.Namespace) -> int:
    from components.opennext import prepare_build

    build = prepare_build(Path(args.path), args.mode)  # OpenNextError is shown as `error: ...`
    assert build is not None  # prepare_build only returns None offline
    state = "built" if build.built_now else "reused (sources unchanged)"
    routes = ", ".join(f"{b.pattern}->{b.origin}" for b in build.output.behaviors)
    print(f"{build.app_dir}: {state}; source hash {build.source_hash[:12]}\nbehaviours: {routes}")
    return 0


subcommand("build-site", "build a Next.js app with OpenNext (reused while its sources are unchanged)")(
    (_configure, _run)
)
