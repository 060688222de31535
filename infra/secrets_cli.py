"""``infra secret``: set, read, list, bulk-load and remove the app's secrets in SSM.

    infra secret set StripeSecretKey --stage prod        value read from stdin (hidden prompt on a terminal)
    infra secret set StripeSecretKey sk_test_1 --stage dev
    infra secret get StripeSecretKey --stage prod
    infra secret list --stage prod [--reveal]
    infra secret load .env.prod --stage prod
    infra secret remove StripeSecretKey --stage prod
    infra secret set DvlaApiKey --fallback               shared by every stage without its own value

Each secret is an SSM SecureString at ``/{app}/{stage}/{Name}`` (fallback:
``/{app}/.fallback/{Name}``; see components/aws/secret.py), where the program reads it.
The app is the ``name`` in Pulumi.yaml. boto3 finds credentials the standard way
(environment, profile, SSO, instance role) and honours ``AWS_ENDPOINT_URL``. The
region is ``--region``, else the stage's region from ``Pulumi.<stage>.yaml`` (where
the program reads); for ``--fallback``, boto3's own (``AWS_REGION``, the profile), else
the dev stage's region.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi import RunError

from components.aws.secret import FALLBACK, check_name, fallback_path, secret_path, set_command, stage_prefix
from infra.cli import resolve_program, subcommand
from infra.harness import project_name, read_stage_file

MASK = "********"
MAX_VALUE_BYTES = 8192  # SSM's Advanced tier limit; Intelligent-Tiering picks the tier


class SecretCommandError(Exception):
    """A failure explained in one line for the person at the terminal."""


@dataclass(frozen=True)
class Target:
    """Where the command reads and writes: one app, one stage (or the fallback), one region."""

    app: str
    stage: str | None  # None: the fallback
    region: str | None

    @property
    def label(self) -> str:
        return "the fallback" if self.stage is None else f"stage {self.stage!r}"

    @property
    def prefix(self) -> str:
        return stage_prefix(self.app, FALLBACK if self.stage is None else self.stage)

    def path(self, name: str) -> str:
        return fallback_path(self.app, name) if self.stage is None else secret_path(self.app, self.stage, name)

    def set_hint(self, name: str) -> str:
        return f"infra secret set {name} --fallback" if self.stage is None else set_command(name, self.stage)

    def flag(self) -> str:
        return "--fallback" if self.stage is None else f"--stage {self.stage}"


# -- arguments --------------------------------------------------------------------------------


def _where(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--stage", help="stage (stack) name: dev, staging, prod, alice…")
    group.add_argument("--fallback", action="store_true", help="the value every stage without its own uses")
    parser.add_argument("--region", help="AWS region (default: the stage's; with --fallback AWS_REGION, else dev's)")
    parser.add_argument("--program", help="the program's folder holding Pulumi.yaml (default: this project)")


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``secret`` subcommand's own subcommands."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Secrets are SSM SecureStrings at /{app}/{stage}/{Name}; a stage without its own value\n"
        "uses /{app}/.fallback/{Name}. Omit VALUE in `set` to read it from stdin.\n\n"
        "examples:\n"
        "  infra secret set StripeSecretKey --stage prod < key.txt\n"
        "  infra secret list --stage prod\n"
        "  infra secret load .env.dev --stage dev\n"
        "  infra secret set DvlaApiKey --fallback"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    setter = actions.add_parser("set", help="set one secret (value from stdin when omitted)")
    setter.add_argument("name")
    setter.add_argument("value", nargs="?", help="omit it to read from stdin, keeping it out of shell history")
    _where(setter)

    getter = actions.add_parser("get", help="print one secret's value (the fallback's if the stage has none)")
    getter.add_argument("name")
    _where(getter)

    lister = actions.add_parser("list", help="list the secrets a stage sees, values masked")
    lister.add_argument("--reveal", action="store_true", help="print the values too")
    _where(lister)

    loader = actions.add_parser("load", help="set every NAME=value of a .env file")
    loader.add_argument("file", type=Path)
    _where(loader)

    remover = actions.add_parser("remove", help="delete one secret")
    remover.add_argument("name")
    _where(remover)


# -- talking to SSM -----------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> Target:
    program = resolve_program(args.program)
    app = project_name(program)
    from stages.loader import load_stage
    from stages.model import STAGE_NAME

    if args.fallback:
        # Every stage reads the fallback in its own region; without a choice, use the dev stage's.
        region = args.region or _boto_region() or load_stage("dev", app, read_stage_file(program, "dev")).region
        return Target(app=app, stage=None, region=region)

    if not STAGE_NAME.match(args.stage):
        raise SecretCommandError(
            f"{args.stage!r} is not a stage name: 1-24 lowercase letters, digits or hyphens, starting with a letter"
        )
    region = args.region or load_stage(args.stage, app, read_stage_file(program, args.stage)).region
    return Target(app=app, stage=args.stage, region=region)


def _boto_region() -> str | None:
    import boto3

    return boto3.session.Session().region_name


def _client(target: Target) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    region = target.region or session.region_name
    if not region:
        raise SecretCommandError("no AWS region: pass --region or set AWS_REGION")
    # Few, quick retries: a person is waiting, and an unreachable endpoint should say so soon.
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=15)
    return session.client("ssm", region_name=region, config=config)


def _explain(error: Exception, client: Any | None, action: str) -> SecretCommandError:
    """One readable line for an SSM or credentials failure."""
    from botocore import exceptions as bx

    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", "SSM")
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return SecretCommandError(
            f"cannot {action}: no AWS credentials found; sign in (aws sso login, AWS_PROFILE) "
            "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, bx.ProfileNotFound):
        return SecretCommandError(f"cannot {action}: {error}; check AWS_PROFILE")
    if isinstance(error, bx.TokenRetrievalError | bx.SSOTokenLoadError | bx.UnauthorizedSSOTokenError):
        return SecretCommandError(f"cannot {action}: your SSO session has expired; run aws sso login")
    if isinstance(error, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return SecretCommandError(
            f"cannot {action}: {endpoint} is unreachable ({type(error).__name__}); "
            "check your network and AWS_ENDPOINT_URL"
        )
    if isinstance(error, bx.ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        if code in {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"} or "KMS" in code:
            return SecretCommandError(f"cannot {action}: access denied by AWS ({code}): {message}")
        if code in {"ThrottlingException", "TooManyUpdates", "Throttling"}:
            return SecretCommandError(f"cannot {action}: SSM is throttling requests ({code}); wait a moment and retry")
        if code in {"ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId"}:
            return SecretCommandError(f"cannot {action}: your AWS credentials are invalid or expired ({code})")
        return SecretCommandError(f"cannot {action}: SSM refused ({code}): {message}")
    if isinstance(error, bx.BotoCoreError):
        return SecretCommandError(f"cannot {action}: {error}")
    raise error


def _is_missing(error: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == "ParameterNotFound"


def _list(client: Any, prefix: str, decrypt: bool) -> dict[str, str]:
    """``{name: value}`` for every parameter directly under ``prefix``."""
    found: dict[str, str] = {}
    pages = client.get_paginator("get_parameters_by_path").paginate(
        Path=prefix, Recursive=False, WithDecryption=decrypt
    )
    for page in pages:
        for parameter in page.get("Parameters", []):
            found[parameter["Name"].rsplit("/", 1)[-1]] = parameter.get("Value", "")
    return found


def _put(client: Any, target: Target, name: str, value: str) -> None:
    client.put_parameter(
        Name=target.path(name),
        Value=value,
        Type="SecureString",
        Overwrite=True,
        Tier="Intelligent-Tiering",  # Standard up to 4 KB, Advanced only when a value needs it
        Description=f"{target.app} secret {name} for {target.label}, set by infra secret",
    )


def _check_value(name: str, value: str) -> str:
    if value == "":
        raise SecretCommandError(f"{name}: the value is empty; SSM cannot store an empty secret")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise SecretCommandError(f"{name}: the value is larger than SSM's {MAX_VALUE_BYTES} byte limit")
    return value


def _read_value(name: str, target: Target) -> str:
    fix = f"give it after the name or pipe it in: infra secret set {name} {target.flag()} < value.txt"
    stream = sys.stdin
    if stream is None or stream.closed:  # started with stdin closed (`<&-`, some CI runners)
        raise SecretCommandError(f"{name}: no value given and stdin is closed; {fix}")
    try:
        if stream.isatty():
            return getpass.getpass(f"Value for {name} (input hidden): ")
        value = stream.read()
    except EOFError:
        raise SecretCommandError(f"{name}: no value was typed; {fix}") from None
    except UnicodeDecodeError:
        raise SecretCommandError(f"{name}: the value on stdin is not UTF-8 text; {fix}") from None
    except (OSError, ValueError) as error:
        raise SecretCommandError(f"{name}: cannot read the value from stdin ({error}); {fix}") from None
    # A pipe or heredoc ends with one newline the person did not mean as part of the value.
    return value[:-1] if value.endswith("\n") else value


# -- .env files ---------------------------------------------------------------------------------


def parse_env(text: str, source: str) -> list[tuple[str, str]]:
    """``NAME=value`` pairs of a .env file; every bad line is reported at once."""
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        name, sep, raw = stripped.partition("=")
        name = name.strip()
        if not sep:
            problems.append(f"{source}:{number}: expected NAME=value")
            continue
        try:
            check_name(name)
            pairs.append((name, _env_value(raw.strip())))
        except ValueError as error:
            problems.append(f"{source}:{number}: {error}")
    if problems:
        raise SecretCommandError("nothing was set; fix " + "; ".join(problems))
    return pairs


def read_env_file(path: Path) -> str:
    """The text of a .env file, or one error naming the file and the first line that is not text."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SecretCommandError(f"cannot read {path}: {error.strerror}") from None
    nul = data.find(b"\0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SecretCommandError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); give a .env file of "
            "NAME=value lines; nothing was set"
        ) from None
    if nul != -1:
        line = data[:nul].count(b"\n") + 1
        raise SecretCommandError(
            f"{path}:{line}: holds a NUL byte, so it is not a text file; give a .env file of "
            "NAME=value lines; nothing was set"
        )
    return text.removeprefix("\ufeff")  # a byte order mark some editors write


