"""A refused program stops with one clear line, registers nothing it can avoid, and leaves no noise."""

from __future__ import annotations

import asyncio

import pytest
from conftest import APP, stage_config

from components import ComponentError, Queue, start_app
from infra.harness import run_mocked


def test_a_refused_program_leaves_no_pending_task_to_be_reported_later(monkeypatch):
    # A task left pending is reported when the garbage collector finds it ("Task was
    # destroyed but it is pending!"), in the middle of whatever runs then.
    loops: list[asyncio.AbstractEventLoop] = []
    new_loop = asyncio.new_event_loop
    monkeypatch.setattr(asyncio, "new_event_loop", lambda: loops.append(new_loop()) or loops[-1])

    def program() -> None:
        start_app()
        Queue("Jobs", visibility_timeout=60).subscribe("app/functions/worker.handler", timeout=30)

    with pytest.raises(ComponentError, match="visibility_timeout 60s"):
        run_mocked(program, APP, "dev", stage_config("dev"))
    assert loops and all(loop.is_closed() for loop in loops)
    assert [task for loop in loops for task in asyncio.all_tasks(loop) if not task.done()] == []
