"""``infra build-site``: build Next.js apps with OpenNext the way a deploy would.

Reuses a build while the app's sources, lockfile and build settings are unchanged; each
combination keeps its own build in ``<app>/.harbor/opennext/<source hash>`` (see
``components.aws.opennext``). CI runs it before the tests so plans use a real build.

    infra build-site --stage dev          # every site of the program, with its settings
    infra build-site app/web              # one folder, default settings
    infra build-site app/web --env NEXT_PUBLIC_HARBOR_SITE=harbor-dev --mode always

With ``--stage`` the program itself is evaluated offline (as ``infra plan`` does), so each
site is built with exactly the environment, build command and OpenNext version its
``Nextjs`` component passes; that build is the one the plan and the deploy then reuse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.cli import subcommand


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="the app folder holding package.json, e.g. app/web")
    parser.add_argument("--stage", help="build every site of the program as this stage builds it")
    parser.add_argument(
        "--mode", choices=("auto", "always", "never"), default="auto",
        help="auto: build when sources changed (default); always; never: only check the build",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="a build-time variable (NEXT_PUBLIC_* reach the browser); repeatable",
    )
    parser.add_argument("--build-command", help="the app's build command, instead of `npm run build`")


def _settings(args: argparse.Namespace):  # -> BuildSettings
    from components.aws.opennext import BuildSettings
    from components.core.base import ComponentError

    environment: dict[str, str] = {}
    for item in args.env:
        name, equals, value = item.partition("=")
        if not equals:
            raise ComponentError(f"--env {item!r} must be NAME=VALUE, e.g. NEXT_PUBLIC_SITE=harbor")
        environment[name] = value
    try:
        return BuildSettings(environment=environment, command=args.build_command)
    except ValueError as error:
        raise ComponentError(f"--env: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def _run(args: argparse.Namespace) -> int:
    from components.aws.opennext import prepare_build
    from components.core.base import ComponentError

    if (args.path is None) == (args.stage is None):
        raise ComponentError("give either an app folder (infra build-site app/web) or --stage STAGE")
    if args.stage is not None:
        if args.env or args.build_command or args.mode != "auto":
            raise ComponentError("--stage builds with the program's own settings; drop --env/--build-command/--mode")
        from infra.harness import run_program

        plan = run_program(Path.cwd(), args.stage)
        sites = [r.name for r in plan.resources if r.type == "harbor:aws:Nextjs"]
        print(f"stage {args.stage}: built or reused {len(sites)} site(s): {', '.join(sites) or 'none'}")
        return 0
    build = prepare_build(Path(args.path), args.mode, settings=_settings(args))  # errors: `error: ...`
    assert build is not None  # prepare_build only returns None offline
    state = "built" if build.built_now else "reused (sources unchanged)"
    routes = ", ".join(f"{b.pattern}->{b.origin}" for b in build.output.behaviors)
    print(
        f"{build.app_dir}: {state}; source hash {build.source_hash[:16]}, build id {build.build_id}\n"
        f"output: {build.path('.open-next')}\nbehaviours: {routes}"
    )
    return 0


subcommand("build-site", "build Next.js apps with OpenNext (reused while their sources are unchanged)")(
    (_configure, _run)
)