def _env_value(raw: str) -> str:
    if raw[:1] in {'"', "'"}:
        quote = raw[0]
        end = raw.find(quote, 1)
        if end == -1:
            raise ValueError(f"the value opens a {quote} quote but never closes it")
        value = raw[1:end]
        if quote == '"':
            value = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return value
    return raw.split(" #", 1)[0].rstrip()  # an unquoted value may carry a trailing comment


# -- the actions ------------------------------------------------------------------------------


def _set(client: Any, target: Target, args: argparse.Namespace) -> Iterator[str]:
    name = check_name(args.name)
    value = _check_value(name, args.value if args.value is not None else _read_value(name, target))
    _put(client, target, name, value)
    yield f"set {name} for {target.label} ({target.path(name)})"


def _get(client: Any, target: Target, args: argparse.Namespace) -> Iterator[str]:
    name = check_name(args.name)
    paths = [target.path(name)] + ([fallback_path(target.app, name)] if target.stage is not None else [])
    for path in paths:
        try:
            value = client.get_parameter(Name=path, WithDecryption=True)["Parameter"]["Value"]
        except Exception as error:
            if _is_missing(error):
                continue
            raise
        if path != target.path(name):
            print(f"({name} comes from the fallback {path})", file=sys.stderr)
        yield value
        return
    raise SecretCommandError(f"{name} is not set for {target.label}; set it with: {target.set_hint(name)}")


