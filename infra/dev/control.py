"""Requests to a running ``infra dev`` from another terminal: ``infra fire --stage alice Nightly``.

The two sides meet in the stage's local folder (``requests/``), which only this user can
write, so nothing listens on a port for it. A request is a JSON file; the running
``infra dev`` picks it up within a fraction of a second, runs it and writes the answer
next to it. Example::

    answer = fire_job(Path("."), "alice", "Nightly")   # {"ok": True, "summary": "ok", ...}
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from infra.dev.functions import LogStream
from infra.dev.model import DevError
from infra.dev.schedules import Scheduler
from infra.dev.store import LocalStore

POLL_SECONDS = 0.2
ANSWER_MARGIN_SECONDS = 30  # beyond the job's own timeout: start-up of its process, the poll


class ControlDesk:
    """The running ``infra dev``'s side: answers each request file, oldest first."""

    def __init__(self, store: LocalStore, scheduler: Scheduler, log: LogStream) -> None:
        self.folder = store.folder("requests")
        self.scheduler = scheduler
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        for stale in self.folder.iterdir():  # left by an infra dev that was killed
            stale.unlink(missing_ok=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for request in sorted(self.folder.glob("*.request.json"), key=lambda p: p.stat().st_mtime):
                self._answer(request)

    def _answer(self, request: Path) -> None:
        answer_file = request.with_name(request.name.replace(".request.json", ".answer.json"))
        try:
            asked = json.loads(request.read_text())
        except (OSError, ValueError):
            return  # still being written: the next poll reads it
        request.unlink(missing_ok=True)
        answer = self.handle(asked)
        temporary = answer_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(answer))
        temporary.replace(answer_file)

    def handle(self, asked: dict[str, Any]) -> dict[str, Any]:
        """One request: ``{"fire": "<job>"}``."""
        name = str(asked.get("fire", ""))
        outcome = self.scheduler.fire(name)
        if outcome is None:
            known = ", ".join(self.scheduler.names()) or "none"
            return {"error": f"no schedule {name!r} runs in this infra dev (schedules: {known})"}
        return {"ok": outcome.ok, "summary": outcome.summary, "durationMs": round(outcome.duration_ms),
                "value": outcome.value}


def fire_job(program_dir: Path, stage: str, name: str, timeout: float = 900) -> dict[str, Any]:
    """Ask the stage's running ``infra dev`` to run schedule ``name`` now and wait for its outcome."""
    store = LocalStore.for_stage(program_dir, stage)
    if store.read_state() is None:
        raise DevError(f"no infra dev is running for stage {stage!r}; start it with `infra dev --stage {stage}`")
    folder = store.folder("requests")
    ticket = uuid.uuid4().hex
    request = folder / f"{ticket}.request.json"
    temporary = request.with_suffix(".tmp")
    temporary.write_text(json.dumps({"fire": name}))
    os.chmod(temporary, 0o600)
    temporary.replace(request)
    answer_file = folder / f"{ticket}.answer.json"
    deadline = time.monotonic() + timeout + ANSWER_MARGIN_SECONDS
    while time.monotonic() < deadline:
        if answer_file.exists():
            answer = json.loads(answer_file.read_text())
            answer_file.unlink(missing_ok=True)
            if "error" in answer:
                raise DevError(answer["error"])
            return answer
        if store.read_state() is None:
            request.unlink(missing_ok=True)
            raise DevError(f"infra dev for stage {stage!r} stopped before running {name!r}")
        time.sleep(POLL_SECONDS)
    request.unlink(missing_ok=True)
    raise DevError(f"infra dev for stage {stage!r} did not answer within {timeout:.0f} s; is it stuck?")
