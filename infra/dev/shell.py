"""``infra shell --stage STAGE -- COMMAND...``: a command with the stage's link environment.

``from sst import Resource`` (and the JavaScript SDK) read every linkable resource of the
stage (``SST_RESOURCE_<Name>``), whether or not a function links it. Where they point:

* a running ``infra dev`` for the stage wins: the local services, and the AWS SDKs reach
  the embedded AWS;
* otherwise (or with ``--deployed``) the deployed stage: its ``links`` stack output, read
  with the Pulumi CLI (``pulumi stack output links --json --show-secrets``), with the
  stage's region and its provider's AWS access (``awsProfile``, or the temporary
  credentials of ``awsAssumeRole``'s role, assumed with your own).

Without a command it opens your shell (``$SHELL``) with that environment. Example::

    infra shell --stage alice -- python scripts/seed.py
    infra shell --stage prod --deployed -- python scripts/migrate.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.core.context import LINKS_OUTPUT
from infra.dev.model import DevError
from infra.dev.store import LocalStore
from infra.dev.supervisor import shell_environment
from infra.harness import project_name, read_stage_file

PULUMI_SECONDS = 120


def run_shell(program_dir: Path, stage: str, command: Sequence[str], deployed: bool = False) -> int:
    """Run ``command`` with the link environment; its exit code is the result."""
    if not command:
        # As `sst shell` does: no command opens the user's shell, its prompt naming the stage.
        command = [os.environ.get("SHELL") or "/bin/sh"]
    state = None if deployed else LocalStore.for_stage(program_dir, stage).read_state()
    environment = shell_environment(state) if state is not None else deployed_environment(program_dir, stage)
    environment["PS1"] = f"{project_name(program_dir)}/{stage}> "
    try:
        return subprocess.call(list(command), env=environment)
    except FileNotFoundError:
        raise DevError(f"command not found: {command[0]}") from None


def deployed_environment(program_dir: Path, stage: str) -> dict[str, str]:
    """This process's environment plus the deployed stage's links, region and AWS access.

    The access is the stage provider's: its ``awsProfile``, or, when the stage assumes a
    role (``awsAssumeRole``), that role's temporary credentials (the profile then goes:
    the SDKs refuse a profile beside explicit keys).
    """
    from components.aws.asset_sync import AwsAccess
    from stages.loader import load_stage

    project = project_name(program_dir)
    access = AwsAccess.for_stage(load_stage(stage, project, read_stage_file(program_dir, stage)))
    links = deployed_links(program_dir, stage)
    # Run from inside another infra shell, the environment already points at some stage
    # (its links, a local AWS endpoint and test keys): none of that may leak into this one.
    environment = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SST_", "AWS_ENDPOINT_URL"))
        and not (k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") and v == "testing")
    }
    environment["AWS_REGION"] = environment["AWS_DEFAULT_REGION"] = access.region
    if access.role_arn:
        environment.pop("AWS_PROFILE", None)
        environment.update(_assumed(access, stage))
    elif access.profile:
        environment["AWS_PROFILE"] = access.profile
    environment["SST_RESOURCE_App"] = json.dumps({"name": project, "stage": stage})
    for name, entry in links.items():
        environment[f"SST_RESOURCE_{name}"] = json.dumps(entry)
    return environment


def _assumed(access: Any, stage: str) -> dict[str, str]:
    """Temporary credentials of the stage's role, as the SDKs read them from the environment."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        credentials = access.session().get_credentials().get_frozen_credentials()
    except (BotoCoreError, ClientError) as error:
        raise DevError(f"could not assume stage {stage!r}'s role {access.role_arn}: {error}") from None
    return {"AWS_ACCESS_KEY_ID": credentials.access_key, "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_SESSION_TOKEN": credentials.token or ""}


def deployed_links(program_dir: Path, stage: str) -> dict[str, Any]:
    """The ``links`` output of the deployed stage, through the Pulumi CLI."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise DevError(
            f"no infra dev is running for stage {stage!r} and the Pulumi CLI is not installed to read "
            f"the deployed stage; start `infra dev --stage {stage}`, or install Pulumi and log in"
        )
    try:
        result = subprocess.run(
            [pulumi, "stack", "output", LINKS_OUTPUT, "--json", "--show-secrets", "--stack", stage,
             "--non-interactive"],
            cwd=program_dir, capture_output=True, text=True, timeout=PULUMI_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise DevError(f"pulumi stack output did not answer within {PULUMI_SECONDS} s") from None
    missing = (
        f"stage {stage!r} has no {LINKS_OUTPUT!r} output (deployed before harbor exported it); "
        f"run `pulumi up --stack {stage}` once, then try again"
    )
    if result.returncode != 0:
        if "does not have output property" in result.stderr:  # pulumi's words for a missing output
            raise DevError(missing)
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("error: ") if lines else f"exit code {result.returncode}"
        raise DevError(f"could not read stage {stage!r}'s outputs with pulumi: {reason}")
    try:
        links = json.loads(result.stdout or "null")
    except ValueError:
        links = None
    if not isinstance(links, dict):
        raise DevError(missing)
    return links
