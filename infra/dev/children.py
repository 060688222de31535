"""Child processes that end with ``infra dev``, even when it is killed outright.

``infra dev`` stops its servers on Ctrl-C and SIGTERM. A SIGKILL (or the terminal's
window closing under it) gives it no chance: without help its PostgreSQL and ``next dev``
would keep running, holding their ports, and the next ``infra dev`` could not start.
Linux delivers a chosen signal to a process when its parent dies (``PR_SET_PDEATHSIG``):
each long-running child asks for one just before it starts.

The kernel sends it when the *thread* that started the child ends, so only children
started from the supervisor's main thread, which lives as long as the process, use this.
Function hosts need nothing: they end when their standard input closes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    return ctypes.CDLL(library, use_errno=True).prctl


_PRCTL = _prctl()


def ending_with_supervisor(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when we die.

    ``None`` where the system has no such facility (the child then only stops with a clean
    shutdown of ``infra dev``). Example::

        subprocess.Popen(["postgres", ...], preexec_fn=ending_with_supervisor(signal.SIGINT))
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    number = int(sig)

    def request() -> None:
        prctl(PR_SET_PDEATHSIG, number, 0, 0, 0)

    return request
