"""The stage's local folder, ``.harbor/dev/<stage>/`` (git-ignored): what survives a restart.

Layout::

    secrets.json           local secret values {name: value}; edit it to set one
    postgres/<Name>/       each Postgres' data folder, its password and TLS key
    functions/<name>/      each function's link file (rewritten for local addresses)
    state.json             the running ``infra dev``: its pid and addresses (for ``infra shell``)

``HARBOR_DEV_DIR`` moves the root (tests use a temporary folder).

Example::

    store = LocalStore.for_stage(Path("."), "alice")
    store.secrets()            # {"SecretKey": "…"}
"""

from __future__ import annotations

import json
import os
import secrets as random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def dev_root(program_dir: Path) -> Path:
    """Where every stage's local folder lives."""
    return Path(os.environ.get("HARBOR_DEV_DIR") or program_dir / ".harbor" / "dev")


@dataclass(frozen=True)
class LocalStore:
    """One stage's local folder."""

    path: Path

    @classmethod
    def for_stage(cls, program_dir: Path, stage: str) -> LocalStore:
        return cls(dev_root(program_dir) / stage)

    def reset(self) -> None:
        """Start empty (``--reset``): every local value and database of the stage is removed."""
        shutil.rmtree(self.path, ignore_errors=True)

    def folder(self, *parts: str) -> Path:
        """A sub-folder, created when missing."""
        path = self.path.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- secrets ------------------------------------------------------------------------------
    @property
    def secrets_file(self) -> Path:
        return self.path / "secrets.json"

    def secrets(self) -> dict[str, str]:
        """Local secret values by name."""
        if not self.secrets_file.exists():
            return {}
        data = json.loads(self.secrets_file.read_text() or "{}")
        return {str(k): str(v) for k, v in data.items()}

    def add_random_secrets(self, names: list[str]) -> dict[str, str]:
        """Give each name a random local value, keep it, and return the new values."""
        values = self.secrets()
        new = {name: random.token_urlsafe(32) for name in names if name not in values}
        self._write_json(self.secrets_file, {**values, **new})
        return new

    # -- state of the running dev ---------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    def write_state(self, state: dict[str, Any]) -> None:
        self._write_json(self.state_file, state)

    def read_state(self) -> dict[str, Any] | None:
        """The running ``infra dev``'s state, or None when none is running."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        pid = state.get("pid")
        try:
            os.kill(int(pid), 0)
        except (OSError, TypeError, ValueError):
            return None
        return state

    def clear_state(self) -> None:
        self.state_file.unlink(missing_ok=True)

    def _write_json(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.chmod(temporary, 0o600)
        temporary.replace(path)