def _list_action(client: Any, target: Target, args: argparse.Namespace) -> Iterator[str]:
    own = _list(client, target.prefix, args.reveal)
    inherited = {} if target.stage is None else _list(client, stage_prefix(target.app, FALLBACK), args.reveal)
    rows = [(n, v, "") for n, v in own.items()]
    rows += [(n, v, "fallback") for n, v in inherited.items() if n not in own]
    if not rows:
        yield f"no secrets for {target.label} under {target.prefix}/ (set one with: {target.set_hint('NAME')})"
        return
    width = max(len(n) for n, _, _ in rows)
    yield f"{len(rows)} secret(s) for {target.label} ({target.prefix}/):"
    for name, value, origin in sorted(rows):
        shown = value if args.reveal else MASK
        yield f"  {name.ljust(width)}  {shown}" + (f"  (from {stage_prefix(target.app, FALLBACK)}/)" if origin else "")


def _load(client: Any, target: Target, args: argparse.Namespace) -> Iterator[str]:
    pairs = parse_env(read_env_file(args.file), str(args.file))
    if not pairs:
        raise SecretCommandError(f"{args.file} holds no NAME=value lines; nothing was set")
    for name, value in pairs:
        _check_value(name, value)
    done: list[str] = []
    for name, value in pairs:
        try:
            _put(client, target, name, value)
        except Exception as error:
            explained = _explain(error, client, f"set {name}")
            already = f"; already set: {', '.join(done)}" if done else "; nothing was set"
            raise SecretCommandError(f"{explained}{already}") from None
        done.append(name)
    yield f"set {len(done)} secret(s) for {target.label} from {args.file}: {', '.join(done)}"


def _remove(client: Any, target: Target, args: argparse.Namespace) -> Iterator[str]:
    name = check_name(args.name)
    try:
        client.delete_parameter(Name=target.path(name))
    except Exception as error:
        if _is_missing(error):
            raise SecretCommandError(f"{name} is not set for {target.label}; nothing to remove") from None
        raise
    yield f"removed {name} from {target.label} ({target.path(name)})"


ACTIONS = {"set": _set, "get": _get, "list": _list_action, "load": _load, "remove": _remove}


def run(args: argparse.Namespace) -> int:
    """Run one ``infra secret`` action; failures print one line and return 1."""
    client = None
    try:
        target = _target(args)
        client = _client(target)
        for line in ACTIONS[args.action](client, target, args):
            print(line)
        return 0
    except (SecretCommandError, RunError) as error:  # RunError: a stage file the program would refuse
        print(f"error: {error}", file=sys.stderr)
    except ValueError as error:  # a name that breaks the naming rule
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted; nothing more was changed", file=sys.stderr)
    except Exception as error:
        try:
            explained = _explain(error, client, f"{args.action} secrets")
        except Exception:
            if getattr(args, "debug", False):
                raise
            explained = SecretCommandError(f"{type(error).__name__}: {error} (run with --debug for the traceback)")
        print(f"error: {explained}", file=sys.stderr)
    return 1


subcommand("secret", "manage the app's secrets in SSM Parameter Store (set, get, list, load, remove)")(
    (configure, run)
)
