"""A refused program stops with one clear line, registers nothing it can avoid, and leaves no noise."""

from __future__ import annotations

import asyncio

import pulumi
import pytest
from conftest import APP, stage_config

from components import Bucket, ComponentError, Dynamo, Function, Queue, start_app
from infra import harness
from infra.harness import RecordingMonitor, run_mocked


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


@pytest.fixture
def monitors(monkeypatch) -> list[RecordingMonitor]:
    """Every monitor a run creates, to read what reached it even when the run raised."""
    created: list[RecordingMonitor] = []

    class Keeping(RecordingMonitor):
        def __init__(self, mocks) -> None:
            super().__init__(mocks)
            created.append(self)

    monkeypatch.setattr(harness, "RecordingMonitor", Keeping)
    return created


def test_a_late_refusal_registers_nothing_of_the_components_before_it(monitors):
    # The engine sends every registration queued before the error (run_pulumi_func waits
    # for outstanding RPCs after the program raised); the harness does the same.
    def program() -> None:
        start_app()
        Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        Bucket("Uploads")
        Queue("Jobs", visibility_timeout=119).subscribe("app/functions/worker.handler", timeout=20)

    with pytest.raises(ComponentError, match=r"visibility_timeout 119s .* at least 120"):
        run_mocked(program, APP, "dev", stage_config("dev"))
    (monitor,) = monitors
    assert [r.type for r in monitor.records] == ["pulumi:pulumi:Stack"]


def test_the_same_program_without_the_refusal_registers_everything(monitors):
    def program() -> None:
        start_app()
        Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
        Bucket("Uploads")
        Queue("Jobs", visibility_timeout=120).subscribe("app/functions/worker.handler", timeout=20)

    plan = run_mocked(program, APP, "dev", stage_config("dev"))
    types = {r.type for r in plan.resources}
    assert {"aws:dynamodb/table:Table", "aws:s3/bucket:Bucket", "aws:sqs/queue:Queue",
            "aws:lambda/function:Function"} <= types


def table(name: str = "Table") -> Dynamo:
    return Dynamo(name, fields={"pk": "string"}, primary_index={"hash_key": "pk"})


def test_two_components_of_a_type_with_one_name_are_refused_in_one_line(build):
    with pytest.raises(pulumi.RunError) as raised:
        build(lambda: (table(), table()))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Dynamo 'Table': a second Dynamo named 'Table'")
    assert "rename one" in message


def test_a_function_named_like_a_generated_subscriber_is_refused(build):
    # Queue "Jobs" names its subscriber "JobsSubscriber": both would be harbor-dev-JobsSubscriber.
    def body() -> None:
        Function("JobsSubscriber", handler="app/functions/worker.handler")
        Queue("Jobs").subscribe("app/functions/worker.handler")

    with pytest.raises(pulumi.RunError, match="a second Function named 'JobsSubscriber'"):
        build(body)


def test_components_of_different_types_may_share_a_name(build):
    plan = build(lambda: (table("Orders"), Bucket("Orders")))
    assert {r.name for r in plan.resources} >= {"Orders-table", "Orders-bucket"}


def test_plain_resources_with_one_urn_are_refused_like_the_engine_does():
    import pulumi_aws as aws

    def program() -> None:
        aws.sqs.Queue("same")
        aws.sqs.Queue("same")

    with pytest.raises(pulumi.RunError, match=r"two resources share the URN .*::same; .*another name"):
        run_mocked(program, APP, "dev", stage_config("dev"))
