"""``infra shell --stage STAGE -- COMMAND...``: a command with the stage's link environment.

It runs against the stage's running ``infra dev``: ``from sst import Resource`` (and the
JavaScript SDK) read every resource any function links (``SST_RESOURCE_<Name>``), and
the AWS SDKs reach the embedded AWS. Example::

    infra shell --stage alice -- python scripts/seed.py
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from infra.dev.model import DevError
from infra.dev.store import LocalStore
from infra.dev.supervisor import shell_environment


def run_shell(program_dir: Path, stage: str, command: Sequence[str]) -> int:
    """Run ``command`` with the link environment; its exit code is the result."""
    if not command:
        raise DevError("give the command after --, e.g. infra shell --stage alice -- python seed.py")
    state = LocalStore.for_stage(program_dir, stage).read_state()
    if state is None:
        raise DevError(
            f"no infra dev is running for stage {stage!r}; start it with `infra dev --stage {stage}` "
            "in another terminal"
        )
    try:
        return subprocess.call(list(command), env=shell_environment(state))
    except FileNotFoundError:
        raise DevError(f"command not found: {command[0]}") from None
