"""One process per Python function, like one Lambda container: its own environment and links.

A :class:`FunctionHost` starts ``python -m infra.dev.runtime`` on first use (a cold
start), sends it one invocation at a time and restarts it when a file of the function's
source folder changed since it started, so edits show on the next request. A handler
that runs past its timeout is killed and the invocation fails, as on Lambda.

Example::

    host = FunctionHost(spec, source, environment, log)
    result = host.invoke({"Records": []})
    result.ok, result.value, result.duration_ms
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from infra.dev.model import FunctionSpec

SKIPPED_DIRS = {".venv", "venv", "node_modules", ".git", ".build", ".harbor", ".next", ".open-next", "__pycache__"}


class LogStream:
    """The one stream every service and invocation writes to, a line at a time."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out or sys.stdout
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._out.write(line.rstrip("\n") + "\n")
            self._out.flush()

    def service(self, name: str, text: str) -> None:
        self.write(f"{name:<9} {text}")


@dataclass
class Invocation:
    """The outcome of one invocation."""

    ok: bool
    value: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    timed_out: bool = False

    @property
    def summary(self) -> str:
        """``ok``, or the error's type and message."""
        if self.ok:
            return "ok"
        error = self.error or {}
        return f"error {error.get('errorType')}: {error.get('errorMessage')}"


def _python_files(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def source_signature(folder: Path) -> tuple[tuple[str, int], ...]:
    """What changes when a Python file of the folder is edited, added or removed."""
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in _python_files(folder)))


def find_source(program_dir: Path, spec: FunctionSpec, unpack_to: Path) -> tuple[Path, bool]:
    """The folder the function's archive was built from (reloadable), else the unpacked archive.

    The archive holds the source folder's files at its root; the folder in the project
    whose handler module has the same bytes is where the user edits them.
    """
    module = spec.handler.rpartition(".")[0].replace(".", "/") + ".py"
    if spec.archive is None or not spec.archive.is_file():
        raise FileNotFoundError(f"function {spec.label}: no archive to run ({spec.archive})")
    with zipfile.ZipFile(spec.archive) as bundle:
        names = set(bundle.namelist())
        packed = bundle.read(module) if module in names else None
    if packed is not None:
        for candidate in _python_files(program_dir):
            if candidate.as_posix().endswith("/" + module) and candidate.read_bytes() == packed:
                return Path(str(candidate)[: -len(module)]), True
    return unpack(spec.archive, unpack_to), False


def unpack(archive: Path, folder: Path) -> Path:
    """The archive's files in ``folder`` (once per archive: its name is its hash)."""
    target = folder / archive.stem
    if not target.is_dir():
        staging = folder / f".{archive.stem}.{os.getpid()}"
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(staging)
        staging.rename(target)
    return target


class FunctionHost:
    """Runs one function's handler in its own process, one invocation at a time."""

    def __init__(
        self, spec: FunctionSpec, source: Path, environment: dict[str, str], log: LogStream, reload: bool = True
    ) -> None:
        self.spec = spec
        self.source = source
        self.environment = environment
        self.log = log
        self.reload = reload
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._results: IO[str] | None = None
        self._signature: tuple[tuple[str, int], ...] = ()
        self._readers: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------
    def _start(self) -> Invocation | None:
        read_fd, write_fd = os.pipe()
        env = {**self.environment, "HARBOR_DEV_RESULT_FD": str(write_fd)}
        self._signature = source_signature(self.source) if self.reload else ()
        self._process = subprocess.Popen(
            [sys.executable, "-u", "-m", "infra.dev.runtime", str(self.source), self.spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            pass_fds=(write_fd,),
            cwd=str(self.source),
        )
        os.close(write_fd)
        self._results = os.fdopen(read_fd, "r")
        self._readers = [
            threading.Thread(target=self._forward, args=(stream,), daemon=True)
            for stream in (self._process.stdout, self._process.stderr)
        ]
        for reader in self._readers:
            reader.start()
        answer = self._read_answer(60.0)
        if answer is None or not answer.get("ready"):
            error = (answer or {}).get("error") or {"errorType": "InitError", "errorMessage": "the runtime exited"}
            self.stop()
            return Invocation(ok=False, error=error)
        return None

    def _forward(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            self.log.write(f"{self.spec.label}  {line.rstrip()}")

    def stop(self) -> None:
        """End the process (if running) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            if process.stdin:
                process.stdin.close()
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._results is not None:
            self._results.close()
            self._results = None
        for reader in self._readers:
            reader.join(timeout=2)
        self._readers = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    # -- invocations --------------------------------------------------------------------------
    def _read_answer(self, timeout: float) -> dict[str, Any] | None:
        assert self._results is not None
        ready, _, _ = select.select([self._results], [], [], timeout)
        if not ready:
            return None
        line = self._results.readline()
        return json.loads(line) if line else None

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> Invocation:
        """Run the handler on ``event``; a crash or timeout is a failed invocation."""
        with self._lock:
            started = time.monotonic()
            if self._process is not None and self.reload and source_signature(self.source) != self._signature:
                self.log.write(f"{self.spec.label}  reloading: files in {self.source} changed")
                self.stop()
            if self._process is None or self._process.poll() is not None:
                failed = self._start()
                if failed is not None:
                    failed.duration_ms = (time.monotonic() - started) * 1000
                    return failed
            limit = min(timeout or self.spec.timeout, self.spec.timeout)
            request = {"event": event, "requestId": str(uuid.uuid4()), "deadlineMs": time.time() * 1000 + limit * 1000}
            assert self._process is not None and self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps(request) + "\n")
                self._process.stdin.flush()
                answer = self._read_answer(limit)
            except (BrokenPipeError, ValueError):
                answer = None
            duration = (time.monotonic() - started) * 1000
            if answer is None:
                timed_out = self._process is not None and self._process.poll() is None
                self.stop()  # a timed-out or crashed container is not reused
                message = f"Task timed out after {limit:.2f} seconds" if timed_out else "Runtime exited"
                return Invocation(ok=False, error={"errorType": "Timeout" if timed_out else "Runtime.ExitError",
                                                   "errorMessage": message}, duration_ms=duration, timed_out=timed_out)
            if answer.get("ok"):
                return Invocation(ok=True, value=answer.get("result"), duration_ms=duration)
            return Invocation(ok=False, error=answer.get("error"), duration_ms=duration)
