"""The ``infra dev`` and ``infra shell`` subcommands."""

from __future__ import annotations

import argparse

from infra.cli import resolve_program, subcommand
from infra.dev.supervisor import DEFAULT_PORT


def _dev_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="stage (stack) name: alice, dev…")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the first API's port; other services take the next ones (default {DEFAULT_PORT})")
    parser.add_argument("--reset", action="store_true", help="start with empty local data (databases, secrets)")
    parser.add_argument("--program", help="the program's folder (default: this project)")


def _dev(args: argparse.Namespace) -> int:
    from infra.dev.model import DevError
    from infra.dev.supervisor import run_dev

    if not 1 <= args.port <= 65000:
        raise DevError(f"--port {args.port} must be between 1 and 65000")
    return run_dev(resolve_program(args.program), args.stage, args.port, args.reset)


def _shell_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="the stage: its running infra dev, else its deployment")
    parser.add_argument("--deployed", action="store_true",
                        help="use the deployed stage's links even while infra dev runs for it (needs pulumi)")
    parser.add_argument("--program", help="the program's folder (default: this project)")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                        help="the command and its arguments (none: your $SHELL)")


def _shell(args: argparse.Namespace) -> int:
    from infra.dev.shell import run_shell

    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    return run_shell(resolve_program(args.program), args.stage, command, deployed=args.deployed)


def _fire_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="the stage whose infra dev is running")
    parser.add_argument("--program", help="the program's folder (default: this project)")
    parser.add_argument("name", help="the Cron's name (or its schedule's), e.g. Nightly")


def _fire(args: argparse.Namespace) -> int:
    import json

    from infra.dev.control import fire_job

    answer = fire_job(resolve_program(args.program), args.stage, args.name)
    print(f"{args.name}: {answer['summary']} in {answer['durationMs']} ms")
    if answer.get("value") is not None:
        print(json.dumps(answer["value"], indent=2, sort_keys=True))
    return 0 if answer["ok"] else 1


subcommand("dev", "run the stage's application on 127.0.0.1 (no AWS account needed)")((_dev_parser, _dev))
subcommand("fire", "run one of the stage's Cron jobs now, in its running infra dev")((_fire_parser, _fire))
subcommand("shell", "run a command with the stage's link environment (its infra dev, else its deployment)")(
    (_shell_parser, _shell)
)
