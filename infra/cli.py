"""The ``infra`` command: offline plans and the project's day-to-day tools.

    infra plan --stage dev            the resource tree for a stage, no cloud account needed
    infra plan --stage prod --json    the same, machine readable (DESIGN.md contract)
    infra plan --program bootstrap --stage example --json   the bootstrap program (project harbor-bootstrap)
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import pulumi

from infra.harness import ROOT

# Commands that keep running (servers, child processes): the console entry (infra.launch)
# turns the cyclic garbage collector off for short commands, and these turn it back on.
LONG_RUNNING = {"dev"}

# Each subcommand registers itself here: name -> (configure parser, run).
Subcommand = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
SUBCOMMANDS: dict[str, tuple[str, Subcommand]] = {}


def subcommand(name: str, help_text: str) -> Callable[[Subcommand], Subcommand]:
    """Register a subcommand of ``infra``."""

    def register(pair: Subcommand) -> Subcommand:
        SUBCOMMANDS[name] = (help_text, pair)
        return pair

    return register


def resolve_program(program: str | None) -> Path:
    """The folder holding the Pulumi program: ``--program``, else here, else the project's."""
    if program:
        for candidate in (Path(program), ROOT / program):
            if (candidate / "Pulumi.yaml").exists():
                return candidate.resolve()
        raise SystemExit(f"infra: no Pulumi.yaml in {program!r}; pass the program's folder")
    here = Path.cwd()
    return here if (here / "Pulumi.yaml").exists() else ROOT


def _plan_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="stage (stack) name: dev, staging, prod, alice…")
    parser.add_argument("--json", action="store_true", help="print the machine form")
    parser.add_argument("--program", help="the program's folder (default: this project)")


def _plan(args: argparse.Namespace) -> int:
    from infra.plan import run_plan

    print(run_plan(resolve_program(args.program), args.stage, args.json))
    return 0


subcommand("plan", "evaluate the program for a stage offline and print its resources")(
    (_plan_parser, _plan)
)


def _load_subcommands() -> None:
    """Import the modules that add subcommands; a missing optional module is skipped."""
    import importlib

    for module in ("infra.secrets_cli", "infra.check", "infra.cost", "infra.site_cli", "infra.dev.cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as missing:
            if missing.name != module:
                raise


def build_parser(*, load_all: bool = True) -> argparse.ArgumentParser:
    """The argument parser for ``infra`` and every registered subcommand.

    ``load_all=False`` leaves out the subcommands that live in other modules: ``infra
    plan`` needs none of them, and importing them (the dev server, boto3, the rules)
    would add a good part of a second to every plan.
    """
    if load_all:
        _load_subcommands()
    parser = argparse.ArgumentParser(prog="infra", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, (configure, _run)) in SUBCOMMANDS.items():
        configure(commands.add_parser(name, help=help_text, description=help_text))
    return parser


def _command_in(arguments: Sequence[str]) -> str | None:
    """The subcommand the arguments name: the first that is not an option (``--debug``
    is the only one before it, and takes no value)."""
    return next((argument for argument in arguments if not argument.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``infra`` console command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(arguments)
    # A plan process ends with the plan, so the collector stays off (as infra.launch set it;
    # not so under ``python -m infra.cli``). Frozen at the end, the run's objects are also
    # left out of the pass the interpreter makes as it exits (a third of a second).
    whole_process_plan = argv is None and command == "plan"
    if whole_process_plan:
        gc.disable()
    parser = build_parser(load_all=command not in SUBCOMMANDS)
    args = parser.parse_args(arguments)
    if args.command in LONG_RUNNING and not gc.isenabled():
        gc.enable()
    _help, (_configure, run) = SUBCOMMANDS[args.command]
    try:
        return _run(run, args)
    finally:
        if whole_process_plan:
            gc.freeze()


def _run(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand; failures become one line on stderr and an exit code."""
    try:
        return run(args)
    except pulumi.RunError as error:
        # Stage files, component arguments, links: errors written for a person to act on.
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        else:
            where = _where_in_program(error, getattr(args, "program", None))
            message = " ".join(str(error).split())
            print(
                f"error: {where}{type(error).__name__}: {message} (run with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


def _where_in_program(error: BaseException, program: str | None) -> str:
    """``__main__.py:12: `` for the deepest line of the program's own files the error passed through."""
    try:
        folder = resolve_program(program)
    except SystemExit:
        return ""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(folder) and ".venv" not in path.parts and "site-packages" not in path.parts:
            where = f"{path.relative_to(folder)}:{frame.lineno}: "
    return where


if __name__ == "__main__":
    sys.exit(main())
