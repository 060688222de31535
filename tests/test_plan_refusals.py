"""A refused program stops with one clear line, registers nothing it can avoid, and leaves no noise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

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


# -- through `infra plan`: exit 2, one line on stderr, nothing on stdout --------------------------

_PROGRAM_HEAD = """
from components import ApiGatewayV2, Bucket, Dynamo, Function, Queue, SnsTopic, start_app
start_app()
Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})
"""


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ('Dynamo("Table", fields={"pk": "string"}, primary_index={"hash_key": "pk"})\n',
         "error: Dynamo 'Table': a second Dynamo named 'Table'"),
        ('Function("Fn", handler="fns/h.mian")\n',
         "error: Function 'Fn': handler 'fns/h.mian': fns/h.py has no top-level 'mian'; it defines main."),
        ('Queue("Jobs", visibility_timeout=119).subscribe("fns/h.main", timeout=20)\n',
         "error: Queue 'Jobs': visibility_timeout 119s is below 6x the subscriber's timeout (20s)"),
        ('Function("Fn", handler="fns/h.main", environment={"V": "\\u00e9" * 2000})\n',
         "error: Function 'Fn': environment is 4001 bytes and Lambda allows 3961"),
        ('Bucket("Logs", lifecycle=[{"id": "a", "transitions": [{"days": 30, "storage_class": "STANDARD_IA"},'
         ' {"days": 40, "storage_class": "GLACIER"}]}])\n',
         "error: Bucket 'Logs': lifecycle.0 lifecycle rule 'a': objects stay 30 days in STANDARD_IA"),
        ('SnsTopic("Events", fifo=True).subscribe("fns/h.main")\n', "error: SnsTopic 'Events': "),
        ('ApiGatewayV2("Api").route("GET items", "fns/h.main")\n', "error: ApiGatewayV2 'Api': route key 'GET items'"),
    ],
)
def test_infra_plan_prints_one_line_for_each_refusal(tmp_path, capsys, tail, expected):
    from infra.cli import main

    (tmp_path / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  harbor:nat: none\n")
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "h.py").write_text("def main(event, context):\n    return 1\n")
    (tmp_path / "__main__.py").write_text(_PROGRAM_HEAD + tail)
    capsys.readouterr()
    code = main(["plan", "--stage", "dev", "--program", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(expected), err
    assert "Traceback" not in err and "Task" not in err


def test_a_refusal_after_the_vpcs_zone_lookup_still_registers_nothing(monitors, tmp_path):
    # The Vpc waits for a zone lookup in the middle of the program, which turns the event
    # loop; registrations queued before it must still wait for the end of the body.
    import shutil

    from infra.harness import ROOT, run_program

    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "app", tmp_path / "app",
                    ignore=shutil.ignore_patterns("node_modules", ".open-next", ".next", "__pycache__"))
    program = (ROOT / "__main__.py").read_text()
    (tmp_path / "__main__.py").write_text(program + '\napi.route("GET /late", "app/functions/items.lsit_items")\n')
    with pytest.raises(ComponentError, match="has no top-level 'lsit_items'"):
        run_program(tmp_path, "dev")
    (monitor,) = monitors
    registered = {r.type for r in monitor.records}
    assert registered <= {"pulumi:pulumi:Stack", "pulumi:providers:aws"}, registered
    assert [r.name for r in monitor.records if r.type == "pulumi:providers:aws"] == ["aws-lookups"]


def _three_components_then(error: Callable[[], object]) -> Callable[[], None]:
    def program() -> None:
        start_app()
        table()
        Bucket("Uploads")
        Queue("Jobs")
        error()

    return program


def _undefined_name() -> object:
    return undefined_name  # type: ignore[name-defined]  # noqa: F821


def test_a_plain_python_error_after_three_components_registers_nothing_but_the_stack(monitors):
    with pytest.raises(NameError, match="undefined_name"):
        run_mocked(_three_components_then(_undefined_name), APP, "dev", stage_config("dev"))
    (monitor,) = monitors
    assert [r.type for r in monitor.records] == ["pulumi:pulumi:Stack"]


def test_under_the_engines_run_in_stack_a_late_python_error_registers_nothing(monitors):
    # The engine's own path: run_in_stack creates the Stack, runs the body, runs pulumi.run
    # entrypoints only after a body that ended, and waits for outstanding RPCs either way.
    from pulumi.runtime import settings as runtime_settings
    from pulumi.runtime.stack import run_in_stack

    from components.core.context import reset_app

    def engine(program: Callable[[], None]) -> RecordingMonitor:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        reset_app()
        pulumi.runtime.settings.reset_options(project=APP, stack="dev")
        pulumi.runtime.set_all_config(dict(stage_config("dev")), [])
        mocks = harness.AwsMocks(harness.MockContext(region="us-east-1"))
        monitor = harness.RecordingMonitor(mocks)
        pulumi.runtime.mocks.set_mocks(mocks, project=APP, stack="dev", preview=False, monitor=monitor)
        runtime_settings.set_root_resource(None)  # as under the engine: run_in_stack makes the Stack
        try:
            loop.run_until_complete(asyncio.wait_for(run_in_stack(program), 60))
        finally:
            reset_app()
            harness._finish_loop(loop)
        return monitor

    # Pulumi reports the RunError every registration fails with, without a traceback, in one line.
    with pytest.raises(pulumi.RunError) as raised:
        engine(_three_components_then(_undefined_name))
    assert str(raised.value) == "NameError: name 'undefined_name' is not defined; nothing was registered"
    # (the mocks register a root stack of their own before run_in_stack makes the engine's)
    assert {r.type for r in monitors[-1].records} == {"pulumi:pulumi:Stack"}

    complete = engine(_three_components_then(lambda: None))
    types = {r.type for r in complete.records}
    assert {"aws:dynamodb/table:Table", "aws:s3/bucket:Bucket", "aws:sqs/queue:Queue"} <= types

    # A program with an entrypoint of its own, registered before start_app, still deploys.
    ran: list[bool] = []

    async def entrypoint() -> None:
        ran.append(True)

    with_entrypoint = engine(lambda: (pulumi.run(entrypoint), _three_components_then(lambda: None)()))
    assert ran == [True]
    assert "aws:sqs/queue:Queue" in {r.type for r in with_entrypoint.records}


def test_infra_plan_names_a_python_error_and_its_line_in_main_in_one_line(tmp_path, capsys):
    from infra.cli import main

    (tmp_path / "Pulumi.yaml").write_text("name: harbor\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  harbor:nat: none\n")
    (tmp_path / "__main__.py").write_text(
        _PROGRAM_HEAD + 'Bucket("Uploads")\nQueue("Jobs")\nprint(undefined_name)\n')
    capsys.readouterr()
    code = main(["plan", "--stage", "dev", "--program", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    line = _PROGRAM_HEAD.count("\n") + 3
    assert err == (f"error: __main__.py:{line}: NameError: name 'undefined_name' is not defined "
                   "(run with --debug for the traceback)\n")
