"""``next dev`` for each ``Nextjs``, with the environment and links its server function gets.

The site runs from its own folder with its installed Next.js (``node_modules/.bin/next``),
bound to 127.0.0.1, in its own process group so stopping it also stops the workers
Next.js starts. A site without ``node_modules`` is skipped with a line saying how to
install it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

from infra.dev.children import ending_with_supervisor
from infra.dev.functions import LogStream

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class NextDev:
    """One ``next dev`` process."""

    def __init__(self, label: str, folder: Path, port: int, environment: dict[str, str], log: LogStream) -> None:
        self.label = label
        self.folder = folder
        self.port = port
        self.environment = environment
        self.log = log
        self._process: subprocess.Popen[str] | None = None

    @property
    def binary(self) -> Path:
        return self.folder / "node_modules" / ".bin" / "next"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [str(self.binary), "dev", "--hostname", "127.0.0.1", "--port", str(self.port)],
            cwd=self.folder,
            env={**self.environment, "PORT": str(self.port), "HOSTNAME": "127.0.0.1", "NEXT_TELEMETRY_DISABLED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=ending_with_supervisor(signal.SIGTERM),
        )
        threading.Thread(target=self._forward, daemon=True).start()

    def _forward(self) -> None:
        stream = self._process.stdout if self._process else None
        for line in stream or []:
            text = ANSI.sub("", line).rstrip()
            if text.strip():
                self.log.service(self.label.lower(), text)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                # Next.js's own workers share the group; make sure none outlives it.
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue
            return
